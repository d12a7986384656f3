//! The "record" step: the single place a finished [`RequestRecord`] becomes metrics and an
//! access-log line. Every exit path of the request path ends here exactly once (normal end, gateway
//! refusal, upstream failure, client disconnect), which is what keeps the log and the metrics
//! complete and in agreement.

use std::sync::Arc;

use crate::accesslog::AccessLog;
use crate::expr::Expr;
use crate::metrics::Metrics;
use crate::record::RequestRecord;

/// Value of a custom label whose expression had no value.
const UNKNOWN: &str = "unknown";

pub struct Telemetry {
    pub metrics: Metrics,
    pub log: AccessLog,
    /// `config.metrics.fields.add`, in the order of the metrics' custom label names.
    metric_fields: Vec<Expr>,
    unknown: Arc<str>,
    keep_headers: bool,
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
        }
    }

    /// Whether the proxy must keep request headers in the record (some expression reads them).
    pub fn keep_headers(&self) -> bool {
        self.keep_headers
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
