//! Failure paths end to end: a client -> the gateway (in-process, 127.0.0.1:0) -> the fake OpenAI
//! provider. Every bad input gets a clear answer in OpenAI's error shape with the status, `type`
//! and `code` of interface.md's table; every failed request is still counted in
//! `agentgateway_requests_total` with its `status` and `reason`, gets exactly one access-log line,
//! and never reaches the provider when the gateway refused it; provider errors pass through
//! unchanged; broken streams and vanished clients are recorded as such; and the gateway keeps
//! serving afterwards.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use support::fake_openai::{chat_stream_bytes, FakeOpenAi, MODEL_SUFFIX, SCENARIO_HEADER};
use support::gateway::{config_with_upstream, TestGateway};

const CONFIG: &str = r#"
llm:
  maxRequestBodyBytes: 1024
  timeouts: {firstByte: '{first_byte}', idle: '{idle}', requestBody: '{request_body}'}
  policies:
    apiKey:
      mode: {mode}
      keys:
      - key: sk-alice
        metadata: {user: alice}
  models:
  - name: gpt-4o-mini
    provider: openAI
    params: {baseUrl: '{upstream}', apiKey: sk-provider}
  - name: dead
    provider: openAI
    params: {baseUrl: '{dead}', apiKey: sk-provider}
"#;

const KEY: &str = "sk-alice";
const LIMIT: usize = 1024;
const REQUESTS: &str = "agentgateway_requests_total";
const HTTP_DURATION_COUNT: &str = "agentgateway_request_duration_seconds_count";
const GENAI_DURATION_COUNT: &str = "agentgateway_gen_ai_server_request_duration_count";
const TOKENS: &str = "agentgateway_gen_ai_client_token_usage_sum";
const TOKENS_COUNT: &str = "agentgateway_gen_ai_client_token_usage_count";

// === setup ===

struct Setup {
    mode: &'static str,
    first_byte: &'static str,
    idle: &'static str,
    request_body: &'static str,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            mode: "strict",
            first_byte: "60s",
            idle: "60s",
            request_body: "60s",
        }
    }
}

impl Setup {
    async fn start(self) -> (FakeOpenAi, TestGateway) {
        let fake = FakeOpenAi::start().await;
        let yaml = config_with_upstream(CONFIG, &fake.base_url())
            .replace("{mode}", self.mode)
            .replace("{first_byte}", self.first_byte)
            .replace("{idle}", self.idle)
            .replace("{request_body}", self.request_body)
            .replace("{dead}", &format!("http://{}/v1", closed_port()));
        (fake, TestGateway::start(&yaml).await)
    }
}

async fn setup() -> (FakeOpenAi, TestGateway) {
    Setup::default().start().await
}

/// An address nothing listens on: bound, then released.
fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr")
}

fn chat(model: &str, extra: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#)
}

fn chat_request(gw: &TestGateway, scenario: &str, body: String) -> reqwest::RequestBuilder {
    gw.client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .header(SCENARIO_HEADER, scenario)
        .body(body)
}

/// The same request sent straight to the fake, to learn exactly what the provider answers.
async fn direct(fake: &FakeOpenAi, scenario: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url()))
        .header("content-type", "application/json")
        .header(SCENARIO_HEADER, scenario)
        .body(body)
        .send()
        .await
        .expect("the fake answers")
}

// === assertions ===

/// Reads a streamed body to its end; true when it ended in an error rather than cleanly.
async fn read_until_error(response: reqwest::Response) -> (Vec<u8>, bool) {
    let mut stream = response.bytes_stream();
    let mut received = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => return (received, true),
        }
    }
    (received, false)
}

/// The status, and an OpenAI error body with exactly `message`, `type`, `param`, `code`.
async fn assert_openai_error(
    response: reqwest::Response,
    status: u16,
    kind: &str,
    code: Option<&str>,
) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "an error body is JSON"
    );
    let bytes = response.bytes().await.expect("error body");
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {bytes:?}"));
    let top: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(top, ["error"], "{body}");
    let error = body["error"].as_object().expect("error is an object");
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message", "param", "type"], "{body}");
    let message = error["message"].as_str().expect("message is a string");
    assert!(!message.trim().is_empty(), "{body}");
    assert_eq!(error["type"], kind, "{body}");
    assert_eq!(error["code"], json!(code), "{body}");
    assert!(error["param"].is_null(), "{body}");
    body
}

