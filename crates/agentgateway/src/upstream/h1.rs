//! HTTP/1.1 to a provider, spoken by the request's own task. hyper's client connection runs as
//! a separate task that the request reaches through channels: a task wake-up each way and a
//! channel hop for every body frame, about 16k instructions per proxied request (callgrind,
//! `bench/run.sh`). Here the request writes its head and body straight to the socket, reads the
//! response head from it, and the response body reads its frames from it too, so a non-streamed
//! call is one vectored write and (usually) one read.
//!
//! What an exchange does not finish is never reused: a connection goes back to the pool only
//! after a response that said keep-alive was read to its exact end with nothing after it.
//! Framing follows RFC 9112 §6.3: no body for HEAD, 1xx, 204 and 304; chunked when the last
//! transfer coding is chunked; else `content-length`; else until the peer closes.

use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::body::RequestBody;
use chunked::Chunked;

mod chunked;
#[cfg(test)]
mod tests;

/// What the connector hands over (plain TCP or rustls), seen through tokio's I/O traits.
pub(super) type Stream = TokioIo<hyper_rustls::MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>>;

/// Headers a provider answer may carry; more is not an LLM API.
const MAX_HEADERS: usize = 128;
/// Largest response head read; providers send a few KB.
const MAX_HEAD: usize = 256 << 10;
/// Bytes asked of the socket per read.
const READ_SIZE: usize = 16 << 10;

/// One HTTP/1.1 connection to a provider and the bytes read from it but not consumed yet.
pub(super) struct Conn<S = Stream> {
    /// Boxed: a TLS stream is over a kilobyte, and a connection moves between the pool and a
    /// body twice per request.
    io: Box<S>,
    buf: BytesMut,
    /// The request head being written, kept to be reused by the connection's next request.
    out: Vec<u8>,
}

/// Why an exchange failed; `unanswered` says no byte of a response had arrived.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct ExchangeError {
    #[source]
    pub source: io::Error,
    pub unanswered: bool,
}

/// How the rest of a response body is delimited.
#[derive(Debug)]
enum Framing {
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

/// A response head read, and how to read its body.
pub(super) struct Head {
    pub parts: http::response::Parts,
    framing: Option<Framing>,
    keep_alive: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(io: S) -> Conn<S> {
        Conn {
            io: Box::new(io),
            buf: BytesMut::new(),
            out: Vec::new(),
        }
    }

