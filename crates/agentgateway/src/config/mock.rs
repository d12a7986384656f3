//! `params.mock`: the settings of a `provider: mock` model, the endpoint built into the gateway
//! ([`crate::mock`]) that answers every API in its provider's exact wire format without a network
//! or a key, so a fresh checkout, a CI job or a load test sees the whole pipeline work.
//!
//! Everything is optional: a bare `provider: mock` answers at once with 16 filler tokens, never
//! fails and costs nothing. The checks serde cannot express (statuses that are errors, rates that
//! are probabilities) are in [`MockParams::validate`], named by field like the rest of `validate`.

use std::time::Duration;

use indexmap::IndexMap;
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration;

/// Output tokens of a request that sets no limit of its own, when `outputTokens` is unset.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 16;

/// The most tokens one mock answer holds, whatever the request allows: above any real model's
/// output limit, and small enough that a huge `max_tokens` cannot exhaust memory.
pub const MAX_OUTPUT_TOKENS: u64 = 131_072;

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MockParams {
    /// Wait before the first token: before the response of a JSON answer, before the first event
    /// of a stream.
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<super::schema::DurationText>")]
    pub ttft: Option<Duration>,
    /// Wait between two output tokens (a stream's content events; added to a JSON answer's wait).
    #[serde(
        default,
        with = "duration::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(with = "Option<super::schema::DurationText>")]
    pub token_delay: Option<Duration>,
    /// Output tokens when the request sets no `max_tokens` / `max_completion_tokens` /
    /// `max_output_tokens` (default 16).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// HTTP status -> probability that a request gets that error instead of an answer.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub errors: IndexMap<u16, f64>,
    /// Seed of the error draws, for a reproducible sequence (default: random).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// What the model's tokens cost, USD per 1M tokens (default: unpriced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price: Option<MockPrice>,
}

/// USD per 1M tokens, parsed from the text as written (never through a float).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MockPrice {
    pub input: Decimal,
    pub output: Decimal,
}

impl MockParams {
    pub fn ttft(&self) -> Duration {
        self.ttft.unwrap_or(Duration::ZERO)
    }

    pub fn token_delay(&self) -> Duration {
        self.token_delay.unwrap_or(Duration::ZERO)
    }

    pub fn output_tokens(&self) -> u64 {
        self.output_tokens.unwrap_or(DEFAULT_OUTPUT_TOKENS)
    }

    /// The checks serde cannot express; the error starts with the field path below `params.mock`.
    pub fn validate(&self) -> Result<(), String> {
        if self.output_tokens == Some(0) || self.output_tokens > Some(MAX_OUTPUT_TOKENS) {
            return Err(format!(
                "outputTokens: must be between 1 and {MAX_OUTPUT_TOKENS}"
            ));
        }
        let mut total = 0.0;
        for (status, rate) in &self.errors {
            if !(400..=599).contains(status) {
                return Err(format!("errors.{status}: not an error status (400-599)"));
            }
            if !(0.0..=1.0).contains(rate) {
                return Err(format!(
                    "errors.{status}: {rate} is not a probability (0 to 1)"
                ));
            }
            total += rate;
        }
        if total > 1.0 + f64::EPSILON {
            return Err(format!("errors: the rates add up to {total}, more than 1"));
        }
        if let Some(price) = &self.price {
            if price.input.is_sign_negative() || price.output.is_sign_negative() {
                return Err("price: must not be negative".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<MockParams, String> {
        let params: MockParams = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        params.validate().map(|()| params)
    }

    #[test]
    fn every_setting_parses() {
        let params = parse(
            "ttft: 200ms\ntokenDelay: 20ms\noutputTokens: 64\nerrors: {429: 0.1, 500: 0.01}\n\
             seed: 7\nprice: {input: 0.15, output: 0.60}\n",
        )
        .unwrap();
        assert_eq!(params.ttft(), Duration::from_millis(200));
        assert_eq!(params.token_delay(), Duration::from_millis(20));
        assert_eq!(params.output_tokens(), 64);
        assert_eq!(params.errors.get(&429), Some(&0.1));
        let price = params.price.unwrap();
        assert_eq!(price.output.to_string(), "0.60");
        assert_eq!(parse("{}").unwrap().output_tokens(), DEFAULT_OUTPUT_TOKENS);
    }

    #[test]
    fn nonsense_is_refused_by_name() {
        assert!(parse("ttftMs: 5").unwrap_err().contains("ttftMs"));
        assert!(parse("errors: {200: 0.5}")
            .unwrap_err()
            .starts_with("errors.200"));
        assert!(parse("errors: {500: 1.5}")
            .unwrap_err()
            .starts_with("errors.500"));
        assert!(parse("errors: {500: 0.6, 429: 0.6}")
            .unwrap_err()
            .starts_with("errors:"));
        assert!(parse("outputTokens: 0")
            .unwrap_err()
            .starts_with("outputTokens"));
        assert!(parse("price: {input: -1, output: 1}")
            .unwrap_err()
            .starts_with("price"));
        assert!(parse("price: {input: 1}").unwrap_err().contains("output"));
    }

    fn load(models: &str) -> Result<crate::config::Config, String> {
        let yaml = format!("llm:\n  models:\n{models}");
        crate::config::Config::from_yaml(&yaml, &|_| None).map_err(|e| e.to_string())
    }

    #[test]
    fn the_model_entry_rules_around_mock_and_optional() {
        assert!(load("  - {name: m, provider: mock}\n").is_ok());
        let err = load("  - {name: m, provider: openAI, params: {mock: {}}}\n").unwrap_err();
        assert!(err.contains("llm.models[0].params.mock: only applies to provider mock"));
        let err = load("  - {name: m, provider: mock, params: {baseUrl: 'http://x/v1'}}\n");
        assert!(err.unwrap_err().contains("params.baseUrl: does not apply"));
        let err = load("  - {name: m, provider: mock, params: {mock: {errors: {404: 2}}}}\n");
        assert!(err
            .unwrap_err()
            .contains("llm.models[0].params.mock.errors.404"));
        let priced = "  - {name: 'mock-*', provider: mock, params: {mock: {price: {input: 1, output: 1}}}}\n";
        assert!(load(priced).unwrap_err().contains("needs params.model"));
        let named = priced.replace("params: {", "params: {model: mock-1, ");
        assert!(load(&named).is_ok());

        let empty = "  - {name: g, provider: openAI, params: {apiKey: ''}}\n";
        assert!(load(empty).unwrap_err().contains("params.apiKey: is empty"));
        let optional = empty.replace("provider: openAI,", "provider: openAI, optional: true,");
        assert!(load(&optional).is_ok());
        let keyless = "  - {name: g, provider: openAI, optional: true}\n";
        assert!(load(keyless)
            .unwrap_err()
            .contains("optional: only applies"));
    }
}
