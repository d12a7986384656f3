//! The providers a model entry can name: OpenAI, Anthropic, Azure OpenAI and the
//! OpenAI-compatible family, each with its API root, the wire format it speaks, how it takes its
//! credential, and its OpenTelemetry `gen_ai.provider.name` (the `gen_ai_system` label).
//!
//! A preset is only a default base URL and a system name: every one of them speaks OpenAI's
//! Chat Completions wire format, so routing, metering and stream handling are shared. Having the
//! name right matters for dashboards: `sum by (gen_ai_system)` should say "groq", not "openai".

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = super::schema::provider_kind_schema)]
pub enum ProviderKind {
    #[serde(rename = "openAI", alias = "openai")]
    OpenAi,
    Groq,
    Mistral,
    #[serde(rename = "deepseek", alias = "deepSeek")]
    DeepSeek,
    Together,
    Fireworks,
    #[serde(rename = "openrouter", alias = "openRouter")]
    OpenRouter,
    Xai,
    Cerebras,
    Perplexity,
    Ollama,
    Vllm,
    Anthropic,
    /// Azure OpenAI: OpenAI's wire format on a per-resource host, deployment-addressed.
    Azure,
    /// The gateway's built-in endpoint ([`crate::mock`]): speaks OpenAI's APIs and Anthropic's
    /// Messages natively, so no call to it is translated.
    Mock,
}

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderApi {
    /// OpenAI Chat Completions, Responses, Embeddings, Completions.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Both natively (the built-in mock): no call is translated.
    Both,
}

/// The header that carries the provider credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialHeader {
    /// `Authorization: Bearer <key>`
    Bearer,
    /// Anthropic's `x-api-key: <key>`
    XApiKey,
    /// Azure's `api-key: <key>`
    ApiKey,
}

/// (kind, `gen_ai.provider.name`, default API root including its version prefix).
/// System names follow the OpenTelemetry registry where it has one (`groq`, `mistral_ai`,
/// `deepseek`, `x_ai`, `perplexity`); the others use the provider's own short name.
const PRESETS: [(ProviderKind, &str, &str); 15] = [
    (ProviderKind::OpenAi, "openai", "https://api.openai.com/v1"),
    (ProviderKind::Groq, "groq", "https://api.groq.com/openai/v1"),
    (
        ProviderKind::Mistral,
        "mistral_ai",
        "https://api.mistral.ai/v1",
    ),
    (
        ProviderKind::DeepSeek,
        "deepseek",
        "https://api.deepseek.com/v1",
    ),
    (
        ProviderKind::Together,
        "together_ai",
        "https://api.together.xyz/v1",
    ),
    (
        ProviderKind::Fireworks,
        "fireworks_ai",
        "https://api.fireworks.ai/inference/v1",
    ),
    (
        ProviderKind::OpenRouter,
        "openrouter",
        "https://openrouter.ai/api/v1",
    ),
    (ProviderKind::Xai, "x_ai", "https://api.x.ai/v1"),
    (
        ProviderKind::Cerebras,
        "cerebras",
        "https://api.cerebras.ai/v1",
    ),
    (
        ProviderKind::Perplexity,
        "perplexity",
        "https://api.perplexity.ai",
    ),
    (ProviderKind::Ollama, "ollama", "http://127.0.0.1:11434/v1"),
    (ProviderKind::Vllm, "vllm", "http://127.0.0.1:8000/v1"),
    (
        ProviderKind::Anthropic,
        "anthropic",
        "https://api.anthropic.com/v1",
    ),
    // Azure has no fixed root: it is built from `params.azureResourceName`.
    (ProviderKind::Azure, "azure.ai.openai", ""),
    // The mock's root is its in-process server's address, known once it is bound.
    (ProviderKind::Mock, "mock", ""),
];

impl ProviderKind {
    fn preset(self) -> (&'static str, &'static str) {
        PRESETS.iter().find(|(kind, _, _)| *kind == self).map_or(
            ("openai", "https://api.openai.com/v1"),
            |(_, system, url)| (*system, *url),
        )
    }

    /// The OpenTelemetry `gen_ai.provider.name` value.
    pub fn system(self) -> &'static str {
        self.preset().0
    }

    /// The API root when `params.baseUrl` is not set (empty for Azure, whose root is per resource).
    pub fn default_base_url(self) -> &'static str {
        self.preset().1
    }

    pub fn api(self) -> ProviderApi {
        match self {
            ProviderKind::Anthropic => ProviderApi::Anthropic,
            ProviderKind::Mock => ProviderApi::Both,
            _ => ProviderApi::OpenAi,
        }
    }

    pub fn credential_header(self) -> CredentialHeader {
        match self {
            ProviderKind::Anthropic => CredentialHeader::XApiKey,
            ProviderKind::Azure => CredentialHeader::ApiKey,
            _ => CredentialHeader::Bearer,
        }
    }

    /// Whether the provider honours `stream_options.include_usage` on Chat Completions streams.
    /// The others report usage on their own (Mistral in the last chunk; some servers on every
    /// chunk, where the meter keeps the last), and a strict one may reject the unknown option.
    pub fn accepts_stream_options(self) -> bool {
        !matches!(self, ProviderKind::Mistral | ProviderKind::Anthropic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_parses_by_name_and_has_a_valid_root() {
        for (kind, system, url) in PRESETS {
            let name = serde_json::to_value(kind).unwrap();
            let parsed: ProviderKind = serde_json::from_value(name.clone()).unwrap();
            assert_eq!(parsed, kind, "{name}");
            assert_eq!(kind.system(), system);
            if !url.is_empty() {
                assert!(crate::config::check_base_url(url).is_ok(), "{url}");
            }
        }
        let azure: ProviderKind = serde_json::from_str("\"azure\"").unwrap();
        assert_eq!(azure.system(), "azure.ai.openai");
        assert_eq!(azure.credential_header(), CredentialHeader::ApiKey);
        let anthropic: ProviderKind = serde_json::from_str("\"anthropic\"").unwrap();
        assert_eq!(anthropic.api(), ProviderApi::Anthropic);
        assert_eq!(anthropic.credential_header(), CredentialHeader::XApiKey);
        let groq: ProviderKind = serde_json::from_str("\"groq\"").unwrap();
        assert_eq!(groq.default_base_url(), "https://api.groq.com/openai/v1");
        assert!(serde_json::from_str::<ProviderKind>("\"nope\"").is_err());
    }

    /// The price catalog accepts entries only under known provider names: a new preset must be
    /// priceable too.
    #[test]
    fn every_preset_can_be_priced() {
        for (_, system, _) in PRESETS {
            assert!(crate::pricing::PROVIDERS.contains(&system), "{system}");
        }
    }
}
