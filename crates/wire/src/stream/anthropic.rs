//! What each Anthropic Messages stream event means for metering. A stream is mostly
//! `content_block_*` events (one per few tokens of text or tool-call JSON) that carry nothing the
//! gateway needs, so every event is classified by its `event:` name, or, when a server omits
//! that line, by its data's `type` read as raw bytes, and all but three kinds are dropped
//! undecoded. Those three are small (`message_start`, `message_delta`, `error`), so each is
//! decoded whole with serde_json: data that is not valid JSON is ignored as a unit rather than
//! half-read, and only the fields used are typed (borrowed as raw values and decoded leniently).

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

use crate::json_scan::Members;
use crate::sse::SseEvent;
use crate::usage::{self, AnthropicUsage, ResponseSummary};

/// The events that carry something metered; everything else, including types added to the API
/// later, is `Other` and skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    MessageStart,
    MessageDelta,
    Error,
    Other,
}

impl Kind {
    fn from_name(name: &[u8]) -> Kind {
        match name {
            b"message_start" => Kind::MessageStart,
            b"message_delta" => Kind::MessageDelta,
            b"error" => Kind::Error,
            _ => Kind::Other,
        }
    }
}

/// `message_start`: `{"type":"message_start","message":{..., "model", "usage"}}`.
#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(borrow, default)]
    message: Option<StartedMessage<'a>>,
}

#[derive(Deserialize)]
struct StartedMessage<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
}

/// `message_delta`: `{"type":"message_delta","delta":{...},"usage":{...}}`.
#[derive(Deserialize)]
struct MessageDelta<'a> {
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
}

/// `error`: `{"type":"error","error":{"type":"overloaded_error","message":"..."}}`.
#[derive(Deserialize)]
struct ErrorEvent<'a> {
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// Per-stream state: the usage reported so far, kept raw until the stream ends.
#[derive(Debug, Default)]
pub(super) struct AnthropicEvents {
    usage: AnthropicUsage,
    /// False for count_tokens, whose numbers are not consumption.
    meter_usage: bool,
}

impl AnthropicEvents {
    pub(super) fn new(meter_usage: bool) -> Self {
        AnthropicEvents {
            usage: AnthropicUsage::default(),
            meter_usage,
        }
    }

    /// Meters one event into `summary`.
    pub(super) fn on_event(&mut self, summary: &mut ResponseSummary, event: SseEvent<'_>) {
        let data = event.data;
        match kind(event) {
            Kind::MessageStart => self.message_start(summary, data),
            Kind::MessageDelta => {
                if let Ok(delta) = serde_json::from_slice::<MessageDelta<'_>>(data) {
                    self.report(summary, delta.usage);
                }
            }
            Kind::Error => summary.error = Some(error_label(data)),
            Kind::Other => {}
        }
    }

    fn message_start(&mut self, summary: &mut ResponseSummary, data: &[u8]) {
        let Ok(MessageStart {
            message: Some(message),
        }) = serde_json::from_slice(data)
        else {
            return;
        };
        if summary.response_model.is_none() {
            summary.response_model = message
                .model
                .and_then(|m| usage::parse_string(m.get().as_bytes()))
                .filter(|m| !m.is_empty());
        }
        self.report(summary, message.usage);
    }

    /// Folds one `usage` report into the running usage and republishes the normalised total,
    /// so a stream cut after any event still reports everything seen up to it.
    fn report(&mut self, summary: &mut ResponseSummary, value: Option<&RawValue>) {
        if !self.meter_usage {
            return;
        }
        let Some(newer) = value.and_then(|v| AnthropicUsage::parse(v.get().as_bytes())) else {
            return;
        };
        self.usage.overwrite(newer);
        summary.usage = self.usage.normalise();
    }
}

fn kind(event: SseEvent<'_>) -> Kind {
    match event.event {
        Some(name) => Kind::from_name(name.as_bytes()),
        None => data_type(event.data).map_or(Kind::Other, |t| Kind::from_name(&t)),
    }
}

/// The data's `type` member. Anthropic writes it first and without escapes, so the common case
/// is a borrowed slice of the raw string: a delta without an `event:` line costs no allocation.
fn data_type(data: &[u8]) -> Option<Cow<'_, [u8]>> {
    let span = Members::new(data).find(|m| m.key == b"type")?.value;
    let raw = data.get(span)?;
    match raw.strip_prefix(b"\"").and_then(|r| r.strip_suffix(b"\"")) {
        Some(inner) if !inner.contains(&b'\\') => Some(Cow::Borrowed(inner)),
        _ => usage::parse_string(raw).map(|s| Cow::Owned(s.into_bytes())),
    }
}

/// An `error` event means the response failed whatever its data says, so data that does not
/// decode, or names no error type, still gets the generic stream-error label.
fn error_label(data: &[u8]) -> String {
    serde_json::from_slice::<ErrorEvent<'_>>(data)
        .ok()
        .and_then(|e| e.error)
        .and_then(|raw| usage::error_label(raw.get().as_bytes(), usage::STREAM_ERROR))
        .unwrap_or_else(|| usage::STREAM_ERROR.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(name: Option<&'a str>, data: &'a [u8]) -> SseEvent<'a> {
        SseEvent { event: name, data }
    }

    #[test]
    fn kind_from_name_or_data_type() {
        let delta = br#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"message_delta"}}"#;
        assert_eq!(kind(event(Some("content_block_delta"), delta)), Kind::Other);
        assert_eq!(kind(event(None, delta)), Kind::Other);
        assert_eq!(
            kind(event(None, br#"{"type":"message_delta","usage":{}}"#)),
            Kind::MessageDelta
        );
        assert_eq!(
            kind(event(
                None,
                br#"{"index":1, "type" : "message\u005fstart"}"#
            )),
            Kind::MessageStart
        );
        assert_eq!(kind(event(None, br#"{"type":7}"#)), Kind::Other);
        assert_eq!(kind(event(None, b"[DONE]")), Kind::Other);
        assert_eq!(kind(event(None, b"")), Kind::Other);
    }

    #[test]
    fn error_labels() {
        assert_eq!(
            error_label(br#"{"type":"error","error":{"type":"overloaded_error","message":"x"}}"#),
            "overloaded_error"
        );
        assert_eq!(
            error_label(br#"{"type":"error","error":{"type":"a b","message":"x"}}"#),
            "a_b"
        );
        assert_eq!(error_label(br#"{"type":"error"}"#), "stream_error");
        assert_eq!(error_label(b"{not json"), "stream_error");
    }

    #[test]
    fn count_tokens_records_no_usage() {
        let mut summary = ResponseSummary::default();
        let mut events = AnthropicEvents::new(false);
        let start =
            br#"{"type":"message_start","message":{"model":"m","usage":{"input_tokens":5}}}"#;
        events.on_event(&mut summary, event(Some("message_start"), start));
        assert!(summary.usage.is_empty());
        assert_eq!(summary.response_model.as_deref(), Some("m"));
    }
}
