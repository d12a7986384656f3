//! End-to-end over real sockets: a client -> the gateway (in-process, 127.0.0.1:0) -> the fake
//! OpenAI provider (127.0.0.1:0). Checks what the client receives byte for byte, what the provider
//! receives, the exact metric values after known traffic, and the access-log lines.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use support::fake_openai::{chat_stream_bytes, responses_stream_bytes, FakeOpenAi, MODEL_SUFFIX};
use support::gateway::{config_with_upstream, TestGateway};

const CONFIG: &str = r#"
config:
  logging:
    fields:
      add: {user: 'apiKey.user'}
  metrics:
    fields:
      add: {user_id: 'apiKey.user'}
llm:
  policies:
    apiKey:
      mode: strict
      keys:
      - key: sk-alice
        metadata: {user: alice, team: search}
      - key: sk-bob
        metadata: {user: bob, team: ads}
  models:
  - name: gpt-4o-mini
    provider: openAI
    params: {baseUrl: '{upstream}', apiKey: sk-provider}
  - name: alias
    provider: openAI
    params: {baseUrl: '{upstream}', apiKey: sk-provider, model: gpt-4o}
  - name: text-*
    provider: openAI
    params: {baseUrl: '{upstream}', apiKey: sk-provider}
"#;

const TOKENS: &str = "agentgateway_gen_ai_client_token_usage_sum";
const TOKENS_COUNT: &str = "agentgateway_gen_ai_client_token_usage_count";

async fn setup() -> (FakeOpenAi, TestGateway) {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_upstream(CONFIG, &fake.base_url())).await;
    (fake, gateway)
}

fn chat(model: &str, extra: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#)
}

#[tokio::test]
async fn per_user_token_usage_equals_what_the_provider_reported() {
    let (fake, gw) = setup().await;
    for key in ["sk-alice", "sk-alice", "sk-bob"] {
        let response = gw
            .post("/v1/chat/completions", Some(key), &chat("gpt-4o-mini", ""))
            .await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["usage"]["prompt_tokens"], 11);
    }
    gw.wait_for_log_lines(3).await;
    let m = gw.metrics().await;
    let alice = [("user_id", "alice")];
    let by = |user: &'static str, kind: &'static str| {
        m.sum(TOKENS, &[("user_id", user), ("gen_ai_token_type", kind)])
    };
    assert_eq!(by("alice", "input"), 22.0);
    assert_eq!(by("alice", "output"), 14.0);
    assert_eq!(by("alice", "input_cache_read"), 6.0);
    assert_eq!(by("alice", "output_reasoning"), 4.0);
    assert_eq!(by("bob", "input"), 11.0);
    assert_eq!(by("bob", "output"), 7.0);
    assert_eq!(
        m.sum(
            TOKENS_COUNT,
            &[("user_id", "alice"), ("gen_ai_token_type", "input")]
        ),
        2.0
    );
    // The seed's query: sum by (user_id) over input|output.
    let seed_alice: f64 = m
        .select(TOKENS, &alice)
        .iter()
        .filter(|s| matches!(s.labels["gen_ai_token_type"].as_str(), "input" | "output"))
        .map(|s| s.value)
        .sum();
    assert_eq!(seed_alice, 36.0);
    // No cache-write usage was reported, so there is no such series.
    assert!(m
        .select(TOKENS, &[("gen_ai_token_type", "input_cache_write")])
        .is_empty());
    let series = &m.select(
        TOKENS,
        &[("user_id", "bob"), ("gen_ai_token_type", "input")],
    )[0];
    assert_eq!(series.labels["gen_ai_operation_name"], "chat");
    assert_eq!(series.labels["gen_ai_system"], "openai");
    assert_eq!(series.labels["gen_ai_request_model"], "gpt-4o-mini");
    assert_eq!(
        series.labels["gen_ai_response_model"],
        format!("gpt-4o-mini{MODEL_SUFFIX}")
    );
    assert_eq!(series.labels["route"], "llm/gpt-4o-mini");
    let ok = [("status", "200"), ("user_id", "alice"), ("protocol", "llm")];
    assert_eq!(m.sum("agentgateway_requests_total", &ok), 2.0);
    // The provider saw its own key, never the caller's.
    for request in fake.requests() {
        assert_eq!(request.header("authorization"), Some("Bearer sk-provider"));
    }
    gw.shutdown().await;
}

