//! The request body as the handler sees it: an `http_body::Body` that borrows the connection and
//! decodes `Content-Length` or chunked framing straight out of its read buffer.
//!
//! Bytes already in the buffer are handed out as they are (`split_to(..).freeze()`, no copy and
//! no system call), so a body that arrived with its head is one frame with an exact size hint
//! and `read_body` collects it in one piece. The decoder state lives in the connection ([`Io`]),
//! not in the body: when the handler is done the loop must know whether the body was read to
//! its end, since otherwise the rest of it would be taken for the next request. `100 Continue`
//! goes out on the first poll, that is only once the handler decided it wants the body.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite};

use super::io::{lock, Io};

/// A chunk-size line or a trailer line longer than this is refused (they are a few bytes).
const MAX_LINE: usize = 4096;

/// Total trailer bytes accepted (they are skipped, but must be bounded).
const MAX_TRAILERS: usize = 64 * 1024;

/// Where the decoder is in the current request's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyState {
    /// Read to its end (or there was none).
    Done,
    /// This many bytes are still to come.
    Length(u64),
    Chunked(Chunk),
    /// Malformed or cut short: the connection cannot be reused.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data are still to come.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one; bytes of them seen so far.
    Trailers(usize),
}

/// One decoding step over what is buffered.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    Data(Bytes),
    End,
    /// More bytes must be read first.
    NeedMore,
    Error(&'static str),
}

impl BodyState {
    pub(super) fn new(framing: super::head::Framing) -> BodyState {
        match framing {
            super::head::Framing::Length(0) => BodyState::Done,
            super::head::Framing::Length(n) => BodyState::Length(n),
            super::head::Framing::Chunked => BodyState::Chunked(Chunk::Size),
        }
    }

    /// Decodes the next piece of body from `buf`, consuming what it used.
    pub(super) fn step(&mut self, buf: &mut BytesMut) -> Step {
        loop {
            let chunk = match self {
                BodyState::Done => return Step::End,
                BodyState::Failed => return Step::Error("the request body is unusable"),
                BodyState::Length(0) => {
                    *self = BodyState::Done;
                    return Step::End;
                }
                BodyState::Length(remaining) => return take(remaining, buf),
                BodyState::Chunked(chunk) => chunk,
            };
            let next = match chunk {
                Chunk::Data(0) => Chunk::DataEnd,
                Chunk::Data(remaining) => return take(remaining, buf),
                Chunk::Size => match size_line(buf) {
                    Ok(Some(0)) => Chunk::Trailers(0),
                    Ok(Some(size)) => Chunk::Data(size),
                    Ok(None) => return Step::NeedMore,
                    Err(message) => return self.fail(message),
                },
                Chunk::DataEnd => match buf.get(..2) {
                    None if buf.first().is_none_or(|b| *b == b'\r') => return Step::NeedMore,
                    Some(b"\r\n") => {
                        buf.advance(2);
                        Chunk::Size
                    }
                    _ => return self.fail("chunk data not followed by CRLF"),
                },
                Chunk::Trailers(seen) => match trailer_line(buf, *seen) {
                    Ok(Some(None)) => {
                        *self = BodyState::Done;
                        return Step::End;
                    }
                    Ok(Some(Some(seen))) => Chunk::Trailers(seen),
                    Ok(None) => return Step::NeedMore,
                    Err(message) => return self.fail(message),
                },
            };
            *chunk = next;
        }
    }

    fn fail(&mut self, message: &'static str) -> Step {
        *self = BodyState::Failed;
        Step::Error(message)
    }

    /// How much more body to expect, when known (to size reads).
    pub(super) fn remaining(&self) -> Option<u64> {
        match self {
            BodyState::Length(n) | BodyState::Chunked(Chunk::Data(n)) => Some(*n),
            _ => None,
        }
    }
}

