//! A cache of resolved metric handles, one entry per distinct set of label values a request can
//! carry, so a request whose labels were seen before costs one map lookup and then only atomic
//! updates.
//!
//! Without it every request looked its series up family by family (about eight read-locked
//! `HashMap` lookups, each hashing and comparing the label sets and cloning `Arc`s): ~10k
//! instructions per request in callgrind. prometheus-client's `Counter` and `Histogram` are
//! handles (`Arc`s) onto the series stored in their family, so holding a clone observes into the
//! very series the exposition encodes.
//!
//! An entry creates a series in its family the first time the request needs it, never before,
//! so `/metrics` shows exactly the series it showed without the cache. Nothing removes series
//! from our families, so a cached handle never outlives its series. The cache holds at most
//! [`CAPACITY`] entries; a request with new labels past that resolves its handles for itself
//! (the per-family lookups), so a flood of label values costs speed, never memory.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::{
    cost, method, protocol, ratelimit, reason, response_model, DurationKey, GenAiKey, GenAiLabels,
    Hashed, HttpKey, Metrics, RouteLabels, TokenKey, Value, UNKNOWN,
};
use crate::record::{CostOutcome, LimitOutcome, RequestRecord};

/// Most entries kept. An entry is a few hundred bytes beside the label sets the families hold
/// anyway; far more distinct label sets than this means a cardinality problem to fix elsewhere.
pub(super) const CAPACITY: usize = 4096;

/// `gen_ai_token_type` values; a handle array is indexed by the position here.
pub(super) const TOKEN_TYPES: [&str; 5] = [
    "input",
    "output",
    "input_cache_read",
    "input_cache_write",
    "output_reasoning",
];

/// The label values of one request, borrowed from its record: everything that decides which
/// series the request adds to.
pub(super) struct View<'a> {
    pub(super) backend: &'a str,
    pub(super) protocol: &'static str,
    pub(super) method: &'static str,
    pub(super) status: u16,
    pub(super) reason: &'static str,
    pub(super) bind: &'a str,
    pub(super) gateway: &'a str,
    pub(super) listener: &'a str,
    pub(super) route: &'a str,
    /// The custom label values, one per custom label name ("unknown" when missing).
    pub(super) custom: CustomView<'a>,
    pub(super) gen_ai: Option<GenAiView<'a>>,
}

/// The custom values a caller passed, read as `len` values with "unknown" for missing ones.
#[derive(Clone, Copy)]
pub(super) struct CustomView<'a> {
    pub(super) values: &'a [Arc<str>],
    pub(super) len: usize,
}

impl<'a> CustomView<'a> {
    fn iter(self) -> impl Iterator<Item = &'a str> {
        (0..self.len).map(move |i| self.values.get(i).map_or(UNKNOWN, |v| &**v))
    }
}

/// The GenAI part of [`View`], for a request with an operation and a route.
pub(super) struct GenAiView<'a> {
    pub(super) operation: &'static str,
    pub(super) system: &'static str,
    pub(super) request_model: &'a str,
    pub(super) response_model: &'a str,
    pub(super) error_type: Option<&'a str>,
}

/// Hashes the values that tell requests apart in practice. The listener's labels and the
/// backend and protocol (which follow from the route and the operation) are left out to save
/// hashing them on every request: entries that differ only there share a bucket, and
/// [`Handles::matches`] compares every value.
impl Hash for View<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        [self.route, self.method, self.reason]
            .iter()
            .for_each(|s| s.hash(state));
        self.status.hash(state);
        self.custom.iter().for_each(|s| s.hash(state));
        if let Some(g) = &self.gen_ai {
            [g.request_model, g.response_model]
                .iter()
                .for_each(|s| s.hash(state));
            g.error_type.hash(state);
        }
    }
}

/// The handles of every series one set of label values adds to.
#[derive(Debug)]
pub(super) struct Handles {
    pub(super) status: u16,
    pub(super) http: HttpKey,
    pub(super) requests: Counter,
    pub(super) http_duration: Histogram,
    /// Indexed as [`ratelimit::decisions`] numbers them.
    pub(super) decisions: [OnceLock<Counter>; ratelimit::DECISIONS],
    pub(super) gen_ai: Option<GenAiHandles>,
}

#[derive(Debug)]
pub(super) struct GenAiHandles {
    pub(super) labels: Arc<Hashed<GenAiLabels>>,
    pub(super) error_type: Option<Arc<str>>,
    pub(super) duration: Histogram,
    /// Indexed like [`TOKEN_TYPES`].
    pub(super) tokens: [OnceLock<Histogram>; 5],
    /// Indexed like [`TOKEN_TYPES`].
    pub(super) cost: [OnceLock<Counter<f64, AtomicU64>>; 5],
    pub(super) unpriced: OnceLock<Counter>,
    pub(super) ttft: OnceLock<Histogram>,
    pub(super) tpot: OnceLock<Histogram>,
}

