//! The Prometheus families the gateway exposes, and how one finished [`RequestRecord`] becomes
//! observations in them. Names, labels and buckets are the interface contract (`interface.md`,
//! Metrics): the OpenTelemetry GenAI families (token usage, request duration, time to first
//! token, time per output token) and the per-request HTTP families (`requests_total`, duration).
//!
//! This runs once per request, so a request whose label values were seen before finds all its
//! series in one lookup ([`handles`]); only a new set of label values builds label sets (every
//! value a `&'static str` or a shared `Arc<str>`, the labels shared across families built once
//! behind an `Arc`, their hash computed once and reused by every family lookup).

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use prometheus_client::encoding::LabelSetEncoder;
use prometheus_client::encoding::{prometheus_text, text, EncodeLabel, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::exposition::Format;
use crate::record::RequestRecord;

/// Token counts (OpenTelemetry GenAI semantic conventions).
const TOK: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];
/// GenAI request durations, seconds.
const DUR: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// Time to first token, seconds.
const TTFT: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Time per output token, seconds.
const TPOT: [f64; 13] = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];
/// HTTP request durations, seconds.
const HTTP: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 80.0,
];

const UNKNOWN: &str = "unknown";

/// Label names our families already use; a custom label may not take one of them.
pub const RESERVED_LABELS: [&str; 19] = [
    "gen_ai_token_type",
    "gen_ai_operation_name",
    "gen_ai_system",
    "gen_ai_request_model",
    "gen_ai_response_model",
    "bind",
    "gateway",
    "listener",
    "route",
    "route_rule",
    "error_type",
    "backend",
    "protocol",
    "method",
    "status",
    "reason",
    "le",
    "decision",
    "limit",
];

/// Methods that get their own `method` value; anything else is `_OTHER` (as in OpenTelemetry's
/// HTTP conventions), so a client cannot mint series by inventing methods.
const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// The gateway's metric families and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    token_usage: HistogramFamily<TokenKey>,
    request_duration: HistogramFamily<DurationKey>,
    time_to_first_token: HistogramFamily<GenAiKey>,
    time_per_output_token: HistogramFamily<GenAiKey>,
    requests: Family<HttpKey, Counter>,
    http_duration: HistogramFamily<HttpKey>,
    ratelimit_decisions: Family<ratelimit::DecisionKey, Counter>,
    cost: cost::CostMetrics,
    /// The handles of each label set seen, so a request resolves its series once, not per family.
    handles: handles::HandleCache,
    custom_names: Arc<[Arc<str>]>,
    /// Hashes each request's label sets once (seeded randomly, like `HashMap`); the families
    /// then hash only that `u64`. foldhash, not SipHash: SipHash over a dozen label strings was
    /// ~4k instructions per request (callgrind).
    hasher: foldhash::fast::RandomState,
    /// `status` values for 0..=999, built once so a request never formats its status code.
    statuses: Box<[Arc<str>]>,
    unknown: Arc<str>,
    no_custom_values: Arc<[Arc<str>]>,
    /// Size of the last exposition, to allocate the next one in one go.
    last_len: AtomicUsize,
}

// === impl Metrics ===

