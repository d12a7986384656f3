//! An HTTP/1.1 exchange against scripted peers over in-memory pipes: framing, reuse decisions
//! and the bytes of the request head.

use std::future::poll_fn;
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderValue;
use http::Request;
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

fn request(method: Method, body: &'static [u8]) -> Request<RequestBody> {
    Request::builder()
        .method(method)
        .uri("http://example.test:8080/v1/chat/completions?x=1")
        .header("authorization", "Bearer sk-provider")
        .header("content-length", "999")
        .header("transfer-encoding", "chunked")
        .body(RequestBody::from(Bytes::from_static(body)))
        .unwrap()
}

/// Runs one exchange whose peer answers `answer` in pieces of `step` bytes; returns the
/// request bytes the peer read, the body, and whether the connection came back reusable.
async fn exchange(
    method: Method,
    answer: &'static [u8],
    step: usize,
) -> (String, io::Result<(Vec<u8>, bool)>) {
    let (client, mut peer) = duplex(1 << 20);
    let mut conn = Conn::new(client);
    let host = HeaderValue::from_static("example.test:8080");
    let serve = async move {
        let mut seen = vec![0u8; 4096];
        let n = peer.read(&mut seen).await.unwrap();
        for piece in answer.chunks(step.max(1)) {
            // The client may hang up first, on an answer it refuses.
            if peer.write_all(piece).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        // The peer hangs up once it has answered: what is framed "until close" ends here.
        drop(peer);
        String::from_utf8_lossy(&seen[..n]).into_owned()
    };
    let read = async {
        let mut head = conn
            .exchange(&request(method, b"{}"), &host)
            .await
            .map_err(|e| e.source)?;
        read_body(conn, &mut head).await
    };
    let (seen, result) = tokio::join!(serve, tokio::time::timeout(Duration::from_secs(5), read));
    (seen, result.expect("the exchange hung"))
}

async fn read_body(conn: Conn<DuplexStream>, head: &mut Head) -> io::Result<(Vec<u8>, bool)> {
    let mut reading = match Reading::new(conn, head) {
        Ok(reading) => reading,
        Err(reusable) => return Ok((Vec::new(), reusable.is_some())),
    };
    let mut body = Vec::new();
    loop {
        match poll_fn(|cx| reading.poll_data(cx)).await? {
            Polled::Data(data, last, conn) => {
                body.extend_from_slice(&data);
                if last {
                    return Ok((body, conn.is_some()));
                }
            }
            Polled::End(conn) => return Ok((body, conn.is_some())),
        }
    }
}

#[tokio::test]
async fn the_request_head_carries_host_and_the_bodys_own_length() {
    let (seen, result) = exchange(
        Method::POST,
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        64,
    )
    .await;
    assert_eq!(
        seen,
        "POST /v1/chat/completions?x=1 HTTP/1.1\r\nhost: example.test:8080\r\n\
         authorization: Bearer sk-provider\r\ncontent-length: 2\r\n\r\n{}"
    );
    assert_eq!(result.unwrap(), (b"ok".to_vec(), true));
}

#[tokio::test]
async fn a_chunked_answer_delivered_a_byte_at_a_time_is_read_whole_and_reusable() {
    let answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
    for step in [1, 5, 1000] {
        let (_, result) = exchange(Method::POST, answer, step).await;
        assert_eq!(result.unwrap(), (b"abcde".to_vec(), true), "step {step}");
    }
}

#[tokio::test]
async fn an_answer_without_length_lasts_until_close_and_is_not_reused() {
    let (_, result) = exchange(Method::POST, b"HTTP/1.1 200 OK\r\n\r\nuntil close", 4).await;
    assert_eq!(result.unwrap(), (b"until close".to_vec(), false));
}

#[tokio::test]
async fn bodiless_answers_end_at_their_head() {
    let (_, result) = exchange(Method::POST, b"HTTP/1.1 204 No Content\r\n\r\n", 64).await;
    assert_eq!(result.unwrap(), (Vec::new(), true));
    let (seen, result) = exchange(
        Method::HEAD,
        b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n",
        64,
    )
    .await;
    assert!(
        seen.starts_with("HEAD /v1/chat/completions?x=1 HTTP/1.1\r\n"),
        "{seen}"
    );
    assert_eq!(result.unwrap(), (Vec::new(), true));
}

#[tokio::test]
async fn interim_answers_are_skipped() {
    let answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let (_, result) = exchange(Method::POST, answer, 7).await;
    assert_eq!(result.unwrap(), (b"ok".to_vec(), true));
}

#[tokio::test]
async fn what_the_answer_says_about_the_connection_decides_its_reuse() {
    let close = b"HTTP/1.1 200 OK\r\nconnection: keep-alive, close\r\ncontent-length: 2\r\n\r\nok";
    assert_eq!(
        exchange(Method::POST, close, 64).await.1.unwrap(),
        (b"ok".to_vec(), false)
    );
    let old = b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok";
    assert_eq!(
        exchange(Method::POST, old, 64).await.1.unwrap(),
        (b"ok".to_vec(), false)
    );
    let trailing = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokEXTRA";
    assert_eq!(
        exchange(Method::POST, trailing, 64).await.1.unwrap(),
        (b"ok".to_vec(), false)
    );
}

#[tokio::test]
async fn broken_answers_are_errors() {
    for answer in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab",
        b"not http at all\r\n\r\n",
        b"",
    ] {
        let (_, result) = exchange(Method::POST, answer, 3).await;
        assert!(result.is_err(), "{:?}", String::from_utf8_lossy(answer));
    }
}

#[tokio::test]
async fn an_unanswered_exchange_says_so() {
    let (client, peer) = duplex(4096);
    drop(peer);
    let mut conn = Conn::new(client);
    let host = HeaderValue::from_static("h");
    let error = conn
        .exchange(&request(Method::POST, b"{}"), &host)
        .await
        .err()
        .unwrap();
    assert!(error.unanswered, "{error}");
}

#[tokio::test]
async fn an_idle_connection_the_peer_closed_is_not_reusable() {
    let (client, peer) = duplex(4096);
    let mut conn = Conn::new(client);
    assert!(conn.is_reusable());
    drop(peer);
    assert!(!conn.is_reusable());
}
