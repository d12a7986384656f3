//! The response body the client receives: it forwards each upstream frame as soon as it arrives
//! (never buffering the response), lets the wire-format meter read usage from the bytes on their
//! way through (rewriting only when the gateway itself asked for stream usage), and finishes the
//! request record exactly once — when the body ends, when the upstream fails mid-body, or when the
//! client goes away and the body is dropped. The record moves into the body so the log line and the
//! metrics describe the response as it really ended, not as it started.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use crate::upstream::UpstreamBody;
use agentgateway_wire::{JsonMeter, Operation, ResponseSummary, StreamMeter};
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::record::{RequestError, RequestRecord};
use crate::telemetry::Telemetry;
use crate::translation::StreamTranslation;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

enum Source {
    /// A body the gateway wrote itself (errors, model lists): complete in memory.
    Full(Option<Bytes>),
    Upstream(UpstreamBody),
}

/// Which usage reader sees the bytes.
pub enum Meter {
    None,
    Json(JsonMeter),
    Stream(StreamMeter),
    /// A provider stream in another API's format: metered as the provider's, then translated
    /// for the caller event by event.
    Translated(StreamMeter, Box<StreamTranslation>),
}

impl Meter {
    /// Chooses the reader from the upstream response's content type.
    pub fn for_response(op: Operation, content_type: Option<&[u8]>, strip_usage: bool) -> Meter {
        match content_type {
            Some(ct) if starts_with_ignore_case(ct, b"text/event-stream") => {
                Meter::Stream(StreamMeter::new(op, strip_usage))
            }
            Some(ct) if starts_with_ignore_case(ct, b"application/json") => {
                Meter::Json(JsonMeter::new(op))
            }
            _ => Meter::None,
        }
    }

    fn feed(&mut self, chunk: Bytes) -> Bytes {
        match self {
            Meter::None => chunk,
            Meter::Json(meter) => {
                meter.feed(&chunk);
                chunk
            }
            Meter::Stream(meter) => meter.feed(chunk),
            Meter::Translated(meter, translation) => translation.feed(&meter.feed(chunk)),
        }
    }

    fn finish(&mut self) -> Bytes {
        match self {
            Meter::Stream(meter) => meter.finish(),
            Meter::Translated(meter, translation) => {
                let tail = translation.feed(&meter.finish());
                join(tail, translation.finish())
            }
            _ => Bytes::new(),
        }
    }

    fn summary(&self) -> Option<ResponseSummary> {
        match self {
            Meter::None => None,
            Meter::Json(meter) => Some(meter.summary()),
            Meter::Stream(meter) | Meter::Translated(meter, _) => Some(meter.summary().clone()),
        }
    }

    fn is_stream(&self) -> bool {
        matches!(self, Meter::Stream(_) | Meter::Translated(..))
    }
}

/// Concatenates two chunks, copying only when both are non-empty (a rare end-of-body case).
fn join(first: Bytes, second: Bytes) -> Bytes {
    match (first.is_empty(), second.is_empty()) {
        (_, true) => first,
        (true, false) => second,
        (false, false) => [first, second].concat().into(),
    }
}

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack.len() >= prefix.len() && haystack[..prefix.len()].eq_ignore_ascii_case(prefix)
}

pub struct MeteredBody {
    source: Source,
    meter: Meter,
    /// Some until the record is finished; taken exactly once.
    record: Option<Box<RequestRecord>>,
    telemetry: Arc<Telemetry>,
    /// The meter may change the byte count, so the upstream's size hint would be a lie.
    rewrites: bool,
    /// Longest silence allowed between upstream frames, and its timer once one was needed.
    idle: Option<(Duration, Option<Pin<Box<Sleep>>>)>,
}

impl MeteredBody {
    /// A body the gateway answers with itself.
    pub fn full(bytes: Bytes, record: RequestRecord, telemetry: Arc<Telemetry>) -> MeteredBody {
        MeteredBody {
            source: Source::Full(Some(bytes)),
            meter: Meter::None,
            record: Some(Box::new(record)),
            telemetry,
            rewrites: false,
            idle: None,
        }
    }

    /// The provider's response body, metered on the way through.
    pub fn upstream(
        body: UpstreamBody,
        meter: Meter,
        rewrites: bool,
        record: RequestRecord,
        telemetry: Arc<Telemetry>,
    ) -> MeteredBody {
        MeteredBody {
            source: Source::Upstream(body),
            meter,
            record: Some(Box::new(record)),
            telemetry,
            rewrites,
            idle: None,
        }
    }

    /// Fails the body (504-style, `upstream_timeout`) when the upstream sends nothing for
    /// `limit`: a stalled stream must not hold the client, a connection and the drain forever.
    pub fn with_idle_timeout(mut self, limit: Duration) -> MeteredBody {
        self.idle = Some((limit, None));
        self
    }

