//! Metering of non-streaming JSON responses while they are forwarded. The gateway never buffers
//! a response, so [`JsonMeter`] is fed the body chunk by chunk: a resumable scanner follows the
//! top-level object (keys, nesting, strings and escapes, across chunk boundaries) and decodes the
//! values of the few top-level keys it needs once each is complete. OpenAI and Anthropic bodies
//! keep `model`, `usage` and `error` at the top level, so one scanner serves both; only the
//! decoding of `usage` differs per operation. Everything else (choices, multi-megabyte embedding
//! arrays) is skipped in place, and memory stays bounded by [`MAX_CAPTURE`] whatever the body size.
//!
//! Every response passes through here, so the scanner works in runs, not bytes: whitespace, key
//! names and skipped values are each stepped over by one search, and a wanted value that arrives
//! within one chunk (the usual case) is decoded straight from that chunk; only a value cut by a
//! chunk boundary is copied, into a buffer that is kept for the next one.

use crate::json_scan::{find_quote_or_backslash, ValueScan};
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
    /// Inside a key string; `esc` when the previous byte was a backslash.
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
    /// The start of a wanted value that an earlier chunk cut off; empty otherwise.
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
                State::InKey { esc } => self.key_run(esc, chunk, i),
                _ => self.structural(chunk, i),
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

    /// Outside a top-level value: steps over whitespace and grammar bytes, keys and values in
    /// one loop until the chunk ends or the object does. Returns where scanning resumes.
    fn structural(&mut self, chunk: &[u8], from: usize) -> usize {
        let mut at = from;
        loop {
            at = skip_ws(chunk, at);
            let Some(&b) = chunk.get(at) else {
                return chunk.len();
            };
            at += 1;
            self.state = match (self.state, b) {
                (State::Start, b'{') => State::Key { first: true },
                (State::Key { .. }, b'"') => {
                    self.key_len = 0;
                    self.key_skip = false;
                    at = self.key_run(false, chunk, at);
                    continue;
                }
                (State::Colon, b':') => State::ValueStart,
                (State::ValueStart, b) if !matches!(b, b',' | b'}' | b']' | b':') => {
                    at = self.value(ValueScan::new(b), chunk, at - 1);
                    continue;
                }
                (State::AfterValue, b',') => State::Key { first: false },
                // Mid-key or mid-value (not reached: those runs end with the chunk).
                (State::InKey { .. } | State::Value(_), _) => return at - 1,
                // The end of the object (`}` after a member or in `{}`), or a byte that does
                // not fit the grammar: nothing more to learn.
                _ => {
                    self.state = State::Done;
                    return chunk.len();
                }
            };
        }
    }

    /// Inside a key: finds its closing quote and which key it is, in one run per chunk. A key
    /// within one chunk is matched in place; only one cut by a chunk boundary is copied.
    fn key_run(&mut self, mut esc: bool, chunk: &[u8], from: usize) -> usize {
        let mut i = from;
        loop {
            if esc {
                // The escaped byte is never kept: a key with escapes is not one we want.
                if i >= chunk.len() {
                    self.state = State::InKey { esc: true };
                    return chunk.len();
                }
                i += 1;
            }
            let rest = chunk.get(i..).unwrap_or_default();
            let Some(n) = find_quote_or_backslash(rest) else {
                self.keep_key(rest);
                self.state = State::InKey { esc: false };
                return chunk.len();
            };
            let run = rest.get(..n).unwrap_or_default();
            i += n + 1;
            if rest.get(n) != Some(&b'"') {
                self.key_skip = true;
                esc = true;
                continue;
            }
            self.target = match (self.key_skip, self.key_len) {
                (true, _) => None,
                (false, 0) => self.wanted(run),
                (false, _) => {
                    self.keep_key(run);
                    let key = self.key;
                    key.get(..self.key_len).and_then(|k| self.wanted(k))
                }
            };
            self.state = State::Colon;
            return i;
        }
    }

    fn keep_key(&mut self, bytes: &[u8]) {
        if self.key_skip {
            return;
        }
        let end = self.key_len + bytes.len();
        match self.key.get_mut(self.key_len..end) {
            Some(slot) => {
                slot.copy_from_slice(bytes);
                self.key_len = end;
            }
            None => self.key_skip = true,
        }
    }

    /// Scans value bytes from `chunk[from..]`; a wanted value is decoded when it ends. Returns
    /// where structural scanning resumes.
    fn value(&mut self, mut scan: ValueScan, chunk: &[u8], from: usize) -> usize {
        if self.target == Some(Wanted::Usage) && self.captured.is_empty() && !self.capture_overflow
        {
            // The usual usage object, read while finding its end instead of after.
            let start = chunk.get(from..).unwrap_or_default();
            if let Some((usage, len)) = usage::parse_usage_prefix(self.op, start) {
                if len <= MAX_CAPTURE {
                    self.usage = usage;
                    self.target = None;
                    self.state = State::AfterValue;
                    return from + len;
                }
            }
        }
        let Some(end) = scan.advance(chunk, from) else {
            if self.target.is_some() {
                self.capture(chunk.get(from..).unwrap_or_default());
            }
            self.state = State::Value(scan);
            return chunk.len();
        };
        self.state = State::AfterValue;
        if let Some(target) = self.target.take() {
            let piece = chunk.get(from..end).unwrap_or_default();
            if self.captured.is_empty() && !self.capture_overflow {
                // Whole in this chunk: decoded in place, under the same size bound.
                if piece.len() <= MAX_CAPTURE {
                    self.decode(target, piece);
                }
            } else {
                self.capture(piece);
                let captured = std::mem::take(&mut self.captured);
                if !self.capture_overflow {
                    self.decode(target, &captured);
                }
                self.captured = captured;
                self.captured.clear();
                self.capture_overflow = false;
            }
        }
        end
    }

    fn capture(&mut self, bytes: &[u8]) {
        if self.capture_overflow || self.captured.len() + bytes.len() > MAX_CAPTURE {
            self.capture_overflow = true;
            self.captured = Vec::new();
        } else {
            self.captured.extend_from_slice(bytes);
        }
    }

    fn decode(&mut self, target: Wanted, value: &[u8]) {
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

fn skip_ws(chunk: &[u8], from: usize) -> usize {
    let rest = chunk.get(from..).unwrap_or_default();
    from + rest
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .unwrap_or(rest.len())
}

/// Meters a whole JSON response body at once.
pub fn summarize_json(op: Operation, body: &[u8]) -> ResponseSummary {
    let mut meter = JsonMeter::new(op);
    meter.feed(body);
    meter.summary()
}
