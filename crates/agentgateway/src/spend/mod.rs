//! The spend ledger: what each finished request cost, booked to its key, user, team, provider and
//! model, aggregated per hour and kept in the same SQLite database as the keys.
//!
//! Per-hour aggregation, not one row per request, keeps the table's size proportional to
//! (hours x distinct bookings) instead of traffic. The request path only ever touches memory
//! ([`Ledger::record`]: a short mutex on a map of pending hour buckets); a background task
//! ([`Ledger::spawn_flush`]) adds the pending buckets to the stored rows every second, in one
//! transaction, and once more on shutdown. So a crash loses at most the last second of spend and
//! never anything committed.
//!
//! Money is exact everywhere: the ledger keeps costs as integer pico-USD (1e-12 USD, see
//! [`pending::PICO_DP`]) in memory and in the database, sums them in `i128`, and converts to
//! [`Decimal`] only at the edge. Per-token prices such as 0.075 USD per million tokens
//! (7.5e-8 USD) are exact at that resolution; a cost with finer digits is rounded to the nearest
//! pico-USD once, when it is recorded.
//!
//! - [`ledger`]: [`Ledger`], the public API (record, flush, query, total).
//! - [`pending`]: the in-memory hour buckets not yet written.
//! - [`store`]: the `spend_hourly` table: schema, the additive upsert, range reads.
//! - [`query`]: folding rows (stored and pending) into [`SpendRow`]s.

pub mod ledger;
pub mod pending;
pub mod query;
pub mod store;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;

pub use ledger::Ledger;

/// Who and what a cost is booked to. Empty strings for an unknown user or team; `key_id` is the
/// key's id (`key_...`, or `static-<digest prefix>` for config keys), or `""` for unauthenticated
/// traffic. Never a secret.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SpendKey {
    pub key_id: Arc<str>,
    pub user: Arc<str>,
    pub team: Arc<str>,
    pub provider: Arc<str>,
    pub model: Arc<str>,
}

/// What [`Ledger::query`] groups by: the `group_by` parameter of `GET /v1/spend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GroupBy {
    User,
    Team,
    Key,
    Model,
}

/// One scope a budget is kept for, by [`Ledger::total`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    Key(String),
    User(String),
    Team(String),
}

/// One group's spend over a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendRow {
    /// The user, team, key id or model name (after [`GroupBy`]); `""` when unknown.
    pub group: String,
    pub cost_usd: Decimal,
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

// === impl GroupBy ===

impl GroupBy {
    pub const ALL: [GroupBy; 4] = [GroupBy::User, GroupBy::Team, GroupBy::Key, GroupBy::Model];

    /// The name used in the API (`group_by=` and the group's field in the answer).
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::User => "user",
            GroupBy::Team => "team",
            GroupBy::Key => "key",
            GroupBy::Model => "model",
        }
    }

    /// The field of `key` this groups by.
    pub fn of(self, key: &SpendKey) -> &str {
        match self {
            GroupBy::User => &key.user,
            GroupBy::Team => &key.team,
            GroupBy::Key => &key.key_id,
            GroupBy::Model => &key.model,
        }
    }
}

impl FromStr for GroupBy {
    type Err = String;

    fn from_str(text: &str) -> Result<GroupBy, String> {
        GroupBy::ALL
            .into_iter()
            .find(|group| group.as_str() == text)
            .ok_or_else(|| format!("group_by must be one of user, team, key, model (got {text:?})"))
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Scope ===

impl Scope {
    /// The dimension this scope filters on and the value it must have.
    pub fn parts(&self) -> (GroupBy, &str) {
        match self {
            Scope::Key(id) => (GroupBy::Key, id),
            Scope::User(user) => (GroupBy::User, user),
            Scope::Team(team) => (GroupBy::Team, team),
        }
    }
}