// === impl Metrics: from a request to its handles ===

impl Metrics {
    /// The label values of `rec`, borrowed: what the handle cache is keyed by. Every value is
    /// the one [`Metrics::resolve`] puts in the label sets.
    pub(super) fn view<'a>(&self, rec: &'a RequestRecord, custom: CustomView<'a>) -> View<'a> {
        let route = rec.route.as_deref();
        let gen_ai = match (rec.operation_name(), rec.system()) {
            (Some(operation), Some(system)) => Some(GenAiView {
                operation,
                system,
                request_model: rec.llm.request_model.as_deref().unwrap_or(UNKNOWN),
                response_model: rec.llm.response_model.as_deref().unwrap_or(UNKNOWN),
                error_type: rec.error.as_ref().map(|e| &*e.label),
            }),
            _ => None,
        };
        View {
            backend: route.map_or(UNKNOWN, |r| &r.endpoint),
            protocol: protocol(rec),
            method: method(rec),
            status: rec.status,
            reason: reason(rec),
            bind: &rec.listener.bind,
            gateway: &rec.listener.gateway,
            listener: &rec.listener.listener,
            route: route.map_or(UNKNOWN, |r| &r.route),
            custom,
            gen_ai,
        }
    }

    /// Builds the label sets of `rec` and resolves the handles every request with them uses
    /// (creating those series); the others are resolved on first use.
    pub(super) fn resolve(&self, rec: &RequestRecord, custom: &[Arc<str>]) -> Handles {
        let custom = self.custom_values(custom);
        let route = RouteLabels::new(rec);
        let http = self.http_labels(rec, route.clone(), custom.clone());
        let http = HttpKey(Arc::new(self.hashed(http)));
        let gen_ai = match (rec.operation_name(), rec.system()) {
            (Some(operation), Some(system)) => {
                let labels = GenAiLabels {
                    operation,
                    system,
                    request_model: rec
                        .llm
                        .request_model
                        .clone()
                        .map_or(UNKNOWN.into(), Value::Shared),
                    response_model: response_model(rec),
                    route,
                    custom,
                };
                Some(self.resolve_gen_ai(rec, Arc::new(self.hashed(labels))))
            }
            _ => None,
        };
        Handles {
            status: rec.status,
            requests: Counter::clone(&self.requests.get_or_create(&http)),
            http_duration: Histogram::clone(&self.http_duration.get_or_create(&http)),
            http,
            decisions: Default::default(),
            gen_ai,
        }
    }

    fn resolve_gen_ai(
        &self,
        rec: &RequestRecord,
        labels: Arc<Hashed<GenAiLabels>>,
    ) -> GenAiHandles {
        // OpenTelemetry sets error.type only on failure, so a success has no error_type at all.
        let error_type = rec.error.as_ref().map(|e| e.label.clone());
        let duration_key = DurationKey {
            labels: labels.clone(),
            error_type: error_type.clone(),
        };
        GenAiHandles {
            duration: Histogram::clone(&self.request_duration.get_or_create(&duration_key)),
            labels,
            error_type,
            tokens: Default::default(),
            cost: Default::default(),
            unpriced: OnceLock::new(),
            ttft: OnceLock::new(),
            tpot: OnceLock::new(),
        }
    }
}

// === impl Handles ===

impl Handles {
    /// Whether these handles are the series of a request with the labels of `v`.
    pub(super) fn matches(&self, v: &View<'_>) -> bool {
        let h = &self.http.0.labels;
        let route = &h.route;
        self.status == v.status
            && h.method == v.method
            && h.reason == v.reason
            && h.protocol == v.protocol
            && h.backend.as_str() == v.backend
            && &*route.bind == v.bind
            && &*route.gateway == v.gateway
            && &*route.listener == v.listener
            && route.route.as_str() == v.route
            && h.custom.values.len() == v.custom.len
            && h.custom.values.iter().map(|s| &**s).eq(v.custom.iter())
            && match (&self.gen_ai, &v.gen_ai) {
                (None, None) => true,
                (Some(g), Some(view)) => g.matches(view),
                _ => false,
            }
    }

    /// Adds one finished request to every series it belongs to.
    pub(super) fn observe(&self, m: &Metrics, rec: &RequestRecord) {
        self.observe_decisions(m, rec.limits);
        self.http_duration.observe(rec.duration.as_secs_f64());
        self.requests.inc();
        if let Some(gen_ai) = &self.gen_ai {
            gen_ai.observe(m, rec);
        }
    }

