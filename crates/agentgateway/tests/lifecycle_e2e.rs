//! The gateway's life around the requests: readiness, graceful shutdown (in-flight streams finish
//! and are still logged and metered; new connections get no service; a drain timeout bounds it),
//! HTTP/2 prior knowledge and TLS on the LLM port, the stats endpoint's format negotiation, the
//! JSON log format and the log filter, and the built binary itself (`--version`, `--help`,
//! `--validate-only`, and a real run of `examples/local.yaml` ended by SIGTERM). Everything runs
//! over real sockets against the fake OpenAI provider, and every wait is bounded.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agentgateway::accesslog::LogSink;
use agentgateway::config::Config;
use agentgateway::{Gateway, Listeners, Options, RunningGateway};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use support::fake_openai::{chat_stream_bytes, FakeOpenAi, MODEL_SUFFIX, SCENARIO_HEADER};
use support::gateway::{config_with_upstream, TestGateway};

const CONFIG: &str = r#"
config:
  drainTimeout: '{drain}'
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

const KEY: &str = "sk-alice";
const REQUESTS: &str = "agentgateway_requests_total";
const TOKENS: &str = "agentgateway_gen_ai_client_token_usage_sum";
const PROMETHEUS3_ACCEPT: &str =
    "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1";

fn config(fake: &FakeOpenAi, drain: &str) -> String {
    config_with_upstream(CONFIG, &fake.base_url()).replace("{drain}", drain)
}

fn chat(model: &str, extra: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#)
}

fn stream_body() -> String {
    chat("gpt-4o-mini", r#","stream":true"#)
}

fn full_stream() -> Vec<u8> {
    chat_stream_bytes(&format!("gpt-4o-mini{MODEL_SUFFIX}"), false)
}

/// The value of `key=` in a text access-log line (unquoted values only).
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// === a gateway whose log outlives it ===

/// Like the shared `TestGateway`, but the memory log stays readable after shutdown, which is when
/// a drained request's line must be there.
struct Owned {
    running: RunningGateway,
    log: Arc<Mutex<Vec<String>>>,
    url: String,
    readiness_url: String,
}

impl Owned {
    async fn start(yaml: &str) -> Owned {
        let config = Config::from_yaml(yaml, &|_| None).expect("test config must load");
        let log = Arc::new(Mutex::new(Vec::new()));
        let options = Options {
            log_sink: LogSink::Memory(log.clone()),
            log_format: None,
            clock: None,
        };
        let gateway = Gateway::build(&config, options).expect("test config must build");
        let listeners = Listeners {
            llm: local_listener().await,
            stats: Some(local_listener().await),
            readiness: Some(local_listener().await),
            admin: None,
        };
        let running = gateway.start(listeners).await.expect("gateway starts");
        Owned {
            url: format!("http://{}", running.llm_addr),
            readiness_url: format!("http://{}", running.readiness_addr.expect("readiness")),
            running,
            log,
        }
    }

    fn lines(log: &Mutex<Vec<String>>) -> Vec<String> {
        log.lock().expect("log lock").clone()
    }
}

async fn local_listener() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

async fn start_slow_stream(client: &reqwest::Client, url: &str) -> (Vec<u8>, StreamOf) {
    let response = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .header(SCENARIO_HEADER, "slow-stream")
        .body(stream_body())
        .send()
        .await
        .expect("the gateway answers");
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream().boxed();
    let first = stream.next().await.expect("a first chunk").expect("data");
    assert!(first.starts_with(b"data: "), "{first:?}");
    (first.to_vec(), stream)
}

type StreamOf = futures_util::stream::BoxStream<'static, reqwest::Result<Bytes>>;

/// Reads the rest of a stream; Err if it broke.
async fn read_rest(mut stream: StreamOf, mut received: Vec<u8>) -> Result<Vec<u8>, Vec<u8>> {
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => return Err(received),
        }
    }
    Ok(received)
}

// === readiness and graceful shutdown ===