impl Metrics {
    /// custom_labels: names of the user's custom labels (`config.metrics.fields.add` keys), in
    /// order. A name that is not a valid Prometheus label name, or that clashes with one of ours,
    /// is adjusted (and a warning logged) rather than allowed to break every scrape.
    pub fn new(custom_labels: Vec<String>) -> Metrics {
        let mut registry = Registry::with_prefix("agentgateway");
        let token_usage = histogram_family(|| Histogram::new(TOK));
        let request_duration = histogram_family(|| Histogram::new(DUR));
        let time_to_first_token = histogram_family(|| Histogram::new(TTFT));
        let time_per_output_token = histogram_family(|| Histogram::new(TPOT));
        let requests = Family::<HttpKey, Counter>::default();
        let http_duration = histogram_family(|| Histogram::new(HTTP));
        registry.register(
            "gen_ai_client_token_usage",
            "Tokens used per request, by token type, as reported by the provider",
            token_usage.clone(),
        );
        registry.register(
            "gen_ai_server_request_duration",
            "Duration of LLM requests in seconds",
            request_duration.clone(),
        );
        registry.register(
            "gen_ai_server_time_to_first_token",
            "Time to the first response bytes of successful LLM requests in seconds",
            time_to_first_token.clone(),
        );
        registry.register(
            "gen_ai_server_time_per_output_token",
            "Time per output token after the first, of successful streamed LLM requests in seconds",
            time_per_output_token.clone(),
        );
        registry.register("requests", "Requests handled", requests.clone());
        registry.register_with_unit(
            "request_duration",
            "Duration of requests",
            Unit::Seconds,
            http_duration.clone(),
        );
        let ratelimit_decisions = Family::<ratelimit::DecisionKey, Counter>::default();
        registry.register(
            "ratelimit_decisions",
            "Rate-limit decisions, per kind of limit checked",
            ratelimit_decisions.clone(),
        );
        let cost = cost::CostMetrics::register(&mut registry);
        Metrics {
            registry,
            ratelimit_decisions,
            cost,
            handles: handles::HandleCache::new(handles::CAPACITY),
            token_usage,
            request_duration,
            time_to_first_token,
            time_per_output_token,
            requests,
            http_duration,
            custom_names: sanitize_custom_labels(custom_labels).into(),
            hasher: foldhash::fast::RandomState::default(),
            statuses: (0..1000u16).map(|s| Arc::from(s.to_string())).collect(),
            unknown: Arc::from(UNKNOWN),
            no_custom_values: Arc::new([]),
            last_len: AtomicUsize::new(0),
        }
    }

    /// Records one finished request. `custom` holds the custom label values in the same order as
    /// the names ("unknown" already substituted by the caller when an expression failed); missing
    /// values read as "unknown".
    pub fn record(&self, rec: &RequestRecord, custom: &[Arc<str>]) {
        let custom_view = handles::CustomView {
            values: custom,
            len: self.custom_names.len(),
        };
        let view = self.view(rec, custom_view);
        let hash = self.hasher.hash_one(&view);
        match self.handles.get(hash, &view) {
            Some(handles) => handles.observe(self, rec),
            None => {
                let resolved = self.resolve(rec, custom);
                debug_assert!(
                    resolved.matches(&view),
                    "a request's view and labels disagree"
                );
                self.handles
                    .insert(hash, &view, resolved)
                    .observe(self, rec);
            }
        }
    }

    /// Renders the registry in `format`, with prometheus-client's own encoder for each (one pass;
    /// the 0.0.4 text has none of OpenMetrics' `# EOF`, `# UNIT` or `_created` lines).
    pub fn encode(&self, format: Format) -> String {
        let mut out = String::with_capacity(self.last_len.load(Ordering::Relaxed) + 1024);
        let result = match format {
            Format::Text004 => prometheus_text::encode(&mut out, &self.registry),
            Format::OpenMetrics => text::encode(&mut out, &self.registry),
        };
        if result.is_err() {
            // Writing to a String cannot fail; a label encoder could, and should not go unseen.
            tracing::error!(?format, "encoding metrics failed");
        }
        self.last_len.store(out.len(), Ordering::Relaxed);
        out
    }

    /// Sets a budget's `budget_remaining_usd` gauge.
    pub fn budget(&self, status: &crate::budget::BudgetStatus) {
        self.cost.budget(status);
    }

    /// Counts a request let through past a spent soft budget.
    pub fn soft_budget_exceeded(&self, status: &crate::budget::BudgetStatus) {
        self.cost.soft_exceeded(status);
    }

    fn http_labels(
        &self,
        rec: &RequestRecord,
        route: RouteLabels,
        custom: CustomLabels,
    ) -> HttpLabels {
        HttpLabels {
            backend: rec
                .route
                .as_ref()
                .map_or(UNKNOWN.into(), |r| Value::Shared(r.endpoint.clone())),
            protocol: protocol(rec),
            method: method(rec),
            status: self.status(rec.status),
            reason: reason(rec),
            route,
            custom,
        }
    }

    fn status(&self, status: u16) -> Arc<str> {
        match self.statuses.get(usize::from(status)) {
            Some(s) => s.clone(),
            None => Arc::from(itoa::Buffer::new().format(status)),
        }
    }