/// The `key=value` fields of a text access-log line (quoted values unescaped).
fn fields(line: &str) -> BTreeMap<String, String> {
    let (_, rest) = line
        .split_once("\tinfo\trequest ")
        .unwrap_or_else(|| panic!("not an access-log line: {line:?}"));
    let mut map = BTreeMap::new();
    let mut chars = rest.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    other => value.push(other),
                }
            }
            chars.next(); // the separating space
        } else {
            value = chars.by_ref().take_while(|c| *c != ' ').collect();
        }
        assert!(
            map.insert(key.clone(), value).is_none(),
            "{key} twice: {line}"
        );
    }
    map
}

/// Log lines whose `http.status` and `reason` are the given ones (`reason` None: no reason key).
fn lines_with(
    lines: &[String],
    status: u16,
    reason: Option<&str>,
) -> Vec<BTreeMap<String, String>> {
    lines
        .iter()
        .map(|l| fields(l))
        .filter(|f| {
            f.get("http.status").map(String::as_str) == Some(status.to_string().as_str())
                && f.get("reason").map(String::as_str) == reason
        })
        .collect()
}

/// Sends a normal request that must succeed (the gateway is still serving).
async fn normal_request(gw: &TestGateway) {
    let response = gw
        .post("/v1/chat/completions", Some(KEY), &chat("gpt-4o-mini", ""))
        .await;
    assert_eq!(response.status(), 200, "a normal request after the failure");
    let body: Value = response.json().await.expect("chat completion");
    assert_eq!(body["usage"]["prompt_tokens"], 11);
}

/// Waits (bounded) until exactly `n` log lines exist, and checks that no further line follows.
async fn exactly_lines(gw: &TestGateway, n: usize) -> Vec<String> {
    gw.wait_for_log_lines(n).await;
    // A duplicate line for the same request would be written at the same moment; give it a
    // moment to show up before asserting there is none.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lines = gw.log_lines();
    assert_eq!(lines.len(), n, "exactly one line per request: {lines:#?}");
    lines
}

/// After one failed request: a normal request still succeeds; the failure has exactly one log line
/// and is counted (requests and HTTP duration) with its status and reason; no tokens were recorded
/// for it; and the provider saw `upstream_calls` requests besides the normal one.
async fn assert_failure_recorded(
    gw: &TestGateway,
    fake: &FakeOpenAi,
    status: u16,
    reason: &str,
    upstream_calls: usize,
) -> BTreeMap<String, String> {
    assert_eq!(
        fake.request_count(),
        upstream_calls,
        "provider calls for the failed request"
    );
    normal_request(gw).await;
    let lines = exactly_lines(gw, 2).await;
    let mut failed = lines_with(&lines, status, Some(reason));
    assert_eq!(failed.len(), 1, "one line for the failure: {lines:#?}");
    assert_eq!(lines_with(&lines, 200, None).len(), 1, "{lines:#?}");
    let m = gw.metrics().await;
    let labels = [("status", &*status.to_string()), ("reason", reason)];
    assert_eq!(m.sum(REQUESTS, &labels), 1.0, "requests_total{labels:?}");
    assert_eq!(m.sum(HTTP_DURATION_COUNT, &labels), 1.0);
    assert_eq!(m.sum(REQUESTS, &[("status", "200"), ("reason", "ok")]), 1.0);
    assert_eq!(m.sum(REQUESTS, &[]), 2.0);
    // Only the normal request reported usage.
    assert_eq!(m.sum(TOKENS_COUNT, &[("gen_ai_token_type", "input")]), 1.0);
    assert_eq!(fake.request_count(), upstream_calls + 1);
    failed.remove(0)
}

/// A request the gateway refuses itself: never forwarded.
async fn assert_refused(
    gw: &TestGateway,
    fake: &FakeOpenAi,
    response: reqwest::Response,
    (status, kind, code): (u16, &str, Option<&str>),
    reason: &str,
) -> BTreeMap<String, String> {
    assert_openai_error(response, status, kind, code).await;
    assert_failure_recorded(gw, fake, status, reason, 0).await
}

// === the gateway's own refusals ===

const INVALID: (u16, &str, Option<&str>) = (400, "invalid_request_error", None);

