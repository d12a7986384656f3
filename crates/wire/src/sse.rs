//! Server-Sent Events framing, as specified by the WHATWG HTML standard, for every provider that
//! streams over SSE (OpenAI `data:`-only streams, Responses and Anthropic `event:` streams).
//!
//! [`SseParser`] is incremental: it accepts the stream in arbitrary chunks and keeps only the
//! current partial line and the current event's data between chunks. It handles `\n`, `\r\n` and
//! `\r` line endings (including a `\r\n` split across chunks), multi-line `data:` (joined with
//! `\n`), `event:` names, comments, `data:` with or without the space after the colon, and a
//! leading byte-order mark. `id:` and `retry:` are ignored: the gateway forwards them untouched
//! and has no use for them. `data: [DONE]` is an ordinary event whose data is `[DONE]`.
//!
//! Memory is bounded: a line or an event's data longer than [`MAX_EVENT_BYTES`] is dropped and
//! that event is not dispatched (the bytes themselves are forwarded by the caller regardless).

use memchr::memchr2;
use std::ops::Range;

/// Largest line or event data kept; a Responses `response.completed` event carries the whole
/// response, so this is generous, but it keeps a hostile upstream from growing us unbounded.
pub const MAX_EVENT_BYTES: usize = 8 << 20;