    /// False when the peer has closed (or sent bytes nobody asked for) since the connection
    /// went idle. Looks without waiting and, when the socket has nothing new, without a system
    /// call: the runtime remembers that the last read drained it.
    pub fn is_reusable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        let mut read = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(Waker::noop());
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut read),
            Poll::Pending
        )
    }

    /// Writes the request and reads the response head.
    pub async fn exchange(
        &mut self,
        request: &Request<RequestBody>,
        host: &HeaderValue,
    ) -> Result<Head, ExchangeError> {
        encode_head(&mut self.out, request, host);
        let pieces = request.body().pieces();
        // A body is one piece, or three around an edit: slices on the stack, not a Vec.
        let mut few = [IoSlice::new(&[]); 4];
        let mut many = Vec::new();
        let used = 1 + pieces.len();
        let slices = if used <= few.len() {
            let sources = std::iter::once(&self.out[..]).chain(pieces.map(|p| &p[..]));
            for (slot, piece) in few.iter_mut().zip(sources) {
                *slot = IoSlice::new(piece);
            }
            few.get_mut(..used).unwrap_or_default()
        } else {
            many.push(IoSlice::new(&self.out));
            many.extend(pieces.map(|piece| IoSlice::new(piece)));
            &mut many[..]
        };
        let written = write_all(&mut self.io, slices).await;
        written.map_err(|source| ExchangeError {
            source,
            unanswered: true,
        })?;
        let head_only = request.method() == Method::HEAD;
        loop {
            let head = self.read_head(head_only).await?;
            if !head.parts.status.is_informational() {
                return Ok(head);
            }
        }
    }

    async fn read_head(&mut self, head_only: bool) -> Result<Head, ExchangeError> {
        loop {
            if let Some(head) = self.parse_head(head_only)? {
                return Ok(head);
            }
            let unanswered = self.buf.is_empty();
            let fail = |source| ExchangeError { source, unanswered };
            if self.buf.len() >= MAX_HEAD {
                return Err(fail(invalid("the response head is too large")));
            }
            match poll_fn(|cx| self.poll_fill(cx)).await {
                Ok(0) => {
                    let eof = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the connection closed before a complete response head",
                    );
                    return Err(fail(eof));
                }
                Ok(_) => {}
                Err(source) => return Err(fail(source)),
            }
        }
    }

    /// A complete head at the front of the buffer, consumed; `None` until it has all arrived.
    /// The head is split off whole and parsed once; header values are slices of it, not
    /// copies (an allocation per header was ~2k instructions per request).
    fn parse_head(&mut self, head_only: bool) -> Result<Option<Head>, ExchangeError> {
        let fail = |source| ExchangeError {
            source,
            unanswered: false,
        };
        let Some(end) = crate::server::find_head_end(&self.buf, 0) else {
            return Ok(None);
        };
        let bytes = self.buf.split_to(end).freeze();
        let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .allow_obsolete_multiline_headers_in_responses(true)
            .parse_response_with_uninit_headers(&mut response, &bytes, &mut slots);
        match parsed {
            Ok(httparse::Status::Complete(length)) if length == bytes.len() => {}
            Ok(_) => return Err(fail(invalid("bad response head"))),
            Err(error) => return Err(fail(invalid(format!("bad response head: {error}")))),
        }
        let status = StatusCode::from_u16(response.code.unwrap_or(0))
            .map_err(|_| fail(invalid("bad response status")))?;
        let version = match response.version {
            Some(0) => Version::HTTP_10,
            _ => Version::HTTP_11,
        };
        let mut headers = HeaderMap::with_capacity(response.headers.len());
        for field in response.headers.iter() {
            let name = HeaderName::from_bytes(field.name.as_bytes())
                .map_err(|_| fail(invalid("bad response header name")))?;
            let value = HeaderValue::from_maybe_shared(bytes.slice_ref(field.value))
                .map_err(|_| fail(invalid("bad response header value")))?;
            headers.append(name, value);
        }
        let (framing, keep_alive) =
            framing(status, version, &headers, head_only).map_err(|source| ExchangeError {
                source,
                unanswered: false,
            })?;
        let mut parts = http::Response::new(()).into_parts().0;
        parts.status = status;
        parts.version = version;
        parts.headers = headers;
        Ok(Some(Head {
            parts,
            framing,
            keep_alive,
        }))
    }

    /// Reads what the socket has into the buffer; `Ok(0)` at end of stream.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.buf.reserve(READ_SIZE);
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf)
    }
}

/// Writes every slice, then flushes (a TLS stream may hold the last record back).
async fn write_all<S: AsyncWrite + Unpin>(
    io: &mut S,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
    while !slices.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *io).poll_write_vectored(cx, slices)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut slices, n);
    }
    poll_fn(|cx| Pin::new(&mut *io).poll_flush(cx)).await
}

/// The body framing of a response (`None`: it has no body) and whether the connection may
/// carry another request after it.
fn framing(
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
    head_only: bool,
) -> io::Result<(Option<Framing>, bool)> {
    let keep_alive = version == Version::HTTP_11 && !says_close(headers);
    let no_body = head_only
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if no_body {
        return Ok((None, keep_alive));
    }
    if let Some(codings) = headers.get(header::TRANSFER_ENCODING) {
        let last = codings.as_bytes().rsplit(|b| *b == b',').next();
        let chunked = last.is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        if chunked && headers.get_all(header::TRANSFER_ENCODING).iter().count() == 1 {
            return Ok((Some(Framing::Chunked(Chunked::default())), keep_alive));
        }
        return Ok((Some(Framing::UntilClose), false));
    }
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    match (lengths.next(), lengths.next()) {
        (Some(value), None) => {
            let length = std::str::from_utf8(value.as_bytes())
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| invalid("bad content-length in the response"))?;
            Ok((Some(Framing::Length(length)), keep_alive))
        }
        (Some(_), Some(_)) => Err(invalid("several content-length headers in the response")),
        (None, _) => Ok((Some(Framing::UntilClose), false)),
    }
}

