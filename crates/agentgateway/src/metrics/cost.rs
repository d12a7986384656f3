//! The money metrics: `agentgateway_gen_ai_client_cost_usd_total{gen_ai_token_type, G}` (what
//! each request cost, by token type with the token histogram's meaning: `input` includes the
//! cached input's cost and `output` the reasoning's, `input_cache_read`, `input_cache_write` and
//! `output_reasoning` are subsets, so `input + output` is the total, as the seed's token query
//! sums it), `agentgateway_gen_ai_client_unpriced_total{G}` (requests
//! whose model has no price: never silently $0), and the budget gauges
//! `agentgateway_budget_remaining_usd{scope, name, window}` and
//! `agentgateway_budget_soft_exceeded_total{scope, name, window}`.
//!
//! Amounts stay exact decimals until here; the counter is where dollars become an f64.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::{label, GenAiKey, GenAiLabels, Hashed, TokenKey};
use crate::budget::BudgetStatus;
use crate::pricing::Cost;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct BudgetKey {
    scope: &'static str,
    name: Arc<str>,
    window: &'static str,
}

impl EncodeLabelSet for BudgetKey {
    fn encode(&self, enc: &mut LabelSetEncoder) -> fmt::Result {
        label(enc, "scope", self.scope)?;
        label(enc, "name", &self.name)?;
        label(enc, "window", self.window)
    }
}

#[derive(Debug)]
pub(super) struct CostMetrics {
    cost: Family<TokenKey, Counter<f64, AtomicU64>>,
    unpriced: Family<GenAiKey, Counter>,
    budget_remaining: Family<BudgetKey, Gauge<f64, AtomicU64>>,
    soft_exceeded: Family<BudgetKey, Counter>,
}

impl CostMetrics {
    pub(super) fn register(registry: &mut Registry) -> CostMetrics {
        let metrics = CostMetrics {
            cost: Family::default(),
            unpriced: Family::default(),
            budget_remaining: Family::default(),
            soft_exceeded: Family::default(),
        };
        registry.register(
            "gen_ai_client_cost_usd",
            "What LLM requests cost in US dollars, by token type, from the price catalog",
            metrics.cost.clone(),
        );
        registry.register(
            "gen_ai_client_unpriced",
            "LLM requests with usage but no price in the catalog",
            metrics.unpriced.clone(),
        );
        registry.register(
            "budget_remaining_usd",
            "What is left of each budget in its current window, in US dollars",
            metrics.budget_remaining.clone(),
        );
        registry.register(
            "budget_soft_exceeded",
            "Requests let through although a soft budget of their caller was spent",
            metrics.soft_exceeded.clone(),
        );
        metrics
    }

    /// The unpriced-requests counter of a set of GenAI labels (created on first use).
    pub(super) fn unpriced_handle(&self, labels: &Arc<Hashed<GenAiLabels>>) -> Counter {
        Counter::clone(&self.unpriced.get_or_create(&GenAiKey(labels.clone())))
    }

    /// The cost counter of one token type and set of GenAI labels (created on first use).
    pub(super) fn cost_handle(&self, key: &TokenKey) -> Counter<f64, AtomicU64> {
        Counter::clone(&self.cost.get_or_create(key))
    }

    pub(super) fn budget(&self, status: &BudgetStatus) {
        let key = budget_key(status);
        let remaining = status.remaining_usd.to_f64().unwrap_or(0.0);
        self.budget_remaining.get_or_create(&key).set(remaining);
    }

    pub(super) fn soft_exceeded(&self, status: &BudgetStatus) {
        self.soft_exceeded.get_or_create(&budget_key(status)).inc();
    }
}

/// A request's cost per token type, in [`super::handles::TOKEN_TYPES`] order; `None` for a zero amount, which
/// adds nothing and creates no series.
pub(super) fn parts(cost: &Cost) -> [Option<f64>; 5] {
    [
        cost.input + cost.input_cache_read + cost.input_cache_write,
        cost.output + cost.output_reasoning,
        cost.input_cache_read,
        cost.input_cache_write,
        cost.output_reasoning,
    ]
    .map(|amount| (!amount.is_zero()).then(|| to_f64(amount)))
}

/// `amount.to_f64()`, bit for bit, for the amounts requests cost (mantissa under 2^64, scale at
/// most 19) in u64 arithmetic: rust_decimal's own conversion divides u128s, ~300 instructions
/// per amount. The same integer quotient and remainder go through the same f64 steps, so the
/// result is identical (a test compares the two); anything larger takes rust_decimal's path.
fn to_f64(amount: Decimal) -> f64 {
    let scale = amount.scale();
    let mantissa = u64::try_from(amount.mantissa().unsigned_abs());
    let (Ok(mantissa), 1..=19) = (mantissa, scale) else {
        return amount.to_f64().unwrap_or(0.0);
    };
    let precision = 10_u64.pow(scale);
    let integral = (mantissa / precision) as f64;
    let frac = (mantissa % precision) as f64 / precision as f64;
    let magnitude = if frac == 0.0 {
        integral
    } else {
        // Rounded back to `scale` decimals, which the sum's binary error may have missed.
        let round_to = 10_f64.powi(scale as i32);
        ((integral + frac) * round_to).round() / round_to
    };
    if amount.is_sign_negative() {
        -magnitude
    } else {
        magnitude
    }
}

fn budget_key(status: &BudgetStatus) -> BudgetKey {
    BudgetKey {
        scope: status.scope,
        name: status.name.as_str().into(),
        window: status.window.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn to_f64_is_rust_decimals_conversion_bit_for_bit(
            mantissa in any::<i64>(),
            wide in any::<i128>(),
            scale in 0_u32..=28,
        ) {
            let amount = Decimal::from_i128_with_scale(i128::from(mantissa), scale);
            prop_assert_eq!(to_f64(amount).to_bits(), amount.to_f64().unwrap_or(0.0).to_bits());
            let wide = Decimal::try_from_i128_with_scale(wide >> 32, scale);
            if let Ok(wide) = wide {
                prop_assert_eq!(to_f64(wide).to_bits(), wide.to_f64().unwrap_or(0.0).to_bits());
            }
        }
    }

    #[test]
    fn to_f64_matches_on_typical_costs_and_edges() {
        for text in [
            "0.0003",
            "0.00000015",
            "1.5",
            "-2.25",
            "0",
            "-0",
            "12345.678901",
            "0.1",
        ] {
            let amount: Decimal = text.parse().unwrap_or_default();
            assert_eq!(
                to_f64(amount).to_bits(),
                amount.to_f64().unwrap_or(0.0).to_bits(),
                "{text}"
            );
        }
        let mut small = Decimal::new(1, 19);
        small.set_sign_negative(true);
        assert_eq!(
            to_f64(small).to_bits(),
            small.to_f64().unwrap_or(0.0).to_bits()
        );
    }
}