/// Buffers grown past this by one large event are released after it, not kept for the stream.
const RETAINED_CAPACITY: usize = 64 << 10;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event:` name, if the event had one (and it was UTF-8).
    pub event: Option<&'a str>,
    /// The `data:` lines joined with `\n`.
    pub data: &'a [u8],
}

/// The end of one SSE block (the blank line that ends an event, or a run of comments), reported
/// by [`SseParser::push_frames`] for callers that forward the raw bytes block by block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseFrame<'a> {
    /// Index in the current chunk just past the blank line's line ending.
    pub end: usize,
    /// The blank line ended with `\r` as the chunk's last byte: if the next chunk starts with
    /// `\n`, that byte still belongs to this block's line ending.
    pub split_crlf: bool,
    /// The event, if the block dispatched one (a block of only comments or unknown fields, or
    /// a block whose data overflowed, does not).
    pub event: Option<SseEvent<'a>>,
}

/// Where the current event's data lives: while it is a single line inside the current chunk it
/// is only a span of that chunk, so the common one-line event is never copied.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Data {
    None,
    InChunk(Range<usize>),
    Owned,
}

/// Incremental SSE parser; see the module documentation.
#[derive(Debug)]
pub struct SseParser {
    /// Partial line carried over from the previous chunk.
    line: Vec<u8>,
    line_overflow: bool,
    data: Data,
    data_buf: Vec<u8>,
    event: Option<Vec<u8>>,
    /// A line of this event was dropped, so the event must not be dispatched half-read.
    event_overflow: bool,
    pending_cr: bool,
    at_stream_start: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub fn new() -> Self {
        SseParser {
            line: Vec::new(),
            line_overflow: false,
            data: Data::None,
            data_buf: Vec::new(),
            event: None,
            event_overflow: false,
            pending_cr: false,
            at_stream_start: true,
        }
    }

    /// Feeds the next chunk and calls `on_event` for each event it completes, in order.
    pub fn push(&mut self, chunk: &[u8], mut on_event: impl FnMut(SseEvent<'_>)) {
        self.push_frames(chunk, |frame| {
            if let Some(event) = frame.event {
                on_event(event);
            }
        });
    }

    /// Like [`SseParser::push`], but reports every blank line that ends a block, with its byte
    /// position, so a caller can forward, hold or drop the raw bytes block by block.
    pub fn push_frames(&mut self, chunk: &[u8], mut on_frame: impl FnMut(SseFrame<'_>)) {
        let mut pos = self.skip_prefix(chunk);
        while pos < chunk.len() {
            let Some(k) = memchr2(b'\n', b'\r', &chunk[pos..]) else {
                self.carry(&chunk[pos..]);
                break;
            };
            let eol = pos + k;
            let mut next = eol + 1;
            if chunk[eol] == b'\r' {
                match chunk.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.pending_cr = true,
                }
            }
            if self.line.is_empty() && !self.line_overflow {
                if eol == pos {
                    self.dispatch(chunk, next, &mut on_frame);
                } else {
                    self.field(&chunk[pos..eol], Some(pos), chunk);
                }
            } else {
                self.carry(&chunk[pos..eol]);
                self.finish_carried_line();
            }
            pos = next;
        }
        self.own_data(chunk);
    }

    /// End of stream: completes a trailing line that had no line ending and dispatches an event
    /// that had no closing blank line. (Browsers discard such an event; the gateway still wants
    /// the usage it may carry.)
    pub fn finish(&mut self, mut on_event: impl FnMut(SseEvent<'_>)) {
        if !self.line.is_empty() || self.line_overflow {
            self.finish_carried_line();
        }
        self.dispatch(&[], 0, &mut |frame: SseFrame<'_>| {
            if let Some(event) = frame.event {
                on_event(event);
            }
        });
        self.pending_cr = false;
    }

    /// Drops the `\n` of a `\r\n` split across chunks, and a byte-order mark at stream start.
    fn skip_prefix(&mut self, chunk: &[u8]) -> usize {
        if chunk.is_empty() {
            return 0;
        }
        let mut pos = 0;
        if std::mem::take(&mut self.pending_cr) && chunk[0] == b'\n' {
            pos = 1;
        }
        if self.at_stream_start {
            // A BOM split across chunks is not worth handling: no provider sends one.
            self.at_stream_start = false;
            if chunk.starts_with(BOM) {
                pos = BOM.len();
            }
        }
        pos
    }

    fn carry(&mut self, bytes: &[u8]) {
        if self.line_overflow || self.line.len() + bytes.len() > MAX_EVENT_BYTES {
            self.line_overflow = true;
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    fn finish_carried_line(&mut self) {
        if std::mem::take(&mut self.line_overflow) {
            self.event_overflow = true;
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        self.field(&line, None, &[]);
        line.clear();
        if line.capacity() <= RETAINED_CAPACITY {
            self.line = line;
        }
    }

    /// Interprets one non-empty line. `at` is the line's offset in the current chunk when the
    /// line lies wholly inside it (so its data can stay borrowed).
    fn field(&mut self, line: &[u8], at: Option<usize>, chunk: &[u8]) {
        if line.is_empty() || line[0] == b':' {
            return;
        }
        let (name, value_at) = match memchr::memchr(b':', line) {
            Some(c) if line.get(c + 1) == Some(&b' ') => (&line[..c], c + 2),
            Some(c) => (&line[..c], c + 1),
            None => (line, line.len()),
        };
        let value = &line[value_at..];
        match name {
            b"data" => self.add_data(value, at.map(|a| a + value_at), chunk),
            b"event" => self.event = Some(value.to_vec()),
            _ => {}
        }
    }

    fn add_data(&mut self, value: &[u8], at: Option<usize>, chunk: &[u8]) {
        if self.event_overflow {
            return;
        }
        match std::mem::replace(&mut self.data, Data::Owned) {
            Data::None => {
                if let Some(at) = at {
                    self.data = Data::InChunk(at..at + value.len());
                    return;
                }
                self.data_buf.clear();
            }
            Data::InChunk(first) => {
                self.data_buf.clear();
                self.data_buf
                    .extend_from_slice(chunk.get(first).unwrap_or_default());
                self.data_buf.push(b'\n');
            }
            Data::Owned => self.data_buf.push(b'\n'),
        }
        if self.data_buf.len() + value.len() > MAX_EVENT_BYTES {
            self.event_overflow = true;
            self.data = Data::None;
            self.data_buf = Vec::new();
        } else {
            self.data_buf.extend_from_slice(value);
        }
    }

    fn dispatch(&mut self, chunk: &[u8], end: usize, on_frame: &mut impl FnMut(SseFrame<'_>)) {
        let data = match &self.data {
            Data::None => None,
            Data::InChunk(r) => chunk.get(r.clone()),
            Data::Owned => Some(self.data_buf.as_slice()),
        };
        let name = self
            .event
            .as_deref()
            .and_then(|n| std::str::from_utf8(n).ok());
        let event = data
            .filter(|_| !self.event_overflow)
            .map(|data| SseEvent { event: name, data });
        on_frame(SseFrame {
            end,
            split_crlf: self.pending_cr,
            event,
        });
        self.data = Data::None;
        self.data_buf.clear();
        if self.data_buf.capacity() > RETAINED_CAPACITY {
            self.data_buf = Vec::new();
        }
        self.event = None;
        self.event_overflow = false;
    }

    /// Copies borrowed data into the parser before the chunk it points into goes away.
    fn own_data(&mut self, chunk: &[u8]) {
        if let Data::InChunk(r) = &self.data {
            self.data_buf.clear();
            self.data_buf
                .extend_from_slice(chunk.get(r.clone()).unwrap_or_default());
            self.data = Data::Owned;
        }
    }
}
