//! Checks serde cannot express: values that parse but make no sense together. Every problem is
//! collected (not just the first), each at its field path, so `--validate-only` can list them all
//! with their lines and a start-up error names every one.

use super::check::{FieldPath, Problem};
use super::{ApiKeyEntry, Config, LocalRateLimit, ModelConfig, ProviderKind, RateLimitType};

/// All problems, one per line: the start-up error.
pub fn validate(config: &Config) -> Result<(), String> {
    let problems = problems(config);
    if problems.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    Err(lines.join("\n"))
}

/// Every semantic problem of a parsed config, in document order.
pub fn problems(config: &Config) -> Vec<Problem> {
    let mut out = Out(Vec::new());
    let models = FieldPath::of("llm.models");
    let mut seen = std::collections::HashSet::new();
    for (i, model) in config.llm.models.iter().enumerate() {
        validate_model(model, &models.index(i), &mut out);
        if !seen.insert(model.name.as_str()) {
            let message = format!("duplicate model name {:?}", model.name);
            out.push(models.index(i).key("name"), message);
        }
    }
    validate_policies(config, &mut out);
    validate_metrics(config, &mut out);
    if config.llm.max_request_body_bytes == Some(0) {
        out.push(
            FieldPath::of("llm.maxRequestBodyBytes"),
            "must be greater than 0",
        );
    }
    out.0
}

struct Out(Vec<Problem>);

impl Out {
    fn push(&mut self, path: FieldPath, message: impl Into<String>) {
        self.0.push(Problem::new(path, message));
    }

    /// A problem with a map key itself (a name), not its value.
    fn push_key(&mut self, path: FieldPath, message: impl Into<String>) {
        let mut problem = Problem::new(path, message);
        problem.at_key = true;
        self.0.push(problem);
    }

    /// A check's `Err(message)` at `path`.
    fn check(&mut self, path: FieldPath, result: Result<(), String>) {
        if let Err(message) = result {
            self.push(path, message);
        }
    }
}

fn validate_policies(config: &Config, out: &mut Out) {
    let policies = &config.llm.policies;
    if let Some(policy) = &policies.api_key {
        let keys = FieldPath::of("llm.policies.apiKey.keys");
        for (i, key) in policy.keys.iter().enumerate() {
            validate_key(key, &keys.index(i), out);
            validate_budgets(&key.budgets, &keys.index(i).key("budgets"), out);
        }
    }
    let budgets = FieldPath::of("llm.policies.budgets");
    for (scope, map) in [
        ("users", &policies.budgets.users),
        ("teams", &policies.budgets.teams),
    ] {
        for (name, specs) in map {
            validate_budgets(specs, &budgets.key(scope).key(name), out);
        }
    }
    let limits = FieldPath::of("llm.policies.localRateLimit");
    for (i, limit) in policies.local_rate_limit.iter().enumerate() {
        validate_rate_limit(limit, &limits.index(i), out);
    }
}

fn validate_metrics(config: &Config, out: &mut Out) {
    let metrics = &config.config.metrics;
    if metrics.max_label_values == Some(0) {
        out.push(
            FieldPath::of("config.metrics.maxLabelValues"),
            "must be greater than 0",
        );
    }
    let add = FieldPath::of("config.metrics.fields.add");
    for name in metrics.fields.add.keys() {
        if !is_label_name(name) {
            out.push_key(add.key(name), "not a valid Prometheus label name");
        } else if crate::metrics::RESERVED_LABELS.contains(&name.as_str()) {
            out.push_key(
                add.key(name),
                "clashes with a built-in label; choose another name",
            );
        }
    }
}

