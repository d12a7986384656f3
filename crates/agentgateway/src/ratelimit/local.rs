//! The in-process [`RateLimiter`]: buckets and parallel-slot counters in a sharded map, each shard
//! behind a `std` mutex held only for a few arithmetic steps (never across an await), so requests
//! for different keys rarely contend.
//!
//! Memory stays bounded under a flood of distinct keys: a full bucket with no slot in use is the
//! same as no bucket at all, so each shard periodically drops those.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::{ready, BoxFuture};

use super::bucket::Bucket;
use super::{BucketKey, BucketSpec, Clock, Demand, LimitKind, LimitStatus, Limited, RateLimiter};

const SHARDS: usize = 32;
/// A shard sweeps its full buckets when it holds this many, or twice as many as after its last
/// sweep (amortised O(1) per new bucket, and memory at most about twice the live buckets).
const MIN_SWEEP: usize = 256;
/// What a refused parallel demand is told: slots free up when requests end, which the gateway
/// cannot predict; a second is the usual length of a short completion.
const PARALLEL_RETRY: Duration = Duration::from_secs(1);

/// Bucket keys are short strings hashed several times per request: foldhash is several times
/// faster than SipHash on them, and its per-process random seed still keeps crafted keys from
/// colliding on purpose.
type Hasher = foldhash::fast::RandomState;

struct Shard {
    buckets: HashMap<BucketKey, Bucket, Hasher>,
    /// Requests in flight per parallel key; an entry at 0 is removed.
    in_flight: HashMap<BucketKey, u64, Hasher>,
    next_sweep: usize,
}

pub struct LocalLimiter {
    shards: Box<[Mutex<Shard>]>,
    hasher: Hasher,
    clock: Arc<dyn Clock>,
}

impl LocalLimiter {
    pub fn new(clock: Arc<dyn Clock>) -> LocalLimiter {
        LocalLimiter {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        buckets: HashMap::default(),
                        in_flight: HashMap::default(),
                        next_sweep: MIN_SWEEP,
                    })
                })
                .collect(),
            hasher: Hasher::default(),
            clock,
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A panic while holding a shard cannot leave a bucket half-updated: keep serving.
        self.shards[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Buckets and counters currently held (tests check that eviction bounds this).
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let shard = s.lock().unwrap_or_else(PoisonError::into_inner);
                shard.buckets.len() + shard.in_flight.len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes one demand and reports the bucket's state after it (read under the same lock);
    /// on refusal, how long until it would fit.
    fn take(&self, demand: &Demand, now: Duration) -> Result<LimitStatus, Duration> {
        let mut shard = self.shard(&demand.key);
        if shard.buckets.len() >= shard.next_sweep {
            sweep(&mut shard, now);
        }
        match demand.kind {
            LimitKind::Parallel => {
                let count = shard.in_flight.entry(demand.key.clone()).or_insert(0);
                if *count >= demand.spec.capacity {
                    return Err(PARALLEL_RETRY);
                }
                *count += 1;
                Ok(LimitStatus {
                    kind: demand.kind,
                    limit: demand.spec.capacity,
                    remaining: demand.spec.capacity - *count,
                    reset: Duration::ZERO,
                })
            }
            LimitKind::Requests | LimitKind::Tokens | LimitKind::Cost => {
                let bucket = bucket(&mut shard, demand, now);
                bucket.take(demand.amount)?;
                Ok(LimitStatus {
                    kind: demand.kind,
                    limit: demand.spec.capacity,
                    remaining: bucket.remaining(),
                    reset: bucket.reset(),
                })
            }
        }
    }

    /// Gives back what [`LocalLimiter::take`] took (an all-or-nothing acquire that failed later).
    fn untake(&self, demand: &Demand) {
        match demand.kind {
            LimitKind::Parallel => self.release(&demand.key),
            LimitKind::Requests | LimitKind::Tokens | LimitKind::Cost => {
                let amount = demand.amount.min(demand.spec.capacity);
                self.adjust(
                    &demand.key,
                    demand.spec,
                    i64::try_from(amount).unwrap_or(i64::MAX),
                );
            }
        }
    }

    fn status_now(&self, kind: LimitKind, key: &BucketKey, spec: BucketSpec) -> LimitStatus {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        if kind == LimitKind::Parallel {
            let used = shard.in_flight.get(key).copied().unwrap_or(0);
            return LimitStatus {
                kind,
                limit: spec.capacity,
                remaining: spec.capacity.saturating_sub(used),
                reset: Duration::ZERO,
            };
        }
        let (remaining, reset) = match shard.buckets.get_mut(key) {
            Some(bucket) => {
                bucket.refill(spec, now);
                (bucket.remaining(), bucket.reset())
            }
            None => (spec.capacity, Duration::ZERO),
        };
        LimitStatus {
            kind,
            limit: spec.capacity,
            remaining,
            reset,
        }
    }

    fn acquire_now(&self, demands: &[Demand]) -> Result<Vec<LimitStatus>, Limited> {
        let now = self.clock.now();
        let mut statuses = Vec::with_capacity(demands.len());
        for (i, demand) in demands.iter().enumerate() {
            match self.take(demand, now) {
                Ok(status) => statuses.push(status),
                Err(retry_after) => {
                    demands[..i].iter().for_each(|taken| self.untake(taken));
                    return Err(Limited {
                        kind: demand.kind,
                        retry_after,
                        statuses: self.statuses(demands),
                    });
                }
            }
        }
        Ok(statuses)
    }

    fn statuses(&self, demands: &[Demand]) -> Vec<LimitStatus> {
        demands
            .iter()
            .map(|d| self.status_now(d.kind, &d.key, d.spec))
            .collect()
    }
}

