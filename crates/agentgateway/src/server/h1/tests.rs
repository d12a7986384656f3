//! Unit tests of the HTTP/1 pieces that need no socket: head scanning and parsing, the chunked
//! decoder, response framing and the `date` text. The connection loop itself is tested over
//! real sockets in `tests/http1_server.rs`.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode, Version};
use http_body::SizeHint;
use proptest::prelude::*;

use super::body::{BodyState, Step};
use super::date;
use super::head::{self, Framing, HeadError};
use super::response::{self, Exchange, Out};

fn parse(text: &str) -> Result<head::Head, HeadError> {
    head::parse(&Bytes::copy_from_slice(text.as_bytes()))
}

#[test]
fn head_end_is_found_across_reads_and_with_bare_newlines() {
    let full = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
    assert_eq!(head::find_end(full, 0), Some(27));
    assert_eq!(
        head::find_end(b"GET / HTTP/1.1\nHost: a\n\nrest", 0),
        Some(24)
    );
    // Fed byte by byte, resuming where each scan stopped, the end is found at the same place.
    let mut scanned = 0;
    for len in 1..=full.len() {
        match head::find_end(&full[..len], scanned) {
            Some(end) => {
                assert_eq!((end, len), (27, 27));
                break;
            }
            None => scanned = head::resume_at(len),
        }
    }
    assert_eq!(head::find_end(b"GET / HTTP/1.1\r\nHost: a\r\n", 0), None);
    assert_eq!(head::leading_empty_lines(b"\r\n\r\nGET"), 4);
}

#[test]
fn heads_become_parts_with_their_framing() {
    let head = parse("POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: gw\r\nContent-Length: 12\r\nX-A: 1\r\nx-a: 2\r\n\r\n").unwrap();
    assert_eq!(head.parts.method, Method::POST);
    assert_eq!(head.parts.uri.path(), "/v1/chat/completions");
    assert_eq!(head.parts.uri.query(), Some("x=1"));
    assert_eq!(head.parts.version, Version::HTTP_11);
    assert_eq!(head.parts.headers.get_all("x-a").iter().count(), 2);
    assert_eq!(head.framing, Framing::Length(12));
    assert!(head.keep_alive);
    assert!(!head.expect_continue);

    let head = parse("POST http://gw:4000/v1/embeddings HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\nExpect: 100-continue\r\n\r\n").unwrap();
    assert_eq!(head.parts.uri.path(), "/v1/embeddings");
    assert_eq!(head.framing, Framing::Chunked);
    assert!(!head.keep_alive);
    assert!(head.expect_continue);

    let head = parse("GET /v1/models HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(head.parts.version, Version::HTTP_10);
    assert_eq!(head.framing, Framing::Length(0));
    assert!(!head.keep_alive);
    let head = parse("GET /v1/models HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
    assert!(head.keep_alive);
    let head = parse("POST / HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n").unwrap();
    assert_eq!(head.framing, Framing::Length(5));
}

#[test]
fn bad_heads_are_refused() {
    let cases = [
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5, 6\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\n\r\n",
        "CONNECT gw:443 HTTP/1.1\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
        "G\x01T / HTTP/1.1\r\n\r\n",
    ];
    for case in cases {
        assert!(
            matches!(parse(case), Err(HeadError::Malformed(_))),
            "{case:?} was accepted"
        );
    }
    let many: String = (0..101).map(|i| format!("h{i}: v\r\n")).collect();
    let text = format!("GET / HTTP/1.1\r\n{many}\r\n");
    assert!(matches!(parse(&text), Err(HeadError::Malformed(_))));
}

/// Decodes `input` fed in pieces of `step` bytes; the data and whether it ended.
fn decode(
    state: &mut BodyState,
    input: &[u8],
    step: usize,
) -> Result<(Vec<u8>, bool), &'static str> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in input.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match state.step(&mut buf) {
                Step::Data(data) => out.extend_from_slice(&data),
                Step::End => return Ok((out, true)),
                Step::NeedMore => break,
                Step::Error(message) => return Err(message),
            }
        }
    }
    Ok((out, false))
}

const CHUNKED: &[u8] =
    b"5;ext=1\r\nhello\r\n1A\r\n abcdefghijklmnopqrstuvwxy\r\n0\r\nTrailer: x\r\n\r\nNEXT";

#[test]
fn chunked_bodies_decode_however_they_are_split() {
    for step in 1..CHUNKED.len() {
        let mut state = BodyState::new(Framing::Chunked);
        let (data, ended) = decode(&mut state, CHUNKED, step).unwrap();
        assert_eq!(data, b"hello abcdefghijklmnopqrstuvwxy", "step {step}");
        assert!(ended);
        assert_eq!(state, BodyState::Done);
    }
}

#[test]
fn bad_chunk_syntax_is_a_body_error() {
    for bad in [
        &b"x\r\nhello\r\n0\r\n\r\n"[..],
        b"5\r\nhelloXX0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
        b"5 junk\r\nhello\r\n0\r\n\r\n",
        b"ffffffffffffffff\r\n",
        b"5x\r\nhello\r\n0\r\n\r\n",
    ] {
        let mut state = BodyState::new(Framing::Chunked);
        assert!(decode(&mut state, bad, 64).is_err(), "{bad:?}");
        assert_eq!(state, BodyState::Failed);
    }
    let mut state = BodyState::new(Framing::Chunked);
    let long = vec![b'1'; 5000];
    assert!(
        decode(&mut state, &long, 64).is_err(),
        "an endless size line"
    );
}

