//! Rate limits: token buckets keyed by a string, behind the [`RateLimiter`] trait so that the
//! in-process backend ([`local::LocalLimiter`]) and a shared one (Redis, later) have the same
//! semantics. This module knows nothing of HTTP requests: the proxy turns policies and per-key
//! limits into [`Demand`]s, and gets back an [`Admission`] (or a [`Limited`] refusal).
//!
//! Semantics, shared by every backend:
//! - A bucket holds at most `capacity` units and regains `refill` units every `interval`,
//!   continuously (so `capacity=60, refill=60, interval=60s` is 60/min with a burst of 60).
//! - [`RateLimiter::acquire`] takes every demand or none.
//! - Token demands are an estimate; [`Admission::settle`] trues them up with the real usage, and
//!   a bucket may go negative (debt) when a response used more than was estimated.
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
}

impl LimitKind {
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::Requests => "requests",
            LimitKind::Tokens => "tokens",
            LimitKind::Parallel => "parallel",
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
    /// Units to take: 1 for requests and parallel, the token estimate for tokens.
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

/// What an admitted request holds until it ends: its token reservations (for the true-up) and
/// its parallel slots (released on drop, whatever the exit path).
pub struct Admission {
    limiter: Option<Arc<dyn RateLimiter>>,
    /// Token buckets and the units taken from each.
    reserved: Vec<(BucketKey, BucketSpec, u64)>,
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
                LimitKind::Tokens => admission.reserved.push((
                    demand.key.clone(),
                    demand.spec,
                    demand.amount.min(demand.spec.capacity),
                )),
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

    /// The true-up: `Some(actual)` replaces every token reservation by the tokens really used;
    /// `None` keeps the reservations as they are. Idempotent: only the first call has an effect.
    pub fn settle(&mut self, actual_tokens: Option<u64>) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        let (Some(limiter), Some(actual)) = (&self.limiter, actual_tokens) else {
            return;
        };
        let actual = i64::try_from(actual).unwrap_or(i64::MAX);
        for (key, spec, taken) in &self.reserved {
            let taken = i64::try_from(*taken).unwrap_or(i64::MAX);
            let delta = taken.saturating_sub(actual);
            if delta != 0 {
                limiter.adjust(key, *spec, delta);
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
