//! The configuration file: its YAML shape (a compatible subset of agentgateway's standalone `llm:`
//! config, see `shared/reference/interface.md`), loading with `$VAR` expansion, and validation.
//!
//! Typos must never be silently ignored, so every struct denies unknown fields and every error
//! names the field path (and, for parse errors, the line). The types here are plain data; the
//! runtime structures the request path uses (routes, key tables, compiled CEL) are built from them
//! by [`crate::gateway`] so that `--validate-only` exercises exactly what a real start does.
//! Serializing them is the admin API's `/config_dump` ([`config_dump`]), with secrets redacted.

pub mod check;
mod dump;
mod duration;
mod expand;
pub mod mock;
mod provider;
pub mod schema;
mod validate;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use dump::{config_dump, format_duration, REDACTED};
pub use duration::parse_duration;
pub use mock::{MockParams, MockPrice};
pub use provider::{CredentialHeader, ProviderApi, ProviderKind};
pub(crate) use validate::{check_base_url, parse_key_hash};

/// The default request body limit: large prompts (long contexts, base64 images) fit; abuse does not.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A configuration that could not be loaded; the message names the field (and line when known).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Expand(String),
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Process-wide settings: side ports, logging, metrics, keys database, prices.
    #[serde(default)]
    pub config: GlobalConfig,
    /// The LLM listener, its policies and the models it routes to.
    pub llm: LlmConfig,
}

/// Process-wide settings: where the side ports listen, and how requests are logged and metered.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GlobalConfig {
    /// Where Prometheus `/metrics` is served (e.g. `0.0.0.0:15020`); unset: not served.
    /// `$STATS_ADDR` overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_addr: Option<SocketAddr>,
    /// Where `/healthz/ready` is served (e.g. `0.0.0.0:15021`); `$READINESS_ADDR` overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readiness_addr: Option<SocketAddr>,
    /// Where the admin API (virtual keys, spend, `/config_dump`) listens, e.g. `127.0.0.1:15000`;
    /// `$ADMIN_ADDR` overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_addr: Option<SocketAddr>,
    /// Bearer token the admin API requires (ours); `$AGW_ADMIN_TOKEN` when unset. Without one the
    /// admin API only listens on loopback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_token: Option<Secret>,
    /// Where dynamic virtual keys live (ours): a SQLite file path (or `sqlite:` URL), created on
    /// first start. Without it only the config's static keys exist.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The access log: one line per request on stdout.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Custom labels on the `gen_ai` metrics.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// How long in-flight requests may take to finish after SIGTERM (ours; default 30s).
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<schema::DurationText>")]
    pub drain_timeout: Option<Duration>,
    /// Price files (ours) added over the built-in catalog, later ones winning: the agentgateway
    /// catalog format (provider -> model -> USD per 1M tokens, YAML or JSON) or LiteLLM's JSON.
    /// Reloaded when they change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_catalog: Vec<String>,
    /// Adds `x-agw-cost-usd` to non-streamed LLM responses (ours; off by default). The gateway
    /// then reads those responses whole before answering, to know their cost.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cost_header: bool,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoggingConfig {
    /// `text` (default) or `json`; `$LOG_FORMAT` overrides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<LogFormat>,
    /// Level of the diagnostics on stderr (`error`..`trace`); the access log is not affected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// CEL: only requests for which this is true are logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Fields added to or removed from each access-log line.
    #[serde(default)]
    pub fields: LogFields,
}

/// How access-log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogFields {
    /// Extra fields, name -> CEL expression, in the order written.
    #[serde(default)]
    pub add: IndexMap<String, String>,
    /// Built-in fields to leave out (e.g. `src.addr`).
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct MetricsConfig {
    /// Labels added to the `gen_ai` metrics.
    #[serde(default)]
    pub fields: MetricFields,
    /// Cardinality bound (ours): each custom label keeps its first N distinct values; later
    /// ones are reported as `other`. Unset: unbounded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_label_values: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricFields {
    /// Extra labels on the gen_ai metrics, label name -> CEL expression.
    #[serde(default)]
    pub add: IndexMap<String, String>,
}

/// The LLM listener and what it routes to.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LlmConfig {
    /// The port the LLM API listens on (all interfaces).
    #[serde(default = "default_port")]
    pub port: u16,
    /// Serve the LLM API over TLS (HTTP/2 and HTTP/1.1 by ALPN).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Who may call (API keys) and how much (rate limits, budgets).
    #[serde(default)]
    pub policies: Policies,
    /// The models clients can ask for, matched in order of precision (exact, longest `prefix*`, `*`).
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// Largest accepted request body in bytes (ours; default 16 MiB); larger bodies get 413.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_request_body_bytes: Option<usize>,
    /// Upstream and client timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
}