#[tokio::test]
async fn stream_without_include_usage_is_metered_and_unchanged_for_the_client() {
    let (fake, gw) = setup().await;
    let body = chat("gpt-4o-mini", r#","stream":true"#);
    let response = gw.post("/v1/chat/completions", Some("sk-bob"), &body).await;
    assert_eq!(response.status(), 200);
    let received = response.bytes().await.unwrap();
    let model = format!("gpt-4o-mini{MODEL_SUFFIX}");
    assert_eq!(
        String::from_utf8_lossy(&received),
        String::from_utf8_lossy(&chat_stream_bytes(&model, false)),
        "the client must get exactly what it would have got without the gateway"
    );
    // The gateway asked the provider for usage on its own...
    let sent = fake.requests()[0].json();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    // ...and metered it.
    gw.wait_for_log_lines(1).await;
    let m = gw.metrics().await;
    assert_eq!(
        m.sum(
            TOKENS,
            &[("user_id", "bob"), ("gen_ai_token_type", "output")]
        ),
        7.0
    );
    assert_eq!(
        m.sum(
            TOKENS,
            &[("user_id", "bob"), ("gen_ai_token_type", "input")]
        ),
        11.0
    );
    let ttft = "agentgateway_gen_ai_server_time_to_first_token_count";
    assert_eq!(m.sum(ttft, &[("user_id", "bob")]), 1.0);
    gw.shutdown().await;
}

#[tokio::test]
async fn stream_with_include_usage_passes_through_byte_for_byte() {
    let (_fake, gw) = setup().await;
    let body = chat(
        "gpt-4o-mini",
        r#","stream":true,"stream_options":{"include_usage":true}"#,
    );
    let received = gw
        .post("/v1/chat/completions", Some("sk-alice"), &body)
        .await
        .bytes()
        .await
        .unwrap();
    let model = format!("gpt-4o-mini{MODEL_SUFFIX}");
    assert_eq!(
        received.as_ref(),
        chat_stream_bytes(&model, true).as_slice()
    );
    gw.wait_for_log_lines(1).await;
    let m = gw.metrics().await;
    assert_eq!(
        m.sum(
            TOKENS,
            &[("user_id", "alice"), ("gen_ai_token_type", "input")]
        ),
        11.0
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn streamed_events_reach_the_client_before_the_upstream_finishes() {
    let (_fake, gw) = setup().await;
    let response = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("sk-alice")
        .header("x-fake-scenario", "slow-stream")
        .body(chat("gpt-4o-mini", r#","stream":true"#))
        .send()
        .await
        .unwrap();
    let start = Instant::now();
    let mut stream = response.bytes_stream();
    let first = stream.next().await.unwrap().unwrap();
    let first_at = start.elapsed();
    assert!(first.starts_with(b"data: "), "{first:?}");
    let mut rest = 0;
    while let Some(chunk) = stream.next().await {
        rest += chunk.unwrap().len();
    }
    let end_at = start.elapsed();
    assert!(rest > 0);
    // The fake spaces its events 300 ms apart: a buffering gateway would deliver everything at
    // the end. The first event must come well before the last (not a speed target: a behaviour).
    assert!(
        end_at - first_at >= Duration::from_millis(900),
        "first event at {first_at:?}, end at {end_at:?}: the stream was buffered"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn model_is_rewritten_and_labels_keep_the_requested_name() {
    let (fake, gw) = setup().await;
    let response = gw
        .post("/v1/chat/completions", Some("sk-alice"), &chat("alias", ""))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(fake.requests()[0].json()["model"], "gpt-4o");
    gw.wait_for_log_lines(1).await;
    let m = gw.metrics().await;
    let series = m.select(TOKENS, &[("gen_ai_token_type", "input")]);
    assert_eq!(series[0].labels["gen_ai_request_model"], "alias");
    assert_eq!(
        series[0].labels["gen_ai_response_model"],
        format!("gpt-4o{MODEL_SUFFIX}")
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn embeddings_and_responses_are_metered_with_their_operation() {
    let (_fake, gw) = setup().await;
    let embed = r#"{"model":"text-embedding-3-small","input":"hello"}"#;
    assert_eq!(
        gw.post("/v1/embeddings", Some("sk-alice"), embed)
            .await
            .status(),
        200
    );
    let responses = r#"{"model":"gpt-4o-mini","input":"hi","stream":true}"#;
    let streamed = gw
        .post("/responses", Some("sk-alice"), responses)
        .await
        .bytes()
        .await
        .unwrap();
    let model = format!("gpt-4o-mini{MODEL_SUFFIX}");
    assert_eq!(streamed.as_ref(), responses_stream_bytes(&model).as_slice());
    gw.wait_for_log_lines(2).await;
    let m = gw.metrics().await;
    let embeddings = [("gen_ai_operation_name", "embeddings")];
    assert_eq!(
        m.sum(TOKENS, &[embeddings[0], ("gen_ai_token_type", "input")]),
        5.0
    );
    assert!(m
        .select(TOKENS, &[embeddings[0], ("gen_ai_token_type", "output")])
        .is_empty());
    let chat = [
        ("gen_ai_operation_name", "chat"),
        ("gen_ai_request_model", "gpt-4o-mini"),
    ];
    let kind = |k| m.sum(TOKENS, &[chat[0], chat[1], ("gen_ai_token_type", k)]);
    assert_eq!((kind("input"), kind("output")), (20.0, 9.0));
    assert_eq!(
        (kind("input_cache_read"), kind("output_reasoning")),
        (5.0, 4.0)
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn access_log_line_has_the_contract_keys_in_order() {
    let (fake, gw) = setup().await;
    let response = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("sk-alice")
        .header("x-request-id", "req-123")
        .body(chat("gpt-4o-mini", ""))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "req-123");
    response.bytes().await.unwrap();
    let line = gw.wait_for_log_lines(1).await.remove(0);
    let (timestamp, rest) = line.split_once('\t').unwrap();
    assert!(
        timestamp.ends_with('Z') && timestamp.len() == 27,
        "{timestamp}"
    );
    let fields = rest.strip_prefix("info\trequest ").unwrap();
    // Mask what varies from run to run: the client port and the duration.
    let masked: Vec<String> = fields
        .split(' ')
        .map(|kv| match kv.split_once('=') {
            Some(("src.addr", _)) => "src.addr=<src>".to_owned(),
            Some(("duration", d)) if d.ends_with("ms") => "duration=<ms>".to_owned(),
            _ => kv.to_owned(),
        })
        .collect();
    let endpoint = fake.addr.to_string();
    let expected = format!(
        "gateway=bind/4000 listener=llm route=llm/gpt-4o-mini endpoint={endpoint} src.addr=<src> \
         http.method=POST http.host=127.0.0.1 http.path=/v1/chat/completions http.version=HTTP/1.1 \
         http.status=200 protocol=llm gen_ai.operation.name=chat gen_ai.provider.name=openai \
         gen_ai.request.model=gpt-4o-mini gen_ai.response.model=gpt-4o-mini{MODEL_SUFFIX} \
         gen_ai.usage.input_tokens=11 gen_ai.usage.output_tokens=7 \
         gen_ai.usage.cache_read.input_tokens=3 gen_ai.usage.reasoning.output_tokens=2 \
         gen_ai.request.stream=false agw.ai.usage.cost.total=0.000005625 user=alice \
         request.id=req-123 duration=<ms>"
    );
    // gpt-4o-mini at $0.15 / $0.075 cached / $0.60 per 1M: 8 * 0.15 + 3 * 0.075 + 7 * 0.6 = 5.625
    // millionths of a dollar.
    assert_eq!(masked.join(" "), expected);
    assert!(!line.contains("sk-alice") && !line.contains("sk-provider"));
    // The provider got the same request id.
    assert_eq!(fake.requests()[0].header("x-request-id"), Some("req-123"));
    gw.shutdown().await;
}

#[tokio::test]
async fn an_openai_compatible_preset_is_metered_under_its_own_system_name() {
    let fake = FakeOpenAi::start().await;
    let yaml = r#"
llm:
  models:
  - name: llama-3.3-70b-versatile
    provider: groq
    params: {baseUrl: '{upstream}', apiKey: gsk-test}
"#;
    let gw = TestGateway::start(&config_with_upstream(yaml, &fake.base_url())).await;
    let response = gw
        .post(
            "/v1/chat/completions",
            None,
            &chat("llama-3.3-70b-versatile", ""),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        fake.requests()[0].header("authorization"),
        Some("Bearer gsk-test")
    );
    let lines = gw.wait_for_log_lines(1).await;
    assert!(
        lines[0].contains("gen_ai.provider.name=groq"),
        "{}",
        lines[0]
    );
    let m = gw.metrics().await;
    assert_eq!(
        m.sum(
            TOKENS,
            &[("gen_ai_system", "groq"), ("gen_ai_token_type", "input")]
        ),
        11.0
    );
    gw.shutdown().await;
}
