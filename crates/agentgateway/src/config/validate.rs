//! Checks serde cannot express: values that parse but make no sense together. Each message names
//! the field path so the user can find it.

use super::{ApiKeyEntry, Config, LocalRateLimit, ModelConfig, ProviderKind, RateLimitType};

pub fn validate(config: &Config) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, model) in config.llm.models.iter().enumerate() {
        validate_model(model).map_err(|e| format!("llm.models[{i}].{e}"))?;
        if !seen.insert(model.name.as_str()) {
            return Err(format!(
                "llm.models[{i}].name: duplicate model name {:?}",
                model.name
            ));
        }
    }
    if let Some(policy) = &config.llm.policies.api_key {
        for (i, key) in policy.keys.iter().enumerate() {
            validate_key(key).map_err(|e| format!("llm.policies.apiKey.keys[{i}].{e}"))?;
            validate_budgets(&key.budgets)
                .map_err(|e| format!("llm.policies.apiKey.keys[{i}].budgets{e}"))?;
        }
    }
    let budgets = &config.llm.policies.budgets;
    for (scope, map) in [("users", &budgets.users), ("teams", &budgets.teams)] {
        for (name, specs) in map {
            validate_budgets(specs)
                .map_err(|e| format!("llm.policies.budgets.{scope}.{name}{e}"))?;
        }
    }
    for (i, limit) in config.llm.policies.local_rate_limit.iter().enumerate() {
        validate_rate_limit(limit).map_err(|e| format!("llm.policies.localRateLimit[{i}].{e}"))?;
    }
    if config.config.metrics.max_label_values == Some(0) {
        return Err("config.metrics.maxLabelValues: must be greater than 0".into());
    }
    if config.llm.max_request_body_bytes == Some(0) {
        return Err("llm.maxRequestBodyBytes: must be greater than 0".into());
    }
    for name in config.config.metrics.fields.add.keys() {
        if !is_label_name(name) {
            return Err(format!(
                "config.metrics.fields.add.{name}: not a valid Prometheus label name"
            ));
        }
        if crate::metrics::RESERVED_LABELS.contains(&name.as_str()) {
            return Err(format!(
                "config.metrics.fields.add.{name}: clashes with a built-in label; choose another name"
            ));
        }
    }
    Ok(())
}

fn validate_model(model: &ModelConfig) -> Result<(), String> {
    let name = model.name.as_str();
    if name.is_empty() {
        return Err("name: must not be empty".into());
    }
    if name.contains('*') && !(name.ends_with('*') && name.matches('*').count() == 1) {
        return Err(format!(
            "name: {name:?}: only a single trailing '*' wildcard is supported (e.g. \"gpt-4o*\" or \"*\")"
        ));
    }
    if let Some(url) = &model.params.base_url {
        check_base_url(url).map_err(|e| format!("params.baseUrl: {e}"))?;
    }
    validate_provider_params(model)?;
    validate_mock(model)?;
    if model.params.model.as_deref() == Some("") {
        return Err("params.model: must not be empty".into());
    }
    match model.params.api_key.as_deref() {
        // An optional model without its key is disabled when the routes are built.
        Some("") if model.optional => {}
        Some(key) if key.trim().is_empty() => {
            return Err("params.apiKey: is empty (is its environment variable set? \
                 `optional: true` disables the model instead)"
                .into())
        }
        None if model.optional => {
            return Err("optional: only applies to a model with params.apiKey".into())
        }
        _ => {}
    }
    Ok(())
}

/// `params.mock` belongs to `provider: mock`, which needs no `baseUrl`; a priced wildcard mock
/// needs the name it answers with, since prices are looked up by the answer's model.
fn validate_mock(model: &ModelConfig) -> Result<(), String> {
    let params = &model.params;
    if model.provider != ProviderKind::Mock {
        return match params.mock {
            Some(_) => Err("params.mock: only applies to provider mock".into()),
            None => Ok(()),
        };
    }
    if params.base_url.is_some() {
        return Err(
            "params.baseUrl: does not apply to provider mock (it answers in-process)".into(),
        );
    }
    let Some(mock) = &params.mock else {
        return Ok(());
    };
    mock.validate().map_err(|e| format!("params.mock.{e}"))?;
    if mock.price.is_some() && model.name.contains('*') && params.model.is_none() {
        return Err(
            "params.mock.price: a wildcard mock model needs params.model, the model \
             name it answers with and is priced under"
                .into(),
        );
    }
    Ok(())
}