fn default_port() -> u16 {
    4000
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TlsConfig {
    /// PEM file holding the certificate chain.
    pub cert: String,
    /// PEM file holding the private key.
    pub key: String,
}

/// Upstream timeouts (ours). A model may take minutes to start streaming, so the first-byte
/// default is generous; connecting should be quick.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Timeouts {
    /// DNS + TCP + TLS to the provider (default 10s).
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<schema::DurationText>")]
    pub connect: Option<Duration>,
    /// From sending the request to the provider's response headers.
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<schema::DurationText>")]
    pub first_byte: Option<Duration>,
    /// Longest silence between upstream body chunks (e.g. a stalled stream).
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<schema::DurationText>")]
    pub idle: Option<Duration>,
    /// How long a client may take to send its request body (408 beyond).
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<schema::DurationText>")]
    pub request_body: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policies {
    /// Client API keys (`Authorization: Bearer`, `x-api-key` or `api-key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<ApiKeyPolicy>,
    /// Token buckets every request must pass (all of them).
    #[serde(default)]
    pub local_rate_limit: Vec<LocalRateLimit>,
    /// USD budgets of users (all their keys together) and teams (ours).
    #[serde(default, skip_serializing_if = "BudgetPolicy::is_empty")]
    pub budgets: BudgetPolicy,
}

/// Budgets by user and by team name (the keys' `user` / `team` metadata).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetPolicy {
    #[serde(default)]
    pub users: IndexMap<String, Vec<crate::budget::BudgetSpec>>,
    #[serde(default)]
    pub teams: IndexMap<String, Vec<crate::budget::BudgetSpec>>,
}

impl BudgetPolicy {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.teams.is_empty()
    }
}

/// One token bucket (agentgateway's `localRateLimit` entry), plus our `key`: a CEL expression
/// whose value picks the bucket, so each user (team, model...) gets its own, and our `type: cost`,
/// whose bucket holds US dollars (`maxUsd`, `usdPerFill`) instead of requests or tokens. Which
/// size fields a type needs is checked in `validate`, so the error can name the missing one.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalRateLimit {
    /// What the bucket counts: `requests` (default), `tokens` or `cost` (USD).
    #[serde(rename = "type", default)]
    pub kind: RateLimitType,
    /// Bucket size of `requests` and `tokens` rules: the burst.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Added every `fillInterval` (default: `maxTokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_fill: Option<u64>,
    /// Bucket size of a `cost` rule, USD. Parsed from the text as written (`0.10` is exactly a
    /// dime), never through a float.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_usd: Option<rust_decimal::Decimal>,
    /// USD added every `fillInterval` (default: `maxUsd`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usd_per_fill: Option<rust_decimal::Decimal>,
    /// How often `tokensPerFill` (or `usdPerFill`) is added back.
    #[serde(with = "duration::required")]
    #[schemars(with = "schema::DurationText")]
    pub fill_interval: Duration,
    /// CEL: one bucket per distinct value; absent means one bucket shared by every caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitType {
    /// One per request.
    #[default]
    Requests,
    /// Input + output tokens (estimated before forwarding, trued up after).
    Tokens,
    /// Ours: US dollars per window, estimated before forwarding and trued up with the real cost.
    Cost,
}

impl RateLimitType {
    /// The value as written in the config.
    pub fn name(self) -> &'static str {
        match self {
            RateLimitType::Requests => "requests",
            RateLimitType::Tokens => "tokens",
            RateLimitType::Cost => "cost",
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiKeyPolicy {
    /// How a missing or unknown key is treated (default `strict`).
    #[serde(default)]
    pub mode: ApiKeyMode,
    /// The static keys (dynamic ones live in `config.database`).
    #[serde(default)]
    pub keys: Vec<ApiKeyEntry>,
}

/// `strict`: a valid key is required. `optional`: a key, if present, must be valid.
/// `permissive`: a valid key identifies the caller; an invalid or missing one is let through anonymously.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyMode {
    #[default]
    Strict,
    Optional,
    Permissive,
}

#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiKeyEntry {
    /// The key clients send (often `$VAR`); set this or `keyHash`.
    #[serde(
        serialize_with = "dump::option_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub key: Option<String>,
    /// `sha256:<64 hex>`: lets a config hold no secret at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_hash: Option<String>,
    /// Shown as `apiKey.name` in CEL; defaults to the metadata's `name`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-form facts about the caller, shown as `apiKey.<name>` in CEL (`user` and `team` name
    /// budget and spend scopes).
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Models this key may use (ours): exact, `prefix*`, `*suffix`; absent means all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_models: Option<Vec<String>>,
    /// Per-key limits (ours), as for dynamic keys.
    #[serde(default)]
    pub limits: crate::identity::KeyLimits,
    /// USD budgets of this key (ours).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub budgets: Vec<crate::budget::BudgetSpec>,
}

