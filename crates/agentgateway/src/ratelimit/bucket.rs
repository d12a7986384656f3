//! One token bucket's arithmetic, in integer micro-units so that a given sequence of calls and
//! clock readings always gives the same answer (the deterministic limiter tests rely on it).
//! Refill is continuous: `refill` units per `interval`, capped at `capacity`. The level may go
//! below zero (debt) after a true-up; it then refuses until refilled past the demand.

use std::time::Duration;

use super::BucketSpec;

/// Units are counted in millionths, so slow refills (40 tokens a day) still move smoothly.
const SCALE: i128 = 1_000_000;

#[derive(Debug, Clone)]
pub(super) struct Bucket {
    spec: BucketSpec,
    /// Scaled units available (negative: debt).
    level: i128,
    /// Clock reading of the last refill.
    updated: Duration,
}

impl Bucket {
    /// A new bucket starts full.
    pub(super) fn new(spec: BucketSpec, now: Duration) -> Bucket {
        Bucket {
            spec,
            level: capacity(&spec),
            updated: now,
        }
    }

    /// Brings the level up to `now` under the newest spec (an admin may have changed it).
    pub(super) fn refill(&mut self, spec: BucketSpec, now: Duration) {
        if spec != self.spec {
            self.spec = spec;
            self.level = self.level.min(capacity(&spec));
        }
        let elapsed = now.saturating_sub(self.updated).as_nanos() as i128;
        self.updated = self.updated.max(now);
        let full = capacity(&self.spec);
        if elapsed == 0 || self.level >= full {
            return;
        }
        let interval = (self.spec.interval.as_nanos() as i128).max(1);
        let added = elapsed
            .checked_mul(i128::from(self.spec.refill))
            .and_then(|x| x.checked_mul(SCALE))
            .map_or(full, |x| x / interval);
        self.level = self.level.saturating_add(added).min(full);
    }

    /// Takes `amount` (capped at the capacity, so no request is refused forever), or says how
    /// long until it would fit.
    pub(super) fn take(&mut self, amount: u64) -> Result<(), Duration> {
        let need = i128::from(amount.min(self.spec.capacity)) * SCALE;
        if self.level >= need {
            self.level -= need;
            Ok(())
        } else {
            Err(self.time_to_reach(need))
        }
    }

    /// Adds (refund) or removes (more used than reserved) units; never above the capacity.
    pub(super) fn adjust(&mut self, delta: i64) {
        let delta = i128::from(delta) * SCALE;
        self.level = self.level.saturating_add(delta).min(capacity(&self.spec));
    }

    /// Whole units left now (0 in debt).
    pub(super) fn remaining(&self) -> u64 {
        u64::try_from((self.level / SCALE).max(0)).unwrap_or(u64::MAX)
    }

    /// Time until the bucket is full again.
    pub(super) fn reset(&self) -> Duration {
        self.time_to_reach(capacity(&self.spec))
    }

    pub(super) fn spec(&self) -> BucketSpec {
        self.spec
    }

    pub(super) fn is_full(&self) -> bool {
        self.level >= capacity(&self.spec)
    }

    fn time_to_reach(&self, target: i128) -> Duration {
        let deficit = target - self.level;
        if deficit <= 0 {
            return Duration::ZERO;
        }
        let per_interval = i128::from(self.spec.refill.max(1)) * SCALE;
        let interval = self.spec.interval.as_nanos() as i128;
        let nanos = deficit
            .checked_mul(interval)
            .map_or(i128::MAX, |x| (x + per_interval - 1) / per_interval);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

fn capacity(spec: &BucketSpec) -> i128 {
    i128::from(spec.capacity) * SCALE
}
