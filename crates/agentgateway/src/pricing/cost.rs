//! The cost of one request: normalised usage times the model's rates, split by token type so the
//! cost metric can carry the same `gen_ai_token_type` labels as the token metric.
//!
//! Usage counts overlap (input includes cached input, output includes reasoning); the cost parts
//! do not, so they add up to the total. Rules that are not obvious from the provider's bill:
//! - A cache rate the catalog lacks prices those tokens at the input rate: that is what a
//!   provider without a cache discount charges, and it never undercounts.
//! - Long-context tiers (Anthropic, Google, xAI, OpenAI's 272k) reprice the whole request, not
//!   just the tokens past the threshold: when the normalised input is above a tier's threshold,
//!   every token uses that tier's rates; the highest such tier wins; a rate the tier lacks is
//!   the model's base rate.
//! - Arithmetic is exact `Decimal`; an overflow (only reachable with absurd prices) saturates at
//!   `Decimal::MAX` instead of panicking on numbers from the network.

use agentgateway_wire::Usage;
use rust_decimal::Decimal;

use super::ModelPrice;

/// Cost of one request by token type, USD. The parts are disjoint and sum to `total`: `input` is
/// the uncached input (input - cache_read - cache_write, saturating); `output` excludes reasoning
/// only when the model has its own reasoning rate (then `output_reasoning` prices it), else
/// reasoning is inside `output` and `output_reasoning` is zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    pub input: Decimal,
    pub input_cache_read: Decimal,
    pub input_cache_write: Decimal,
    pub output: Decimal,
    pub output_reasoning: Decimal,
    pub total: Decimal,
}

impl Cost {
    /// (`gen_ai_token_type` label, amount) for the non-zero parts, in the order input,
    /// input_cache_read, input_cache_write, output, output_reasoning.
    pub fn parts(&self) -> impl Iterator<Item = (&'static str, Decimal)> + '_ {
        [
            ("input", self.input),
            ("input_cache_read", self.input_cache_read),
            ("input_cache_write", self.input_cache_write),
            ("output", self.output),
            ("output_reasoning", self.output_reasoning),
        ]
        .into_iter()
        .filter(|(_, amount)| !amount.is_zero())
    }
}

/// The per-token rates that apply to one request, tier and fallbacks resolved.
struct Rates {
    input: Decimal,
    output: Decimal,
    cache_read: Decimal,
    cache_write: Decimal,
    reasoning: Option<Decimal>,
}

impl Rates {
    fn for_request(price: &ModelPrice, input_tokens: u64) -> Rates {
        let tier = price
            .tiers
            .iter()
            .rev()
            .find(|tier| input_tokens > tier.above_input_tokens);
        let (input, output, cache_read, cache_write) = match tier {
            Some(t) => (
                t.input,
                t.output,
                t.cache_read.or(price.cache_read),
                t.cache_write.or(price.cache_write),
            ),
            None => (
                price.input,
                price.output,
                price.cache_read,
                price.cache_write,
            ),
        };
        Rates {
            input,
            output,
            cache_read: cache_read.unwrap_or(input),
            cache_write: cache_write.unwrap_or(input),
            reasoning: price.reasoning,
        }
    }
}

/// Prices `usage` at `price`. Counts the provider did not report are zero.
pub fn cost(price: &ModelPrice, usage: &Usage) -> Cost {
    let input = usage.input_tokens.unwrap_or(0);
    let cache_read = usage.cache_read_input_tokens.unwrap_or(0);
    let cache_write = usage.cache_write_input_tokens.unwrap_or(0);
    let output = usage.output_tokens.unwrap_or(0);
    let reasoning = usage.reasoning_output_tokens.unwrap_or(0);
    let rates = Rates::for_request(price, input);

    let uncached = input.saturating_sub(cache_read).saturating_sub(cache_write);
    let (plain_output, output_reasoning) = match rates.reasoning {
        Some(rate) => (output.saturating_sub(reasoning), times(reasoning, rate)),
        None => (output, Decimal::ZERO),
    };
    let mut cost = Cost {
        input: times(uncached, rates.input),
        input_cache_read: times(cache_read, rates.cache_read),
        input_cache_write: times(cache_write, rates.cache_write),
        output: times(plain_output, rates.output),
        output_reasoning,
        total: Decimal::ZERO,
    };
    cost.total = [
        cost.input,
        cost.input_cache_read,
        cost.input_cache_write,
        cost.output,
        cost.output_reasoning,
    ]
    .into_iter()
    .fold(Decimal::ZERO, |sum, part| {
        sum.checked_add(part).unwrap_or(Decimal::MAX)
    });
    cost
}

/// `tokens * rate`, exact, normalised (no trailing zeros in the log), saturating on overflow.
fn times(tokens: u64, rate: Decimal) -> Decimal {
    Decimal::from(tokens)
        .checked_mul(rate)
        .map_or(Decimal::MAX, |amount| amount.normalize())
}
