//! The gateway's own HTTP/1.1 server connection: read a head, run `Proxy::handle` on it with a
//! body that reads from the connection, write the response, and again while the connection is
//! kept. It replaces hyper's dispatcher on the LLM port because that dispatcher's per-request
//! machinery (a header map built twice, a body channel between two tasks' worth of state, a
//! timer armed per request, keep-alive polling) was a large share of a proxied request's CPU.
//!
//! Cost rules this loop keeps: a head that is already buffered (arrived with the previous
//! read, or pipelined) is parsed without touching the timer or the socket; the slowloris timer
//! (one `Sleep` per connection) is only armed once a head wait finds nothing to read; a
//! response whose first body frame is ready goes out with its head in one write.
//!
//! While the handler runs, and while a response waits for its next frame, the loop also reads
//! from the client: EOF or an error means the client left, and dropping the handler or the
//! body then is what records `client_disconnected`. On drain (`stop`), an idle connection
//! closes at once and a busy one finishes its response with `connection: close`.
//!
//! Submodules: `head` (parsing), `body` (the request body), `io` (shared connection state),
//! `response` (framing, head encoding), `date` (the cached `date` header).

mod body;
mod date;
mod head;
mod io;
mod response;
#[cfg(test)]
mod tests;

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::future::FusedFuture;
use futures_util::FutureExt;
use http::{header, HeaderValue, Response, StatusCode, Version};
use http_body::{Body, Frame};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::metered_body::{BoxError, MeteredBody};
use crate::proxy::Proxy;
use body::{BodyState, RequestBody};
use head::{Head, HeadError, MAX_HEAD};
use io::{lock, Io, Watch};
use response::{Exchange, Out};

/// Where an HTTP/1 head ends: the upstream client frames provider answers with it too.
pub(crate) use head::find_end;
pub(super) use io::READ_SIZE;

/// A client must deliver a complete head within this long of the loop starting to wait for it.
pub(super) const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Body frames up to this size are copied next to their framing and written with one buffer;
/// larger ones go out as a vectored write. Frames ready at once are gathered up to about this
/// much before a write.
const COPY_LIMIT: usize = 16 * 1024;

/// Bounds the polite close (TLS close_notify, TCP FIN, reading away unread request bytes) of a
/// connection whose client does not cooperate.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Most unread request bytes read away before a close.
const LINGER_LIMIT: usize = 1 << 20;

/// A chunk's CRLF followed by the last chunk: what ends the final chunk of a body.
const CHUNK_END_LAST: &[u8] = b"\r\n0\r\n\r\n";

/// Serves HTTP/1 requests on `stream` until either side closes, the drain, or a head timeout.
/// `buf` holds bytes already read; `deadline` bounds the first head.
pub(super) async fn serve<S>(
    stream: S,
    buf: BytesMut,
    deadline: Instant,
    proxy: Arc<Proxy>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut conn = Conn {
        io: Mutex::new(Io::new(stream, buf)),
        proxy,
        peer,
        stop: stop.clone(),
        out: Vec::with_capacity(1024),
        timer: None,
        first_deadline: Some(deadline),
        linger: false,
    };
    let mut stop = stop;
    let stopping = async move { super::stopped(&mut stop).await }.fuse();
    let mut stopping = pin!(stopping);
    loop {
        let head = match conn.next_head(stopping.as_mut()).await {
            Ok(Some(head)) => head,
            Ok(None) => break,
            Err(error) => {
                conn.refuse(error).await;
                break;
            }
        };
        if !conn.exchange(head).await {
            break;
        }
    }
    conn.close().await;
}

struct Conn<S> {
    io: Mutex<Io<S>>,
    proxy: Arc<Proxy>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    /// Bytes waiting to be written: a response head, chunk framing, small frames.
    out: Vec<u8>,
    /// The head timer, created the first time a head wait finds nothing to read.
    timer: Option<Pin<Box<Sleep>>>,
    /// The first head's deadline counts from the accept, not from the first read.
    first_deadline: Option<Instant>,
    /// The connection closes with request bytes possibly unread (a refused head, an unread
    /// body): they are read away before the close.
    linger: bool,
}