fn validate_model(model: &ModelConfig, at: &FieldPath, out: &mut Out) {
    let name = model.name.as_str();
    if name.is_empty() {
        out.push(at.key("name"), "must not be empty");
    } else if name.contains('*') && !(name.ends_with('*') && name.matches('*').count() == 1) {
        out.push(
            at.key("name"),
            format!("{name:?}: only a single trailing '*' wildcard is supported (e.g. \"gpt-4o*\" or \"*\")"),
        );
    }
    let params = at.key("params");
    if let Some(url) = &model.params.base_url {
        out.check(params.key("baseUrl"), check_base_url(url).map(|_| ()));
    }
    validate_provider_params(model, &params, out);
    validate_mock(model, &params, out);
    if model.params.model.as_deref() == Some("") {
        out.push(params.key("model"), "must not be empty");
    }
    match model.params.api_key.as_deref() {
        // An optional model without its key is disabled when the routes are built.
        Some("") if model.optional => {}
        Some(key) if key.trim().is_empty() => out.push(
            params.key("apiKey"),
            "is empty (is its environment variable set? `optional: true` disables the model instead)",
        ),
        None if model.optional => out.push(
            at.key("optional"),
            "only applies to a model with params.apiKey",
        ),
        _ => {}
    }
}

/// `params.mock` belongs to `provider: mock`, which needs no `baseUrl`; a priced wildcard mock
/// needs the name it answers with, since prices are looked up by the answer's model.
fn validate_mock(model: &ModelConfig, params_at: &FieldPath, out: &mut Out) {
    let params = &model.params;
    if model.provider != ProviderKind::Mock {
        if params.mock.is_some() {
            out.push(params_at.key("mock"), "only applies to provider mock");
        }
        return;
    }
    if params.base_url.is_some() {
        out.push(
            params_at.key("baseUrl"),
            "does not apply to provider mock (it answers in-process)",
        );
    }
    let Some(mock) = &params.mock else {
        return;
    };
    if let Err(error) = mock.validate() {
        // `validate` names the field inside `mock` first: `errors.404: ...`.
        let (field, message) = error.split_once(": ").unwrap_or(("", error.as_str()));
        let path = field
            .split('.')
            .filter(|part| !part.is_empty())
            .fold(params_at.key("mock"), |path, part| path.key(part));
        out.push(path, message);
    }
    if mock.price.is_some() && model.name.contains('*') && params.model.is_none() {
        out.push(
            params_at.key("mock").key("price"),
            "a wildcard mock model needs params.model, the model name it answers with and is \
             priced under",
        );
    }
}