#[tokio::test]
async fn graceful_shutdown_lets_the_in_flight_stream_finish_and_records_it() {
    let fake = FakeOpenAi::start().await;
    let gw = Owned::start(&config(&fake, "30s")).await;
    let ready_url = format!("{}/healthz/ready", gw.readiness_url);
    let client = reqwest::Client::new();
    let ready = client.get(&ready_url).send().await.expect("readiness port");
    assert_eq!(ready.status(), 200, "ready while serving");

    let (first, stream) = start_slow_stream(&client, &gw.url).await;
    let log = gw.log.clone();
    let url = gw.url.clone();
    let shutdown = tokio::spawn(gw.running.shutdown());

    // Readiness turns 503 (or the port stops answering) while the stream is still going.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match reqwest::Client::new().get(&ready_url).send().await {
            Ok(r) if r.status() == 200 => {
                assert!(
                    Instant::now() < deadline,
                    "readiness still 200 while draining"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(r) => {
                assert_eq!(r.status(), 503, "readiness while draining");
                break;
            }
            Err(_) => break,
        }
    }
    assert!(!shutdown.is_finished(), "shutdown waits for the stream");

    // A new connection to the LLM port gets no service.
    let attempt = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(KEY)
        .timeout(Duration::from_secs(5))
        .body(chat("gpt-4o-mini", ""))
        .send()
        .await;
    if let Ok(response) = attempt {
        panic!("a new connection was served while draining: {response:?}");
    }

    // The in-flight stream completes, byte for byte.
    let received = read_rest(stream, first)
        .await
        .expect("the in-flight stream must not be cut by a graceful shutdown");
    assert_eq!(
        String::from_utf8_lossy(&received),
        String::from_utf8_lossy(&full_stream())
    );
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown returns once the stream is done")
        .expect("shutdown task");

    let lines = Owned::lines(&log);
    assert_eq!(lines.len(), 1, "only the stream was served: {lines:#?}");
    let line = &lines[0];
    assert_eq!(field(line, "http.status"), Some("200"), "{line}");
    assert_eq!(
        field(line, "gen_ai.usage.input_tokens"),
        Some("11"),
        "{line}"
    );
    assert_eq!(
        field(line, "gen_ai.usage.output_tokens"),
        Some("7"),
        "{line}"
    );
    assert_eq!(field(line, "gen_ai.request.stream"), Some("true"), "{line}");
    assert_eq!(field(line, "reason"), None, "a completed stream: {line}");
    assert_eq!(fake.request_count(), 1);
}

/// The reason of a request cut short by the drain timeout (the gateway ended it, not the client).
const DRAINED: [&str; 1] = ["drain_timeout"];

#[tokio::test]
async fn drain_timeout_cuts_a_long_stream_and_still_logs_it() {
    let fake = FakeOpenAi::start().await;
    let gw = Owned::start(&config(&fake, "500ms")).await;
    let client = reqwest::Client::new();
    let (first, stream) = start_slow_stream(&client, &gw.url).await;
    let log = gw.log.clone();
    let shutdown = tokio::spawn(gw.running.shutdown());
    // The stream needs about 2 s; the drain timeout is 500 ms, the default would be 30 s.
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("the drain timeout bounds shutdown")
        .expect("shutdown task");
    let outcome = tokio::time::timeout(Duration::from_secs(10), read_rest(stream, first))
        .await
        .expect("the client learns the stream ended");
    let received = outcome.expect_err("a stream cut by the drain timeout is not a clean end");
    assert!(full_stream().starts_with(&received));
    assert!(received.len() < full_stream().len());

    let lines = Owned::lines(&log);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let reason = field(&lines[0], "reason");
    assert!(
        reason.is_some_and(|r| DRAINED.contains(&r)),
        "the aborted stream is logged with why it ended: {}",
        lines[0]
    );
    assert_eq!(field(&lines[0], "http.status"), Some("200"));
}

#[tokio::test]
async fn drain_timeout_aborts_a_hung_request_and_still_logs_it() {
    let fake = FakeOpenAi::start().await;
    let gw = Owned::start(&config(&fake, "500ms")).await;
    let request = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header(SCENARIO_HEADER, "hang")
        .body(chat("gpt-4o-mini", ""))
        .send();
    let client = tokio::spawn(request);
    wait_until(
        "the fake to hold the request",
        Duration::from_secs(10),
        || fake.request_count() == 1,
    )
    .await;
    let log = gw.log.clone();
    tokio::time::timeout(Duration::from_secs(10), gw.running.shutdown())
        .await
        .expect("the drain timeout bounds shutdown");
    let answer = tokio::time::timeout(Duration::from_secs(10), client)
        .await
        .expect("the client is not left hanging")
        .expect("client task");
    if let Ok(response) = answer {
        assert!(!response.status().is_success(), "{response:?}");
    }
    let lines = Owned::lines(&log);
    assert_eq!(lines.len(), 1, "the aborted request is logged: {lines:#?}");
    let reason = field(&lines[0], "reason");
    assert!(reason.is_some_and(|r| DRAINED.contains(&r)), "{}", lines[0]);
}

// === protocols ===