/// How a wait for more head bytes ended.
enum Wait {
    Read,
    /// Closed, failed, timed out, or drained while idle: end the connection quietly.
    End,
}

// === impl Conn ===

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Conn<S> {
    /// The next request head: `None` when the connection should just close.
    async fn next_head<F>(&mut self, mut stopping: Pin<&mut F>) -> Result<Option<Head>, HeadError>
    where
        F: Future<Output = ()> + FusedFuture,
    {
        let mut scanned = 0;
        let mut armed = false;
        loop {
            if let Some(head) = self.buffered_head(&mut scanned)? {
                self.first_deadline = None;
                return Ok(Some(head));
            }
            let wait = poll_fn(|cx| {
                let io = &mut *lock(&self.io);
                match io.poll_fill(cx, 0) {
                    Poll::Ready(Ok(n)) if n > 0 => return Poll::Ready(Wait::Read),
                    Poll::Ready(Ok(_)) => return Poll::Ready(Wait::End),
                    Poll::Ready(Err(error)) => {
                        tracing::debug!(peer = %self.peer, %error, "reading a request head failed");
                        return Poll::Ready(Wait::End);
                    }
                    Poll::Pending => {}
                }
                let idle = io.buf.is_empty();
                if idle && (stopping.is_terminated() || stopping.as_mut().poll(cx).is_ready()) {
                    return Poll::Ready(Wait::End);
                }
                if !armed {
                    armed = true;
                    let deadline = self.first_deadline.take();
                    let deadline = deadline.unwrap_or_else(|| Instant::now() + HEAD_TIMEOUT);
                    match self.timer.as_mut() {
                        Some(timer) => timer.as_mut().reset(deadline),
                        None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                match self.timer.as_mut().map(|t| t.as_mut().poll(cx)) {
                    Some(Poll::Ready(())) => {
                        tracing::debug!(peer = %self.peer, "no complete request head in time");
                        Poll::Ready(Wait::End)
                    }
                    _ => Poll::Pending,
                }
            })
            .await;
            if let Wait::End = wait {
                return Ok(None);
            }
        }
    }

    /// A head complete in the buffer, parsed; the scan for its end resumes at `scanned`.
    fn buffered_head(&mut self, scanned: &mut usize) -> Result<Option<Head>, HeadError> {
        let io = &mut *lock(&self.io);
        let empty_lines = head::leading_empty_lines(&io.buf);
        if empty_lines > 0 {
            bytes::Buf::advance(&mut io.buf, empty_lines);
        }
        let Some(end) = head::find_end(&io.buf, *scanned) else {
            if io.buf.len() > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            *scanned = head::resume_at(io.buf.len());
            return Ok(None);
        };
        if end > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let bytes = io.buf.split_to(end).freeze();
        head::parse(&bytes).map(Some)
    }

    /// Runs one request through the handler and writes its response; false when the
    /// connection must not serve another.
    async fn exchange(&mut self, head: Head) -> bool {
        let Head {
            parts,
            framing,
            keep_alive,
            expect_continue,
        } = head;
        let exchange = Exchange::new(&parts.method, parts.version);
        {
            let mut io = lock(&self.io);
            io.body = BodyState::new(framing);
            let owed = expect_continue && io.body != BodyState::Done;
            io.continue_sent = owed.then_some(0);
        }
        let request = http::Request::from_parts(parts, RequestBody::new(&self.io));
        let Some(response) = self.run_handler(request).await else {
            return false;
        };
        self.respond(exchange, keep_alive, response).await
    }

    /// The handler's response, or `None` when the client left first (the handler is dropped
    /// then, which records the request as cut short).
    async fn run_handler(
        &self,
        request: http::Request<RequestBody<'_, S>>,
    ) -> Option<Response<MeteredBody>> {
        let mut handler = pin!(self.proxy.clone().handle(request, self.peer));
        poll_fn(|cx| loop {
            if let Poll::Ready(Ok(response)) = handler.as_mut().poll(cx) {
                return Poll::Ready(Some(response));
            }
            let watch = lock(&self.io).poll_watch(cx);
            match ready!(watch) {
                Watch::Read => continue,
                Watch::Gone => return Poll::Ready(None),
            }
        })
        .await
    }

    /// Writes the response; true when the connection can serve another request.
    async fn respond(
        &mut self,
        exchange: Exchange,
        client_keeps: bool,
        response: Response<MeteredBody>,
    ) -> bool {
        let (parts, body) = response.into_parts();
        let mut body = pin!(body);
        let framing = response::framing(exchange, parts.status, &parts.headers, &body.size_hint());
        let (body_read, unfinished) = {
            let mut io = lock(&self.io);
            (io.body == BodyState::Done, io.take_unfinished_continue())
        };
        let keep_alive =
            client_keeps && body_read && framing != Out::UntilClose && !self.stopping();
        self.linger = !body_read;
        self.out.clear();
        self.out.extend_from_slice(unfinished);
        response::encode_head(&mut self.out, exchange, &parts, framing, keep_alive);
        drop(parts);
        self.send_body(body.as_mut(), framing).await && keep_alive
    }

    /// Streams the body after the head waiting in `out`; true when it was sent whole and its
    /// framing ended cleanly. Frames that are ready at once (the first one after the head, the
    /// end of a body after its last data) share a write; a frame is never held back waiting.
    async fn send_body(&mut self, mut body: Pin<&mut MeteredBody>, mut framing: Out) -> bool {
        let mut whole = true;
        let mut next = poll_now(body.as_mut()).await;
        loop {
            let frame = match next {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    if !self.write(&[], &[]).await {
                        return false;
                    }
                    match self.next_frame(body.as_mut()).await {
                        Some(frame) => frame,
                        None => return false,
                    }
                }
            };
            let end = frame.is_none() || body.is_end_stream();
            let data = match frame {
                None => Bytes::new(),
                Some(Ok(frame)) => frame.into_data().unwrap_or_default(),
                Some(Err(error)) => {
                    // The record already says why; the client learns it from the cut framing.
                    tracing::debug!(peer = %self.peer, %error, "response body failed");
                    self.write(&[], &[]).await;
                    return false;
                }
            };
            let (large, suffix, intact) = self.frame(&mut framing, &data, end);
            whole &= intact;
            let due = end || !large.is_empty() || self.out.len() >= COPY_LIMIT;
            if due && !self.write(large, suffix).await {
                return false;
            }
            if end {
                return whole;
            }
            next = poll_now(body.as_mut()).await;
        }
    }

    /// Waits for the body's next frame while watching the client; `None` when it left.
    async fn next_frame(
        &self,
        mut body: Pin<&mut MeteredBody>,
    ) -> Option<Option<Result<Frame<Bytes>, BoxError>>> {
        poll_fn(|cx| loop {
            if let Poll::Ready(frame) = body.as_mut().poll_frame(cx) {
                return Poll::Ready(Some(frame));
            }
            let watch = lock(&self.io).poll_watch(cx);
            match ready!(watch) {
                Watch::Read => continue,
                Watch::Gone => return Poll::Ready(None),
            }
        })
        .await
    }

    /// Frames `data` (and the body's end when `end`) after what waits in `out`. A small frame
    /// is copied into `out` whole; a large one is returned with the bytes that must follow it,
    /// to be written next without a copy. The flag is false once the framing cannot end
    /// cleanly (more or fewer bytes than a declared length, or a close-delimited body).
    fn frame<'d>(
        &mut self,
        framing: &mut Out,
        data: &'d [u8],
        end: bool,
    ) -> (&'d [u8], &'static [u8], bool) {
        let (data, suffix, intact): (&[u8], &'static [u8], bool) = match framing {
            Out::Empty => (&[], &[], true),
            Out::UntilClose => (data, &[], false),
            Out::Length(remaining) => {
                let n = usize::try_from(*remaining).map_or(data.len(), |r| r.min(data.len()));
                *remaining -= n as u64;
                let fits = n == data.len() && (!end || *remaining == 0);
                (data.get(..n).unwrap_or_default(), &[], fits)
            }
            Out::Chunked if data.is_empty() => {
                let suffix = if end { response::LAST_CHUNK } else { &[] };
                (&[], suffix, true)
            }
            Out::Chunked => {
                response::chunk_start(&mut self.out, data.len());
                let suffix = if end {
                    CHUNK_END_LAST
                } else {
                    response::CHUNK_END
                };
                (data, suffix, true)
            }
        };
        if data.len() > COPY_LIMIT {
            return (data, suffix, intact);
        }
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(suffix);
        (&[], &[], intact)
    }

    /// Writes `out`, then `data` and `suffix`, in one vectored write and flushes; false when the
    /// client is gone.
    async fn write(&mut self, data: &[u8], suffix: &[u8]) -> bool {
        let parts: [&[u8]; 3] = [&self.out, data, suffix];
        if parts.iter().all(|p| p.is_empty()) {
            return true;
        }
        let mut written = 0;
        let io = &self.io;
        let result = poll_fn(|cx| lock(io).poll_write_parts(cx, &parts, &mut written)).await;
        self.out.clear();
        if let Err(error) = &result {
            tracing::debug!(peer = %self.peer, %error, "writing a response failed");
        }
        result.is_ok()
    }

    /// Answers a head that never reaches the handler (400 or 431), then the connection closes.
    async fn refuse(&mut self, error: HeadError) {
        let (status, message, code) = match error {
            HeadError::TooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "The request head is larger than 64 KiB.",
                Some("request_header_fields_too_large"),
            ),
            HeadError::Malformed(message) => (StatusCode::BAD_REQUEST, message, None),
        };
        tracing::debug!(peer = %self.peer, %status, message, "request head refused");
        self.linger = true;
        let body = serde_json::json!({"error": {
            "message": message, "type": "invalid_request_error", "param": null, "code": code
        }})
        .to_string();
        let mut response = Response::new(());
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let (parts, ()) = response.into_parts();
        let exchange = Exchange::new(&http::Method::GET, Version::HTTP_11);
        self.out.clear();
        let framing = Out::Length(body.len() as u64);
        response::encode_head(&mut self.out, exchange, &parts, framing, false);
        self.out.extend_from_slice(body.as_bytes());
        self.write(&[], &[]).await;
    }

    /// True once the gateway drains.
    fn stopping(&self) -> bool {
        self.stop.has_changed().unwrap_or(true) && *self.stop.borrow()
    }

    /// Ends the connection politely (TLS close_notify, TCP FIN) unless the client is gone.
    async fn close(self) {
        let linger = self.linger;
        let mut io = self.io.into_inner().unwrap_or_else(PoisonError::into_inner);
        if io.closed {
            return;
        }
        let polite = async {
            let _ = poll_fn(|cx| io.poll_shutdown(cx)).await;
            // Closing a socket with unread bytes in it sends a reset, which can destroy the
            // response still on its way to the client: read them away first.
            let mut drained = 0;
            while linger && drained < LINGER_LIMIT {
                io.buf.clear();
                match poll_fn(|cx| io.poll_fill(cx, 0)).await {
                    Ok(n) if n > 0 => drained += n,
                    _ => break,
                }
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, polite).await;
    }
}

/// Polls the body once: a frame if one is ready now.
async fn poll_now(mut body: Pin<&mut MeteredBody>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
    poll_fn(|cx| Poll::Ready(body.as_mut().poll_frame(cx))).await
}
