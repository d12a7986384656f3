//! External-client test of the metrics exposition: the real `promtool` must accept our text
//! format 0.0.4, and a real Prometheus (Debian 12 ships 2.42) must scrape us without error, both
//! with its own `Accept` negotiation (it asks for OpenMetrics) and when served the classic text
//! format regardless. This is exactly where the upstream agentgateway breaks ("invalid metric
//! type info"), so it is checked against the binaries rather than against our reading of the spec.
//!
//! Two kinds of target: a minimal hyper server serving one [`Metrics`] (to pin down the exposition
//! alone, and to force the classic format, which Prometheus 2.42 cannot be told to ask for), and
//! the real gateway's stats port after real traffic through it (the seed's flow, end to end).
//! The binaries come from the Debian package `prometheus`; when they are missing the test fails
//! under `CI` and is skipped (with a note) elsewhere.

mod support;

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentgateway::exposition::{content_type, negotiate, Format};
use agentgateway::metrics::Metrics;
use agentgateway::record::{ListenerInfo, RequestError, RequestRecord, RouteInfo};
use agentgateway_wire::{Operation, Usage};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::fake_openai::FakeOpenAi;
use support::gateway::{config_with_upstream, TestGateway};
use support::prometheus::{binaries_available, result_value, Prometheus};

// === the metrics under test ===

const CHAT_INPUT: u64 = 150;
const CHAT_OUTPUT: u64 = 40;

fn base_record(status: u16) -> RequestRecord {
    let listener = Arc::new(ListenerInfo {
        bind: "4000".into(),
        gateway: "bind/4000".into(),
        listener: "llm".into(),
    });
    let (parts, ()) = http::Request::post("/v1/chat/completions")
        .body(())
        .expect("static request")
        .into_parts();
    let src = SocketAddr::from(([127, 0, 0, 1], 5000));
    let mut rec = RequestRecord::new(listener, src, &parts);
    rec.status = status;
    rec.duration = Duration::from_millis(1200);
    rec
}

fn llm_record(operation: Operation, model: &str) -> RequestRecord {
    let mut rec = base_record(200);
    rec.route = Some(Arc::new(RouteInfo {
        route: format!("llm/{model}").into(),
        system: "openai",
        endpoint: "api.openai.com:443".into(),
    }));
    rec.llm.operation = Some(operation);
    rec.llm.request_model = Some(model.into());
    rec.llm.response_model = Some(format!("{model}-2024-07-18"));
    rec
}

/// One `Metrics` where every family has series: a streamed chat with every token type, a
/// failed chat, an embedding, and a 401 the gateway answered itself.
fn populated_metrics() -> Arc<Metrics> {
    let metrics = Metrics::new(vec!["user_id".into()]);
    let alice: [Arc<str>; 1] = ["alice".into()];
    let mut chat = llm_record(Operation::ChatCompletions, "gpt-4o-mini");
    chat.llm.streaming = true;
    chat.ttft = Some(Duration::from_millis(200));
    chat.llm.usage = Usage {
        input_tokens: Some(CHAT_INPUT),
        output_tokens: Some(CHAT_OUTPUT),
        cache_read_input_tokens: Some(100),
        cache_write_input_tokens: Some(20),
        reasoning_output_tokens: Some(10),
    };
    metrics.record(&chat, &alice);

    let mut failed = llm_record(Operation::ChatCompletions, "gpt-4o-mini");
    failed.status = 504;
    failed.error = Some(RequestError::new("upstream_timeout"));
    failed.reason = Some("upstream_error");
    metrics.record(&failed, &alice);

    let mut embed = llm_record(Operation::Embeddings, "text-embedding-3-small");
    embed.llm.usage.input_tokens = Some(8);
    metrics.record(&embed, &["bob".into()]);

    let mut unauthorized = base_record(401);
    unauthorized.reason = Some("unauthorized");
    metrics.record(&unauthorized, &["unknown".into()]);
    Arc::new(metrics)
}

// === a minimal scrape target ===

/// What the target served, per scrape: the scraper's `Accept` and the chosen format.
type ScrapeLog = Arc<Mutex<Vec<(String, Format)>>>;

/// Serves `metrics` at any path on 127.0.0.1:0; `forced` ignores the scraper's `Accept`.
async fn serve(metrics: Arc<Metrics>, forced: Option<Format>) -> (SocketAddr, ScrapeLog) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let log = ScrapeLog::default();
    let served = log.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (metrics, served) = (metrics.clone(), served.clone());
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let accept = req.headers().get(http::header::ACCEPT);
                let format = forced.unwrap_or_else(|| negotiate(accept));
                let accept = accept
                    .and_then(|a| a.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                served.lock().expect("log lock").push((accept, format));
                let response = http::Response::builder()
                    .header(http::header::CONTENT_TYPE, content_type(format))
                    .body(Full::new(Bytes::from(metrics.encode(format))));
                async move { response }
            });
            tokio::spawn(async move {
                let io = TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (addr, log)
}

// === promtool ===

/// Runs `promtool check metrics` on `text`; returns its exit status and combined output.
fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    let mut report = String::from_utf8_lossy(&out.stdout).into_owned();
    report.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), report)
}