fn validate_provider_params(model: &ModelConfig) -> Result<(), String> {
    let params = &model.params;
    let azure = model.provider == ProviderKind::Azure;
    if azure && params.base_url.is_none() {
        match params.azure_resource_name.as_deref() {
            None | Some("") => {
                return Err(
                    "params.azureResourceName: required for provider azure (or set params.baseUrl)"
                        .into(),
                )
            }
            Some(name) if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
                return Err(format!(
                    "params.azureResourceName: {name:?} is not a valid Azure resource name"
                ))
            }
            Some(_) => {}
        }
    }
    if !azure && (params.azure_resource_name.is_some() || params.azure_api_version.is_some()) {
        return Err(
            "params.azureResourceName/azureApiVersion: only apply to provider azure".into(),
        );
    }
    if let Some(version) = params.azure_api_version.as_deref() {
        let ok = !version.is_empty()
            && version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            return Err(format!(
                "params.azureApiVersion: {version:?} is not an API version (e.g. 2024-10-21 or v1)"
            ));
        }
    }
    if params.max_tokens == Some(0) {
        return Err("params.maxTokens: must be at least 1".into());
    }
    Ok(())
}

pub(crate) fn check_base_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => return Err(format!("{url:?} must start with http:// or https://")),
    }
    if uri.host().is_none() {
        return Err(format!("{url:?} has no host"));
    }
    if uri.query().is_some() {
        return Err(format!("{url:?} must not have a query string"));
    }
    Ok(uri)
}

/// A budget is a positive amount; two budgets over the same window would be one too many.
fn validate_budgets(specs: &[crate::budget::BudgetSpec]) -> Result<(), String> {
    for (i, spec) in specs.iter().enumerate() {
        if spec.usd <= rust_decimal::Decimal::ZERO {
            return Err(format!("[{i}].usd: must be greater than 0"));
        }
        if specs[..i]
            .iter()
            .any(|s| s.window == spec.window && s.soft == spec.soft)
        {
            return Err(format!(
                "[{i}].window: a second budget over {}",
                spec.window
            ));
        }
    }
    Ok(())
}

fn validate_rate_limit(limit: &LocalRateLimit) -> Result<(), String> {
    if limit.kind == RateLimitType::Cost {
        validate_cost_sizes(limit)?;
    } else {
        validate_count_sizes(limit)?;
    }
    if limit.fill_interval.is_zero() {
        return Err("fillInterval: must be longer than 0".into());
    }
    Ok(())
}

/// `requests` and `tokens` rules count units: `maxTokens`, never dollars.
fn validate_count_sizes(limit: &LocalRateLimit) -> Result<(), String> {
    let kind = limit.kind.name();
    match limit.max_tokens {
        None => return Err(format!("maxTokens: required for type {kind}")),
        Some(0) => return Err("maxTokens: must be greater than 0".into()),
        Some(_) => {}
    }
    if limit.tokens_per_fill == Some(0) {
        return Err("tokensPerFill: must be greater than 0".into());
    }
    if limit.max_usd.is_some() {
        return Err(format!("maxUsd: only applies to type cost, not {kind}"));
    }
    if limit.usd_per_fill.is_some() {
        return Err(format!("usdPerFill: only applies to type cost, not {kind}"));
    }
    Ok(())
}

/// `cost` rules count dollars: `maxUsd` (and `usdPerFill`), whole micro-dollars above 0.
fn validate_cost_sizes(limit: &LocalRateLimit) -> Result<(), String> {
    if limit.max_tokens.is_some() {
        return Err("maxTokens: does not apply to type cost (use maxUsd)".into());
    }
    if limit.tokens_per_fill.is_some() {
        return Err("tokensPerFill: does not apply to type cost (use usdPerFill)".into());
    }
    let max_usd = limit
        .max_usd
        .ok_or("maxUsd: required for type cost (USD per fillInterval)")?;
    crate::limits::cost::micro_usd_exact("maxUsd", max_usd)?;
    if let Some(usd) = limit.usd_per_fill {
        crate::limits::cost::micro_usd_exact("usdPerFill", usd)?;
    }
    Ok(())
}

fn validate_key(key: &ApiKeyEntry) -> Result<(), String> {
    if let Some(models) = &key.allowed_models {
        crate::identity::ModelPatterns::parse(models).map_err(|e| format!("allowedModels{e}"))?;
    }
    match (&key.key, &key.key_hash) {
        (Some(_), Some(_)) => Err("key: set either key or keyHash, not both".into()),
        (None, None) => Err("key: one of key or keyHash is required".into()),
        (Some(k), None) if k.is_empty() => Err("key: must not be empty".into()),
        (None, Some(h)) => parse_key_hash(h)
            .map(|_| ())
            .map_err(|e| format!("keyHash: {e}")),
        _ => Ok(()),
    }
}

/// `sha256:<64 hex digits>` -> the 32-byte digest.
pub(crate) fn parse_key_hash(text: &str) -> Result<[u8; 32], String> {
    let hex_part = text
        .strip_prefix("sha256:")
        .ok_or_else(|| "must look like \"sha256:<64 hex digits>\"".to_string())?;
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut digest)
        .map_err(|_| "must look like \"sha256:<64 hex digits>\"".to_string())?;
    Ok(digest)
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}
