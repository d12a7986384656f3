//! Metering of non-streaming JSON responses while they are forwarded. The gateway never buffers
//! a response, so [`JsonMeter`] is fed the body chunk by chunk: a byte state machine follows the
//! top-level object (keys, nesting, strings and escapes, across chunk boundaries), copies out only
//! the values of the few top-level keys it needs and decodes each one with serde_json once it is
//! complete. OpenAI and Anthropic bodies keep `model`, `usage` and `error` at the top level, so
//! one scanner serves both; only the decoding of `usage` differs per operation. Everything else (choices, multi-megabyte embedding arrays) is skipped in place, and
//! memory stays bounded by [`MAX_CAPTURE`] whatever the body size.

use crate::json_scan::ValueScan;
use crate::usage::{self, ResponseSummary, Usage};
use crate::Operation;

/// Largest captured value; a `usage`, `model` or `error` value is far smaller, so a bigger one
/// is not what we are looking for and is skipped.
pub const MAX_CAPTURE: usize = 64 << 10;

/// Keys longer than this are never interesting, so they are not kept.
const MAX_KEY: usize = 16;

/// The top-level keys the meter decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    Model,
    Usage,
    Error,
    Status,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the top-level value.
    Start,
    /// In the top-level object, expecting a key (or `}` when `first`).
    Key {
        first: bool,
    },
    /// Inside a key string.
    InKey {
        esc: bool,
    },
    Colon,
    ValueStart,
    Value(ValueScan),
    AfterValue,
    /// The top-level object ended, or the body is not an object we understand.
    Done,
}

/// Incremental scanner for a non-streaming JSON response body; see the module documentation.
#[derive(Debug, Clone)]
pub struct JsonMeter {
    op: Operation,
    state: State,
    key: [u8; MAX_KEY],
    key_len: usize,
    /// The key does not fit `key` (or has escapes), so it cannot be one we want.
    key_skip: bool,
    target: Option<Wanted>,
    captured: Vec<u8>,
    capture_overflow: bool,
    usage: Usage,
    model: Option<String>,
    error: Option<String>,
    status: Option<String>,
}

impl JsonMeter {
    pub fn new(op: Operation) -> Self {
        JsonMeter {
            op,
            state: State::Start,
            key: [0; MAX_KEY],
            key_len: 0,
            key_skip: false,
            target: None,
            captured: Vec::new(),
            capture_overflow: false,
            usage: Usage::default(),
            model: None,
            error: None,
            status: None,
        }
    }

    /// Feeds the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) {
        let mut i = 0;
        while i < chunk.len() {
            i = match self.state {
                State::Done => return,
                State::Value(scan) => self.value(scan, chunk, i),
                // `false`: a value starts at this byte; rescan it in the `Value` state.
                _ => i + usize::from(self.structural(chunk[i])),
            };
        }
    }

    /// What has been seen so far; usable mid-body, e.g. for a response cut short.
    pub fn summary(&self) -> ResponseSummary {
        let status_error = match self.status.as_deref() {
            Some("failed") => Some(usage::RESPONSE_FAILED),
            Some("incomplete") => Some(usage::RESPONSE_INCOMPLETE),
            _ => None,
        };
        let error = match (status_error, &self.error) {
            // An incomplete response carries no error object; its status is the label.
            (Some(usage::RESPONSE_INCOMPLETE), _) | (Some(_), None) => {
                status_error.map(str::to_owned)
            }
            (_, error) => error.clone(),
        };
        ResponseSummary {
            usage: self.usage,
            response_model: self.model.clone(),
            error,
        }
    }

    /// One byte outside a top-level value. Returns false when the byte starts a value and
    /// must be scanned again as part of it.
    fn structural(&mut self, b: u8) -> bool {
        let ws = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        self.state = match (self.state, b) {
            (s, _) if ws && !matches!(s, State::InKey { .. }) => s,
            (State::Start, b'{') => State::Key { first: true },
            (State::Key { .. }, b'"') => {
                self.key_len = 0;
                self.key_skip = false;
                State::InKey { esc: false }
            }
            (State::Key { first: true }, b'}') | (State::AfterValue, b'}') => State::Done,
            (State::InKey { esc }, b) => self.key_byte(esc, b),
            (State::Colon, b':') => State::ValueStart,
            (State::ValueStart, b',' | b'}' | b']' | b':') => State::Done,
            (State::ValueStart, b) => {
                self.target = match self.key_skip {
                    true => None,
                    false => self.key.get(..self.key_len).and_then(|k| self.wanted(k)),
                };
                self.captured.clear();
                self.capture_overflow = false;
                self.state = State::Value(ValueScan::new(b));
                return false;
            }
            (State::AfterValue, b',') => State::Key { first: false },
            _ => State::Done,
        };
        true
    }

    fn key_byte(&mut self, esc: bool, b: u8) -> State {
        if esc {
            return State::InKey { esc: false };
        }
        match b {
            b'"' => State::Colon,
            b'\\' => {
                self.key_skip = true;
                State::InKey { esc: true }
            }
            _ => {
                match self.key.get_mut(self.key_len) {
                    Some(slot) => *slot = b,
                    None => self.key_skip = true,
                }
                self.key_len += 1;
                State::InKey { esc: false }
            }
        }
    }

    /// Scans value bytes from `chunk[from..]`, capturing them if the key is wanted. Returns
    /// where structural scanning resumes.
    fn value(&mut self, mut scan: ValueScan, chunk: &[u8], from: usize) -> usize {
        let end = scan.advance(chunk, from);
        let stop = end.unwrap_or(chunk.len());
        if self.target.is_some() {
            self.capture(&chunk[from..stop]);
        }
        match end {
            Some(end) => {
                self.state = State::AfterValue;
                self.complete_value();
                end
            }
            None => {
                self.state = State::Value(scan);
                stop
            }
        }
    }

    fn capture(&mut self, bytes: &[u8]) {
        if self.capture_overflow || self.captured.len() + bytes.len() > MAX_CAPTURE {
            self.capture_overflow = true;
            self.captured = Vec::new();
        } else {
            self.captured.extend_from_slice(bytes);
        }
    }

    fn complete_value(&mut self) {
        let Some(target) = self.target.take() else {
            return;
        };
        if self.capture_overflow {
            return;
        }
        let value = self.captured.as_slice();
        match target {
            Wanted::Model => self.model = usage::parse_string(value).or(self.model.take()),
            Wanted::Usage => self.usage = usage::parse_usage(self.op, value).unwrap_or(self.usage),
            Wanted::Error => self.error = usage::error_label(value, usage::PROVIDER_ERROR),
            Wanted::Status => self.status = usage::parse_string(value),
        }
    }

    fn wanted(&self, key: &[u8]) -> Option<Wanted> {
        match key {
            b"model" => Some(Wanted::Model),
            // count_tokens answers a top-level `input_tokens` that nobody consumed; a `usage`
            // there would be no consumption either.
            b"usage" if self.op != Operation::CountTokens => Some(Wanted::Usage),
            b"error" => Some(Wanted::Error),
            b"status" if self.op == Operation::Responses => Some(Wanted::Status),
            _ => None,
        }
    }
}

/// Meters a whole JSON response body at once.
pub fn summarize_json(op: Operation, body: &[u8]) -> ResponseSummary {
    let mut meter = JsonMeter::new(op);
    meter.feed(body);
    meter.summary()
}