/// Up to `remaining` buffered bytes, without copying them.
fn take(remaining: &mut u64, buf: &mut BytesMut) -> Step {
    if buf.is_empty() {
        return Step::NeedMore;
    }
    let n = usize::try_from(*remaining).map_or(buf.len(), |r| r.min(buf.len()));
    *remaining -= n as u64;
    Step::Data(buf.split_to(n).freeze())
}

/// A complete line at the front of `buf`, without its CRLF, and the bytes it spans; `Ok(None)`
/// until the line is complete.
fn line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, &'static str> {
    let Some(newline) = memchr::memchr(b'\n', buf) else {
        return if buf.len() > MAX_LINE {
            Err("chunk line too long")
        } else {
            Ok(None)
        };
    };
    match buf.get(..newline).and_then(|l| l.strip_suffix(b"\r")) {
        Some(line) if newline <= MAX_LINE => Ok(Some((line, newline + 1))),
        Some(_) => Err("chunk line too long"),
        None => Err("chunk line not ended by CRLF"),
    }
}

/// Consumes a `size[;extensions]CRLF` line; `Ok(None)` until it is complete.
fn size_line(buf: &mut BytesMut) -> Result<Option<u64>, &'static str> {
    let Some((text, used)) = line(buf)? else {
        return Ok(None);
    };
    let digits = text.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let (hex, rest) = text.split_at(digits);
    // Only extensions may follow the size (after optional whitespace); they are skipped.
    let rest = rest.trim_ascii_start();
    let extension = rest.is_empty() || rest.starts_with(b";");
    if hex.is_empty() || hex.len() > 15 || !extension {
        return Err("invalid chunk size");
    }
    let size = hex.iter().fold(0u64, |n, digit| {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => digit.wrapping_sub(b'A').wrapping_add(10),
        };
        (n << 4) | u64::from(value)
    });
    buf.advance(used);
    Ok(Some(size))
}

/// Consumes one trailer line: `Some(None)` for the final empty line, `Some(Some(total))` for a
/// skipped trailer, `None` until the line is complete.
fn trailer_line(buf: &mut BytesMut, seen: usize) -> Result<Option<Option<usize>>, &'static str> {
    let Some((text, used)) = line(buf)? else {
        return Ok(None);
    };
    let empty = text.is_empty();
    buf.advance(used);
    let total = seen + used;
    if empty {
        Ok(Some(None))
    } else if total > MAX_TRAILERS {
        Err("trailers too large")
    } else {
        Ok(Some(Some(total)))
    }
}

/// Why a request body could not be read.
#[derive(Debug)]
pub struct BodyError(&'static str);

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BodyError {}

/// The body of the request being served, read from the connection it borrows.
pub(super) struct RequestBody<'a, S> {
    io: &'a Mutex<Io<S>>,
}

impl<'a, S> RequestBody<'a, S> {
    pub(super) fn new(io: &'a Mutex<Io<S>>) -> RequestBody<'a, S> {
        RequestBody { io }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Body for RequestBody<'_, S> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let mut io = lock(self.io);
        if let Err(error) = ready!(io.poll_send_continue(cx)) {
            tracing::debug!(%error, "writing 100 Continue failed");
            io.body = BodyState::Failed;
            return Poll::Ready(Some(Err(BodyError("the client connection failed"))));
        }
        loop {
            let io = &mut *io;
            match io.body.step(&mut io.buf) {
                Step::Data(data) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Step::End => return Poll::Ready(None),
                Step::Error(message) => return Poll::Ready(Some(Err(BodyError(message)))),
                Step::NeedMore => {}
            }
            let want = io.body.remaining().unwrap_or(0);
            match ready!(io.poll_fill(cx, want)) {
                Ok(n) if n > 0 => {}
                _ => {
                    io.body = BodyState::Failed;
                    let message = "the client closed the connection before the body ended";
                    return Poll::Ready(Some(Err(BodyError(message))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        lock(self.io).body == BodyState::Done
    }

    fn size_hint(&self) -> SizeHint {
        match lock(self.io).body {
            BodyState::Done => SizeHint::with_exact(0),
            BodyState::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}
