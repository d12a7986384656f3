//! The providers a model entry can name: OpenAI itself and the OpenAI-compatible family, each
//! with its API root and its OpenTelemetry `gen_ai.provider.name` (the `gen_ai_system` label).
//!
//! A preset is only a default base URL and a system name: every one of them speaks OpenAI's
//! Chat Completions wire format, so routing, metering and stream handling are shared. Having the
//! name right matters for dashboards: `sum by (gen_ai_system)` should say "groq", not "openai".

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
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
}

/// (kind, `gen_ai.provider.name`, default API root including its version prefix).
/// System names follow the OpenTelemetry registry where it has one (`groq`, `mistral_ai`,
/// `deepseek`, `x_ai`, `perplexity`); the others use the provider's own short name.
const PRESETS: [(ProviderKind, &str, &str); 12] = [
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

    pub fn default_base_url(self) -> &'static str {
        self.preset().1
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
            assert!(crate::config::check_base_url(url).is_ok(), "{url}");
        }
        let groq: ProviderKind = serde_json::from_str("\"groq\"").unwrap();
        assert_eq!(groq.default_base_url(), "https://api.groq.com/openai/v1");
        assert!(serde_json::from_str::<ProviderKind>("\"nope\"").is_err());
    }
}
