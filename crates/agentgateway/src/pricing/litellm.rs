//! LiteLLM's price table format (`model_prices_and_context_window.json`): model key -> an object
//! with `litellm_provider`, `mode` and per-token USD rates, including long-context rates named
//! `<rate>_above_<N>k_tokens`. Users can drop that file (or an excerpt) in as a catalog.
//!
//! The table describes far more than the gateway can use (images, audio, batch and priority
//! rates), so this reads only the rate fields we price with and skips entries it cannot place
//! (providers we have no name for, non-token modes, entries without an input rate). A rate field
//! we do use must be a number, though: a malformed one is an error naming the entry.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde_json::value::RawValue;

use super::number::exact_decimal;
use super::{Entry, ModelPrice, Tier};

/// The table's documentation entry, not a model.
const SAMPLE_SPEC: &str = "sample_spec";
const PROVIDER: &str = "litellm_provider";
const MODE: &str = "mode";
/// Modes priced per token; the others (images, audio, rerank, ...) are billed per unit we do not
/// meter.
const MODES: [&str; 4] = ["chat", "completion", "responses", "embedding"];

const INPUT: &str = "input_cost_per_token";
const OUTPUT: &str = "output_cost_per_token";
const CACHE_READ: &str = "cache_read_input_token_cost";
const CACHE_WRITE: &str = "cache_creation_input_token_cost";
const REASONING: &str = "output_cost_per_reasoning_token";

/// Whether a JSON object's top level looks like a LiteLLM table: its documentation entry, or an
/// entry that carries LiteLLM's own field names (a native catalog's second level holds models).
pub(super) fn is_litellm(top: &BTreeMap<String, &RawValue>) -> bool {
    top.contains_key(SAMPLE_SPEC)
        || top.values().any(|value| {
            serde_json::from_str::<HashMap<String, serde::de::IgnoredAny>>(value.get())
                .is_ok_and(|fields| fields.contains_key(PROVIDER) || fields.contains_key(INPUT))
        })
}

/// Our `gen_ai_system` name for a LiteLLM provider, `None` for providers we do not price.
fn provider_name(litellm: &str) -> Option<&'static str> {
    Some(match litellm {
        "openai" => "openai",
        "anthropic" => "anthropic",
        "azure" => "azure.ai.openai",
        "groq" => "groq",
        "mistral" => "mistral_ai",
        "deepseek" => "deepseek",
        "together_ai" => "together_ai",
        "fireworks_ai" => "fireworks_ai",
        "openrouter" => "openrouter",
        "xai" => "x_ai",
        "cerebras" => "cerebras",
        "perplexity" => "perplexity",
        "ollama" => "ollama",
        "gemini" => "gcp.gemini",
        "bedrock" | "bedrock_converse" => "aws.bedrock",
        other if other.starts_with("vertex_ai") => "gcp.vertex_ai",
        _ => return None,
    })
}

/// Entries of the table, keyed by our provider name and the model name the provider answers
/// with: a `provider/` key prefix naming the same provider is dropped. When both `gpt-4o` and
/// `openai/gpt-4o` exist, the bare key wins (it comes later in the returned order).
pub(super) fn entries(top: &BTreeMap<String, &RawValue>) -> Result<Vec<Entry>, String> {
    let mut bare = Vec::new();
    let mut prefixed = Vec::new();
    for (key, value) in top {
        if key == SAMPLE_SPEC {
            continue;
        }
        let Ok(fields) = serde_json::from_str::<HashMap<&str, &RawValue>>(value.get()) else {
            continue;
        };
        let Some(provider) = placed_provider(&fields) else {
            continue;
        };
        let Some(price) = price_of(&fields).map_err(|e| format!("{key}: {e}"))? else {
            continue;
        };
        let (model, was_prefixed) = model_name(key, provider);
        let entry = Entry {
            provider,
            model: model.to_owned(),
            price,
        };
        if was_prefixed {
            prefixed.push(entry);
        } else {
            bare.push(entry);
        }
    }
    prefixed.append(&mut bare);
    Ok(prefixed)
}