/// A string that must never be shown: `Debug` and serialization print `<redacted>`.
#[derive(Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl Serialize for Secret {
    // The value itself never leaves the process: a config dump only says that one is set.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Debug for ApiKeyEntry {
    // Keys must never reach a log, not even a debug dump of the config.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyEntry")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("key_hash", &self.key_hash)
            .field("name", &self.name)
            .field("metadata", &self.metadata)
            .field("allowed_models", &self.allowed_models)
            .field("limits", &self.limits)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelConfig {
    /// What clients ask for: an exact name, `*`, or a `prefix*` wildcard.
    pub name: String,
    /// Which provider serves it; sets the wire format, the default `baseUrl` and the credential header.
    pub provider: ProviderKind,
    /// Ours: a model whose `params.apiKey` is empty (`${OPENAI_API_KEY:-}` with the variable
    /// unset) is disabled with a warning instead of refusing the config.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    /// How to call the provider.
    #[serde(default)]
    pub params: ModelParams,
}

#[derive(Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelParams {
    /// The provider's model name (Azure: the deployment); unset: the name the client asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The provider credential, usually `$PROVIDER_API_KEY`; unset: none is sent.
    #[serde(
        serialize_with = "dump::option_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_key: Option<String>,
    /// The API root including its version prefix (`https://api.openai.com/v1`); unset: the
    /// provider's default.
    #[serde(
        serialize_with = "dump::option_url",
        skip_serializing_if = "Option::is_none"
    )]
    pub base_url: Option<String>,
    /// Azure: the resource name in `https://{name}.openai.azure.com`. For Azure a `baseUrl`
    /// replaces the whole `https://{name}.openai.azure.com/openai` root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_resource_name: Option<String>,
    /// Azure: a dated API version (`2024-10-21`) selects the `deployments/{model}/...?api-version=`
    /// URLs; `v1` or unset selects the `/openai/v1/...` API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_api_version: Option<String>,
    /// Ours: `max_tokens` sent to Anthropic when an OpenAI-style caller gives none (Anthropic
    /// requires it). Default 4096.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Ours: the settings of a `provider: mock` model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mock: Option<MockParams>,
}

impl std::fmt::Debug for ModelParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelParams")
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("base_url", &self.base_url)
            .field("azure_resource_name", &self.azure_resource_name)
            .field("azure_api_version", &self.azure_api_version)
            .field("max_tokens", &self.max_tokens)
            .field("mock", &self.mock)
            .finish()
    }
}

impl Config {
    /// Reads, expands and parses a config file, then checks what serde cannot.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text, &|name| std::env::var(name).ok())
            .map_err(|e| prefix_error(e, &path.display().to_string()))
    }

    /// Parses YAML text; `env` resolves `$VAR`s (a parameter so tests need not touch the process env).
    pub fn from_yaml(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let expanded = expand::expand_env(text, env).map_err(ConfigError::Expand)?;
        let config: Config =
            serde_yaml_ng::from_str(&expanded).map_err(|e| ConfigError::Parse(e.to_string()))?;
        validate::validate(&config).map_err(ConfigError::Invalid)?;
        Ok(config)
    }

    pub fn max_request_body_bytes(&self) -> usize {
        self.llm
            .max_request_body_bytes
            .unwrap_or(DEFAULT_MAX_BODY_BYTES)
    }

    pub fn drain_timeout(&self) -> Duration {
        self.config.drain_timeout.unwrap_or(Duration::from_secs(30))
    }
}

fn prefix_error(e: ConfigError, file: &str) -> ConfigError {
    match e {
        ConfigError::Expand(m) => ConfigError::Expand(format!("{file}: {m}")),
        ConfigError::Parse(m) => ConfigError::Parse(format!("{file}: {m}")),
        ConfigError::Invalid(m) => ConfigError::Invalid(format!("{file}: {m}")),
        other => other,
    }
}

#[cfg(test)]
mod tests;
