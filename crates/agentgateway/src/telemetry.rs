//! The "record" step: the single place a finished [`RequestRecord`] becomes metrics and an
//! access-log line. Every exit path of the request path ends here exactly once (normal end, gateway
//! refusal, upstream failure, client disconnect), which is what keeps the log and the metrics
//! complete and in agreement.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use crate::accesslog::AccessLog;
use crate::costing::Costing;
use crate::expr::Expr;
use crate::metrics::Metrics;
use crate::record::{RequestError, RequestRecord};

/// Value of a custom label whose expression had no value.
const UNKNOWN: &str = "unknown";
/// Value of a custom label beyond `config.metrics.maxLabelValues` distinct values.
const OTHER: &str = "other";

pub struct Telemetry {
    pub metrics: Metrics,
    pub log: AccessLog,
    /// `config.metrics.fields.add`, in the order of the metrics' custom label names.
    metric_fields: Vec<Expr>,
    /// One per metric field when `config.metrics.maxLabelValues` is set.
    bounds: Vec<LabelBound>,
    unknown: Arc<str>,
    keep_headers: bool,
    /// Set when the drain timeout aborts the remaining connections: the requests cut then were
    /// ended by the gateway, not by their clients.
    drain_aborted: AtomicBool,
    /// Pricing, the spend ledger and budgets: set once at start (the ledger lives in the
    /// database, opened there).
    costing: OnceLock<Arc<Costing>>,
}

impl Telemetry {
    /// `max_label_values`: the cardinality bound of each custom label (`None`: unbounded).
    pub fn new(
        metrics: Metrics,
        log: AccessLog,
        metric_fields: Vec<Expr>,
        max_label_values: Option<usize>,
    ) -> Telemetry {
        let keep_headers =
            log.uses_request_headers() || metric_fields.iter().any(Expr::uses_request_headers);
        let bounds = match max_label_values {
            Some(max) => metric_fields.iter().map(|_| LabelBound::new(max)).collect(),
            None => Vec::new(),
        };
        Telemetry {
            metrics,
            log,
            metric_fields,
            bounds,
            unknown: Arc::from(UNKNOWN),
            keep_headers,
            drain_aborted: AtomicBool::new(false),
            costing: OnceLock::new(),
        }
    }

    /// Installs cost tracking (once, at start).
    pub fn set_costing(&self, costing: Arc<Costing>) {
        let _ = self.costing.set(costing);
    }

    pub fn costing(&self) -> Option<&Arc<Costing>> {
        self.costing.get()
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

    /// Records a finished request: duration, cost, rate-limit true-up, metrics, log line, then
    /// the spend ledger and budgets. Pricing comes before the true-up, which charges cost limits
    /// the real cost.
    pub fn finish(&self, mut record: RequestRecord) {
        record.duration = record.start.elapsed();
        let costing = self.costing.get();
        if let Some(costing) = costing {
            costing.price(&mut record);
        }
        if let Some(mut admission) = record.admission.0.take() {
            admission.settle(crate::limits::actual_usage(&record));
            // Dropping it here gives back its parallel slots, whatever the exit path was.
        }
        let custom: Vec<Arc<str>> = self
            .metric_fields
            .iter()
            .enumerate()
            .map(|(i, expr)| match expr.eval_string(&record) {
                None => self.unknown.clone(),
                Some(value) => match self.bounds.get(i) {
                    Some(bound) => bound.admit(value),
                    None => Arc::from(value),
                },
            })
            .collect();
        self.metrics.record(&record, &custom);
        self.log.log(&record);
        if let Some(costing) = costing {
            costing.book(&record, &self.metrics);
        }
    }
}

/// Keeps one custom label to its first `max` distinct values; later values read `other`, so a
/// flood of keys or users cannot mint unbounded Prometheus series.
struct LabelBound {
    max: usize,
    seen: RwLock<HashSet<Arc<str>>>,
    other: Arc<str>,
}

impl LabelBound {
    fn new(max: usize) -> LabelBound {
        LabelBound {
            max,
            seen: RwLock::new(HashSet::new()),
            other: Arc::from(OTHER),
        }
    }

    fn admit(&self, value: String) -> Arc<str> {
        {
            let seen = self.seen.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(known) = seen.get(value.as_str()) {
                return known.clone();
            }
            if seen.len() >= self.max {
                return self.other.clone();
            }
        }
        let mut seen = self.seen.write().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= self.max && !seen.contains(value.as_str()) {
            return self.other.clone();
        }
        let value: Arc<str> = Arc::from(value);
        seen.insert(value.clone());
        value
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_bound_keeps_the_first_values_and_folds_the_rest() {
        let bound = LabelBound::new(2);
        assert_eq!(&*bound.admit("alice".into()), "alice");
        assert_eq!(&*bound.admit("bob".into()), "bob");
        assert_eq!(&*bound.admit("carol".into()), "other");
        assert_eq!(&*bound.admit("alice".into()), "alice", "known values stay");
        assert_eq!(&*bound.admit("dave".into()), "other");
    }
}
