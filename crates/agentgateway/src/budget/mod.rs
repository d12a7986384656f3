//! Budgets in US dollars on keys, users (all of a user's keys together) and teams, each over a
//! [`Window`]. Before a request is forwarded, every budget that applies to its caller is checked;
//! a spent one refuses it with the window's reset time, unless it is `soft` (then the request
//! goes on and the overshoot is only reported). After the response, its cost is charged to every
//! applicable tally.
//!
//! Tallies live in memory, seeded from the spend ledger the first time a (scope, window) is seen,
//! so a restart resumes where the durable spend left off. A request is checked before its cost is
//! known, so a budget can be overshot by at most the requests in flight when it ran out: one per
//! concurrent slot, never more.

pub mod window;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::future::BoxFuture;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::identity::Identity;
pub use window::{rfc3339, ManualWallClock, SystemWallClock, WallClock, Window};

/// One budget: at most `usd` per `window`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BudgetSpec {
    pub usd: Decimal,
    pub window: Window,
    /// Only report the overshoot (log + metric); never refuse.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub soft: bool,
}

/// Whose spend a budget counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Key(Arc<str>),
    User(Arc<str>),
    Team(Arc<str>),
}

impl Scope {
    /// The `scope` label: `key`, `user` or `team`.
    pub fn kind(&self) -> &'static str {
        match self {
            Scope::Key(_) => "key",
            Scope::User(_) => "user",
            Scope::Team(_) => "team",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Scope::Key(name) | Scope::User(name) | Scope::Team(name) => name,
        }
    }
}

/// Where a tally's starting point comes from: the ledger's spend of a scope since a time.
pub trait SpendSource: Send + Sync {
    fn total<'a>(&'a self, scope: &'a Scope, since: i64) -> BoxFuture<'a, Result<Decimal, String>>;
}

/// A budget's state, for the refusal, the admin API and the gauge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BudgetStatus {
    pub scope: &'static str,
    pub name: String,
    pub window: Window,
    pub limit_usd: Decimal,
    pub spent_usd: Decimal,
    pub remaining_usd: Decimal,
    /// Unix seconds when the window resets.
    pub resets_at: i64,
    pub soft: bool,
}

/// What [`Budgets::check`] found: the hard budget that refuses the request, and the soft ones
/// already overshot (reported, not enforced).
#[derive(Debug, Default)]
pub struct Verdict {
    pub refused: Option<BudgetStatus>,
    pub soft_exceeded: Vec<BudgetStatus>,
}

#[derive(Debug, Clone, Copy)]
struct Tally {
    start: i64,
    spent: Decimal,
}

/// Budgets of users and teams from the config, plus the tallies of every budget seen.
pub struct Budgets {
    users: HashMap<Arc<str>, Vec<BudgetSpec>>,
    teams: HashMap<Arc<str>, Vec<BudgetSpec>>,
    spend: Arc<dyn SpendSource>,
    clock: Arc<dyn WallClock>,
    tallies: Mutex<HashMap<(Scope, Window), Tally>>,
}

impl Budgets {
    pub fn new(
        users: HashMap<Arc<str>, Vec<BudgetSpec>>,
        teams: HashMap<Arc<str>, Vec<BudgetSpec>>,
        spend: Arc<dyn SpendSource>,
        clock: Arc<dyn WallClock>,
    ) -> Budgets {
        Budgets {
            users,
            teams,
            spend,
            clock,
            tallies: Mutex::new(HashMap::new()),
        }
    }

    pub fn clock(&self) -> &Arc<dyn WallClock> {
        &self.clock
    }

    /// The budgets that apply to a caller: its key's, its user's and its team's.
    pub fn applicable(&self, identity: &Identity) -> Vec<(Scope, BudgetSpec)> {
        let mut out = Vec::new();
        for spec in &identity.budgets {
            out.push((Scope::Key(identity.id.clone()), spec.clone()));
        }
        let groups = [
            (
                identity.user.as_deref(),
                &self.users,
                Scope::User as fn(Arc<str>) -> Scope,
            ),
            (identity.team.as_deref(), &self.teams, Scope::Team),
        ];
        for (name, specs, scope) in groups {
            let Some((name, specs)) = name.and_then(|n| specs.get_key_value(n)) else {
                continue;
            };
            out.extend(specs.iter().map(|s| (scope(name.clone()), s.clone())));
        }
        out
    }

