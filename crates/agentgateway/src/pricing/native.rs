//! The agentgateway catalog format: provider (a `gen_ai_system` name) -> model -> rates in USD
//! per 1M tokens, written as YAML or JSON; optionally wrapped as
//! `{"source", "sourceDate", "generated", "prices": {...}}` (what the generator writes).
//!
//! Both syntaxes keep each number's text ([`NumberText`]): JSON through `&RawValue`, YAML by
//! reading the scalar as a string, so `0.075` reaches [`exact_decimal`] as written. Unknown fields
//! are errors: a misspelt `cachRead` must not quietly price cache reads at the input rate.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::number::{exact_decimal, shift};
use super::{known_provider, Entry, ModelPrice, Tier};

/// Catalog values are per 1M tokens; a [`ModelPrice`] is per token.
const PER_MILLION: i32 = -6;

/// The text of a number in a price file, as written.
trait NumberText {
    fn text(&self) -> Result<Cow<'_, str>, String>;
}

impl NumberText for &RawValue {
    /// A JSON number's own text; a quoted number (`"0.075"`) is accepted too.
    fn text(&self) -> Result<Cow<'_, str>, String> {
        let raw = self.get();
        if raw.starts_with('"') {
            let s: String = serde_json::from_str(raw).map_err(|e| e.to_string())?;
            return Ok(Cow::Owned(s));
        }
        Ok(Cow::Borrowed(raw))
    }
}

/// A YAML scalar read as its text, so the number is never converted through `f64`.
struct YamlNumber(String);

impl<'de> Deserialize<'de> for YamlNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(YamlNumber)
    }
}

impl NumberText for YamlNumber {
    fn text(&self) -> Result<Cow<'_, str>, String> {
        Ok(Cow::Borrowed(&self.0))
    }
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    bound(deserialize = "N: Deserialize<'de>")
)]
struct RawPrice<N> {
    input: N,
    output: N,
    cache_read: Option<N>,
    cache_write: Option<N>,
    reasoning: Option<N>,
    #[serde(default)]
    tiers: Vec<RawTier<N>>,
}

/// A tier's absent input or output rate is the model's base rate.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    bound(deserialize = "N: Deserialize<'de>")
)]
struct RawTier<N> {
    above: u64,
    input: Option<N>,
    output: Option<N>,
    cache_read: Option<N>,
    cache_write: Option<N>,
}

/// The generator's wrapper; its metadata is documentation only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Wrapper<P> {
    #[serde(default, rename = "source")]
    _source: IgnoredAny,
    #[serde(default, rename = "sourceDate")]
    _source_date: IgnoredAny,
    #[serde(default, rename = "generated")]
    _generated: IgnoredAny,
    prices: P,
}

/// Key that marks the wrapper: no provider is called `prices`.
const WRAPPER_KEY: &str = "prices";

type YamlPrices = BTreeMap<String, BTreeMap<String, RawPrice<YamlNumber>>>;

/// Entries of a YAML catalog. serde_yaml_ng's errors carry the path (`openai.gpt-4o: unknown
/// field ...`), which names the entry.
pub(super) fn from_yaml(text: &str) -> Result<Vec<Entry>, String> {
    let top: BTreeMap<String, IgnoredAny> =
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let prices: YamlPrices = if top.contains_key(WRAPPER_KEY) {
        serde_yaml_ng::from_str::<Wrapper<YamlPrices>>(text)
            .map_err(|e| e.to_string())?
            .prices
    } else {
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?
    };
    let mut entries = Vec::new();
    for (provider, models) in &prices {
        let provider = known_provider(provider)?;
        for (model, raw) in models {
            let price = convert(raw).map_err(|e| format!("{provider}/{model}: {e}"))?;
            entries.push(Entry {
                provider,
                model: model.clone(),
                price,
            });
        }
    }
    Ok(entries)
}

/// Entries of the JSON catalog `text`, whose top-level object is `top`. Each entry is decoded on
/// its own so an error names it (serde_json's own errors only give a line and column).
pub(super) fn from_json<'a>(
    text: &'a str,
    top: BTreeMap<String, &'a RawValue>,
) -> Result<Vec<Entry>, String> {
    let providers = if top.contains_key(WRAPPER_KEY) {
        let wrapper: Wrapper<&RawValue> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        serde_json::from_str::<BTreeMap<String, &RawValue>>(wrapper.prices.get())
            .map_err(|e| format!("{WRAPPER_KEY}: {e}"))?
    } else {
        top
    };
    let mut entries = Vec::new();
    for (provider, models) in providers {
        let provider = known_provider(&provider)?;
        let models: BTreeMap<String, &RawValue> =
            serde_json::from_str(models.get()).map_err(|e| format!("{provider}: {e}"))?;
        for (model, raw) in models {
            let price = serde_json::from_str::<RawPrice<&RawValue>>(raw.get())
                .map_err(|e| e.to_string())
                .and_then(|raw| convert(&raw))
                .map_err(|e| format!("{provider}/{model}: {e}"))?;
            entries.push(Entry {
                provider,
                model,
                price,
            });
        }
    }
    Ok(entries)
}

/// Per-1M rates -> per-token [`ModelPrice`]; tiers sorted ascending.
fn convert<N: NumberText>(raw: &RawPrice<N>) -> Result<ModelPrice, String> {
    let input = per_token(&raw.input, "input")?;
    let output = per_token(&raw.output, "output")?;
    let mut tiers = Vec::with_capacity(raw.tiers.len());
    for tier in &raw.tiers {
        tiers.push(Tier {
            above_input_tokens: tier.above,
            input: optional(&tier.input, "tiers.input")?.unwrap_or(input),
            output: optional(&tier.output, "tiers.output")?.unwrap_or(output),
            cache_read: optional(&tier.cache_read, "tiers.cacheRead")?,
            cache_write: optional(&tier.cache_write, "tiers.cacheWrite")?,
        });
    }
    tiers.sort_by_key(|t| t.above_input_tokens);
    Ok(ModelPrice {
        input,
        output,
        cache_read: optional(&raw.cache_read, "cacheRead")?,
        cache_write: optional(&raw.cache_write, "cacheWrite")?,
        reasoning: optional(&raw.reasoning, "reasoning")?,
        tiers,
    })
}

fn optional<N: NumberText>(value: &Option<N>, field: &str) -> Result<Option<Decimal>, String> {
    value.as_ref().map(|v| per_token(v, field)).transpose()
}

fn per_token<N: NumberText>(value: &N, field: &str) -> Result<Decimal, String> {
    let text = value.text().map_err(|e| format!("{field}: {e}"))?;
    let per_million = exact_decimal(&text).map_err(|e| format!("{field}: {e}"))?;
    shift(per_million, PER_MILLION)
        .ok_or_else(|| format!("{field}: `{text}` per 1M tokens is too small to hold exactly"))
}