    fn custom_values(&self, values: &[Arc<str>]) -> CustomLabels {
        let names = self.custom_names.clone();
        if names.is_empty() {
            // Share one empty slice rather than allocate one per request.
            let values = self.no_custom_values.clone();
            return CustomLabels { names, values };
        }
        let values = (0..names.len())
            .map(|i| values.get(i).unwrap_or(&self.unknown).clone())
            .collect();
        CustomLabels { names, values }
    }

    fn hashed<T: Hash>(&self, labels: T) -> Hashed<T> {
        Hashed {
            hash: self.hasher.hash_one(&labels),
            labels,
        }
    }
}

/// The response model, sharing the request model's string when they are the same.
fn response_model(rec: &RequestRecord) -> Value {
    match (&rec.llm.response_model, &rec.llm.request_model) {
        (None, _) => UNKNOWN.into(),
        (Some(resp), Some(req)) if resp.as_str() == &**req => Value::Shared(req.clone()),
        (Some(resp), _) => Value::Shared(Arc::from(resp.as_str())),
    }
}

fn histogram_family<S: Clone + Hash + Eq>(new: fn() -> Histogram) -> HistogramFamily<S> {
    Family::new_with_constructor(new)
}

fn protocol(rec: &RequestRecord) -> &'static str {
    if rec.llm.operation.is_some() {
        "llm"
    } else {
        "http"
    }
}

fn method(rec: &RequestRecord) -> &'static str {
    let method = rec.method.as_str();
    METHODS
        .iter()
        .find(|m| **m == method)
        .copied()
        .unwrap_or("_OTHER")
}

fn reason(rec: &RequestRecord) -> &'static str {
    rec.reason.unwrap_or("ok")
}

/// Makes each configured name a valid, unique Prometheus label name that does not shadow ours.
fn sanitize_custom_labels(names: Vec<String>) -> Vec<Arc<str>> {
    let mut taken: Vec<String> = RESERVED_LABELS.iter().map(|s| s.to_string()).collect();
    let mut out = Vec::with_capacity(names.len());
    for original in names {
        let mut name: String = original
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if name.is_empty()
            || name.starts_with(|c: char| c.is_ascii_digit())
            || name.starts_with("__")
        {
            name.insert_str(0, "custom_");
        }
        while taken.contains(&name) {
            name.insert_str(0, "custom_");
        }
        if name != original {
            tracing::warn!(label = %original, exposed_as = %name, "custom metric label renamed");
        }
        taken.push(name.clone());
        out.push(Arc::from(name));
    }
    out
}

// === label sets ===

/// A label value: static text, or a string shared with the request record. Equal and hashed by
/// content, so a series found with one `Arc` is found again with another.
#[derive(Debug, Clone)]
enum Value {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Value {
    fn as_str(&self) -> &str {
        match self {
            Value::Static(s) => s,
            Value::Shared(s) => s,
        }
    }
}

impl From<&'static str> for Value {
    fn from(s: &'static str) -> Value {
        Value::Static(s)
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Value {}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

/// Labels with their hash computed once; family lookups hash only the `u64`.
#[derive(Debug)]
struct Hashed<T> {
    hash: u64,
    labels: T,
}

impl<T: PartialEq> PartialEq for Hashed<T> {
    fn eq(&self, other: &Hashed<T>) -> bool {
        self.hash == other.hash && self.labels == other.labels
    }
}

impl<T: Eq> Eq for Hashed<T> {}

impl<T> Hash for Hashed<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// `bind`, `gateway`, `listener`, `route`, `route_rule`: where the request arrived and went.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RouteLabels {
    bind: Arc<str>,
    gateway: Arc<str>,
    listener: Arc<str>,
    route: Value,
}

impl RouteLabels {
    fn new(rec: &RequestRecord) -> RouteLabels {
        RouteLabels {
            bind: rec.listener.bind.clone(),
            gateway: rec.listener.gateway.clone(),
            listener: rec.listener.listener.clone(),
            route: rec
                .route
                .as_ref()
                .map_or(UNKNOWN.into(), |r| Value::Shared(r.route.clone())),
        }
    }

