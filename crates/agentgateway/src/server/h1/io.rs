//! The connection's I/O state, shared by the loop and the request body it lends to the handler:
//! the stream, the read buffer, whether the client's side has closed, where the body decoder
//! is, and a `100 Continue` still owed.
//!
//! The handler future is polled inside the connection loop while the loop also watches the
//! socket for a client that leaves, so both need the stream at once; a `Mutex` that is only ever
//! locked inside a poll (never across an await, never by two tasks) gives them that without any
//! `unsafe`, at the cost of an uncontended atomic per lock.

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::{pin, Pin};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::body::BodyState;

/// What a read asks for at least; also the buffer's initial capacity.
pub(in crate::server) const READ_SIZE: usize = 8 * 1024;

/// Largest single read when a long body is known to be coming.
const MAX_READ: usize = 64 * 1024;

/// While the handler runs, the loop reads ahead (to see a client leave) only up to this much
/// buffered data; beyond it a client pipelining a flood simply waits.
const WATCH_LIMIT: usize = 64 * 1024;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

pub(super) struct Io<S> {
    pub stream: S,
    pub buf: BytesMut,
    /// The client's side ended (EOF or a read error): nothing more will arrive.
    pub closed: bool,
    pub body: BodyState,
    /// Bytes of `100 Continue` already written, while it is owed.
    pub continue_sent: Option<usize>,
}

/// What the loop saw while watching the client.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Watch {
    /// More bytes are buffered: whoever waits for them should look again.
    Read,
    Gone,
}

/// Locks the connection's I/O. Never contended (one task), and a poisoned lock still holds
/// consistent state (no panic can happen while it is held), so poisoning is ignored.
pub(super) fn lock<S>(io: &Mutex<Io<S>>) -> MutexGuard<'_, Io<S>> {
    io.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<S> Io<S> {
    pub(super) fn new(stream: S, buf: BytesMut) -> Io<S> {
        Io {
            stream,
            buf,
            closed: false,
            body: BodyState::Done,
            continue_sent: None,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<S> {
    /// One read into the buffer; `Ok(0)` once the client's side has ended. `want` sizes the
    /// read when a long body is known to be coming.
    pub(super) fn poll_fill(&mut self, cx: &mut Context<'_>, want: u64) -> Poll<io::Result<usize>> {
        if self.closed {
            return Poll::Ready(Ok(0));
        }
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 8 {
            let want = usize::try_from(want).unwrap_or(MAX_READ);
            self.buf.reserve(want.clamp(READ_SIZE, MAX_READ));
        }
        let read = pin!(self.stream.read_buf(&mut self.buf));
        let result = ready!(read.poll(cx));
        if !matches!(result, Ok(n) if n > 0) {
            self.closed = true;
        }
        Poll::Ready(result)
    }

    /// Reads ahead while the gateway is busy with a request, to notice a client that left
    /// (EOF or an error); pipelined bytes stay in the buffer for the requests they belong to.
    pub(super) fn poll_watch(&mut self, cx: &mut Context<'_>) -> Poll<Watch> {
        if self.closed {
            return Poll::Ready(Watch::Gone);
        }
        if self.buf.len() >= WATCH_LIMIT {
            return Poll::Pending;
        }
        match ready!(self.poll_fill(cx, 0)) {
            Ok(n) if n > 0 => Poll::Ready(Watch::Read),
            _ => Poll::Ready(Watch::Gone),
        }
    }

    /// Writes `100 Continue` if it is owed and the body has not started arriving anyway.
    pub(super) fn poll_send_continue(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(mut sent) = self.continue_sent else {
            return Poll::Ready(Ok(()));
        };
        if sent == 0 && !self.buf.is_empty() {
            self.continue_sent = None;
            return Poll::Ready(Ok(()));
        }
        while let Some(rest) = CONTINUE.get(sent..).filter(|rest| !rest.is_empty()) {
            match ready!(Pin::new(&mut self.stream).poll_write(cx, rest)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => sent += n,
                Err(error) => return Poll::Ready(Err(error)),
            }
            self.continue_sent = Some(sent);
        }
        ready!(Pin::new(&mut self.stream).poll_flush(cx))?;
        self.continue_sent = None;
        Poll::Ready(Ok(()))
    }

    /// The part of `100 Continue` that a response must finish before its own head, if one was
    /// started and not finished (a final response makes the rest of it unnecessary otherwise).
    pub(super) fn take_unfinished_continue(&mut self) -> &'static [u8] {
        match self.continue_sent.take() {
            Some(sent) if sent > 0 => CONTINUE.get(sent..).unwrap_or_default(),
            _ => &[],
        }
    }

    /// Writes `parts` as one vectored write when the stream allows (repeating on short
    /// writes), then flushes.
    pub(super) fn poll_write_parts(
        &mut self,
        cx: &mut Context<'_>,
        parts: &[&[u8]],
        written: &mut usize,
    ) -> Poll<io::Result<()>> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        while *written < total {
            let mut slices = [IoSlice::new(&[]); 4];
            let count = unwritten(parts, *written, &mut slices);
            let slices = slices.get(..count).unwrap_or_default();
            match ready!(Pin::new(&mut self.stream).poll_write_vectored(cx, slices)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => *written += n,
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    pub(super) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Fills `slices` with what remains of `parts` after the first `written` bytes; returns how many
/// slices it filled.
fn unwritten<'a>(parts: &[&'a [u8]], mut written: usize, slices: &mut [IoSlice<'a>]) -> usize {
    let mut count = 0;
    let mut free = slices.iter_mut();
    for part in parts {
        if written >= part.len() {
            written -= part.len();
            continue;
        }
        let rest = part.get(written..).unwrap_or_default();
        written = 0;
        match free.next() {
            Some(slot) => *slot = IoSlice::new(rest),
            None => break,
        }
        count += 1;
    }
    count
}