/// Our provider for an entry of a mode we price, else `None`.
fn placed_provider(fields: &HashMap<&str, &RawValue>) -> Option<&'static str> {
    let mode = string_field(fields, MODE)?;
    if !MODES.contains(&mode.as_str()) {
        return None;
    }
    provider_name(&string_field(fields, PROVIDER)?)
}

fn string_field(fields: &HashMap<&str, &RawValue>, name: &str) -> Option<String> {
    serde_json::from_str(fields.get(name)?.get()).ok()
}

/// Drops the first key segment when it names the entry's provider (`groq/llama-3.3-70b` ->
/// `llama-3.3-70b`); other slashes are part of the name (`accounts/fireworks/models/...`).
fn model_name<'k>(key: &'k str, provider: &'static str) -> (&'k str, bool) {
    match key.split_once('/') {
        Some((head, rest)) if provider_name(head) == Some(provider) && !rest.is_empty() => {
            (rest, true)
        }
        _ => (key, false),
    }
}

/// The entry's rates, `None` when it has no per-token input rate (or, outside embeddings, no
/// output rate): such a model is billed some other way and stays unpriced.
fn price_of(fields: &HashMap<&str, &RawValue>) -> Result<Option<ModelPrice>, String> {
    let Some(input) = rate(fields, INPUT)? else {
        return Ok(None);
    };
    let output = match rate(fields, OUTPUT)? {
        Some(output) => output,
        None if string_field(fields, MODE).as_deref() == Some("embedding") => Decimal::ZERO,
        None => return Ok(None),
    };
    Ok(Some(ModelPrice {
        input,
        output,
        cache_read: rate(fields, CACHE_READ)?,
        cache_write: rate(fields, CACHE_WRITE)?,
        reasoning: rate(fields, REASONING)?,
        tiers: tiers(fields, input, output)?,
    }))
}

/// A per-token rate; `null` or absent is `None`, anything but a number is an error.
fn rate(fields: &HashMap<&str, &RawValue>, name: &str) -> Result<Option<Decimal>, String> {
    match fields.get(name).map(|v| v.get()) {
        None | Some("null") => Ok(None),
        Some(text) => exact_decimal(text)
            .map(Some)
            .map_err(|e| format!("{name}: {e}")),
    }
}

/// Tiers from `<rate>_above_<N>k_tokens` fields, ascending. Variants with more after `k_tokens`
/// (`_priority`, `_batches`) are other service levels and are ignored.
fn tiers(
    fields: &HashMap<&str, &RawValue>,
    input: Decimal,
    output: Decimal,
) -> Result<Vec<Tier>, String> {
    let mut by_threshold: BTreeMap<u64, Tier> = BTreeMap::new();
    for name in fields.keys() {
        let Some((base, above)) = tier_field(name) else {
            continue;
        };
        let Some(rate) = rate(fields, name)? else {
            continue;
        };
        let tier = by_threshold.entry(above).or_insert(Tier {
            above_input_tokens: above,
            input,
            output,
            cache_read: None,
            cache_write: None,
        });
        match base {
            INPUT => tier.input = rate,
            OUTPUT => tier.output = rate,
            CACHE_READ => tier.cache_read = Some(rate),
            _ => tier.cache_write = Some(rate),
        }
    }
    Ok(by_threshold.into_values().collect())
}

/// `input_cost_per_token_above_200k_tokens` -> (`input_cost_per_token`, 200000).
fn tier_field(name: &str) -> Option<(&'static str, u64)> {
    [INPUT, OUTPUT, CACHE_READ, CACHE_WRITE]
        .into_iter()
        .find_map(|base| {
            let thousands = name
                .strip_prefix(base)?
                .strip_prefix("_above_")?
                .strip_suffix("k_tokens")?;
            if thousands.is_empty() || !thousands.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let above = thousands.parse::<u64>().ok()?.checked_mul(1000)?;
            Some((base, above))
        })
}
