//! Self-test of the fake OpenAI upstream, talking to it directly with reqwest (no gateway).
//!
//! The end-to-end tests trust the fake's bytes as ground truth, so a mistake here would hide (or
//! invent) gateway bugs; these checks pin the wire format and recording the other tests rely on.

mod support;

use serde_json::{json, Value};
use support::fake_openai::{chat_stream_bytes, FakeOpenAi, MODEL_SUFFIX};

async fn post(fake: &FakeOpenAi, route: &str, scenario: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{route}", fake.base_url()))
        .header("x-fake-scenario", scenario)
        .json(&body)
        .send()
        .await
        .expect("request to fake")
}

fn chat_body(stream: bool, include_usage: bool) -> Value {
    let mut body = json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    });
    if include_usage {
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

#[tokio::test]
async fn non_streaming_chat_reports_usage_and_dated_model() {
    let fake = FakeOpenAi::start().await;
    let resp = post(&fake, "/chat/completions", "ok", chat_body(false, false)).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], format!("gpt-4o-mini{MODEL_SUFFIX}"));
    let usage = &body["usage"];
    assert_eq!(usage["prompt_tokens"], 11);
    assert_eq!(usage["completion_tokens"], 7);
    assert_eq!(usage["total_tokens"], 18);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 3);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 2);
}

#[tokio::test]
async fn streamed_chat_matches_chat_stream_bytes() {
    let fake = FakeOpenAi::start().await;
    let model = format!("gpt-4o-mini{MODEL_SUFFIX}");
    for include_usage in [true, false] {
        let resp = post(
            &fake,
            "/chat/completions",
            "ok",
            chat_body(true, include_usage),
        )
        .await;
        assert_eq!(resp.status(), 200);
        let content_type = resp.headers()["content-type"]
            .to_str()
            .expect("ASCII header");
        assert!(content_type.starts_with("text/event-stream"));
        let got = resp.bytes().await.expect("whole body");
        let want = chat_stream_bytes(&model, include_usage);
        assert_eq!(got, want, "include_usage={include_usage}");
    }
    let with_usage = String::from_utf8(chat_stream_bytes(&model, true)).expect("UTF-8 stream");
    assert!(with_usage.contains(r#""choices":[],"usage":{"prompt_tokens":11"#));
    assert!(with_usage.ends_with("data: [DONE]\n\n"));
    let without = String::from_utf8(chat_stream_bytes(&model, false)).expect("UTF-8 stream");
    assert!(!without.contains("usage"));
}

#[tokio::test]
async fn every_stream_event_is_valid_json() {
    let model = "m";
    let bytes = String::from_utf8(chat_stream_bytes(model, true)).expect("UTF-8 stream");
    let events: Vec<&str> = bytes.split_terminator("\n\n").collect();
    // role, "Hel", "lo", "!", finish, usage, [DONE]
    assert_eq!(events.len(), 7);
    for event in &events[..6] {
        let data = event.strip_prefix("data: ").expect("data: line");
        let chunk: Value = serde_json::from_str(data).expect("JSON chunk");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert!(chunk.get("usage").is_some());
    }
}

#[tokio::test]
async fn cut_stream_ends_with_a_body_error() {
    let fake = FakeOpenAi::start().await;
    let mut resp = post(
        &fake,
        "/chat/completions",
        "cut-stream",
        chat_body(true, true),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let mut received = Vec::new();
    let error = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => received.extend_from_slice(&chunk),
            Ok(None) => panic!("cut stream ended cleanly"),
            Err(e) => break e,
        }
    };
    assert!(error.is_body() || error.is_decode(), "{error:?}");
    let text = String::from_utf8(received).expect("UTF-8 stream");
    assert!(!text.contains("[DONE]"));
    assert!(!text.contains(r#""choices":[]"#));
}

#[tokio::test]
async fn requests_are_recorded_with_headers_and_body() {
    let fake = FakeOpenAi::start().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/embeddings?trace=1", fake.base_url()))
        .header("authorization", "Bearer sk-test")
        .json(&json!({"model": "text-embedding-3-small", "input": "hi"}))
        .send()
        .await
        .expect("request to fake");
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(body["usage"]["prompt_tokens"], 5);
    assert_eq!(
        body["data"][0]["embedding"]
            .as_array()
            .expect("embedding array")
            .len(),
        8
    );

    assert_eq!(fake.request_count(), 1);
    let recorded = &fake.requests()[0];
    assert_eq!(recorded.method, http::Method::POST);
    assert_eq!(recorded.path, "/v1/embeddings?trace=1");
    assert_eq!(recorded.headers["authorization"], "Bearer sk-test");
    assert_eq!(recorded.json()["input"], "hi");
}

#[tokio::test]
async fn error_scenarios_use_openai_error_bodies() {
    let fake = FakeOpenAi::start().await;
    let resp = post(
        &fake,
        "/chat/completions",
        "error-429",
        chat_body(false, false),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert!(resp
        .headers()
        .contains_key("x-ratelimit-remaining-requests"));
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(body["error"]["type"], "rate_limit_exceeded");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");

    let resp = post(&fake, "/nope", "ok", json!({})).await;
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn echo_headers_returns_what_was_received() {
    let fake = FakeOpenAi::start().await;
    let resp = post(
        &fake,
        "/chat/completions",
        "echo-headers",
        chat_body(false, false),
    )
    .await;
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(body["received_headers"]["x-fake-scenario"], "echo-headers");
    assert_eq!(body["usage"]["total_tokens"], 18);
}

#[tokio::test]
async fn responses_api_reports_usage() {
    let fake = FakeOpenAi::start().await;
    let body = json!({"model": "gpt-4o-mini", "input": "hi"});
    let resp = post(&fake, "/responses", "ok", body).await;
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(body["object"], "response");
    assert_eq!(body["usage"]["input_tokens"], 20);
    assert_eq!(
        body["usage"]["output_tokens_details"]["reasoning_tokens"],
        4
    );
    assert_eq!(body["usage"]["total_tokens"], 29);
}

#[tokio::test]
async fn serves_h2c_with_prior_knowledge() {
    let fake = FakeOpenAi::start().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    let resp = client
        .get(format!("{}/models", fake.base_url()))
        .send()
        .await
        .expect("h2c request to fake");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body: Value = resp.json().await.expect("JSON body");
    assert_eq!(body["object"], "list");
}