#[test]
fn promtool_accepts_the_text_format() {
    if !binaries_available() {
        return;
    }
    let metrics = populated_metrics();
    let text = metrics.encode(Format::Text004);
    let (ok, report) = promtool_check(&text);
    println!("promtool check metrics (Text004 encoder): ok={ok}\n{report}");
    assert!(ok, "promtool rejected our 0.0.4 text:\n{report}\n{text}");
}

/// Scrapes a fresh target with a fresh Prometheus and checks what it stored.
async fn scrape_with_prometheus(forced: Option<Format>, expect_format: Format) {
    let (addr, served) = serve(populated_metrics(), forced).await;
    let prometheus = Prometheus::start(addr);
    let target = prometheus.wait_for_healthy_target().await;
    println!("target: {target:#}");
    let scrapes = served.lock().expect("log lock").clone();
    println!("scrapes served (Accept, format): {scrapes:?}");
    assert!(
        scrapes.iter().all(|(_, f)| *f == expect_format),
        "{scrapes:?}"
    );

    let sums = prometheus
        .query("agentgateway_gen_ai_client_token_usage_sum")
        .await;
    let chat = [("gen_ai_operation_name", "chat"), ("user_id", "alice")];
    let input = [chat.as_slice(), &[("gen_ai_token_type", "input")]].concat();
    assert_eq!(result_value(&sums, &input), CHAT_INPUT as f64);
    let cache_write = [
        chat.as_slice(),
        &[("gen_ai_token_type", "input_cache_write")],
    ]
    .concat();
    assert_eq!(result_value(&sums, &cache_write), 20.0);
    let per_user = prometheus
        .query(r#"sum by (user_id) (agentgateway_gen_ai_client_token_usage_sum{gen_ai_token_type=~"input|output"})"#)
        .await;
    assert_eq!(
        result_value(&per_user, &[("user_id", "alice")]),
        (CHAT_INPUT + CHAT_OUTPUT) as f64
    );
    let requests = prometheus.query("agentgateway_requests_total").await;
    let unauthorized = [
        ("status", "401"),
        ("backend", "unknown"),
        ("route", "unknown"),
    ];
    assert_eq!(result_value(&requests, &unauthorized), 1.0);
    let errors = prometheus
        .query(
            r#"agentgateway_gen_ai_server_request_duration_count{error_type="upstream_timeout"}"#,
        )
        .await;
    assert_eq!(result_value(&errors, &[]), 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_with_its_own_negotiation() {
    if !binaries_available() {
        return;
    }
    // Prometheus 2.x prefers OpenMetrics; 3.x too (after protobuf, which we do not offer).
    scrape_with_prometheus(None, Format::OpenMetrics).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_classic_text_format() {
    if !binaries_available() {
        return;
    }
    scrape_with_prometheus(Some(Format::Text004), Format::Text004).await;
}

const SEED_CONFIG: &str = r#"
config:
  metrics:
    fields:
      add: {user_id: 'apiKey.user'}
llm:
  policies:
    apiKey:
      keys:
      - key: sk-alice
        metadata: {user: alice}
      - key: sk-bob
        metadata: {user: bob}
  models:
  - name: gpt-4o-mini
    provider: openAI
    params: {baseUrl: '{upstream}', apiKey: sk-provider}
"#;

/// The seed's flow: traffic through the gateway, Prometheus scraping the gateway's own stats port,
/// and the seed's per-user PromQL equal to what the provider reported (11 in + 7 out per call).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sees_per_user_totals_from_the_gateway() {
    if !binaries_available() {
        return;
    }
    let fake = FakeOpenAi::start().await;
    let gw = TestGateway::start(&config_with_upstream(SEED_CONFIG, &fake.base_url())).await;
    let chat = r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let stream =
        r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    for (key, body) in [("sk-alice", chat), ("sk-alice", stream), ("sk-bob", chat)] {
        let response = gw.post("/v1/chat/completions", Some(key), body).await;
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("body");
    }
    gw.wait_for_log_lines(3).await;
    let stats: SocketAddr = gw
        .stats_url
        .trim_start_matches("http://")
        .parse()
        .expect("addr");
    let prometheus = Prometheus::start(stats);
    prometheus.wait_for_healthy_target().await;
    let query = r#"sum by (user_id) (agentgateway_gen_ai_client_token_usage_sum{gen_ai_token_type=~"input|output"})"#;
    let per_user = prometheus.query(query).await;
    assert_eq!(result_value(&per_user, &[("user_id", "alice")]), 36.0);
    assert_eq!(result_value(&per_user, &[("user_id", "bob")]), 18.0);
    let seed = "sum by (user_id) (agentgateway_gen_ai_client_token_usage_sum{gen_ai_token_type=\"input\"} \
                + ignoring(gen_ai_token_type) agentgateway_gen_ai_client_token_usage_sum{gen_ai_token_type=\"output\"})";
    let seed_result = prometheus.query(seed).await;
    assert_eq!(result_value(&seed_result, &[("user_id", "bob")]), 18.0);
    gw.shutdown().await;
}