fn bucket<'s>(shard: &'s mut Shard, demand: &Demand, now: Duration) -> &'s mut Bucket {
    // Look up before inserting: the common case then clones no key.
    if !shard.buckets.contains_key(&demand.key) {
        let fresh = Bucket::new(demand.spec, now);
        shard.buckets.insert(demand.key.clone(), fresh);
    }
    let bucket = shard
        .buckets
        .get_mut(&demand.key)
        .unwrap_or_else(|| unreachable!("inserted above"));
    bucket.refill(demand.spec, now);
    bucket
}

/// Drops the buckets that have refilled to full: recreating one later gives the same answer.
fn sweep(shard: &mut Shard, now: Duration) {
    shard.buckets.retain(|_, bucket| {
        bucket.refill(bucket.spec(), now);
        !bucket.is_full()
    });
    shard.next_sweep = (2 * shard.buckets.len()).max(MIN_SWEEP);
}

impl RateLimiter for LocalLimiter {
    fn acquire<'a>(
        &'a self,
        demands: &'a [Demand],
    ) -> BoxFuture<'a, Result<Vec<LimitStatus>, Limited>> {
        Box::pin(ready(self.acquire_now(demands)))
    }

    fn adjust(&self, key: &BucketKey, spec: BucketSpec, delta: i64) {
        let now = self.clock.now();
        let mut shard = self.shard(key);
        let bucket = shard
            .buckets
            .entry(key.clone())
            .or_insert_with(|| Bucket::new(spec, now));
        bucket.refill(spec, now);
        bucket.adjust(delta);
    }

    fn release(&self, key: &BucketKey) {
        let mut shard = self.shard(key);
        if let Some(count) = shard.in_flight.get_mut(key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                shard.in_flight.remove(key);
            }
        }
    }

    fn status<'a>(
        &'a self,
        kind: LimitKind,
        key: &'a BucketKey,
        spec: BucketSpec,
    ) -> BoxFuture<'a, LimitStatus> {
        Box::pin(ready(self.status_now(kind, key, spec)))
    }
}

/// The process's monotonic clock.
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to (deterministic tests and benchmarks).
#[derive(Default)]
pub struct ManualClock {
    nanos: AtomicU64,
}

impl ManualClock {
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}
