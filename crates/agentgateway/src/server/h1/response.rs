//! Writing a response's bytes: the status line and headers, how the body is delimited, and the
//! chunk framing of each body frame.
//!
//! Framing follows what is known before the first byte goes out: the response's own
//! `content-length`, else an exact size hint, else chunked (HTTP/1.1) or the end of the
//! connection (HTTP/1.0). The gateway writes `content-length`, `transfer-encoding` and
//! `connection` itself, so the handler's values for them are not copied.

use http::header::{self, HeaderMap};
use http::{Method, StatusCode, Version};
use http_body::SizeHint;

use super::date;

/// How the response body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Out {
    /// No body on the wire (HEAD, 204, 304): the handler's body is drained unseen.
    Empty,
    /// `content-length`: this many bytes are still to be written.
    Length(u64),
    Chunked,
    /// HTTP/1.0 without a known length: the body ends when the connection does.
    UntilClose,
}

/// What the request said that shapes its response.
#[derive(Debug, Clone, Copy)]
pub(super) struct Exchange {
    pub version: Version,
    pub head_method: bool,
}

impl Exchange {
    pub(super) fn new(method: &Method, version: Version) -> Exchange {
        Exchange {
            version,
            head_method: *method == Method::HEAD,
        }
    }
}

/// Picks the framing of a response.
pub(super) fn framing(
    exchange: Exchange,
    status: StatusCode,
    headers: &HeaderMap,
    hint: &SizeHint,
) -> Out {
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if exchange.head_method || bodiless {
        return Out::Empty;
    }
    if let Some(length) = declared_length(headers).or(hint.exact()) {
        return Out::Length(length);
    }
    if exchange.version == Version::HTTP_11 {
        Out::Chunked
    } else {
        Out::UntilClose
    }
}

/// The response's own `content-length`, when it is one plain number.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    value.to_str().ok()?.trim().parse().ok()
}

/// Appends the status line and headers (with `date`, the framing and `connection` headers).
/// `keep_alive` is whether the connection stays open after this response.
pub(super) fn encode_head(
    out: &mut Vec<u8>,
    exchange: Exchange,
    parts: &http::response::Parts,
    framing: Out,
    keep_alive: bool,
) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let mut dated = false;
    for (name, value) in &parts.headers {
        let ours = *name == header::CONNECTION
            || *name == header::TRANSFER_ENCODING
            || (*name == header::CONTENT_LENGTH && framing != Out::Empty);
        if ours {
            continue;
        }
        dated |= *name == header::DATE;
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    if !dated {
        out.extend_from_slice(b"date: ");
        date::write(out);
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Out::Length(length) => {
            let mut digits = itoa::Buffer::new();
            line(out, b"content-length", digits.format(length).as_bytes());
        }
        Out::Chunked => line(out, b"transfer-encoding", b"chunked"),
        Out::Empty | Out::UntilClose => {}
    }
    if !keep_alive {
        line(out, b"connection", b"close");
    } else if exchange.version == Version::HTTP_10 {
        line(out, b"connection", b"keep-alive");
    }
    out.extend_from_slice(b"\r\n");
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends the chunk-size line of a chunk of `len` bytes.
pub(super) fn chunk_start(out: &mut Vec<u8>, len: usize) {
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    let mut n = len;
    loop {
        at -= 1;
        if let Some(slot) = digits.get_mut(at) {
            *slot = b"0123456789abcdef".get(n & 0xf).copied().unwrap_or(b'0');
        }
        n >>= 4;
        if n == 0 || at == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(at..).unwrap_or_default());
    out.extend_from_slice(b"\r\n");
}

/// Ends a chunk's data.
pub(super) const CHUNK_END: &[u8] = b"\r\n";

/// The last chunk, without trailers.
pub(super) const LAST_CHUNK: &[u8] = b"0\r\n\r\n";
