//! Metering (and, when the gateway asked for usage the caller did not, rewriting) of OpenAI and
//! Anthropic SSE response streams while they are forwarded.
//!
//! In passthrough mode [`StreamMeter::feed`] returns each upstream chunk untouched and uncopied;
//! a side parse keeps only the current partial line and event. In strip mode the meter holds the
//! bytes of the event in progress and releases each event as soon as its closing blank line
//! arrives: unchanged, without its `"usage":null` member, or not at all (the usage-only chunk).
//! The per-event meaning lives in [`events`] (OpenAI) and [`anthropic`]; this module owns the
//! byte bookkeeping. Anthropic streams are always passed through: the gateway never adds anything
//! to an Anthropic request that the caller would then have to be shielded from.

mod anthropic;
mod events;

use bytes::Bytes;

use crate::sse::{SseFrame, SseParser, MAX_EVENT_BYTES};
use crate::usage::ResponseSummary;
use crate::Operation;
use events::{EventMeter, Verdict};

/// Incremental SSE handler for a streaming response; see the module documentation.
#[derive(Debug)]
pub struct StreamMeter {
    parser: SseParser,
    events: EventMeter,
    strip: Option<Stripper>,
}

impl StreamMeter {
    /// `strip_usage` should be true only when the gateway itself added
    /// `stream_options.include_usage`; it applies to Chat Completions and legacy Completions
    /// streams (other operations, Anthropic's included, have no such option and are passed
    /// through).
    pub fn new(op: Operation, strip_usage: bool) -> Self {
        let strips =
            strip_usage && matches!(op, Operation::ChatCompletions | Operation::Completions);
        StreamMeter {
            parser: SseParser::new(),
            events: EventMeter::new(op),
            strip: strips.then(Stripper::default),
        }
    }

    /// Meters the next upstream chunk and returns the bytes to forward now. In passthrough mode
    /// that is `chunk` itself.
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        let Self {
            parser,
            events,
            strip,
        } = self;
        match strip {
            None => {
                parser.push(&chunk, |event| {
                    events.on_event(event, false);
                });
                chunk
            }
            Some(stripper) => stripper.feed(parser, events, &chunk),
        }
    }

    /// End of the upstream stream: returns any held bytes (an unterminated trailing event is
    /// forwarded as-is) and meters that event too.
    pub fn finish(&mut self) -> Bytes {
        let Self {
            parser,
            events,
            strip,
        } = self;
        parser.finish(|event| {
            events.on_event(event, false);
        });
        match strip {
            Some(stripper) => stripper.take_held(),
            None => Bytes::new(),
        }
    }

    /// Usage, model and error seen so far.
    pub fn summary(&self) -> &ResponseSummary {
        self.events.summary()
    }
}

/// Strip-mode state: the raw bytes of the event in progress.
#[derive(Debug, Default)]
struct Stripper {
    held: Vec<u8>,
    /// The event in progress grew past [`MAX_EVENT_BYTES`]: it is forwarded as it arrives,
    /// unmodified, instead of being held.
    overflowed: bool,
    /// The last block ended in `\r` at the end of a chunk, so a `\n` starting the next chunk is
    /// the rest of its line ending: it goes where the block went (`Some(true)`: dropped with it)
    /// rather than into the next block.
    split_lf: Option<bool>,
}

impl Stripper {
    fn feed(&mut self, parser: &mut SseParser, events: &mut EventMeter, chunk: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(chunk.len() + self.held.len());
        let mut cursor = 0;
        if let Some(&first) = chunk.first() {
            match self.split_lf.take() {
                Some(dropped) if first == b'\n' => {
                    cursor = 1;
                    if !dropped {
                        out.push(b'\n');
                    }
                }
                _ => {}
            }
        }
        parser.push_frames(chunk, |frame| {
            let tail = chunk.get(cursor..frame.end).unwrap_or_default();
            cursor = frame.end;
            self.frame(&mut out, events, tail, frame);
        });
        let rest = chunk.get(cursor..).unwrap_or_default();
        if self.overflowed {
            out.extend_from_slice(rest);
        } else if self.held.len() + rest.len() > MAX_EVENT_BYTES {
            out.append(&mut self.held);
            out.extend_from_slice(rest);
            self.overflowed = true;
        } else {
            self.held.extend_from_slice(rest);
        }
        Bytes::from(out)
    }

    /// One complete block: `tail` is its bytes in this chunk, after any held from earlier ones.
    fn frame(
        &mut self,
        out: &mut Vec<u8>,
        events: &mut EventMeter,
        tail: &[u8],
        frame: SseFrame<'_>,
    ) {
        let verdict = match frame.event {
            Some(event) => events.on_event(event, true),
            None => Verdict::Keep,
        };
        self.split_lf = frame.split_crlf.then_some(verdict == Verdict::Drop);
        if std::mem::take(&mut self.overflowed) {
            out.extend_from_slice(tail);
            return;
        }
        let raw: &[u8] = if self.held.is_empty() {
            tail
        } else {
            self.held.extend_from_slice(tail);
            &self.held
        };
        match &verdict {
            Verdict::Keep => out.extend_from_slice(raw),
            Verdict::Drop => {}
            Verdict::Remove(span) => match data_line_value(raw) {
                Some(data) if span.end <= data.len() => {
                    let cut = data.start + span.start..data.start + span.end;
                    out.extend_from_slice(raw.get(..cut.start).unwrap_or_default());
                    out.extend_from_slice(raw.get(cut.end..).unwrap_or_default());
                }
                // Data split over several `data:` lines: forward it unchanged rather than
                // rewrite across line breaks.
                _ => out.extend_from_slice(raw),
            },
        }
        self.held.clear();
    }

    fn take_held(&mut self) -> Bytes {
        self.overflowed = false;
        Bytes::from(std::mem::take(&mut self.held))
    }
}

/// Span of the value of the only `data` line in one raw SSE block; `None` when the block has
/// no or several `data` lines.
fn data_line_value(raw: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut found = None;
    let mut start = 0;
    while start < raw.len() {
        let end = memchr::memchr2(b'\n', b'\r', &raw[start..]).map_or(raw.len(), |k| start + k);
        let line = &raw[start..end];
        let value_at = match line.strip_prefix(b"data") {
            Some([b':', b' ', ..]) => Some(start + 6),
            Some([b':', ..]) => Some(start + 5),
            Some([]) => Some(end),
            _ => None,
        };
        if let Some(at) = value_at {
            if found.is_some() {
                return None;
            }
            found = Some(at..end);
        }
        start = end + 1;
    }
    found
}