    fn observe_decisions(&self, m: &Metrics, outcome: LimitOutcome) {
        for (index, decision, kind) in ratelimit::decisions(outcome) {
            let Some(slot) = self.decisions.get(index) else {
                continue;
            };
            slot.get_or_init(|| {
                let key = ratelimit::key(decision, kind, &self.http.0.labels.custom);
                Counter::clone(&m.ratelimit_decisions.get_or_create(&key))
            })
            .inc();
        }
    }
}

impl GenAiHandles {
    fn matches(&self, v: &GenAiView<'_>) -> bool {
        let l = &self.labels.labels;
        l.operation == v.operation
            && l.system == v.system
            && l.request_model.as_str() == v.request_model
            && l.response_model.as_str() == v.response_model
            && self.error_type.as_deref() == v.error_type
    }

    fn observe(&self, m: &Metrics, rec: &RequestRecord) {
        let usage = &rec.llm.usage;
        // An unreported count is not a zero: only reported types are observed.
        let counts = [
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_input_tokens,
            usage.cache_write_input_tokens,
            usage.reasoning_output_tokens,
        ];
        for ((slot, token_type), count) in self.tokens.iter().zip(TOKEN_TYPES).zip(counts) {
            if let Some(count) = count {
                slot.get_or_init(|| {
                    Histogram::clone(&m.token_usage.get_or_create(&self.token_key(token_type)))
                })
                .observe(count as f64);
            }
        }
        self.observe_cost(m, &rec.llm.cost);
        self.duration.observe(rec.duration.as_secs_f64());

        // OpenTelemetry's time-to-first-token is of successful requests only.
        let (Some(ttft), None) = (rec.ttft, &rec.error) else {
            return;
        };
        let key = || GenAiKey(self.labels.clone());
        self.ttft
            .get_or_init(|| Histogram::clone(&m.time_to_first_token.get_or_create(&key())))
            .observe(ttft.as_secs_f64());
        let output_tokens = rec.llm.usage.output_tokens.filter(|n| *n > 1);
        if let (true, Some(output_tokens)) = (rec.llm.streaming, output_tokens) {
            let after_first = rec.duration.saturating_sub(ttft).as_secs_f64();
            self.tpot
                .get_or_init(|| Histogram::clone(&m.time_per_output_token.get_or_create(&key())))
                .observe(after_first / (output_tokens - 1) as f64);
        }
    }

    fn observe_cost(&self, m: &Metrics, outcome: &CostOutcome) {
        match outcome {
            CostOutcome::NotApplicable => {}
            CostOutcome::Unpriced => {
                let counter = self
                    .unpriced
                    .get_or_init(|| m.cost.unpriced_handle(&self.labels));
                counter.inc();
            }
            CostOutcome::Priced(amounts) => {
                let parts = self.cost.iter().zip(TOKEN_TYPES).zip(cost::parts(amounts));
                for ((slot, token_type), amount) in parts {
                    if let Some(amount) = amount {
                        slot.get_or_init(|| m.cost.cost_handle(&self.token_key(token_type)))
                            .inc_by(amount);
                    }
                }
            }
        }
    }

    fn token_key(&self, token_type: &'static str) -> TokenKey {
        TokenKey {
            token_type,
            labels: self.labels.clone(),
        }
    }
}

/// Entries by the hash of their [`View`]; a bucket holds more than one entry only on a hash
/// collision.
type Map = HashMap<u64, Vec<Arc<Handles>>, BuildHasherDefault<PassThrough>>;

/// The cache: read-locked for lookups, write-locked only to add an entry.
#[derive(Debug)]
pub(super) struct HandleCache {
    entries: RwLock<Entries>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Entries {
    map: Map,
    len: usize,
}

impl HandleCache {
    pub(super) fn new(capacity: usize) -> HandleCache {
        HandleCache {
            entries: RwLock::default(),
            capacity,
        }
    }

    /// The entry for `view`, whose hash is `hash`.
    pub(super) fn get(&self, hash: u64, view: &View<'_>) -> Option<Arc<Handles>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .map
            .get(&hash)?
            .iter()
            .find(|h| h.matches(view))
            .cloned()
    }

    /// Keeps `handles` (resolved for `view`) unless the cache is full, or another request added
    /// the same labels meanwhile (then that entry is returned, so there is only ever one).
    pub(super) fn insert(&self, hash: u64, view: &View<'_>, handles: Handles) -> Arc<Handles> {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        let bucket = entries.map.get(&hash);
        if let Some(found) = bucket.and_then(|b| b.iter().find(|h| h.matches(view))) {
            return found.clone();
        }
        let handles = Arc::new(handles);
        if entries.len < self.capacity {
            entries.map.entry(hash).or_default().push(handles.clone());
            entries.len += 1;
        }
        handles
    }

    /// Entries held.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len
    }
}

/// The map's keys are already foldhash hashes: hashing them again would be wasted work.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is ever called (the keys are u64); this keeps any other use correct.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests;
