//! The gateway's own HTTP/1.1 server loop on the LLM port, spoken to byte by byte: raw TCP
//! clients write requests by hand (keep-alive, pipelining, chunked bodies split oddly, heads one
//! byte at a time, `Expect: 100-continue`, HTTP/1.0, bad and oversized heads, random garbage)
//! and read the answers with a small response reader, against the in-process gateway and the
//! fake OpenAI provider. Every wait is bounded.

mod support;

use std::time::Duration;

use rand::{Rng, SeedableRng};
use serde_json::Value;
use support::fake_openai::{chat_stream_bytes, FakeOpenAi, MODEL_SUFFIX, SCENARIO_HEADER};
use support::gateway::{config_with_upstream, TestGateway};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONFIG: &str = r#"
llm:
  policies:
    apiKey:
      mode: strict
      keys:
      - key: sk-alice
        metadata: {user: alice}
  models:
  - name: gpt-4o-mini
    provider: openAI
    params: {baseUrl: '{upstream}', apiKey: sk-provider}
"#;

/// No single step of these tests should take this long.
const LIMIT: Duration = Duration::from_secs(10);

async fn setup() -> (FakeOpenAi, TestGateway) {
    let fake = FakeOpenAi::start().await;
    let gw = TestGateway::start(&config_with_upstream(CONFIG, &fake.base_url())).await;
    (fake, gw)
}

fn chat_body(extra: &str) -> String {
    format!(r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#)
}

/// A complete chat request with `extra_headers` (each ending in CRLF).
fn chat(key: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

async fn connect(gw: &TestGateway) -> Client {
    let addr = gw.url.trim_start_matches("http://");
    let stream = TcpStream::connect(addr)
        .await
        .expect("connect to the gateway");
    stream.set_nodelay(true).expect("nodelay");
    Client {
        stream,
        buf: Vec::new(),
    }
}

/// A raw connection and the bytes read from it but not yet consumed.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body arrived with chunked framing.
    chunked: bool,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

impl Client {
    async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).await.expect("write");
    }

    /// Reads more bytes; false at EOF (or a reset).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16384];
        let read = tokio::time::timeout(LIMIT, self.stream.read(&mut chunk))
            .await
            .expect("the gateway answers in time");
        match read {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Reads until `n` bytes are buffered, then takes them.
    async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await, "EOF after {:?}", self.buf);
        }
        self.buf.drain(..n).collect()
    }

    /// Reads one CRLF-terminated line (without the CRLF).
    async fn line(&mut self) -> String {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.take(at + 2).await;
                return String::from_utf8_lossy(&line[..at]).into_owned();
            }
            assert!(self.fill().await, "EOF inside a line: {:?}", self.buf);
        }
    }

    /// Reads one response (skipping nothing: a `100` comes back as its own answer).
    async fn answer(&mut self) -> Answer {
        let status_line = self.line().await;
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("a header line");
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let mut answer = Answer {
            status,
            headers,
            body: Vec::new(),
            chunked: false,
        };
        if status == 100 {
            return answer;
        }
        if let Some(length) = answer.header("content-length") {
            let length = length.parse().expect("a numeric content-length");
            answer.body = self.take(length).await;
        } else if answer.header("transfer-encoding") == Some("chunked") {
            answer.chunked = true;
            while let Some(chunk) = self.chunk().await {
                answer.body.extend_from_slice(&chunk);
            }
        } else {
            answer.body = self.rest().await;
        }
        answer
    }

    /// One chunk's data; `None` for the last chunk.
    async fn chunk(&mut self) -> Option<Vec<u8>> {
        let size = usize::from_str_radix(&self.line().await, 16).expect("a chunk size");
        if size == 0 {
            assert_eq!(self.line().await, "", "no trailers");
            return None;
        }
        let data = self.take(size).await;
        assert_eq!(self.take(2).await, b"\r\n");
        Some(data)
    }

    /// Everything until the gateway closes the connection.
    async fn rest(&mut self) -> Vec<u8> {
        while self.fill().await {}
        std::mem::take(&mut self.buf)
    }

    async fn assert_closed(&mut self) {
        let rest = self.rest().await;
        assert!(rest.is_empty(), "bytes after the last answer: {rest:?}");
    }
}

fn assert_chat_ok(answer: &Answer) {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["usage"]["prompt_tokens"], 11, "{answer:?}");
    assert!(answer.header("date").is_some_and(|d| d.ends_with(" GMT")));
}

