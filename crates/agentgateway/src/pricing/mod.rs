//! Model prices and the exact cost of one request. The gateway meters tokens; this module turns
//! them into dollars: a catalog of per-token USD rates (a default one compiled into the binary,
//! generated from LiteLLM's public price table by `scripts/gen-price-catalog.py`, plus users'
//! override files, reloaded when they change) and the arithmetic that prices a normalised
//! [`Usage`](agentgateway_wire::Usage) by token type.
//!
//! Money is [`Decimal`] from the file's text to the final sum: a price is never routed through
//! `f64`, so `0.075` per 1M tokens is exactly 0.000000075 per token and costs add up to the cent
//! the provider bills. A model the catalog does not know has no price ([`PriceCatalog::lookup`]
//! returns `None`); the caller counts it as unpriced rather than as free.
//!
//! # Layout
//! - [`catalog`]: [`PriceCatalog`]: builtin + user files, lookup with dated-suffix fallback.
//! - `native`: the agentgateway catalog format (YAML or JSON, USD per 1M tokens).
//! - `litellm`: LiteLLM's `model_prices_and_context_window.json` format (USD per token).
//! - `number`: exact decimal parsing of a number's text.
//! - [`cost`]: [`Cost`] of one request from its usage.
//! - [`reload`]: [`CatalogHandle`], the shared catalog that follows its files.

pub mod catalog;
pub mod cost;
mod litellm;
mod native;
mod number;
pub mod reload;

#[cfg(test)]
mod tests;

pub use catalog::PriceCatalog;
pub use cost::{cost, Cost};
pub use reload::CatalogHandle;
pub use rust_decimal::Decimal;

/// Prices of one model, USD per token, exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPrice {
    pub input: Decimal,
    pub output: Decimal,
    /// Rate for cached input read; `None` prices cache reads at the input rate (no discount).
    pub cache_read: Option<Decimal>,
    /// Rate for input written to the cache; `None` prices cache writes at the input rate.
    pub cache_write: Option<Decimal>,
    /// Rate for reasoning output; `None` prices reasoning as ordinary output.
    pub reasoning: Option<Decimal>,
    /// Long-context rates, ascending by `above_input_tokens`.
    pub tiers: Vec<Tier>,
}

/// Rates that apply to every token of a request whose normalised input (cache included) is above
/// `above_input_tokens`. An absent cache rate falls back to the model's base cache rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    pub above_input_tokens: u64,
    pub input: Decimal,
    pub output: Decimal,
    pub cache_read: Option<Decimal>,
    pub cache_write: Option<Decimal>,
}

/// The `gen_ai_system` names a catalog entry may be filed under: the providers the gateway
/// routes to (`config::provider`), plus the Google and AWS names that LiteLLM tables carry. A
/// provider outside this list is a load error, because a misspelt one would leave the builtin
/// price in force without a word.
pub const PROVIDERS: [&str; 18] = [
    "openai",
    "anthropic",
    "azure.ai.openai",
    "groq",
    "mistral_ai",
    "deepseek",
    "together_ai",
    "fireworks_ai",
    "openrouter",
    "x_ai",
    "cerebras",
    "perplexity",
    "ollama",
    "vllm",
    "gcp.gemini",
    "gcp.vertex_ai",
    "aws.bedrock",
    "mock",
];

/// One parsed catalog entry, in file order: later entries override earlier ones.
#[derive(Debug)]
struct Entry {
    provider: &'static str,
    model: String,
    price: ModelPrice,
}

/// The interned name from [`PROVIDERS`], or an error listing them.
fn known_provider(name: &str) -> Result<&'static str, String> {
    PROVIDERS
        .iter()
        .find(|known| **known == name)
        .copied()
        .ok_or_else(|| {
            format!(
                "unknown provider `{name}` (expected one of: {})",
                PROVIDERS.join(", ")
            )
        })
}
