//! The "record" step: the single place a finished [`RequestRecord`] becomes metrics and an
//! access-log line. Every exit path of the request path ends here exactly once (normal end, gateway
//! refusal, upstream failure, client disconnect), which is what keeps the log and the metrics
//! complete and in agreement.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::accesslog::AccessLog;
use crate::expr::Expr;
use crate::metrics::Metrics;
use crate::record::{RequestError, RequestRecord};

/// Value of a custom label whose expression had no value.
const UNKNOWN: &str = "unknown";

pub struct Telemetry {
    pub metrics: Metrics,
    pub log: AccessLog,
    /// `config.metrics.fields.add`, in the order of the metrics' custom label names.
    metric_fields: Vec<Expr>,
    unknown: Arc<str>,
    keep_headers: bool,
    /// Set when the drain timeout aborts the remaining connections: the requests cut then were
    /// ended by the gateway, not by their clients.
    drain_aborted: AtomicBool,
}

impl Telemetry {
    pub fn new(metrics: Metrics, log: AccessLog, metric_fields: Vec<Expr>) -> Telemetry {
        let keep_headers =
            log.uses_request_headers() || metric_fields.iter().any(Expr::uses_request_headers);
        Telemetry {
            metrics,
            log,
            metric_fields,
            unknown: Arc::from(UNKNOWN),
            keep_headers,
            drain_aborted: AtomicBool::new(false),
        }
    }

    /// Whether the proxy must keep request headers in the record (some expression reads them).
    pub fn keep_headers(&self) -> bool {
        self.keep_headers
    }

    /// Called just before the drain timeout aborts the remaining connections.
    pub fn mark_drain_aborted(&self) {
        self.drain_aborted.store(true, Ordering::Release);
    }

    /// Why a response was dropped unfinished: the drain timeout, or the client leaving.
    pub fn cut_short(&self) -> (&'static str, &'static str) {
        if self.drain_aborted.load(Ordering::Acquire) {
            (
                "drain_timeout",
                "the drain timeout ended the request at shutdown",
            )
        } else {
            (
                "client_disconnected",
                "client went away before the response ended",
            )
        }
    }

    /// Records a finished request: duration, metrics, log line.
    pub fn finish(&self, mut record: RequestRecord) {
        record.duration = record.start.elapsed();
        let custom: Vec<Arc<str>> = self
            .metric_fields
            .iter()
            .map(|expr| {
                expr.eval_string(&record)
                    .map(Arc::from)
                    .unwrap_or_else(|| self.unknown.clone())
            })
            .collect();
        self.metrics.record(&record, &custom);
        self.log.log(&record);
    }
}

/// A record that has not yet been handed to a response body. If the handler future is dropped
/// first — the client went away, or the drain timeout aborted the connection, while the upstream
/// had not answered — the guard still finishes the record, so that request is logged and counted.
pub struct PendingRecord<'a> {
    record: Option<RequestRecord>,
    telemetry: &'a Telemetry,
}

/// nginx's "client closed request": the client left before a response status existed.
const CLIENT_CLOSED_REQUEST: u16 = 499;

impl<'a> PendingRecord<'a> {
    pub fn new(record: RequestRecord, telemetry: &'a Telemetry) -> PendingRecord<'a> {
        PendingRecord {
            record: Some(record),
            telemetry,
        }
    }

    pub fn get_mut(&mut self) -> &mut RequestRecord {
        // Some until `into_inner`, which consumes the guard.
        self.record
            .get_or_insert_with(|| unreachable!("record taken"))
    }

    /// Hands the record on (to a response body, which finishes it from then on).
    pub fn into_inner(mut self) -> RequestRecord {
        self.record
            .take()
            .unwrap_or_else(|| unreachable!("record taken"))
    }
}

impl Drop for PendingRecord<'_> {
    fn drop(&mut self) {
        if let Some(mut record) = self.record.take() {
            if record.status == 0 {
                record.status = CLIENT_CLOSED_REQUEST;
            }
            let (reason, message) = self.telemetry.cut_short();
            record.reason = Some(reason);
            record
                .error
                .get_or_insert_with(|| RequestError::with_message(reason, message));
            self.telemetry.finish(record);
        }
    }
}