fn validate_provider_params(model: &ModelConfig, at: &FieldPath, out: &mut Out) {
    let params = &model.params;
    let azure = model.provider == ProviderKind::Azure;
    if azure && params.base_url.is_none() {
        match params.azure_resource_name.as_deref() {
            None | Some("") => out.push(
                at.key("azureResourceName"),
                "required for provider azure (or set params.baseUrl)",
            ),
            Some(name) if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => out
                .push(
                    at.key("azureResourceName"),
                    format!("{name:?} is not a valid Azure resource name"),
                ),
            Some(_) => {}
        }
    }
    if !azure {
        for (field, set) in [
            ("azureResourceName", params.azure_resource_name.is_some()),
            ("azureApiVersion", params.azure_api_version.is_some()),
        ] {
            if set {
                out.push(at.key(field), "only applies to provider azure");
            }
        }
    }
    if let Some(version) = params.azure_api_version.as_deref() {
        let ok = !version.is_empty()
            && version
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok {
            out.push(
                at.key("azureApiVersion"),
                format!("{version:?} is not an API version (e.g. 2024-10-21 or v1)"),
            );
        }
    }
    if params.max_tokens == Some(0) {
        out.push(at.key("maxTokens"), "must be at least 1");
    }
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
fn validate_budgets(specs: &[crate::budget::BudgetSpec], at: &FieldPath, out: &mut Out) {
    for (i, spec) in specs.iter().enumerate() {
        if spec.usd <= rust_decimal::Decimal::ZERO {
            out.push(at.index(i).key("usd"), "must be greater than 0");
        }
        let earlier = specs.iter().take(i);
        if earlier
            .into_iter()
            .any(|s| s.window == spec.window && s.soft == spec.soft)
        {
            let message = format!("a second budget over {}", spec.window);
            out.push(at.index(i).key("window"), message);
        }
    }
}

fn validate_rate_limit(limit: &LocalRateLimit, at: &FieldPath, out: &mut Out) {
    if limit.kind == RateLimitType::Cost {
        validate_cost_sizes(limit, at, out);
    } else {
        validate_count_sizes(limit, at, out);
    }
    if limit.fill_interval.is_zero() {
        out.push(at.key("fillInterval"), "must be longer than 0");
    }
}

/// `requests` and `tokens` rules count units: `maxTokens`, never dollars.
fn validate_count_sizes(limit: &LocalRateLimit, at: &FieldPath, out: &mut Out) {
    let kind = limit.kind.name();
    match limit.max_tokens {
        None => out.push(at.key("maxTokens"), format!("required for type {kind}")),
        Some(0) => out.push(at.key("maxTokens"), "must be greater than 0"),
        Some(_) => {}
    }
    if limit.tokens_per_fill == Some(0) {
        out.push(at.key("tokensPerFill"), "must be greater than 0");
    }
    for (field, set) in [
        ("maxUsd", limit.max_usd.is_some()),
        ("usdPerFill", limit.usd_per_fill.is_some()),
    ] {
        if set {
            out.push(
                at.key(field),
                format!("only applies to type cost, not {kind}"),
            );
        }
    }
}

/// `cost` rules count dollars: `maxUsd` (and `usdPerFill`), whole micro-dollars above 0.
fn validate_cost_sizes(limit: &LocalRateLimit, at: &FieldPath, out: &mut Out) {
    if limit.max_tokens.is_some() {
        out.push(
            at.key("maxTokens"),
            "does not apply to type cost (use maxUsd)",
        );
    }
    if limit.tokens_per_fill.is_some() {
        out.push(
            at.key("tokensPerFill"),
            "does not apply to type cost (use usdPerFill)",
        );
    }
    match limit.max_usd {
        None => out.push(
            at.key("maxUsd"),
            "required for type cost (USD per fillInterval)",
        ),
        Some(usd) => out.check(at.key("maxUsd"), micro_usd(usd)),
    }
    if let Some(usd) = limit.usd_per_fill {
        out.check(at.key("usdPerFill"), micro_usd(usd));
    }
}

/// The limiter's exactness rule, its message without the field name (the path says it).
fn micro_usd(usd: rust_decimal::Decimal) -> Result<(), String> {
    crate::limits::cost::micro_usd_exact("", usd)
        .map(|_| ())
        .map_err(|e| e.trim_start_matches(": ").to_owned())
}

fn validate_key(key: &ApiKeyEntry, at: &FieldPath, out: &mut Out) {
    if let Some(models) = &key.allowed_models {
        if let Err(e) = crate::identity::ModelPatterns::parse(models) {
            // The message starts with the entry's index: `[2]: ...`.
            let (path, message) = match FieldPath::parse_prefix(&format!("allowedModels{e}")) {
                Some((relative, rest)) => (at.join(&relative), rest.to_owned()),
                None => (at.key("allowedModels"), e),
            };
            out.push(path, message);
        }
    }
    let result = match (&key.key, &key.key_hash) {
        (Some(_), Some(_)) => Err(("key", "set either key or keyHash, not both".to_owned())),
        (None, None) => Err(("key", "one of key or keyHash is required".to_owned())),
        (Some(k), None) if k.is_empty() => Err(("key", "must not be empty".to_owned())),
        (None, Some(h)) => parse_key_hash(h).map(|_| ()).map_err(|e| ("keyHash", e)),
        _ => Ok(()),
    };
    if let Err((field, message)) = result {
        out.push(at.key(field), message);
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