#[tokio::test]
async fn h2c_prior_knowledge_is_served_and_logged_as_http2() {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;

    let fake = FakeOpenAi::start().await;
    let gw = TestGateway::start(&config(&fake, "30s")).await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let send = |body: String| {
        let request = http::Request::post(format!("{}/v1/chat/completions", gw.url))
            .header("authorization", format!("Bearer {KEY}"))
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        client.request(request)
    };
    let response = send(chat("gpt-4o-mini", "")).await.expect("h2c response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json: Value = serde_json::from_slice(&body).expect("chat completion");
    assert_eq!(json["usage"]["prompt_tokens"], 11);
    // A stream over the same HTTP/2 connection, unchanged.
    let streamed = send(stream_body()).await.expect("h2c stream");
    assert_eq!(streamed.status(), 200);
    let bytes = streamed
        .into_body()
        .collect()
        .await
        .expect("stream")
        .to_bytes();
    assert_eq!(bytes.as_ref(), full_stream().as_slice());

    let lines = gw.wait_for_log_lines(2).await;
    for line in &lines {
        assert_eq!(field(line, "http.version"), Some("HTTP/2.0"), "{line}");
        assert_eq!(field(line, "http.status"), Some("200"), "{line}");
    }
    let m = gw.metrics().await;
    assert_eq!(m.sum(TOKENS, &[("gen_ai_token_type", "input")]), 22.0);
    gw.shutdown().await;
}

/// A fresh directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("agw-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

#[tokio::test]
async fn tls_on_the_listener_serves_and_meters() {
    let fake = FakeOpenAi::start().await;
    let dir = temp_dir("tls");
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("self-signed cert");
    let cert_pem = certified.cert.pem();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, &cert_pem).expect("write cert");
    std::fs::write(&key, certified.key_pair.serialize_pem()).expect("write key");
    let yaml = config(&fake, "30s").replace(
        "llm:\n",
        &format!(
            "llm:\n  tls: {{cert: '{}', key: '{}'}}\n",
            cert.display(),
            key.display()
        ),
    );
    let gw = TestGateway::start(&yaml).await;
    let addr = gw.running().llm_addr;
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).expect("pem"))
        .resolve("localhost", addr)
        .build()
        .expect("TLS client");
    let response = client
        .post(format!(
            "https://localhost:{}/v1/chat/completions",
            addr.port()
        ))
        .bearer_auth(KEY)
        .body(chat("gpt-4o-mini", ""))
        .send()
        .await
        .expect("TLS request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("chat completion");
    assert_eq!(body["usage"]["completion_tokens"], 7);
    // Plain HTTP on the TLS port is not served.
    let plain = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .timeout(Duration::from_secs(5))
        .body(chat("gpt-4o-mini", ""))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP on a TLS listener: {plain:?}");

    gw.wait_for_log_lines(1).await;
    let m = gw.metrics().await;
    assert_eq!(m.sum(TOKENS, &[("gen_ai_token_type", "input")]), 11.0);
    assert_eq!(m.sum(TOKENS, &[("gen_ai_token_type", "output")]), 7.0);
    assert_eq!(fake.request_count(), 1);
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

// === stats and logs ===

#[tokio::test]
async fn stats_endpoint_negotiates_text_and_openmetrics() {
    let fake = FakeOpenAi::start().await;
    let gw = TestGateway::start(&config(&fake, "30s")).await;
    let ok = gw
        .post("/v1/chat/completions", Some(KEY), &chat("gpt-4o-mini", ""))
        .await;
    assert_eq!(ok.status(), 200);
    ok.bytes().await.expect("body");
    gw.wait_for_log_lines(1).await;
    for path in ["/metrics", "/stats/prometheus"] {
        let url = format!("{}{path}", gw.stats_url);
        let text = gw.client.get(&url).send().await.expect("stats port");
        assert_eq!(text.status(), 200, "{path}");
        let content_type = text.headers()["content-type"].to_str().expect("ascii");
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{path}: {content_type}"
        );
        let body = text.text().await.expect("body");
        assert!(
            !body.contains("# EOF"),
            "{path}: text 0.0.4 has no EOF marker"
        );
        assert!(body.contains("agentgateway_requests_total{"), "{path}");

        let om = gw
            .client
            .get(&url)
            .header("accept", PROMETHEUS3_ACCEPT)
            .send()
            .await
            .expect("stats port");
        assert_eq!(om.status(), 200, "{path}");
        let content_type = om.headers()["content-type"].to_str().expect("ascii");
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{path}: {content_type}"
        );
        let body = om.text().await.expect("body");
        assert!(
            body.ends_with("# EOF\n"),
            "{path}: OpenMetrics ends with # EOF"
        );
        assert!(body.contains("agentgateway_requests_total{"), "{path}");
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn json_log_format_writes_one_json_object_per_request() {
    let fake = FakeOpenAi::start().await;
    let yaml = config(&fake, "30s").replace("config:\n", "config:\n  logging: {format: json}\n");
    let gw = TestGateway::start(&yaml).await;
    let ok = gw
        .post("/v1/chat/completions", Some(KEY), &chat("gpt-4o-mini", ""))
        .await;
    assert_eq!(ok.status(), 200);
    ok.bytes().await.expect("body");
    let missing = gw
        .post("/v1/chat/completions", Some(KEY), &chat("nope", ""))
        .await;
    assert_eq!(missing.status(), 404);
    missing.bytes().await.expect("body");
    let lines = gw.wait_for_log_lines(2).await;
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &parsed {
        assert!(line.is_object(), "{line}");
        assert_eq!(line["message"], "request", "{line}");
        assert_eq!(line["level"], "info", "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
    let ok = parsed
        .iter()
        .find(|l| l["http.status"] == 200)
        .expect("the 200's line, with a numeric status");
    assert_eq!(ok["gen_ai.usage.input_tokens"], 11);
    assert_eq!(ok["gen_ai.usage.output_tokens"], 7);
    assert_eq!(ok["gen_ai.request.model"], "gpt-4o-mini");
    let missing = parsed
        .iter()
        .find(|l| l["http.status"] == 404)
        .expect("the 404's line, with a numeric status");
    assert_eq!(missing["reason"], "model_not_found");
    assert!(missing.get("gen_ai.usage.input_tokens").is_none());
    gw.shutdown().await;
}

#[tokio::test]
async fn log_filter_keeps_only_matching_requests_but_metrics_count_all() {
    let fake = FakeOpenAi::start().await;
    let yaml = config(&fake, "30s").replace(
        "config:\n",
        "config:\n  logging: {filter: 'response.code >= 400'}\n",
    );
    let gw = TestGateway::start(&yaml).await;
    let ok = gw
        .post("/v1/chat/completions", Some(KEY), &chat("gpt-4o-mini", ""))
        .await;
    assert_eq!(ok.status(), 200);
    ok.bytes().await.expect("body");
    let missing = gw
        .post("/v1/chat/completions", Some(KEY), &chat("nope", ""))
        .await;
    assert_eq!(missing.status(), 404);
    missing.bytes().await.expect("body");
    // The 200 finished before the 404 was sent: once the 404's line is there, the 200's would be.
    gw.wait_for_log_lines(1).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lines = gw.log_lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(field(&lines[0], "http.status"), Some("404"), "{}", lines[0]);
    let m = gw.metrics().await;
    assert_eq!(m.sum(REQUESTS, &[("status", "200")]), 1.0);
    assert_eq!(m.sum(REQUESTS, &[("status", "404")]), 1.0);
    assert_eq!(m.sum(TOKENS, &[("gen_ai_token_type", "input")]), 11.0);
    gw.shutdown().await;
}

// === the binary ===

const BIN: &str = env!("CARGO_BIN_EXE_agentgateway");
const LOCAL_EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/local.yaml");

fn run_bin(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT")
        .output()
        .expect("run the agentgateway binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn binary_version_and_help() {
    let version = run_bin(&["--version"]);
    assert!(version.status.success(), "{version:?}");
    assert_eq!(
        text(&version.stdout).trim(),
        format!("agentgateway {}", env!("CARGO_PKG_VERSION"))
    );
    let help = run_bin(&["--help"]);
    assert!(help.status.success(), "{help:?}");
    let out = text(&help.stdout);
    for flag in ["--file", "--validate-only", "--version", "--help"] {
        assert!(out.contains(flag), "--help mentions {flag}: {out}");
    }
}

#[test]
fn validate_only_accepts_the_local_example() {
    let out = run_bin(&["--validate-only", "-f", LOCAL_EXAMPLE]);
    assert!(
        out.status.success(),
        "examples/local.yaml must validate: {}",
        text(&out.stderr)
    );
    assert!(text(&out.stderr).contains("valid"), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "stdout is for the access log only");
}

fn write_config(tag: &str, yaml: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(tag);
    let path = dir.join("config.yaml");
    std::fs::write(&path, yaml).expect("write config");
    (dir, path)
}

fn validate(path: &Path) -> (i32, String) {
    let out = run_bin(&["--validate-only", "-f", path.to_str().expect("utf-8 path")]);
    (out.status.code().expect("exit code"), text(&out.stderr))
}

#[test]
fn validate_only_names_a_typo_and_its_line() {
    let yaml = "llm:\n  port: 4000\n  modles:\n  - name: gpt-4o-mini\n    provider: openAI\n";
    let (dir, path) = write_config("typo", yaml);
    let (code, stderr) = validate(&path);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("modles"), "names the field: {stderr}");
    assert!(
        stderr.contains(":3:3: llm.modles"),
        "names the line and column: {stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn validate_only_names_an_invalid_cel_metric_field() {
    let yaml = concat!(
        "config:\n  metrics:\n    fields:\n      add: {user_id: 'apiKey.user +'}\n",
        "llm:\n  models:\n  - name: gpt-4o-mini\n    provider: openAI\n"
    );
    let (dir, path) = write_config("cel", yaml);
    let (code, stderr) = validate(&path);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("config.metrics.fields.add.user_id"),
        "names the field: {stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Kills the child if the test fails before it exited.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_the_local_example_and_exits_0_on_sigterm() {
    let fake = FakeOpenAi::start().await;
    // The example listens on 4000; use a copy on a free port when 4000 is taken.
    let mut temp = None;
    let (config_path, llm_port) = match std::net::TcpListener::bind("0.0.0.0:4000") {
        Ok(probe) => {
            drop(probe);
            (PathBuf::from(LOCAL_EXAMPLE), 4000)
        }
        Err(_) => {
            let port = free_port();
            let example = std::fs::read_to_string(LOCAL_EXAMPLE).expect("read the example");
            assert!(example.contains("port: 4000\n"));
            let (dir, path) = write_config(
                "local",
                &example.replace("port: 4000\n", &format!("port: {port}\n")),
            );
            temp = Some(dir);
            (path, port)
        }
    };
    let readiness: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let stats: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let child = Command::new(BIN)
        .arg("-f")
        .arg(&config_path)
        .env("LOCAL_LLM_BASE_URL", fake.base_url())
        .env("STATS_ADDR", stats.to_string())
        .env("READINESS_ADDR", readiness.to_string())
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env_remove("RUST_LOG")
        .env_remove("LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let mut child = KillOnDrop(child);

    let client = reqwest::Client::new();
    let ready_url = format!("http://{readiness}/healthz/ready");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("the binary exited early: {status}");
        }
        match client.get(&ready_url).send().await {
            Ok(r) if r.status() == 200 => break,
            _ => {
                assert!(Instant::now() < deadline, "the binary never became ready");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let response = client
        .post(format!("http://127.0.0.1:{llm_port}/v1/chat/completions"))
        .bearer_auth("sk-local-alice")
        .body(chat("llama3.2", ""))
        .send()
        .await
        .expect("the binary answers");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("chat completion");
    assert_eq!(body["usage"]["prompt_tokens"], 11);
    assert_eq!(fake.requests()[0].json()["model"], "llama3.2");
    let scrape = client
        .get(format!("http://{stats}/metrics"))
        .send()
        .await
        .expect("stats port")
        .text()
        .await
        .expect("metrics");
    assert!(
        scrape.contains(r#"user_id="alice""#),
        "the example's per-user label: {scrape}"
    );

    let pid = child.0.id().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for the binary") {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit within 20 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");

    let mut stdout = String::new();
    let mut stderr = String::new();
    use std::io::Read as _;
    let out = child.0.stdout.as_mut().expect("stdout piped");
    out.read_to_string(&mut stdout).expect("read stdout");
    let err = child.0.stderr.as_mut().expect("stderr piped");
    err.read_to_string(&mut stderr).expect("read stderr");

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stdout is exactly one access-log line: {stdout:?}"
    );
    let line = lines[0];
    let (timestamp, rest) = line.split_once('\t').expect("timestamp, tab");
    assert!(
        timestamp.len() == 27 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
        "RFC 3339 UTC microseconds: {timestamp}"
    );
    assert!(rest.starts_with("info\trequest "), "{line}");
    assert_eq!(
        field(line, "gen_ai.usage.input_tokens"),
        Some("11"),
        "{line}"
    );
    assert_eq!(
        field(line, "gen_ai.usage.output_tokens"),
        Some("7"),
        "{line}"
    );
    assert_eq!(field(line, "http.status"), Some("200"), "{line}");
    assert!(!line.contains("sk-local-alice"), "{line}");
    assert!(
        stderr.contains("agentgateway listening"),
        "startup message on stderr: {stderr}"
    );
    assert!(!stderr.contains("sk-local-alice"), "{stderr}");
    if let Some(dir) = temp {
        let _ = std::fs::remove_dir_all(dir);
    }
}