#[tokio::test]
async fn three_requests_share_one_keep_alive_connection() {
    let (fake, gw) = setup().await;
    let mut client = connect(&gw).await;
    for _ in 0..3 {
        client.send(chat("sk-alice", "", &chat_body(""))).await;
        let answer = client.answer().await;
        assert_chat_ok(&answer);
        assert_eq!(answer.header("connection"), None, "kept: {answer:?}");
        assert!(!answer.chunked, "a JSON answer has a length");
    }
    assert_eq!(fake.request_count(), 3);
    assert_eq!(gw.wait_for_log_lines(3).await.len(), 3);
    gw.shutdown().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let (_fake, gw) = setup().await;
    let mut client = connect(&gw).await;
    let unknown = r#"{"model":"nope","messages":[]}"#;
    let both = chat("sk-alice", "", &chat_body("")) + &chat("sk-alice", "", unknown);
    client.send(both).await;
    assert_chat_ok(&client.answer().await);
    let second = client.answer().await;
    assert_eq!(second.status, 404, "{second:?}");
    assert_eq!(second.json()["error"]["code"], "model_not_found");
    // And the connection still serves.
    client.send(chat("sk-alice", "", &chat_body(""))).await;
    assert_chat_ok(&client.answer().await);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_chunked_body_split_oddly_is_proxied_whole() {
    let (fake, gw) = setup().await;
    let mut client = connect(&gw).await;
    let body = chat_body("");
    let (first, second) = body.split_at(7);
    let head =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-alice\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    let encoded = format!(
        "{:x};name=value\r\n{first}\r\n{:X}\r\n{second}\r\n0\r\nx-trailer: 1\r\n\r\n",
        first.len(),
        second.len()
    );
    client.send(head).await;
    for piece in encoded.as_bytes().chunks(5) {
        client.send(piece).await;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    assert_chat_ok(&client.answer().await);
    assert_eq!(
        fake.requests()[0].json(),
        serde_json::from_str::<Value>(&body).unwrap()
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_head_arriving_one_byte_per_write_is_served() {
    let (_fake, gw) = setup().await;
    let mut client = connect(&gw).await;
    let request = chat("sk-alice", "", &chat_body(""));
    for byte in request.as_bytes() {
        client.send([*byte]).await;
    }
    assert_chat_ok(&client.answer().await);
    gw.shutdown().await;
}

#[tokio::test]
async fn expect_continue_is_answered_only_once_the_key_passed() {
    let (_fake, gw) = setup().await;
    let body = chat_body("");
    let head = |key: &str| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {key}\r\n\
             Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
    };
    let mut good = connect(&gw).await;
    good.send(head("sk-alice")).await;
    let interim = good.answer().await;
    assert_eq!(interim.status, 100, "{interim:?}");
    good.send(&body).await;
    assert_chat_ok(&good.answer().await);

    let mut bad = connect(&gw).await;
    bad.send(head("sk-wrong")).await;
    let refused = bad.answer().await;
    assert_eq!(
        refused.status, 401,
        "no 100 before the refusal: {refused:?}"
    );
    assert_eq!(refused.header("connection"), Some("close"));
    bad.assert_closed().await;
    gw.shutdown().await;
}

#[tokio::test]
async fn an_unread_body_closes_the_connection_after_the_answer() {
    let (_fake, gw) = setup().await;
    let mut client = connect(&gw).await;
    client.send(chat("sk-wrong", "", &chat_body(""))).await;
    let answer = client.answer().await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.json()["error"]["code"], "invalid_api_key");
    assert_eq!(answer.header("connection"), Some("close"));
    client.assert_closed().await;
    gw.shutdown().await;
}

/// Sends `request` on a fresh connection; the answer must be an early JSON error, then a close.
async fn assert_refused(gw: &TestGateway, request: &[u8], status: u16) -> Answer {
    let mut client = connect(gw).await;
    client.send(request).await;
    let answer = client.answer().await;
    assert_eq!(answer.status, status, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"));
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.json()["error"]["type"], "invalid_request_error");
    client.assert_closed().await;
    answer
}

#[tokio::test]
async fn bad_heads_get_400_or_431_and_a_close() {
    let (fake, gw) = setup().await;
    let answer = assert_refused(&gw, b"GARBAGE\r\n\r\n", 400).await;
    assert!(answer.json()["error"]["message"].is_string());
    assert_refused(&gw, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400).await;
    let both = "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 3\r\n\
                Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
    assert_refused(&gw, both.as_bytes(), 400).await;
    let lengths =
        "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd";
    assert_refused(&gw, lengths.as_bytes(), 400).await;
    let huge = format!(
        "GET /v1/models HTTP/1.1\r\nx-big: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let answer = assert_refused(&gw, huge.as_bytes(), 431).await;
    assert_eq!(
        answer.json()["error"]["code"],
        "request_header_fields_too_large"
    );
    assert_eq!(fake.request_count(), 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn http_1_0_is_answered_then_closed_unless_kept_alive() {
    let (_fake, gw) = setup().await;
    let body = chat_body("");
    let request = |extra: &str| {
        format!(
            "POST /v1/chat/completions HTTP/1.0\r\nAuthorization: Bearer sk-alice\r\n\
             Content-Length: {}\r\n{extra}\r\n{body}",
            body.len()
        )
    };
    let mut client = connect(&gw).await;
    client.send(request("")).await;
    let answer = client.answer().await;
    assert_chat_ok(&answer);
    assert!(answer.header("content-length").is_some());
    client.assert_closed().await;

    let mut kept = connect(&gw).await;
    for _ in 0..2 {
        kept.send(request("Connection: keep-alive\r\n")).await;
        let answer = kept.answer().await;
        assert_chat_ok(&answer);
        assert_eq!(answer.header("connection"), Some("keep-alive"));
    }
    let lines = gw.wait_for_log_lines(3).await;
    assert!(
        lines.iter().all(|l| l.contains(" http.version=HTTP/1.0 ")),
        "{lines:#?}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let (_fake, gw) = setup().await;
    let mut client = connect(&gw).await;
    client
        .send(chat("sk-alice", "Connection: close\r\n", &chat_body("")))
        .await;
    let answer = client.answer().await;
    assert_chat_ok(&answer);
    assert_eq!(answer.header("connection"), Some("close"));
    client.assert_closed().await;
    let lines = gw.wait_for_log_lines(1).await;
    assert!(lines[0].contains(" http.version=HTTP/1.1 "), "{}", lines[0]);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_stream_arrives_chunk_by_chunk_before_it_ends() {
    let (_fake, gw) = setup().await;
    let mut client = connect(&gw).await;
    let scenario = format!("{SCENARIO_HEADER}: slow-stream\r\n");
    client
        .send(chat("sk-alice", &scenario, &chat_body(r#","stream":true"#)))
        .await;
    // The head, then the first event, while the provider is still pacing the rest.
    let status = client.line().await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let mut headers = Vec::new();
    loop {
        let line = client.line().await;
        if line.is_empty() {
            break;
        }
        headers.push(line.to_ascii_lowercase());
    }
    assert!(
        headers.contains(&"transfer-encoding: chunked".to_owned()),
        "{headers:?}"
    );
    let first = client.chunk().await.expect("a first event");
    assert!(first.starts_with(b"data: "), "{first:?}");
    assert!(
        !client.buf.ends_with(b"0\r\n\r\n"),
        "the first event came before the stream ended"
    );
    let mut received = first;
    while let Some(chunk) = client.chunk().await {
        received.extend_from_slice(&chunk);
    }
    let expected = chat_stream_bytes(&format!("gpt-4o-mini{MODEL_SUFFIX}"), false);
    assert_eq!(
        String::from_utf8_lossy(&received),
        String::from_utf8_lossy(&expected)
    );
    // The connection is kept after a stream.
    client.send(chat("sk-alice", "", &chat_body(""))).await;
    assert_chat_ok(&client.answer().await);
    gw.shutdown().await;
}

/// Random garbage, mutated requests and truncated requests, each on its own connection whose
/// write side is then closed: the gateway answers or closes, never panics, and keeps serving
/// a connection opened before all of it.
#[tokio::test]
async fn garbage_and_truncations_never_break_the_server() {
    let (_fake, gw) = setup().await;
    let mut survivor = connect(&gw).await;
    let valid = chat("sk-alice", "", &chat_body("")).into_bytes();
    let chunked = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nAuthorization: Bearer sk-alice\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        chat_body("").len(),
        chat_body("")
    )
    .into_bytes();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    for round in 0..150 {
        let base = if round % 2 == 0 { &valid } else { &chunked };
        let bytes: Vec<u8> = match round % 3 {
            0 => (0..rng.random_range(0..400))
                .map(|_| rng.random())
                .collect(),
            1 => base[..rng.random_range(0..base.len())].to_vec(),
            _ => {
                let mut mutated = base.clone();
                for _ in 0..rng.random_range(1..6) {
                    let at = rng.random_range(0..mutated.len());
                    mutated[at] = rng.random();
                }
                mutated
            }
        };
        let mut client = connect(&gw).await;
        client.send(&bytes).await;
        let _ = client.stream.shutdown().await;
        let _ = client.rest().await;
    }
    survivor.send(chat("sk-alice", "", &chat_body(""))).await;
    assert_chat_ok(&survivor.answer().await);
    let mut fresh = connect(&gw).await;
    fresh.send(chat("sk-alice", "", &chat_body(""))).await;
    assert_chat_ok(&fresh.answer().await);
    gw.shutdown().await;
}
