//! The per-request record: one typed context that every stage of the request path fills in
//! (who called, which route, what the provider reported, how long it took, how it ended), and that
//! [`crate::telemetry`] turns into metrics and the access-log line exactly once, on every exit path.
//!
//! Keeping it a plain struct (no behaviour beyond small accessors) means metrics, logging and CEL
//! all read the same facts, so the log and the metrics can never disagree.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use agentgateway_wire::{Operation, Usage};

use crate::auth::Identity;
use crate::ratelimit::{Admission, LimitKind};

/// Label values of the listener a request arrived on, fixed at startup.
#[derive(Debug, Clone)]
pub struct ListenerInfo {
    /// `bind` label, e.g. `4000`.
    pub bind: Arc<str>,
    /// `gateway` label / log field, e.g. `bind/4000` in standalone mode.
    pub gateway: Arc<str>,
    /// `listener` label / log field, e.g. `llm`.
    pub listener: Arc<str>,
}

/// What the chosen model route contributes to labels and the log, fixed at startup.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// `route` label / log field: the model entry's name pattern, e.g. `llm/gpt-4o-mini`.
    pub route: Arc<str>,
    /// OpenTelemetry provider name (`gen_ai.provider.name` / `gen_ai_system`), e.g. `openai`.
    pub system: &'static str,
    /// `host:port` of the upstream, for the log's `endpoint`.
    pub endpoint: Arc<str>,
}

/// Why a request did not end with a complete provider response. `label` is the bounded
/// `error_type` metric label; `message` is for the log only.
#[derive(Debug, Clone)]
pub struct RequestError {
    pub label: Arc<str>,
    pub message: Option<String>,
}

impl RequestError {
    pub fn new(label: impl Into<Arc<str>>) -> Self {
        RequestError {
            label: label.into(),
            message: None,
        }
    }

    pub fn with_message(label: impl Into<Arc<str>>, message: impl Into<String>) -> Self {
        RequestError {
            label: label.into(),
            message: Some(message.into()),
        }
    }
}

/// What is known about the LLM side of a request.
#[derive(Debug, Clone, Default)]
pub struct LlmInfo {
    pub operation: Option<Operation>,
    pub request_model: Option<Arc<str>>,
    pub response_model: Option<String>,
    pub usage: Usage,
    pub streaming: bool,
    /// What the request cost, once priced from the catalog.
    pub cost: CostOutcome,
}

/// What a finished request cost.
#[derive(Debug, Clone, Default)]
pub enum CostOutcome {
    /// Nothing to price: no usage reported (refusals, failures, count_tokens).
    #[default]
    NotApplicable,
    Priced(crate::pricing::Cost),
    /// Usage, but the catalog has no price for the model: counted and logged, never $0.
    Unpriced,
}

impl CostOutcome {
    /// The total in USD, when priced.
    pub fn total(&self) -> Option<rust_decimal::Decimal> {
        match self {
            CostOutcome::Priced(cost) => Some(cost.total),
            _ => None,
        }
    }
}

/// One request, from the first byte to the end of the response body.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub start: Instant,
    pub start_time: SystemTime,
    pub request_id: String,
    pub src_addr: SocketAddr,
    pub listener: Arc<ListenerInfo>,
    pub method: http::Method,
    pub host: Option<String>,
    pub path: String,
    pub version: http::Version,
    /// Request headers, kept only when a CEL expression reads `request.headers`.
    pub headers: Option<http::HeaderMap>,
    /// HTTP status sent to the client (0 until decided).
    pub status: u16,
    pub identity: Option<Arc<Identity>>,
    pub route: Option<Arc<RouteInfo>>,
    pub llm: LlmInfo,
    /// Time from the request's start to the first response body bytes sent (streams only).
    pub ttft: Option<Duration>,
    /// Set when the record is finished.
    pub duration: Duration,
    pub error: Option<RequestError>,
    /// Short, bounded reason for how the request ended when it was not a plain success,
    /// e.g. `upstream_error`, `client_disconnected`, `unauthorized` (the `reason` label).
    pub reason: Option<&'static str>,
    /// Which rate limits were checked and how they decided (for the decisions metric).
    pub limits: LimitOutcome,
    /// What the request holds from the rate limiter until it ends (settled when finished).
    pub admission: AdmissionSlot,
}

/// The rate-limit decisions taken for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LimitOutcome {
    /// Kinds of limit that let the request through, indexed by [`LimitKind`].
    pub allowed: [bool; 4],
    /// The kind that refused it, if one did.
    pub limited: Option<LimitKind>,
}

impl LimitOutcome {
    pub fn allow(&mut self, kind: LimitKind) {
        if let Some(allowed) = self.allowed.get_mut(kind as usize) {
            *allowed = true;
        }
    }
}

/// Holds the request's [`Admission`]. A cloned record never owns it (the original settles and
/// releases it), which keeps the record cheap to clone in tests and the slot released once.
#[derive(Default)]
pub struct AdmissionSlot(pub Option<Admission>);

impl Clone for AdmissionSlot {
    fn clone(&self) -> Self {
        AdmissionSlot(None)
    }
}

impl std::fmt::Debug for AdmissionSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Admission"
        } else {
            "None"
        })
    }
}

impl RequestRecord {
    pub fn new(
        listener: Arc<ListenerInfo>,
        src_addr: SocketAddr,
        parts: &http::request::Parts,
    ) -> RequestRecord {
        RequestRecord {
            start: Instant::now(),
            start_time: SystemTime::now(),
            request_id: String::new(),
            src_addr,
            listener,
            method: parts.method.clone(),
            host: request_host(parts),
            path: parts.uri.path().to_owned(),
            version: parts.version,
            headers: None,
            status: 0,
            identity: None,
            route: None,
            llm: LlmInfo::default(),
            ttft: None,
            duration: Duration::ZERO,
            error: None,
            reason: None,
            limits: LimitOutcome::default(),
            admission: AdmissionSlot::default(),
        }
    }

    /// The `gen_ai_operation_name` value, when this was an LLM call.
    pub fn operation_name(&self) -> Option<&'static str> {
        self.llm.operation.map(Operation::otel_name)
    }

    /// The `gen_ai_system` value, when a route was chosen.
    pub fn system(&self) -> Option<&'static str> {
        self.route.as_ref().map(|r| r.system)
    }

    /// `http.version` as agentgateway writes it.
    pub fn version_str(&self) -> &'static str {
        match self.version {
            http::Version::HTTP_09 => "HTTP/0.9",
            http::Version::HTTP_10 => "HTTP/1.0",
            http::Version::HTTP_11 => "HTTP/1.1",
            http::Version::HTTP_2 => "HTTP/2.0",
            http::Version::HTTP_3 => "HTTP/3.0",
            _ => "HTTP/1.1",
        }
    }
}

/// The host the client addressed: `:authority` for HTTP/2, the Host header otherwise, without port.
fn request_host(parts: &http::request::Parts) -> Option<String> {
    let raw = parts.uri.host().or_else(|| {
        parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
    })?;
    let host = match raw.rsplit_once(':') {
        // Keep IPv6 literals intact: only strip a trailing `:port` after `]` or a plain name.
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => raw,
    };
    Some(host.to_owned())
}