#[test]
fn length_bodies_stop_at_their_length() {
    let mut state = BodyState::new(Framing::Length(5));
    let mut buf = BytesMut::from(&b"helloGET /"[..]);
    assert_eq!(
        state.step(&mut buf),
        Step::Data(Bytes::from_static(b"hello"))
    );
    assert_eq!(state.step(&mut buf), Step::End);
    assert_eq!(&buf[..], b"GET /");
    assert_eq!(BodyState::new(Framing::Length(0)), BodyState::Done);
}

#[test]
fn response_framing_follows_what_is_known() {
    let v11 = Exchange::new(&Method::POST, Version::HTTP_11);
    let v10 = Exchange::new(&Method::POST, Version::HTTP_10);
    let head = Exchange::new(&Method::HEAD, Version::HTTP_11);
    let none = HeaderMap::new();
    let mut sized = HeaderMap::new();
    sized.insert("content-length", "42".parse().unwrap());
    let unknown = SizeHint::default();
    let ok = StatusCode::OK;
    assert_eq!(
        response::framing(v11, ok, &sized, &unknown),
        Out::Length(42)
    );
    assert_eq!(
        response::framing(v11, ok, &none, &SizeHint::with_exact(7)),
        Out::Length(7)
    );
    assert_eq!(response::framing(v11, ok, &none, &unknown), Out::Chunked);
    assert_eq!(response::framing(v10, ok, &none, &unknown), Out::UntilClose);
    assert_eq!(response::framing(head, ok, &sized, &unknown), Out::Empty);
    assert_eq!(
        response::framing(v11, StatusCode::NO_CONTENT, &none, &unknown),
        Out::Empty
    );
}

#[test]
fn response_heads_carry_date_framing_and_connection() {
    let mut response = http::Response::new(());
    response
        .headers_mut()
        .insert("content-length", "99".parse().unwrap());
    response
        .headers_mut()
        .insert("x-request-id", "abc".parse().unwrap());
    let (parts, ()) = response.into_parts();
    let mut out = Vec::new();
    let v10 = Exchange::new(&Method::GET, Version::HTTP_10);
    response::encode_head(&mut out, v10, &parts, Out::Length(3), true);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("\r\nx-request-id: abc\r\n"), "{text}");
    assert!(text.contains("\r\ncontent-length: 3\r\n"), "{text}");
    assert!(
        !text.contains("99"),
        "the handler's length is replaced: {text}"
    );
    assert!(text.contains("\r\nconnection: keep-alive\r\n"), "{text}");
    let date = text.lines().find_map(|l| l.strip_prefix("date: "));
    assert!(
        date.is_some_and(|d| d.len() == date::LEN && d.ends_with(" GMT")),
        "{text}"
    );
    assert!(text.ends_with("\r\n\r\n"), "{text}");
}

#[test]
fn chunk_sizes_are_lowercase_hex() {
    for (len, text) in [
        (0, "0\r\n"),
        (9, "9\r\n"),
        (26, "1a\r\n"),
        (4096, "1000\r\n"),
        (usize::MAX, "ffffffffffffffff\r\n"),
    ] {
        let mut out = Vec::new();
        response::chunk_start(&mut out, len);
        assert_eq!(String::from_utf8(out).unwrap(), text);
    }
}

#[test]
fn dates_are_imf_fixdate_across_day_and_year_boundaries() {
    let text = |secs| String::from_utf8(date::format(secs).to_vec()).unwrap();
    assert_eq!(text(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_eq!(text(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(text(1_704_067_199), "Sun, 31 Dec 2023 23:59:59 GMT");
    assert_eq!(text(1_704_067_200), "Mon, 01 Jan 2024 00:00:00 GMT");
    assert_eq!(text(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 GMT");
    assert_eq!(text(1_709_251_199), "Thu, 29 Feb 2024 23:59:59 GMT");
    assert_eq!(text(1_709_251_200), "Fri, 01 Mar 2024 00:00:00 GMT");
    assert_eq!(text(4_102_444_800), "Fri, 01 Jan 2100 00:00:00 GMT");
    let mut out = Vec::new();
    date::write(&mut out);
    assert_eq!(out.len(), date::LEN);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes: scanning and parsing never panic, and a parsed head's end is where the scan
    /// said.
    #[test]
    fn garbage_heads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let skip = head::leading_empty_lines(&bytes);
        let rest = &bytes[skip..];
        if let Some(end) = head::find_end(rest, 0) {
            let _ = head::parse(&Bytes::copy_from_slice(&rest[..end]));
        }
    }

    /// Any bytes into the chunked decoder, split anywhere: no panic, and data never exceeds input.
    #[test]
    fn garbage_chunks_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), step in 1usize..50) {
        let mut state = BodyState::new(Framing::Chunked);
        if let Ok((data, _)) = decode(&mut state, &bytes, step) {
            prop_assert!(data.len() <= bytes.len());
        }
    }
}
