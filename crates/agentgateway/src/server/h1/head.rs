//! Request heads: finding where a head ends in the connection's buffer, and turning its bytes
//! into `http::request::Parts` plus what the connection loop needs to know (how the body is
//! delimited, whether the client keeps the connection, whether it waits for `100 Continue`).
//!
//! The end is found with a linear scan that resumes where the previous attempt stopped, and
//! `httparse` runs once, on a complete head: re-parsing a head that trickles in byte by byte
//! from the start each time would cost quadratic time, a cheap attack. Header values and the
//! target are slices of the frozen head (no copy per header). The framing rules are strict,
//! because a gateway that reads a body differently from the next hop invites request smuggling.

use std::mem::MaybeUninit;

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Uri, Version};

/// Largest request head accepted (431 beyond).
pub(super) const MAX_HEAD: usize = 64 * 1024;

/// Most header lines in one request.
const MAX_HEADERS: usize = 100;

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub(super) struct Head {
    pub parts: http::request::Parts,
    pub framing: Framing,
    /// The client allows the connection to stay open after this exchange.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending its body.
    pub expect_continue: bool,
}

/// Why a head was refused before any handler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HeadError {
    /// 431: the head is over [`MAX_HEAD`].
    TooLarge,
    /// 400, with what is wrong.
    Malformed(&'static str),
}

/// The index just past the head's empty line, searching for it from `from` (a resume point the
/// caller keeps between reads). The buffer must not start with empty lines (see
/// [`leading_empty_lines`]).
pub(crate) fn find_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let newline = at + memchr::memchr(b'\n', buf.get(at..)?)?;
        match (buf.get(newline + 1), buf.get(newline + 2)) {
            (Some(b'\n'), _) => return Some(newline + 2),
            (Some(b'\r'), Some(b'\n')) => return Some(newline + 3),
            _ => at = newline + 1,
        }
    }
}

/// Where to resume [`find_end`] once more bytes arrive after a scan of `len` bytes found none:
/// an end can straddle the old boundary by at most two bytes.
pub(super) fn resume_at(len: usize) -> usize {
    len.saturating_sub(2)
}

/// How many empty-line bytes precede the request line (RFC 9112 §2.2 lets a server ignore them;
/// some clients send a stray CRLF after a body).
pub(super) fn leading_empty_lines(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count()
}

/// Parses a complete head (exactly the bytes up to and including its empty line).
pub(super) fn parse(head: &Bytes) -> Result<Head, HeadError> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let status = request
        .parse_with_uninit_headers(head, &mut slots)
        .map_err(|error| HeadError::Malformed(parse_error(error)))?;
    if status != httparse::Status::Complete(head.len()) {
        return Err(HeadError::Malformed("malformed request head"));
    }
    let method = request
        .method
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .ok_or(HeadError::Malformed("invalid method"))?;
    let uri = target(head, request.path.unwrap_or_default())?;
    let version = match request.version {
        Some(0) => Version::HTTP_10,
        Some(1) => Version::HTTP_11,
        _ => return Err(HeadError::Malformed("unsupported HTTP version")),
    };
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    let mut facts = Facts::default();
    for line in request.headers.iter() {
        let name = HeaderName::from_bytes(line.name.as_bytes())
            .map_err(|_| HeadError::Malformed("invalid header name"))?;
        let value = HeaderValue::from_maybe_shared(head.slice_ref(line.value))
            .map_err(|_| HeadError::Malformed("invalid header value"))?;
        facts.note(&name, line.value)?;
        headers.append(name, value);
    }
    let mut parts = http::Request::new(()).into_parts().0;
    parts.method = method;
    parts.uri = uri;
    parts.version = version;
    parts.headers = headers;
    facts.into_head(parts)
}

fn parse_error(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::TooManyHeaders => "too many header lines",
        httparse::Error::Version => "unsupported HTTP version",
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        _ => "malformed request head",
    }
}

/// The request target: origin-form (`/path?query`) or absolute-form (`http://host/path`);
/// `*` and authority-form mean nothing to an LLM API.
fn target(head: &Bytes, path: &str) -> Result<Uri, HeadError> {
    let refused = HeadError::Malformed("invalid request target");
    let uri = Uri::from_maybe_shared(head.slice_ref(path.as_bytes())).map_err(|_| refused)?;
    let origin = path.starts_with('/');
    let absolute = uri.scheme().is_some() && uri.path().starts_with('/');
    if origin || absolute {
        Ok(uri)
    } else {
        Err(refused)
    }
}

/// What the framing and connection headers say, gathered while the headers are copied.
#[derive(Debug, Default)]
struct Facts {
    length: Option<u64>,
    chunked: bool,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

impl Facts {
    fn note(&mut self, name: &HeaderName, value: &[u8]) -> Result<(), HeadError> {
        if *name == header::CONTENT_LENGTH {
            let length = content_length(value)?;
            if self.length.is_some_and(|seen| seen != length) {
                return Err(HeadError::Malformed("conflicting content-length headers"));
            }
            self.length = Some(length);
        } else if *name == header::TRANSFER_ENCODING {
            // Only `chunked`, once: anything else is a framing this gateway cannot read safely.
            if self.chunked || !value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Err(HeadError::Malformed("unsupported transfer-encoding"));
            }
            self.chunked = true;
        } else if *name == header::CONNECTION {
            for token in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if *name == header::EXPECT {
            self.expect_continue |= value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        }
        Ok(())
    }

    fn into_head(self, parts: http::request::Parts) -> Result<Head, HeadError> {
        let framing = match (self.length, self.chunked) {
            (Some(_), true) => {
                return Err(HeadError::Malformed(
                    "both content-length and transfer-encoding",
                ))
            }
            (_, true) if parts.version == Version::HTTP_10 => {
                return Err(HeadError::Malformed(
                    "transfer-encoding in an HTTP/1.0 request",
                ))
            }
            (_, true) => Framing::Chunked,
            (length, false) => Framing::Length(length.unwrap_or(0)),
        };
        let keep_alive = match parts.version {
            Version::HTTP_11 => !self.close,
            _ => self.keep_alive && !self.close,
        };
        Ok(Head {
            expect_continue: self.expect_continue && parts.version == Version::HTTP_11,
            parts,
            framing,
            keep_alive,
        })
    }
}

/// A `content-length` value: digits, or a list of the same digits (`5, 5`, which some
/// intermediaries produce when they merge headers).
fn content_length(value: &[u8]) -> Result<u64, HeadError> {
    let bad = HeadError::Malformed("invalid content-length");
    let mut length = None;
    for item in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
        if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
            return Err(bad);
        }
        let parsed = item
            .iter()
            .fold(0u64, |n, digit| n * 10 + u64::from(digit - b'0'));
        if length.is_some_and(|seen| seen != parsed) {
            return Err(bad);
        }
        length = Some(parsed);
    }
    length.ok_or(bad)
}