    fn encode(&self, enc: &mut LabelSetEncoder) -> fmt::Result {
        label(enc, "bind", &self.bind)?;
        label(enc, "gateway", &self.gateway)?;
        label(enc, "listener", &self.listener)?;
        label(enc, "route", self.route.as_str())?;
        // Model routes have no rules yet; the label keeps dashboards stable for when they do.
        label(enc, "route_rule", UNKNOWN)
    }
}

/// The user's custom labels; the names are shared by all series and so not compared.
#[derive(Debug, Clone)]
struct CustomLabels {
    names: Arc<[Arc<str>]>,
    values: Arc<[Arc<str>]>,
}

impl PartialEq for CustomLabels {
    fn eq(&self, other: &CustomLabels) -> bool {
        self.values == other.values
    }
}

impl Eq for CustomLabels {}

impl Hash for CustomLabels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.values.hash(state);
    }
}

impl CustomLabels {
    fn encode(&self, enc: &mut LabelSetEncoder) -> fmt::Result {
        for (name, value) in self.names.iter().zip(self.values.iter()) {
            label(enc, name, value)?;
        }
        Ok(())
    }
}

/// G: the labels every GenAI family carries.
#[derive(Debug, PartialEq, Eq, Hash)]
struct GenAiLabels {
    operation: &'static str,
    system: &'static str,
    request_model: Value,
    response_model: Value,
    route: RouteLabels,
    custom: CustomLabels,
}

impl GenAiLabels {
    fn encode(&self, enc: &mut LabelSetEncoder) -> fmt::Result {
        label(enc, "gen_ai_operation_name", self.operation)?;
        label(enc, "gen_ai_system", self.system)?;
        label(enc, "gen_ai_request_model", self.request_model.as_str())?;
        label(enc, "gen_ai_response_model", self.response_model.as_str())?;
        self.route.encode(enc)?;
        self.custom.encode(enc)
    }
}

/// The labels of `requests_total` and `request_duration_seconds`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct HttpLabels {
    backend: Value,
    protocol: &'static str,
    method: &'static str,
    status: Arc<str>,
    reason: &'static str,
    route: RouteLabels,
    custom: CustomLabels,
}

/// G: time to first token, time per output token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GenAiKey(Arc<Hashed<GenAiLabels>>);

/// `gen_ai_token_type` + G.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    token_type: &'static str,
    labels: Arc<Hashed<GenAiLabels>>,
}

/// G + `error_type` (absent on success).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct DurationKey {
    labels: Arc<Hashed<GenAiLabels>>,
    error_type: Option<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct HttpKey(Arc<Hashed<HttpLabels>>);

fn label(enc: &mut LabelSetEncoder, name: &str, value: &str) -> fmt::Result {
    (name, value).encode(enc.encode_label())
}

impl EncodeLabelSet for GenAiKey {
    fn encode(&self, enc: &mut LabelSetEncoder) -> fmt::Result {
        self.0.labels.encode(enc)
    }
}

impl EncodeLabelSet for TokenKey {
    fn encode(&self, enc: &mut LabelSetEncoder) -> fmt::Result {
        label(enc, "gen_ai_token_type", self.token_type)?;
        self.labels.labels.encode(enc)
    }
}

impl EncodeLabelSet for DurationKey {
    fn encode(&self, enc: &mut LabelSetEncoder) -> fmt::Result {
        self.labels.labels.encode(enc)?;
        match &self.error_type {
            Some(error_type) => label(enc, "error_type", error_type),
            None => Ok(()),
        }
    }
}

impl EncodeLabelSet for HttpKey {
    fn encode(&self, enc: &mut LabelSetEncoder) -> fmt::Result {
        let l = &self.0.labels;
        label(enc, "backend", l.backend.as_str())?;
        label(enc, "protocol", l.protocol)?;
        label(enc, "method", l.method)?;
        label(enc, "status", &l.status)?;
        label(enc, "reason", l.reason)?;
        l.route.encode(enc)?;
        l.custom.encode(enc)
    }
}

mod cost;
mod handles;
mod ratelimit;
#[cfg(test)]
mod tests;
