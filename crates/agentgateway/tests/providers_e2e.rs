//! End-to-end over real sockets for the OpenAI-format providers beyond OpenAI itself: Azure
//! OpenAI (both URL shapes, its `api-key` header, its system name) and an Anthropic Messages
//! client (Claude-Code style) whose model lives on an OpenAI-compatible provider, JSON and stream,
//! metered once with the provider's numbers.

mod support;

use support::fake_openai::{FakeOpenAi, MODEL_SUFFIX};
use support::gateway::{config_with_upstream, TestGateway};

const TOKENS: &str = "agentgateway_gen_ai_client_token_usage_sum";

/// The fake's usage (see fake_openai's CHAT_USAGE): prompt 11 of which 3 cached, completion 7 of
/// which 2 reasoning.
const PROMPT: u64 = 11;
const CACHED: u64 = 3;
const COMPLETION: u64 = 7;

fn azure_root(fake: &FakeOpenAi) -> String {
    fake.base_url().trim_end_matches("/v1").to_owned() + "/openai"
}

#[tokio::test]
async fn azure_dated_and_v1_urls_with_api_key_header() {
    let fake = FakeOpenAi::start().await;
    let yaml = r#"
llm:
  models:
  - name: gpt-4o-prod
    provider: azure
    params: {baseUrl: '{upstream}', apiKey: az-key-1, azureApiVersion: 2024-10-21}
  - name: gpt-4o-v1
    provider: azure
    params: {baseUrl: '{upstream}', apiKey: az-key-1, azureApiVersion: v1, model: gpt-4o}
"#;
    let gw = TestGateway::start(&config_with_upstream(yaml, &azure_root(&fake))).await;
    for model in ["gpt-4o-prod", "gpt-4o-v1"] {
        let body =
            format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#);
        let response = gw.post("/v1/chat/completions?x=1", None, &body).await;
        assert_eq!(response.status(), 200, "{model}");
        let json: serde_json::Value = response.json().await.unwrap();
        assert_eq!(json["usage"]["prompt_tokens"], PROMPT);
    }
    let requests = fake.requests();
    assert_eq!(
        requests[0].path,
        "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(requests[1].path, "/openai/v1/chat/completions?x=1");
    assert_eq!(requests[1].json()["model"], "gpt-4o");
    for request in &requests {
        assert_eq!(request.header("api-key"), Some("az-key-1"));
        assert_eq!(request.header("authorization"), None);
    }
    let lines = gw.wait_for_log_lines(2).await;
    assert!(
        lines[0].contains("gen_ai.provider.name=azure.ai.openai"),
        "{}",
        lines[0]
    );
    let m = gw.metrics().await;
    let input = [
        ("gen_ai_system", "azure.ai.openai"),
        ("gen_ai_token_type", "input"),
    ];
    assert_eq!(m.sum(TOKENS, &input), 2.0 * PROMPT as f64);
    gw.shutdown().await;
}

#[tokio::test]
async fn azure_resource_name_builds_the_host() {
    let yaml = r#"
llm:
  models:
  - name: gpt-4o
    provider: azure
    params: {azureResourceName: my-resource, azureApiVersion: 2024-10-21, apiKey: k}
"#;
    let config = agentgateway::config::Config::from_yaml(yaml, &|_| None).unwrap();
    let router = agentgateway::routing::Router::new(&config.llm.models).unwrap();
    let route = router.select("gpt-4o").unwrap();
    assert_eq!(
        route.info.endpoint.as_ref(),
        "my-resource.openai.azure.com:443"
    );
    let missing = r#"
llm:
  models:
  - name: gpt-4o
    provider: azure
    params: {apiKey: k}
"#;
    let error = agentgateway::config::Config::from_yaml(missing, &|_| None).unwrap_err();
    assert!(error.to_string().contains("azureResourceName"), "{error}");
}

const ANTHROPIC_CLIENT: &str = r#"
config:
  metrics:
    fields:
      add: {user_id: 'apiKey.user'}
llm:
  policies:
    apiKey:
      mode: strict
      keys:
      - key: sk-claude-code
        metadata: {user: carol}
  models:
  - name: claude-sonnet-4-5
    provider: vllm
    params: {baseUrl: '{upstream}', model: qwen3-coder}
"#;

fn messages_body(stream: bool) -> String {
    format!(
        r#"{{"model":"claude-sonnet-4-5","max_tokens":256,"stream":{stream},"system":[{{"type":"text","text":"You are terse.","cache_control":{{"type":"ephemeral"}}}}],"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

async fn post_messages(gw: &TestGateway, body: &str) -> reqwest::Response {
    gw.client
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", "sk-claude-code")
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn anthropic_client_on_an_openai_compatible_model() {
    let fake = FakeOpenAi::start().await;
    let gw = TestGateway::start(&config_with_upstream(ANTHROPIC_CLIENT, &fake.base_url())).await;
    let response = post_messages(&gw, &messages_body(false)).await;
    assert_eq!(response.status(), 200);
    let message: serde_json::Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], format!("qwen3-coder{MODEL_SUFFIX}"));
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["input_tokens"], PROMPT - CACHED);
    assert_eq!(message["usage"]["cache_read_input_tokens"], CACHED);
    assert_eq!(message["usage"]["output_tokens"], COMPLETION);
    assert!(message["content"][0]["text"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    // The provider got an OpenAI Chat request, without the Anthropic headers or the caller's key.
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    let body = sent.json();
    assert_eq!(body["model"], "qwen3-coder");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(sent.header("anthropic-version"), None);
    assert_eq!(sent.header("x-api-key"), None);

    // Streamed: Anthropic events for the client, the provider's usage for the meter.
    let response = post_messages(&gw, &messages_body(true)).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let events: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .collect();
    assert_eq!(events.first(), Some(&"message_start"));
    assert_eq!(events.last(), Some(&"message_stop"));
    assert!(events.contains(&"content_block_delta"), "{text}");
    let sent = fake.requests()[1].json();
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"]["include_usage"], true);

    gw.wait_for_log_lines(2).await;
    let m = gw.metrics().await;
    let by = |kind| m.sum(TOKENS, &[("user_id", "carol"), ("gen_ai_token_type", kind)]);
    // Metered once per request, with OpenAI's (cache-inclusive) input.
    assert_eq!(by("input"), 2.0 * PROMPT as f64);
    assert_eq!(by("output"), 2.0 * COMPLETION as f64);
    assert_eq!(by("input_cache_read"), 2.0 * CACHED as f64);
    let series = &m.select(TOKENS, &[("gen_ai_token_type", "input")])[0];
    assert_eq!(series.labels["gen_ai_system"], "vllm");
    assert_eq!(series.labels["gen_ai_request_model"], "claude-sonnet-4-5");
    assert_eq!(
        series.labels["gen_ai_response_model"],
        format!("qwen3-coder{MODEL_SUFFIX}")
    );
    assert_eq!(series.labels["gen_ai_operation_name"], "chat");
    gw.shutdown().await;
}

#[tokio::test]
async fn anthropic_client_gets_anthropic_shaped_errors() {
    let fake = FakeOpenAi::start().await;
    let gw = TestGateway::start(&config_with_upstream(ANTHROPIC_CLIENT, &fake.base_url())).await;
    // The gateway's own refusals on /v1/messages.
    let unauthenticated = gw
        .client
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", "sk-wrong")
        .body(messages_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let body: serde_json::Value = unauthenticated.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    let unknown = post_messages(
        &gw,
        &messages_body(false).replace("claude-sonnet-4-5", "nope"),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let body: serde_json::Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found_error");
    // A provider error, translated from OpenAI's shape, status kept.
    let limited = gw
        .client
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", "sk-claude-code")
        .header("x-fake-scenario", "error-429")
        .body(messages_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    // count_tokens on a provider without it: the gateway's tokenizer answers.
    let counted = gw
        .client
        .post(format!("{}/v1/messages/count_tokens", gw.url))
        .header("x-api-key", "sk-claude-code")
        .body(
            r#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"hello there"}]}"#,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(counted.status(), 200);
    let body: serde_json::Value = counted.json().await.unwrap();
    assert!(
        body["input_tokens"].as_u64().is_some_and(|n| n > 0),
        "{body}"
    );
    let lines = gw.wait_for_log_lines(4).await;
    assert!(
        lines.iter().any(|l| l.contains("http.status=429")),
        "{lines:?}"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn mistral_is_not_sent_stream_options_and_its_own_usage_is_metered() {
    let fake = FakeOpenAi::start().await;
    let yaml = r#"
llm:
  models:
  - name: mistral-large-latest
    provider: mistral
    params: {baseUrl: '{upstream}', apiKey: mk}
"#;
    let gw = TestGateway::start(&config_with_upstream(yaml, &fake.base_url())).await;
    let body = r#"{"model":"mistral-large-latest","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let response = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .header("x-fake-scenario", "usage-every-chunk")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    // Untouched: the usage Mistral sends on its own reaches the caller as it would directly.
    assert_eq!(text.matches(r#""prompt_tokens":11"#).count(), 5, "{text}");
    let sent = fake.requests()[0].json();
    assert!(sent.get("stream_options").is_none(), "{sent}");
    gw.wait_for_log_lines(1).await;
    let m = gw.metrics().await;
    let kind = |k| {
        m.sum(
            TOKENS,
            &[("gen_ai_system", "mistral_ai"), ("gen_ai_token_type", k)],
        )
    };
    assert_eq!(kind("input"), PROMPT as f64);
    // Running totals: the last chunk's count, not their sum.
    assert_eq!(kind("output"), COMPLETION as f64);
    gw.shutdown().await;
}
