//! What each OpenAI stream event means for metering: Chat/Completions chunks and Responses
//! events are read here, one [`SseEvent`] at a time, into a [`ResponseSummary`]. Most events
//! carry nothing the gateway needs, so each one is first classified cheaply (substring search or
//! event name) and only the few that matter get their relevant members decoded. Anthropic
//! streams are handed to [`super::anthropic`], which owns their meaning.

use memchr::memmem::Finder;
use std::ops::Range;
use std::sync::LazyLock;

use super::anthropic::AnthropicEvents;
use crate::json_scan::{find_member, member_removal, Members};
use crate::sse::SseEvent;
use crate::usage::{self, ResponseSummary};
use crate::Operation;

/// What to do with an event's bytes when the gateway strips usage the caller did not ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    /// The usage-only chunk the caller would not have received.
    Drop,
    /// Delete this span of the event's data (the top-level `usage` member and one comma).
    Remove(Range<usize>),
}

/// Reads stream events into a summary.
#[derive(Debug)]
pub(crate) struct EventMeter {
    op: Operation,
    summary: ResponseSummary,
    anthropic: AnthropicEvents,
}

// Built once per process: a searcher costs more to build than most chunks cost to search.
static USAGE_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\""));
static USAGE_NULL: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"usage\":null"));
static ERROR_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"error\""));

impl EventMeter {
    pub(crate) fn new(op: Operation) -> Self {
        EventMeter {
            op,
            summary: ResponseSummary::default(),
            anthropic: AnthropicEvents::new(op == Operation::Messages),
        }
    }

    pub(crate) fn summary(&self) -> &ResponseSummary {
        &self.summary
    }

    /// Meters one event; with `strip`, also says how to rewrite it (Chat/Completions only).
    pub(crate) fn on_event(&mut self, event: SseEvent<'_>, strip: bool) -> Verdict {
        self.check_shape(event.data);
        match self.op {
            Operation::Responses => {
                self.responses_event(event);
                Verdict::Keep
            }
            op if op.is_anthropic() => {
                self.anthropic.on_event(&mut self.summary, event);
                Verdict::Keep
            }
            _ => self.chunk_event(event.data, strip),
        }
    }

    /// Every provider's event data is one JSON object (or OpenAI's `[DONE]`): anything else is a
    /// malformed event, noted as the stream's error (unless a real one came first) so the request
    /// is logged with it. Checking the two ends costs nothing and catches truncated frames
    /// without decoding the thousands of events the meter otherwise skips.
    fn check_shape(&mut self, data: &[u8]) {
        let data = data.trim_ascii();
        let object = data.first() == Some(&b'{') && data.last() == Some(&b'}');
        if !(object || data.is_empty() || data == b"[DONE]") && self.summary.error.is_none() {
            self.summary.error = Some(usage::MALFORMED_EVENT.to_owned());
        }
    }

    /// A Chat Completions (or legacy Completions) chunk.
    fn chunk_event(&mut self, data: &[u8], strip: bool) -> Verdict {
        let need_model = self.summary.response_model.is_none();
        let usage_at = USAGE_KEY.find(data);
        // With include_usage every chunk says `"usage":null`; when that is the only mention
        // and nothing is being stripped, there is nothing to read.
        let usage_hit = match usage_at {
            Some(at) if !strip && USAGE_NULL.find(data) == Some(at) => {
                USAGE_KEY.find(&data[at + 1..]).is_some()
            }
            found => found.is_some(),
        };
        let error_hit = ERROR_KEY.find(data).is_some();
        if !(need_model || usage_hit || error_hit) || data.trim_ascii() == b"[DONE]" {
            return Verdict::Keep;
        }
        let mut usage_span = None;
        let mut choices_empty = true;
        for m in Members::new(data) {
            let value = &data[m.value.clone()];
            match m.key {
                b"model" if need_model && self.summary.response_model.is_none() => {
                    // Azure's first chunk has `"model":""`: wait for a real name.
                    self.summary.response_model =
                        usage::parse_string(value).filter(|s| !s.is_empty());
                }
                b"usage" => usage_span = Some(m.value),
                b"error" if error_hit => {
                    if let Some(label) = usage::error_label(value, usage::STREAM_ERROR) {
                        self.summary.error = Some(label);
                    }
                }
                b"choices" => choices_empty = value.trim_ascii() == b"[]",
                _ => {}
            }
        }
        let Some(span) = usage_span else {
            return Verdict::Keep;
        };
        let usage_value = &data[span];
        let has_usage = usage_value != b"null";
        if has_usage {
            // Servers that report usage on every chunk send running totals: the last one wins.
            if let Some(u) = usage::parse_openai_usage(self.op, usage_value) {
                self.summary.usage = u;
            }
        }
        match strip {
            false => Verdict::Keep,
            true if has_usage && choices_empty => Verdict::Drop,
            true => member_removal(data, b"usage").map_or(Verdict::Keep, Verdict::Remove),
        }
    }

    fn responses_event(&mut self, event: SseEvent<'_>) {
        let data = event.data;
        let from_data;
        let kind = match event.event {
            Some(name) => name.as_bytes(),
            None => {
                // No `event:` line: the type is the data's first member in practice.
                let span = Members::new(data)
                    .find(|m| m.key == b"type")
                    .map(|m| m.value);
                from_data = span
                    .and_then(|s| usage::parse_string(&data[s]))
                    .unwrap_or_default();
                from_data.as_bytes()
            }
        };
        match kind {
            b"response.created" | b"response.in_progress"
                if self.summary.response_model.is_none() =>
            {
                self.response_object(data, None);
            }
            b"response.completed" => self.response_object(data, None),
            b"response.incomplete" => self.response_object(data, Some(usage::RESPONSE_INCOMPLETE)),
            b"response.failed" => self.response_object(data, Some(usage::RESPONSE_FAILED)),
            b"error" => self.summary.error = Some(stream_error_label(data)),
            _ => {}
        }
    }

    /// Reads the `response` object of a lifecycle event; `terminal_error` marks a failed or
    /// incomplete response.
    fn response_object(&mut self, data: &[u8], terminal_error: Option<&str>) {
        let Some(span) = find_member(data, b"response") else {
            return;
        };
        let response = &data[span];
        let mut error = None;
        for m in Members::new(response) {
            let value = &response[m.value.clone()];
            match m.key {
                b"model" if self.summary.response_model.is_none() => {
                    self.summary.response_model =
                        usage::parse_string(value).filter(|s| !s.is_empty());
                }
                b"usage" => {
                    if let Some(u) = usage::parse_openai_usage(self.op, value) {
                        self.summary.usage = u;
                    }
                }
                b"error" => error = usage::error_label(value, usage::RESPONSE_FAILED),
                _ => {}
            }
        }
        match terminal_error {
            Some(usage::RESPONSE_INCOMPLETE) => {
                self.summary.error = Some(usage::RESPONSE_INCOMPLETE.into())
            }
            Some(failed) => self.summary.error = Some(error.unwrap_or_else(|| failed.to_owned())),
            None => {}
        }
    }
}

/// Label for a Responses `error` event: its `code`, else a nested error's code or type.
fn stream_error_label(data: &[u8]) -> String {
    let mut label = None;
    for m in Members::new(data) {
        let value = &data[m.value.clone()];
        match m.key {
            b"code" => label = usage::scalar_label(value).or(label),
            b"error" if label.is_none() => label = usage::error_label(value, usage::STREAM_ERROR),
            _ => {}
        }
    }
    label.unwrap_or_else(|| usage::STREAM_ERROR.to_owned())
}