    /// Checks every budget of the caller before its request is forwarded.
    pub async fn check(&self, identity: &Identity) -> Result<Verdict, String> {
        let mut verdict = Verdict::default();
        for (scope, spec) in self.applicable(identity) {
            let status = self.status_of(&scope, &spec).await?;
            if status.remaining_usd > Decimal::ZERO {
                continue;
            }
            if spec.soft {
                verdict.soft_exceeded.push(status);
            } else if verdict
                .refused
                .as_ref()
                .is_none_or(|refused| status.resets_at > refused.resets_at)
            {
                // The caller may come back only when every spent budget has reset.
                verdict.refused = Some(status);
            }
        }
        Ok(verdict)
    }

    /// The state of every budget of the caller (seeding tallies from the ledger as needed).
    pub async fn statuses(&self, identity: &Identity) -> Result<Vec<BudgetStatus>, String> {
        let mut out = Vec::new();
        for (scope, spec) in self.applicable(identity) {
            out.push(self.status_of(&scope, &spec).await?);
        }
        Ok(out)
    }

    /// Adds a finished request's cost to the caller's tallies and returns their new state. A
    /// tally not seeded yet is left alone: its seed reads the ledger, which already holds this
    /// cost.
    pub fn charge(&self, identity: &Identity, cost: Decimal) -> Vec<BudgetStatus> {
        let applicable = self.applicable(identity);
        if cost.is_zero() || applicable.is_empty() {
            return Vec::new();
        }
        let now = self.clock.unix_now();
        let mut charged = Vec::with_capacity(applicable.len());
        let mut tallies = self.tallies.lock().unwrap_or_else(PoisonError::into_inner);
        for (scope, spec) in applicable {
            let start = spec.window.start(now);
            let Some(tally) = tallies.get_mut(&(scope.clone(), spec.window)) else {
                continue;
            };
            if tally.start != start {
                *tally = Tally {
                    start,
                    spent: Decimal::ZERO,
                };
            }
            tally.spent += cost;
            charged.push(status(&scope, &spec, tally.spent, now));
        }
        charged
    }

    async fn status_of(&self, scope: &Scope, spec: &BudgetSpec) -> Result<BudgetStatus, String> {
        let now = self.clock.unix_now();
        let start = spec.window.start(now);
        let spent = match self.tally(scope, spec.window, start) {
            Some(spent) => spent,
            None => {
                let seeded = self.spend.total(scope, start).await?;
                let mut tallies = self.tallies.lock().unwrap_or_else(PoisonError::into_inner);
                let tally = tallies
                    .entry((scope.clone(), spec.window))
                    .or_insert(Tally {
                        start,
                        spent: seeded,
                    });
                tally.spent
            }
        };
        Ok(status(scope, spec, spent, now))
    }

    /// The tally's spend in the window starting at `start`; a tally of an older window starts
    /// over at zero (no ledger read needed: nothing was spent in a window that just began).
    fn tally(&self, scope: &Scope, window: Window, start: i64) -> Option<Decimal> {
        let mut tallies = self.tallies.lock().unwrap_or_else(PoisonError::into_inner);
        let tally = tallies.get_mut(&(scope.clone(), window))?;
        if tally.start != start {
            *tally = Tally {
                start,
                spent: Decimal::ZERO,
            };
        }
        Some(tally.spent)
    }
}

fn status(scope: &Scope, spec: &BudgetSpec, spent: Decimal, now: i64) -> BudgetStatus {
    BudgetStatus {
        scope: scope.kind(),
        name: scope.name().to_owned(),
        window: spec.window,
        limit_usd: spec.usd,
        spent_usd: spent,
        remaining_usd: spec.usd - spent,
        resets_at: spec.window.reset_at(now),
        soft: spec.soft,
    }
}

#[cfg(test)]
mod tests;
