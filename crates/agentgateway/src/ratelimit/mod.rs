//! Rate limits: token buckets keyed by a string, behind the [`RateLimiter`] trait so that the
//! in-process backend ([`local::LocalLimiter`]) and a shared one (Redis, later) have the same
//! semantics. This module knows nothing of HTTP requests: the proxy turns policies and per-key
//! limits into [`Demand`]s, and gets back an [`Admission`] (or a [`Limited`] refusal).
//!
//! Semantics, shared by every backend:
//! - A bucket holds at most `capacity` units and regains `refill` units every `interval`,
//!   continuously (so `capacity=60, refill=60, interval=60s` is 60/min with a burst of 60).
//! - [`RateLimiter::acquire`] takes every demand or none.
//! - Token and cost demands are an estimate; [`Admission::settle`] trues them up with the real
//!   usage (tokens) or the real price of it (micro-dollars), and a bucket may go negative (debt)
//!   when a response used more than was estimated.
//! - Parallel demands hold a slot until the [`Admission`] is dropped, on every exit path.

mod bucket;
pub mod headers;
pub mod local;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

/// Which kind of limit: the `limit` label of `agentgateway_ratelimit_decisions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    Requests,
    Tokens,
    Parallel,
    /// US dollars, counted in micro-dollars (`localRateLimit` with `type: cost`).
    Cost,
}

impl LimitKind {
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::Requests => "requests",
            LimitKind::Tokens => "tokens",
            LimitKind::Parallel => "parallel",
            LimitKind::Cost => "cost",
        }
    }
}

/// A bucket's refill rule. For [`LimitKind::Parallel`] only `capacity` (slots) is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSpec {
    pub capacity: u64,
    pub refill: u64,
    pub interval: Duration,
}

/// Names one bucket: the rule it belongs to plus the value it is keyed by,
/// e.g. `policy/0/alice` or `key/key_3f9a/tpm`. Built by the caller, opaque here.
pub type BucketKey = Arc<str>;

/// One thing a request needs before it may go upstream.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub kind: LimitKind,
    pub key: BucketKey,
    pub spec: BucketSpec,
    /// Units to take: 1 for requests and parallel, the token estimate for tokens, the estimated
    /// price in micro-dollars for cost.
    pub amount: u64,
}

/// A bucket's state as clients see it (OpenAI's `x-ratelimit-*` headers).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitStatus {
    pub kind: LimitKind,
    /// The bucket's capacity.
    pub limit: u64,
    /// Units left now (0 when in debt).
    pub remaining: u64,
    /// Time until the bucket is full again.
    pub reset: Duration,
}

/// A refusal: which limit, and when to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    pub kind: LimitKind,
    /// Time until the refused demand would fit (for `retry-after`).
    pub retry_after: Duration,
    /// State of every bucket the request touched (for the `x-ratelimit-*` headers).
    pub statuses: Vec<LimitStatus>,
}

/// A rate-limit store. Local today, shared (Redis) later; both keep the semantics above.
pub trait RateLimiter: Send + Sync {
    /// Takes every demand, or none and says which one did not fit.
    /// On success returns the status of every demanded bucket after taking.
    fn acquire<'a>(
        &'a self,
        demands: &'a [Demand],
    ) -> BoxFuture<'a, Result<Vec<LimitStatus>, Limited>>;
    /// Adds (`delta > 0`, refund) or takes (`delta < 0`) units, never refusing: the true-up.
    fn adjust(&self, key: &BucketKey, spec: BucketSpec, delta: i64);
    /// Gives back one parallel slot.
    fn release(&self, key: &BucketKey);
    /// The current state of a bucket, without taking anything (the admin API's usage view).
    fn status<'a>(
        &'a self,
        kind: LimitKind,
        key: &'a BucketKey,
        spec: BucketSpec,
    ) -> BoxFuture<'a, LimitStatus>;
}

/// What a finished request really used, for [`Admission::settle`]. `None` keeps that kind's
/// reservations as they are (the outcome is unknown).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actual {
    pub tokens: Option<u64>,
    /// The real price, in micro-dollars.
    pub micro_usd: Option<u64>,
}

/// A reservation to true up: the bucket, and the units taken from it.
struct Reserved {
    kind: LimitKind,
    key: BucketKey,
    spec: BucketSpec,
    taken: u64,
}

/// What an admitted request holds until it ends: its token and cost reservations (for the
/// true-up) and its parallel slots (released on drop, whatever the exit path).
pub struct Admission {
    limiter: Option<Arc<dyn RateLimiter>>,
    reserved: Vec<Reserved>,
    slots: Vec<BucketKey>,
    statuses: Vec<LimitStatus>,
    settled: bool,
}

impl Admission {
    /// Nothing to hold (no limit applied).
    pub fn none() -> Admission {
        Admission {
            limiter: None,
            reserved: Vec::new(),
            slots: Vec::new(),
            statuses: Vec::new(),
            settled: true,
        }
    }

    /// Asks `limiter` for every demand; the returned admission holds what was taken.
    pub async fn acquire(
        limiter: &Arc<dyn RateLimiter>,
        demands: &[Demand],
    ) -> Result<Admission, Limited> {
        let statuses = limiter.acquire(demands).await?;
        let mut admission = Admission {
            limiter: Some(limiter.clone()),
            reserved: Vec::new(),
            slots: Vec::new(),
            statuses,
            settled: false,
        };
        for demand in demands {
            match demand.kind {
                LimitKind::Tokens | LimitKind::Cost => admission.reserved.push(Reserved {
                    kind: demand.kind,
                    key: demand.key.clone(),
                    spec: demand.spec,
                    taken: demand.amount.min(demand.spec.capacity),
                }),
                LimitKind::Parallel => admission.slots.push(demand.key.clone()),
                LimitKind::Requests => {}
            }
        }
        Ok(admission)
    }

    /// Bucket states after admission, for the response's `x-ratelimit-*` headers.
    pub fn statuses(&self) -> &[LimitStatus] {
        &self.statuses
    }

    /// The true-up: each token reservation is replaced by `actual.tokens` and each cost
    /// reservation by `actual.micro_usd`; a `None` keeps that kind's reservations as they are.
    /// Idempotent: only the first call has an effect.
    pub fn settle(&mut self, actual: Actual) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        let Some(limiter) = &self.limiter else {
            return;
        };
        for reserved in &self.reserved {
            let used = match reserved.kind {
                LimitKind::Cost => actual.micro_usd,
                _ => actual.tokens,
            };
            let Some(used) = used else {
                continue;
            };
            let used = i64::try_from(used).unwrap_or(i64::MAX);
            let taken = i64::try_from(reserved.taken).unwrap_or(i64::MAX);
            let delta = taken.saturating_sub(used);
            if delta != 0 {
                limiter.adjust(&reserved.key, reserved.spec, delta);
            }
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if let Some(limiter) = &self.limiter {
            self.slots.drain(..).for_each(|key| limiter.release(&key));
        }
    }
}

/// A monotonic clock; tests drive a [`local::ManualClock`].
pub trait Clock: Send + Sync {
    /// Time since an arbitrary fixed origin.
    fn now(&self) -> Duration;
}