    /// Polls the upstream body, applying the idle timeout.
    fn poll_upstream(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Source::Upstream(body) = &mut self.source else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(frame) => {
                // A body that was never kept waiting never needs a timer: a non-streamed answer
                // usually arrives with its head, and arming one would cost two timer-wheel
                // updates per request.
                if let Some((limit, Some(timer))) = self.idle.as_mut() {
                    timer.as_mut().reset(Instant::now() + *limit);
                }
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let Some((limit, timer)) = self.idle.as_mut() else {
                    return Poll::Pending;
                };
                let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(*limit)));
                ready!(timer.as_mut().poll(cx));
                let message = format!("no data from the upstream for {} ms", limit.as_millis());
                let error = std::io::Error::new(std::io::ErrorKind::TimedOut, message);
                Poll::Ready(Some(Err(Box::new(error))))
            }
        }
    }

    /// Finishes the record with what the meter saw; `failure` describes an abnormal end.
    fn finish(&mut self, failure: Option<(&'static str, RequestError)>) {
        let Some(mut record) = self.record.take() else {
            return;
        };
        if let Some(summary) = self.meter.summary() {
            apply_summary(&mut record, summary);
        }
        if let Some((reason, error)) = failure {
            record.reason = Some(reason);
            record.error.get_or_insert(error);
        }
        self.telemetry.finish(*record);
    }

    /// True when the upstream body has delivered everything it will.
    fn source_ended(&self) -> bool {
        match &self.source {
            Source::Full(bytes) => bytes.is_none(),
            Source::Upstream(body) => body.is_end_stream(),
        }
    }

    fn note_first_bytes(&mut self) {
        if let Some(record) = self.record.as_mut() {
            if record.ttft.is_none() && self.meter.is_stream() {
                record.ttft = Some(record.start.elapsed());
            }
        }
    }
}

/// Usage, response model and a provider-reported error from the meter into the record.
pub(crate) fn apply_summary(record: &mut RequestRecord, summary: ResponseSummary) {
    record.llm.usage = summary.usage;
    if summary.response_model.is_some() {
        record.llm.response_model = summary.response_model;
    }
    if let Some(code) = summary.error {
        let label = bounded_label(&code);
        let reason = if record.status >= 400 {
            "upstream_error"
        } else {
            "stream_error"
        };
        record.reason.get_or_insert(reason);
        match record.error.as_mut() {
            Some(error) => error.label = label.into(),
            None => record.error = Some(RequestError::new(label)),
        }
    }
}

/// Provider error codes become a label: keep them short and plain, or `_OTHER`.
pub fn bounded_label(code: &str) -> String {
    let plain = !code.is_empty()
        && code.len() <= 48
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        code.to_ascii_lowercase()
    } else {
        "_OTHER".to_owned()
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let next = match &mut this.source {
                Source::Full(bytes) => bytes.take().map(|b| Ok(Frame::data(b))),
                Source::Upstream(_) => ready!(this.poll_upstream(cx)),
            };
            match next {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        let mut out = this.meter.feed(data);
                        let ended = this.source_ended();
                        if ended {
                            out = join(out, this.meter.finish());
                        }
                        if !out.is_empty() {
                            this.note_first_bytes();
                        }
                        if ended {
                            // hyper stops polling once a sized body is complete: finish now.
                            this.finish(None);
                        }
                        if out.is_empty() {
                            continue; // everything held back until its event completes
                        }
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                    Err(other) => return Poll::Ready(Some(Ok(other))),
                },
                Some(Err(error)) => {
                    let failure = match error.downcast_ref::<std::io::Error>() {
                        Some(io) if io.kind() == std::io::ErrorKind::TimedOut => (
                            "upstream_timeout",
                            RequestError::with_message("upstream_timeout", io.to_string()),
                        ),
                        _ => (
                            "upstream_stream_error",
                            RequestError::with_message("upstream_body", error.to_string()),
                        ),
                    };
                    this.finish(Some(failure));
                    return Poll::Ready(Some(Err(error)));
                }
                None => {
                    let tail = this.meter.finish();
                    if !tail.is_empty() {
                        this.note_first_bytes();
                    }
                    this.finish(None);
                    return Poll::Ready((!tail.is_empty()).then(|| Ok(Frame::data(tail))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.record.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Source::Full(None) => SizeHint::with_exact(0),
            Source::Upstream(body) if !self.rewrites => body.size_hint(),
            Source::Upstream(_) => SizeHint::default(),
        }
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        if self.record.is_none() {
            return;
        }
        // A gateway-written body is complete in memory, and a fully read upstream body is complete:
        // dropping either is not a disconnect.
        if matches!(self.source, Source::Full(_)) || self.source_ended() {
            self.finish(None);
        } else {
            let (reason, message) = self.telemetry.cut_short();
            self.finish(Some((reason, RequestError::with_message(reason, message))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded() {
        assert_eq!(bounded_label("rate_limit_exceeded"), "rate_limit_exceeded");
        assert_eq!(bounded_label("Server_Error"), "server_error");
        assert_eq!(bounded_label("has space"), "_OTHER");
        assert_eq!(bounded_label(&"x".repeat(100)), "_OTHER");
        assert_eq!(bounded_label(""), "_OTHER");
    }
}
