//! What a finished request cost, and where that goes: priced from the catalog
//! ([`crate::pricing`]) into the record (so the metrics, the log line and CEL `llm.cost` read one
//! number), booked in the spend ledger ([`crate::spend`]) and charged to the caller's budgets
//! ([`crate::budget`]), whose gauges follow.
//!
//! Pricing runs once per request, in [`crate::telemetry::Telemetry::finish`] (or earlier, when
//! the `x-agw-cost-usd` header needs the number before the response goes out).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use rust_decimal::Decimal;

use crate::budget::{BudgetStatus, Budgets, Scope, SpendSource, WallClock};
use crate::metrics::Metrics;
use crate::pricing::{cost, CatalogHandle};
use crate::record::{CostOutcome, RequestRecord};
use crate::spend::{self, Ledger, SpendKey};

pub struct Costing {
    pub catalog: CatalogHandle,
    pub ledger: Arc<Ledger>,
    pub budgets: Arc<Budgets>,
    pub clock: Arc<dyn WallClock>,
    /// Ledger strings shared by every booking, so booking a request allocates no label text.
    names: Names,
}

/// The empty name and the provider names, built once.
struct Names {
    empty: Arc<str>,
    providers: Vec<(&'static str, Arc<str>)>,
}

impl Names {
    fn new() -> Names {
        Names {
            empty: Arc::from(""),
            providers: crate::pricing::PROVIDERS
                .iter()
                .map(|p| (*p, Arc::from(*p)))
                .collect(),
        }
    }

    fn provider(&self, system: &str) -> Arc<str> {
        self.providers
            .iter()
            .find(|(name, _)| *name == system)
            .map_or_else(|| Arc::from(system), |(_, shared)| shared.clone())
    }
}

impl Costing {
    pub fn new(
        catalog: CatalogHandle,
        ledger: Arc<Ledger>,
        budgets: Arc<Budgets>,
        clock: Arc<dyn WallClock>,
    ) -> Costing {
        Costing {
            catalog,
            ledger,
            budgets,
            clock,
            names: Names::new(),
        }
    }

    /// Prices the record's usage (once: a record already priced keeps its cost).
    pub fn price(&self, record: &mut RequestRecord) {
        if !matches!(record.llm.cost, CostOutcome::NotApplicable) {
            return;
        }
        let usage = &record.llm.usage;
        if usage.is_empty() || record.llm.operation.is_none() {
            return;
        }
        let Some(system) = record.system() else {
            return;
        };
        let catalog = self.catalog.current();
        let price = catalog.lookup(
            system,
            record.llm.response_model.as_deref(),
            record.llm.request_model.as_deref(),
        );
        record.llm.cost = match price {
            Some((_, price)) => CostOutcome::Priced(cost(price, usage)),
            None => CostOutcome::Unpriced,
        };
    }

    /// Books a priced request: the ledger row of its key and model, then its caller's budgets
    /// (whose gauges are updated with what is left).
    pub fn book(&self, record: &RequestRecord, metrics: &Metrics) {
        let CostOutcome::Priced(cost) = &record.llm.cost else {
            return;
        };
        let identity = record.identity.as_deref();
        let names = &self.names;
        let text = |value: Option<&Arc<str>>| value.unwrap_or(&names.empty).clone();
        let key = SpendKey {
            key_id: text(identity.map(|i| &i.id)),
            user: text(identity.and_then(|i| i.user.as_ref())),
            team: text(identity.and_then(|i| i.team.as_ref())),
            provider: names.provider(record.system().unwrap_or_default()),
            model: text(record.llm.request_model.as_ref()),
        };
        let usage = &record.llm.usage;
        self.ledger.record(
            self.clock.unix_now(),
            &key,
            cost.total,
            usage.input_tokens.unwrap_or(0),
            usage.output_tokens.unwrap_or(0),
        );
        if let Some(identity) = identity {
            for status in self.budgets.charge(identity, cost.total) {
                metrics.budget(&status);
            }
        }
    }

    /// The `x-agw-cost-usd` value of a priced record.
    pub fn header_value(record: &RequestRecord) -> Option<http::HeaderValue> {
        let total = record.llm.cost.total()?;
        http::HeaderValue::try_from(total.normalize().to_string()).ok()
    }

    /// Reports the soft budgets a request went past (counted, gauged and logged).
    pub fn report(&self, soft_exceeded: &[BudgetStatus], metrics: &Metrics) {
        for status in soft_exceeded {
            metrics.budget(status);
            metrics.soft_budget_exceeded(status);
            tracing::warn!(
                scope = status.scope,
                name = %status.name,
                window = %status.window,
                limit_usd = %status.limit_usd,
                spent_usd = %status.spent_usd,
                "soft budget exceeded; request allowed"
            );
        }
    }
}

/// Budget tallies start from the ledger's spend of their scope in the window.
impl SpendSource for Ledger {
    fn total<'a>(&'a self, scope: &'a Scope, since: i64) -> BoxFuture<'a, Result<Decimal, String>> {
        let scope = match scope {
            Scope::Key(id) => spend::Scope::Key(id.to_string()),
            Scope::User(name) => spend::Scope::User(name.to_string()),
            Scope::Team(name) => spend::Scope::Team(name.to_string()),
        };
        Box::pin(async move {
            Ledger::total(self, &scope, since)
                .await
                .map_err(|e| format!("reading spend from the ledger: {e}"))
        })
    }
}