async fn refused_body(body: &str) {
    let (fake, gw) = setup().await;
    let response = gw.post("/v1/chat/completions", Some(KEY), body).await;
    let line = assert_refused(&gw, &fake, response, INVALID, "invalid_request").await;
    assert_eq!(line["http.path"], "/v1/chat/completions");
    gw.shutdown().await;
}

#[tokio::test]
async fn empty_body_is_400() {
    refused_body("").await;
}

#[tokio::test]
async fn malformed_json_is_400() {
    refused_body(r#"{"model":"gpt-4o-mini","messages":[{"#).await;
}

#[tokio::test]
async fn json_array_body_is_400() {
    refused_body(r#"[{"model":"gpt-4o-mini"}]"#).await;
}

#[tokio::test]
async fn missing_model_is_400() {
    refused_body(r#"{"messages":[{"role":"user","content":"hi"}]}"#).await;
}

#[tokio::test]
async fn non_string_model_is_400() {
    refused_body(r#"{"model":42,"messages":[{"role":"user","content":"hi"}]}"#).await;
}

#[tokio::test]
async fn unknown_model_is_404_model_not_found() {
    let (fake, gw) = setup().await;
    let response = gw
        .post(
            "/v1/chat/completions",
            Some(KEY),
            &chat("no-such-model", ""),
        )
        .await;
    let expected = (404, "invalid_request_error", Some("model_not_found"));
    let line = assert_refused(&gw, &fake, response, expected, "model_not_found").await;
    assert_eq!(line["gen_ai.request.model"], "no-such-model");
    gw.shutdown().await;
}

const TOO_LARGE: (u16, &str, Option<&str>) =
    (413, "invalid_request_error", Some("request_too_large"));

/// A valid chat body padded with trailing whitespace to exactly `len` bytes.
fn chat_of_len(len: usize) -> String {
    let mut body = chat("gpt-4o-mini", "");
    assert!(body.len() <= len);
    body.extend(std::iter::repeat_n(' ', len - body.len()));
    body
}

#[tokio::test]
async fn body_over_the_limit_with_content_length_is_413() {
    let (fake, gw) = setup().await;
    let response = gw
        .post("/v1/chat/completions", Some(KEY), &chat_of_len(LIMIT + 1))
        .await;
    assert_refused(&gw, &fake, response, TOO_LARGE, "request_too_large").await;
    // The limit itself is allowed.
    let at_limit = gw
        .post("/v1/chat/completions", Some(KEY), &chat_of_len(LIMIT))
        .await;
    assert_eq!(at_limit.status(), 200);
    gw.shutdown().await;
}

fn chunked(body: String, chunk: usize) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body
        .into_bytes()
        .chunks(chunk)
        .map(|c| Ok(c.to_vec()))
        .collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let (fake, gw) = setup().await;
    let response = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .body(chunked(chat_of_len(4 * LIMIT), 256))
        .send()
        .await
        .expect("the gateway answers");
    assert_refused(&gw, &fake, response, TOO_LARGE, "request_too_large").await;
    // A chunked body within the limit goes through.
    let small = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .body(chunked(chat_of_len(LIMIT), 100))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(small.status(), 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn unknown_path_is_404() {
    let (fake, gw) = setup().await;
    let response = gw
        .post("/v1/chat/complete", Some(KEY), &chat("gpt-4o-mini", ""))
        .await;
    let expected = (404, "invalid_request_error", Some("unknown_url"));
    let line = assert_refused(&gw, &fake, response, expected, "not_found").await;
    assert_eq!(line["http.path"], "/v1/chat/complete");
    gw.shutdown().await;
}

#[tokio::test]
async fn wrong_method_is_405() {
    let (fake, gw) = setup().await;
    let response = gw
        .client
        .get(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.headers()["allow"], "GET, POST");
    let expected = (405, "invalid_request_error", Some("method_not_allowed"));
    let line = assert_refused(&gw, &fake, response, expected, "method_not_allowed").await;
    assert_eq!(line["http.method"], "GET");
    gw.shutdown().await;
}

const UNAUTHORIZED: (u16, &str, Option<&str>) =
    (401, "authentication_error", Some("invalid_api_key"));

#[tokio::test]
async fn missing_key_is_401() {
    let (fake, gw) = setup().await;
    let response = gw
        .post("/v1/chat/completions", None, &chat("gpt-4o-mini", ""))
        .await;
    assert_refused(&gw, &fake, response, UNAUTHORIZED, "unauthorized").await;
    gw.shutdown().await;
}

#[tokio::test]
async fn wrong_key_is_401_and_never_logged() {
    let (fake, gw) = setup().await;
    let response = gw
        .post(
            "/v1/chat/completions",
            Some("sk-wrong-secret"),
            &chat("gpt-4o-mini", ""),
        )
        .await;
    assert_refused(&gw, &fake, response, UNAUTHORIZED, "unauthorized").await;
    for line in gw.log_lines() {
        assert!(!line.contains("sk-wrong-secret"), "{line}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn x_api_key_header_is_accepted_and_not_forwarded() {
    let (fake, gw) = setup().await;
    let response = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("x-api-key", KEY)
        .body(chat("gpt-4o-mini", ""))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    response.bytes().await.expect("body");
    let sent = &fake.requests()[0];
    assert_eq!(sent.header("x-api-key"), None);
    assert_eq!(sent.header("authorization"), Some("Bearer sk-provider"));
    let line = fields(&gw.wait_for_log_lines(1).await[0]);
    assert_eq!(line["http.status"], "200");
    assert!(!line.contains_key("reason"), "{line:?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn optional_mode_lets_a_keyless_request_through_but_not_a_wrong_key() {
    let setup = Setup {
        mode: "optional",
        ..Setup::default()
    };
    let (fake, gw) = setup.start().await;
    let keyless = gw
        .post("/v1/chat/completions", None, &chat("gpt-4o-mini", ""))
        .await;
    assert_eq!(keyless.status(), 200);
    let body: Value = keyless.json().await.expect("chat completion");
    assert_eq!(body["usage"]["completion_tokens"], 7);
    assert_eq!(fake.request_count(), 1);
    let wrong = gw
        .post(
            "/v1/chat/completions",
            Some("sk-wrong"),
            &chat("gpt-4o-mini", ""),
        )
        .await;
    assert_openai_error(wrong, 401, UNAUTHORIZED.1, UNAUTHORIZED.2).await;
    assert_eq!(fake.request_count(), 1, "a wrong key is never forwarded");
    let lines = exactly_lines(&gw, 2).await;
    assert_eq!(lines_with(&lines, 200, None).len(), 1, "{lines:#?}");
    assert_eq!(lines_with(&lines, 401, Some("unauthorized")).len(), 1);
    let m = gw.metrics().await;
    assert_eq!(m.sum(REQUESTS, &[("status", "200"), ("reason", "ok")]), 1.0);
    gw.shutdown().await;
}

// === upstream failures ===

#[tokio::test]
async fn connection_refused_is_502_upstream_unavailable() {
    let (fake, gw) = setup().await;
    let response = gw
        .post("/v1/chat/completions", Some(KEY), &chat("dead", ""))
        .await;
    let body = assert_openai_error(response, 502, "api_error", Some("upstream_unavailable")).await;
    // Transport details (addresses, resolver or TLS errors) are for the log, not the caller.
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        !message.contains("127.0.0.1") && !message.contains("refused"),
        "{message}"
    );
    let line = assert_failure_recorded(&gw, &fake, 502, "upstream_unavailable", 0).await;
    assert!(
        line["error"].contains("refused"),
        "the log keeps the detail: {line:?}"
    );
    assert_eq!(line["gen_ai.request.model"], "dead");
    let m = gw.metrics().await;
    let dead = [
        ("gen_ai_request_model", "dead"),
        ("error_type", "upstream_unavailable"),
    ];
    assert_eq!(m.sum(GENAI_DURATION_COUNT, &dead), 1.0);
    gw.shutdown().await;
}

#[tokio::test]
async fn first_byte_timeout_is_504_upstream_timeout() {
    let setup = Setup {
        first_byte: "300ms",
        ..Setup::default()
    };
    let (fake, gw) = setup.start().await;
    let response = chat_request(&gw, "slow-headers", chat("gpt-4o-mini", ""))
        .send()
        .await
        .expect("the gateway answers");
    assert_openai_error(response, 504, "api_error", Some("upstream_timeout")).await;
    // The provider did get it: the timeout is the gateway giving up on it.
    assert_failure_recorded(&gw, &fake, 504, "upstream_timeout", 1).await;
    let m = gw.metrics().await;
    assert_eq!(
        m.sum(GENAI_DURATION_COUNT, &[("error_type", "upstream_timeout")]),
        1.0
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_body_that_never_finishes_is_408_request_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let setup = Setup {
        request_body: "200ms",
        ..Setup::default()
    };
    let (fake, gw) = setup.start().await;
    let addr = gw.url.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // Announces 100 bytes, sends 10, then stalls.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {KEY}\r\n\
         content-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"model\":"
    );
    socket.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer));
    let _ = read
        .await
        .expect("the gateway answers within the body timeout, not never");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""code":"request_timeout""#), "{text}");
    assert_failure_recorded(&gw, &fake, 408, "request_timeout", 0).await;
    normal_request(&gw).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn a_stream_that_stalls_is_cut_after_the_idle_timeout() {
    let setup = Setup {
        idle: "100ms",
        ..Setup::default()
    };
    let (fake, gw) = setup.start().await;
    // `slow-stream` pauses 300 ms between events: longer than the 100 ms idle limit.
    let response = chat_request(&gw, "slow-stream", chat("gpt-4o-mini", r#","stream":true"#))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    let (received, ended_in_error) = read_until_error(response).await;
    assert!(
        ended_in_error,
        "a cut stream must not look like a clean end"
    );
    assert!(
        received.starts_with(b"data: "),
        "the first event was delivered"
    );
    assert!(!received.ends_with(b"data: [DONE]\n\n"));
    let line = assert_failure_recorded(&gw, &fake, 200, "upstream_timeout", 1).await;
    assert!(
        line["error"].contains("no data from the upstream"),
        "{line:?}"
    );
    let m = gw.metrics().await;
    let timed_out = [("error_type", "upstream_timeout")];
    assert_eq!(m.sum(GENAI_DURATION_COUNT, &timed_out), 1.0);
    normal_request(&gw).await;
    gw.shutdown().await;
}

/// A provider error passes through with its status, headers and body bytes unchanged, and is
/// counted as `upstream_error` with the provider's code (or type) as `error_type`.
async fn provider_error_passes_through(scenario: &str, status: u16, error_type: &str) {
    let (fake, gw) = setup().await;
    let expected = direct(&fake, scenario, chat("gpt-4o-mini", "")).await;
    assert_eq!(expected.status().as_u16(), status, "the fake's own answer");
    let expected_headers = expected.headers().clone();
    let expected_body = expected.bytes().await.expect("fake body");

    let response = chat_request(&gw, scenario, chat("gpt-4o-mini", ""))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status().as_u16(), status);
    for (name, value) in &expected_headers {
        let name = name.as_str();
        if name.starts_with("retry-after")
            || name.starts_with("x-ratelimit-")
            || name == "content-type"
        {
            assert_eq!(response.headers().get(name), Some(value), "header {name}");
        }
    }
    if status == 429 {
        assert_eq!(response.headers()["retry-after"], "1");
        assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "0");
    }
    let body = response.bytes().await.expect("gateway body");
    assert_eq!(
        String::from_utf8_lossy(&body),
        String::from_utf8_lossy(&expected_body),
        "the provider's error body must reach the client unchanged"
    );
    let line = assert_failure_recorded(&gw, &fake, status, "upstream_error", 2).await;
    assert_eq!(line["gen_ai.request.model"], "gpt-4o-mini");
    let m = gw.metrics().await;
    let labels = [
        ("gen_ai_request_model", "gpt-4o-mini"),
        ("error_type", error_type),
    ];
    assert_eq!(m.sum(GENAI_DURATION_COUNT, &labels), 1.0, "{error_type}");
    // Successes carry no error_type at all.
    let failed: f64 = m
        .select(GENAI_DURATION_COUNT, &[])
        .iter()
        .filter(|s| s.labels.contains_key("error_type"))
        .map(|s| s.value)
        .sum();
    assert_eq!(failed, 1.0);
    gw.shutdown().await;
}

#[tokio::test]
async fn provider_500_passes_through_unchanged() {
    provider_error_passes_through("error-500", 500, "server_error").await;
}

#[tokio::test]
async fn provider_429_passes_through_with_retry_after() {
    provider_error_passes_through("error-429", 429, "rate_limit_exceeded").await;
}

#[tokio::test]
async fn provider_400_passes_through_unchanged() {
    provider_error_passes_through("error-400", 400, "invalid_value").await;
}

// === broken streams ===

#[tokio::test]
async fn cut_stream_gives_the_partial_stream_then_an_error_and_is_recorded() {
    let (fake, gw) = setup().await;
    let response = chat_request(&gw, "cut-stream", chat("gpt-4o-mini", r#","stream":true"#))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    let (received, ended_with_error) = read_until_error(response).await;
    assert!(
        ended_with_error,
        "a cut stream must not look like a clean end: got {:?}",
        String::from_utf8_lossy(&received)
    );
    let full = chat_stream_bytes(&format!("gpt-4o-mini{MODEL_SUFFIX}"), false);
    let text = String::from_utf8_lossy(&received);
    assert!(
        full.starts_with(&received) && text.contains(r#""content":"lo""#),
        "the client gets the events sent before the cut: {text}"
    );
    let line = assert_failure_recorded(&gw, &fake, 200, "upstream_stream_error", 1).await;
    assert!(!line.contains_key("gen_ai.usage.input_tokens"), "{line:?}");
    assert!(!line.contains_key("gen_ai.usage.output_tokens"), "{line:?}");
    let m = gw.metrics().await;
    // Tokens come only from provider-reported usage: the cut stream reported none.
    assert_eq!(m.sum(TOKENS, &[("gen_ai_token_type", "input")]), 11.0);
    assert_eq!(m.sum(TOKENS, &[("gen_ai_token_type", "output")]), 7.0);
    // The failed stream's duration is observed with an error_type, the normal one's without.
    let failed: Vec<_> = m
        .select(GENAI_DURATION_COUNT, &[])
        .into_iter()
        .filter(|s| s.labels.contains_key("error_type"))
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].value, 1.0);
    gw.shutdown().await;
}

#[tokio::test]
async fn stream_error_event_reaches_the_client_and_labels_the_error() {
    let (fake, gw) = setup().await;
    let body = chat(
        "gpt-4o-mini",
        r#","stream":true,"stream_options":{"include_usage":true}"#,
    );
    let expected = direct(&fake, "stream-error", body.clone())
        .await
        .bytes()
        .await
        .expect("fake stream");
    assert!(String::from_utf8_lossy(&expected).contains("overloaded"));
    let response = chat_request(&gw, "stream-error", body)
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    let received = response.bytes().await.expect("the stream ends cleanly");
    assert_eq!(
        String::from_utf8_lossy(&received),
        String::from_utf8_lossy(&expected),
        "the error event reaches the client unchanged"
    );
    assert_failure_recorded(&gw, &fake, 200, "stream_error", 2).await;
    let m = gw.metrics().await;
    assert_eq!(
        m.sum(GENAI_DURATION_COUNT, &[("error_type", "overloaded")]),
        1.0
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn client_disconnect_mid_stream_is_logged_and_counted() {
    let (fake, gw) = setup().await;
    let response = chat_request(&gw, "slow-stream", chat("gpt-4o-mini", r#","stream":true"#))
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let first = stream.next().await.expect("a first chunk").expect("data");
    assert!(first.starts_with(b"data: "), "{first:?}");
    drop(stream);
    // The stream would take about 2 s to finish on its own; the disconnect must be noticed and
    // recorded without a line claiming success. Bounded wait.
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.log_lines().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no log line after the disconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = assert_failure_recorded(&gw, &fake, 200, "client_disconnected", 1).await;
    assert_eq!(line["gen_ai.request.stream"], "true");
    gw.shutdown().await;
}

#[tokio::test]
async fn client_disconnect_before_the_response_headers_is_logged_and_counted() {
    let (fake, gw) = setup().await;
    let request = chat_request(&gw, "hang", chat("gpt-4o-mini", ""));
    let client = tokio::spawn(request.send());
    // Bounded wait until the provider holds the request, then the client gives up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fake.request_count() == 0 {
        assert!(
            Instant::now() < deadline,
            "the request never reached the fake"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    client.abort();
    let _ = client.await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.log_lines().is_empty() {
        assert!(
            Instant::now() < deadline,
            "a request whose client went away while the provider was silent was never logged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = fields(&gw.log_lines()[0]);
    assert_eq!(line["reason"], "client_disconnected", "{line:?}");
    // No response status existed: logged as nginx's 499 "client closed request".
    assert_eq!(line["http.status"], "499", "{line:?}");
    let m = gw.metrics().await;
    assert_eq!(
        m.sum(
            REQUESTS,
            &[("reason", "client_disconnected"), ("status", "499")]
        ),
        1.0,
        "counted"
    );
    normal_request(&gw).await;
    gw.shutdown().await;
}

#[tokio::test]
async fn usage_in_every_chunk_is_recorded_once_with_the_last_values() {
    let (fake, gw) = setup().await;
    let body = chat(
        "gpt-4o-mini",
        r#","stream":true,"stream_options":{"include_usage":true}"#,
    );
    let expected = direct(&fake, "usage-every-chunk", body.clone())
        .await
        .bytes()
        .await
        .expect("fake stream");
    let received = chat_request(&gw, "usage-every-chunk", body)
        .send()
        .await
        .expect("the gateway answers")
        .bytes()
        .await
        .expect("stream");
    assert_eq!(
        String::from_utf8_lossy(&received),
        String::from_utf8_lossy(&expected)
    );
    let line = fields(&gw.wait_for_log_lines(1).await[0]);
    assert_eq!(line["gen_ai.usage.input_tokens"], "11");
    assert_eq!(line["gen_ai.usage.output_tokens"], "7");
    let m = gw.metrics().await;
    let kind = |k| m.sum(TOKENS, &[("gen_ai_token_type", k)]);
    assert_eq!((kind("input"), kind("output")), (11.0, 7.0));
    assert_eq!(m.sum(TOKENS_COUNT, &[("gen_ai_token_type", "input")]), 1.0);
    assert_eq!(m.sum(TOKENS_COUNT, &[("gen_ai_token_type", "output")]), 1.0);
    gw.shutdown().await;
}

// === all of it, on one gateway ===

#[tokio::test]
async fn every_failure_in_a_row_then_the_gateway_still_serves_and_nothing_is_lost() {
    let setup = Setup {
        first_byte: "300ms",
        ..Setup::default()
    };
    let (_fake, gw) = setup.start().await;
    let mut expected: Vec<(u16, &str)> = Vec::new();
    for (body, status, reason) in [
        ("", 400, "invalid_request"),
        ("{", 400, "invalid_request"),
        ("[]", 400, "invalid_request"),
        (r#"{"model":null}"#, 400, "invalid_request"),
        (&*chat("nope", ""), 404, "model_not_found"),
        (&*chat_of_len(LIMIT + 1), 413, "request_too_large"),
        (&*chat("dead", ""), 502, "upstream_unavailable"),
    ] {
        let response = gw.post("/v1/chat/completions", Some(KEY), body).await;
        assert_eq!(response.status().as_u16(), status, "{body:?}");
        expected.push((status, reason));
    }
    let unauthenticated = gw.post("/v1/chat/completions", None, "{}").await;
    assert_eq!(unauthenticated.status(), 401);
    expected.push((401, "unauthorized"));
    for (scenario, status, reason) in [
        ("slow-headers", 504, "upstream_timeout"),
        ("error-500", 500, "upstream_error"),
        ("error-429", 429, "upstream_error"),
        ("error-400", 400, "upstream_error"),
        ("stream-error", 200, "stream_error"),
    ] {
        let response = chat_request(&gw, scenario, chat("gpt-4o-mini", r#","stream":true"#))
            .send()
            .await
            .expect("the gateway answers");
        assert_eq!(response.status().as_u16(), status, "{scenario}");
        response.bytes().await.expect("body");
        expected.push((status, reason));
    }
    let cut = chat_request(&gw, "cut-stream", chat("gpt-4o-mini", r#","stream":true"#))
        .send()
        .await
        .expect("the gateway answers");
    assert!(cut.bytes().await.is_err(), "a cut stream is an error");
    expected.push((200, "upstream_stream_error"));

    normal_request(&gw).await;
    expected.push((200, "ok"));
    let lines = exactly_lines(&gw, expected.len()).await;
    let m = gw.metrics().await;
    for (status, reason) in &expected {
        let want = expected
            .iter()
            .filter(|e| *e == &(*status, *reason))
            .count();
        let labels = [("status", &*status.to_string()), ("reason", *reason)];
        assert_eq!(m.sum(REQUESTS, &labels), want as f64, "{labels:?}");
        let logged = lines_with(&lines, *status, (*reason != "ok").then_some(*reason));
        assert_eq!(logged.len(), want, "log lines for {labels:?}");
    }
    assert_eq!(m.sum(REQUESTS, &[]), expected.len() as f64);
    gw.shutdown().await;
}