fn says_close(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|value| {
        value
            .as_bytes()
            .split(|b| *b == b',')
            .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
    })
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// `METHOD /path HTTP/1.1`, a `host`, the request's headers, and the body's `content-length`.
fn encode_head(head: &mut Vec<u8>, request: &Request<RequestBody>, host: &HeaderValue) {
    let headers = request.headers();
    head.clear();
    head.extend_from_slice(request.method().as_str().as_bytes());
    head.push(b' ');
    let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains_key(header::HOST) {
        push_field(head, b"host", host.as_bytes());
    }
    for (name, value) in headers {
        // Framing is this module's: the body's length, never a forwarded one.
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            push_field(head, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    let length = request.body().len();
    let bodiless = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::DELETE
    );
    if length > 0 || !bodiless {
        let mut digits = itoa::Buffer::new();
        push_field(head, b"content-length", digits.format(length).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
}

fn push_field(head: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    head.extend_from_slice(name);
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// A response body being read from its connection.
pub(super) struct Reading<S = Stream> {
    /// `None` once the body has ended.
    conn: Option<Conn<S>>,
    framing: Framing,
    keep_alive: bool,
}

/// What one poll of a body gave.
pub(super) enum Polled<S = Stream> {
    /// A data frame; the flag says it was the last. The connection comes with the last frame
    /// when it can carry another request.
    Data(Bytes, bool, Option<Conn<S>>),
    /// The body ended without a frame; the connection when it can be reused.
    End(Option<Conn<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Reading<S> {
    /// The body of `head`, read from `conn`; `Err` hands the connection back at once (when it
    /// can be reused) for a response without a body.
    pub fn new(conn: Conn<S>, head: &mut Head) -> Result<Reading<S>, Option<Conn<S>>> {
        match head.framing.take() {
            None | Some(Framing::Length(0)) => Err(head.keep_alive.then_some(conn)),
            Some(framing) => Ok(Reading {
                conn: Some(conn),
                framing,
                keep_alive: head.keep_alive,
            }),
        }
    }

    /// Bytes still to come when the length is known.
    pub fn remaining(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(left) => Some(left),
            _ => None,
        }
    }

    /// The next piece of the body. After a last `Data` or an `End` the reading is over.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Polled<S>>> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Poll::Ready(Ok(Polled::End(None)));
            };
            match take_buffered(&mut self.framing, &mut conn.buf)? {
                Some(Taken::Data(data, false)) => {
                    return Poll::Ready(Ok(Polled::Data(data, false, None)))
                }
                Some(Taken::Data(data, true)) => {
                    return Poll::Ready(Ok(Polled::Data(data, true, self.finish())))
                }
                Some(Taken::End) => return Poll::Ready(Ok(Polled::End(self.finish()))),
                None => {}
            }
            let read = std::task::ready!(conn.poll_fill(cx))?;
            if read == 0 {
                self.conn = None;
                if let Framing::UntilClose = self.framing {
                    return Poll::Ready(Ok(Polled::End(None)));
                }
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the provider closed the connection before the body's end",
                )));
            }
        }
    }

    /// Ends the reading: the connection, when the response said keep-alive and nothing came
    /// after its end.
    fn finish(&mut self) -> Option<Conn<S>> {
        let conn = self.conn.take()?;
        (self.keep_alive && conn.buf.is_empty()).then_some(conn)
    }
}

/// What the buffer already holds of the body, consumed.
fn take_buffered(framing: &mut Framing, buf: &mut BytesMut) -> io::Result<Option<Taken>> {
    match framing {
        Framing::Length(left) => {
            if buf.is_empty() {
                return Ok(None);
            }
            let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
            *left -= take as u64;
            Ok(Some(Taken::Data(buf.split_to(take).freeze(), *left == 0)))
        }
        Framing::Chunked(chunked) => chunked.take(buf),
        Framing::UntilClose => {
            Ok((!buf.is_empty()).then(|| Taken::Data(buf.split().freeze(), false)))
        }
    }
}

/// A piece of body found in the buffer.
pub(super) enum Taken {
    /// Data; the flag says it was the body's last.
    Data(Bytes, bool),
    /// The body ended (the last chunk) with no data to give.
    End,
}
