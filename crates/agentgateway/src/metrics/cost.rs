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

use super::{label, GenAiKey, GenAiLabels, Hashed, TokenKey};
use crate::budget::BudgetStatus;
use crate::record::CostOutcome;

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

    /// One request's cost (or its lack of a price) under the request's GenAI labels.
    pub(super) fn record(&self, labels: &Arc<Hashed<GenAiLabels>>, outcome: &CostOutcome) {
        match outcome {
            CostOutcome::NotApplicable => {}
            CostOutcome::Unpriced => {
                self.unpriced.get_or_create(&GenAiKey(labels.clone())).inc();
            }
            CostOutcome::Priced(cost) => {
                let parts = [
                    (
                        "input",
                        cost.input + cost.input_cache_read + cost.input_cache_write,
                    ),
                    ("input_cache_read", cost.input_cache_read),
                    ("input_cache_write", cost.input_cache_write),
                    ("output", cost.output + cost.output_reasoning),
                    ("output_reasoning", cost.output_reasoning),
                ];
                for (token_type, amount) in parts.into_iter().filter(|(_, a)| !a.is_zero()) {
                    let key = TokenKey {
                        token_type,
                        labels: labels.clone(),
                    };
                    self.cost
                        .get_or_create(&key)
                        .inc_by(amount.to_f64().unwrap_or(0.0));
                }
            }
        }
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

fn budget_key(status: &BudgetStatus) -> BudgetKey {
    BudgetKey {
        scope: status.scope,
        name: status.name.as_str().into(),
        window: status.window.as_str(),
    }
}
