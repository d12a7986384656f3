//! The pool against a hand-written HTTP/1.1 server on a real socket, which counts the
//! connections it accepts and records each request head it reads.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// How the test server answers each request.
#[derive(Clone, Copy)]
enum Answer {
    /// `ok`, keep-alive.
    Ok,
    /// `ok`, then the server closes the connection without saying so in a header.
    OkThenClose,
    /// A chunked body whose end only comes after the client asks again (never, here).
    EndlessChunks,
    /// `ok` to a connection's first request; its second is read and the connection closed
    /// without an answer (the peer's keep-alive timer fired as the request came).
    CloseOnSecond,
}

struct Server {
    port: u16,
    accepted: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

async fn server(answer: Answer) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (count, seen) = (accepted.clone(), heads.clone());
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(socket, answer, seen.clone()));
        }
    });
    Server {
        port,
        accepted,
        heads,
    }
}

async fn serve(mut socket: TcpStream, answer: Answer, heads: Arc<Mutex<Vec<String>>>) {
    let mut buf = Vec::new();
    for served in 0.. {
        let Some(head) = read_head(&mut socket, &mut buf).await else {
            return;
        };
        heads.lock().unwrap().push(head);
        if matches!(answer, Answer::CloseOnSecond) && served == 1 {
            return;
        }
        let reply: &[u8] = match answer {
            Answer::Ok | Answer::OkThenClose | Answer::CloseOnSecond => {
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
            }
            Answer::EndlessChunks => {
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n"
            }
        };
        if socket.write_all(reply).await.is_err() {
            return;
        }
        if let Answer::OkThenClose = answer {
            return;
        }
    }
}

/// Reads one request head and its `content-length` body; `None` at end of stream.
async fn read_head(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |n| n.trim().parse::<usize>().unwrap());
            while buf.len() < end + 4 + length {
                read_more(socket, buf).await?;
            }
            buf.drain(..end + 4 + length);
            return Some(head);
        }
        read_more(socket, buf).await?;
    }
}

async fn read_more(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 4096];
    match socket.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

fn client(idle_timeout: Duration) -> HttpClient {
    HttpClient::new(
        super::super::connector(Duration::from_secs(5)),
        idle_timeout,
    )
}

fn post(port: u16) -> Request<RequestBody> {
    Request::post(format!("http://127.0.0.1:{port}/v1/chat?x=1"))
        .body(RequestBody::from(Bytes::from_static(b"{}")))
        .unwrap()
}

async fn read_all(client: &HttpClient, port: u16) -> Bytes {
    let response = client.request(post(port)).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn a_connection_is_reused_once_its_body_was_read() {
    let server = server(Answer::Ok).await;
    let client = client(Duration::from_secs(90));
    for _ in 0..3 {
        assert_eq!(read_all(&client, server.port).await, "ok");
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
    let heads = server.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 3);
    for head in heads {
        assert!(head.starts_with("post /v1/chat?x=1 http/1.1\r\n"), "{head}");
        let host = format!("host: 127.0.0.1:{}", server.port);
        assert!(head.lines().any(|l| l == host), "{head}");
    }
}

#[tokio::test]
async fn a_body_dropped_before_its_end_closes_its_connection() {
    let server = server(Answer::EndlessChunks).await;
    let client = client(Duration::from_secs(90));
    for _ in 0..2 {
        let response = client.request(post(server.port)).await.unwrap();
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "ok");
        drop(body);
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_the_peer_closed_is_replaced_without_failing_the_request() {
    let server = server(Answer::OkThenClose).await;
    let client = client(Duration::from_secs(90));
    for _ in 0..3 {
        assert_eq!(read_all(&client, server.port).await, "ok");
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_request_a_reused_connection_dropped_unanswered_goes_once_more_on_a_new_one() {
    let server = server(Answer::CloseOnSecond).await;
    let client = client(Duration::from_secs(90));
    for _ in 0..2 {
        assert_eq!(read_all(&client, server.port).await, "ok");
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
    assert_eq!(server.heads.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_fresh_connection_dropped_unanswered_is_an_error_not_a_retry() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let _ = read_head(&mut socket, &mut Vec::new()).await;
        }
    });
    let error = client(Duration::from_secs(90))
        .request(post(port))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Exchange(_)), "{error}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connections_idle_past_the_timeout_are_not_reused() {
    let server = server(Answer::Ok).await;
    let client = client(Duration::ZERO);
    for _ in 0..2 {
        assert_eq!(read_all(&client, server.port).await, "ok");
    }
    assert_eq!(server.accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_relative_uri_is_refused_before_connecting() {
    let request = Request::post("/v1/chat")
        .body(RequestBody::default())
        .unwrap();
    let error = client(Duration::from_secs(90))
        .request(request)
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::NotAbsolute(_)), "{error}");
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let error = client(Duration::from_secs(90))
        .request(post(port))
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Connect(_)), "{error}");
}
