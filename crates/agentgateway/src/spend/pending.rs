//! Spend not yet written: hour buckets in memory, and the exact money arithmetic they use.
//!
//! Buckets are nested (hour, then booking) so that [`Buckets::add`] can find an existing bucket
//! from a borrowed [`SpendKey`]: the hot path clones the key's `Arc`s only when it opens a new
//! bucket, which happens once per booking per hour.

use std::collections::HashMap;

use rust_decimal::Decimal;

use super::SpendKey;

/// Decimal places the ledger keeps: pico-USD (1e-12 USD).
pub const PICO_DP: u32 = 12;

/// Bucket maps hash short strings on every request: foldhash is much cheaper than SipHash and
/// the keys are not attacker-chosen in a way that matters (they come from the key database).
type Hasher = foldhash::fast::RandomState;

/// Seconds in a bucket.
pub const HOUR: i64 = 3600;

/// What one bucket (or one group) adds up to. Saturating everywhere: a counter that cannot grow
/// any more is wrong, but a panic on the request path is worse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Cost in pico-USD.
    pub cost_pico: i128,
}

/// Pending buckets: hour start (unix seconds) -> booking -> totals.
#[derive(Debug, Default)]
pub struct Buckets {
    hours: HashMap<i64, HashMap<SpendKey, Totals, Hasher>, Hasher>,
}

// === impl Totals ===

impl Totals {
    /// One request.
    pub fn one(cost_pico: i128, input_tokens: u64, output_tokens: u64) -> Totals {
        Totals {
            requests: 1,
            input_tokens,
            output_tokens,
            cost_pico,
        }
    }

    pub fn add(&mut self, other: &Totals) {
        self.requests = self.requests.saturating_add(other.requests);
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cost_pico = self.cost_pico.saturating_add(other.cost_pico);
    }
}

// === impl Buckets ===

impl Buckets {
    /// Adds `totals` to the bucket of `key` for the hour starting at `hour`.
    pub fn add(&mut self, hour: i64, key: &SpendKey, totals: &Totals) {
        let keys = self.hours.entry(hour).or_default();
        match keys.get_mut(key) {
            Some(bucket) => bucket.add(totals),
            None => {
                keys.insert(key.clone(), *totals);
            }
        }
    }

    /// Adds every bucket of `other` (a failed flush's batch going back).
    pub fn merge(&mut self, other: Buckets) {
        for (hour, keys) in other.hours {
            for (key, totals) in keys {
                self.add(hour, &key, &totals);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }

    /// Every bucket whose hour start is in `[from, to)`.
    pub fn in_range(&self, from: i64, to: i64) -> impl Iterator<Item = (&SpendKey, &Totals)> {
        self.iter()
            .filter(move |(hour, _, _)| (from..to).contains(hour))
            .map(|(_, key, totals)| (key, totals))
    }

    /// Every bucket as (hour start, booking, totals).
    pub fn iter(&self) -> impl Iterator<Item = (i64, &SpendKey, &Totals)> {
        self.hours
            .iter()
            .flat_map(|(hour, keys)| keys.iter().map(move |(key, totals)| (*hour, key, totals)))
    }
}

/// The start of the hour holding unix second `at` (floor, also before 1970).
pub fn hour_of(at: i64) -> i64 {
    at.div_euclid(HOUR).saturating_mul(HOUR)
}

/// `cost` in pico-USD, rounded half-to-even at the 12th decimal place (the ledger's
/// resolution); saturates far beyond any real cost instead of failing.
pub fn to_pico(cost: Decimal) -> i128 {
    let rounded =
        cost.round_dp_with_strategy(PICO_DP, rust_decimal::RoundingStrategy::MidpointNearestEven);
    let scale = rounded.scale().min(PICO_DP);
    10i128
        .checked_pow(PICO_DP - scale)
        .and_then(|factor| rounded.mantissa().checked_mul(factor))
        .unwrap_or(if cost.is_sign_negative() {
            i128::MIN
        } else {
            i128::MAX
        })
}

/// Pico-USD as a normalised [`Decimal`] (`"10.1"`, not `"10.100000000000"`). Decimal holds
/// 96 bits, about 7.9e16 USD at this scale: beyond that it saturates.
pub fn from_pico(pico: i128) -> Decimal {
    Decimal::try_from_i128_with_scale(pico, PICO_DP)
        .unwrap_or(if pico < 0 { Decimal::MIN } else { Decimal::MAX })
        .normalize()
}
