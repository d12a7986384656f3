//! End-to-end over real sockets against the fake Anthropic provider: Anthropic clients on
//! `/v1/messages` (native passthrough, headers, count_tokens, cache-aware metering) and OpenAI
//! clients on a Claude model (translated both ways, streams included), with the official Python
//! SDKs of both providers driving the gateway the way applications do.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::fake_anthropic::{
    count_tokens_json, event_names, json_events, message_json, python_with_anthropic_sdk,
    stream_bytes, FakeAnthropic, Reply, CACHE_CREATION_INPUT_TOKENS, CACHE_READ_INPUT_TOKENS,
    INPUT_TOKENS, MODEL_SUFFIX, OUTPUT_TOKENS, TEXT,
};
use support::gateway::{config_with_upstream, TestGateway};

const TOKENS: &str = "agentgateway_gen_ai_client_token_usage_sum";
const MODEL: &str = "claude-sonnet-4-5";
/// Anthropic's input excludes cache; the histogram's input includes it on every provider.
const NORMALISED_INPUT: u64 = INPUT_TOKENS + CACHE_READ_INPUT_TOKENS + CACHE_CREATION_INPUT_TOKENS;

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
        metadata: {user: alice}
      - key: sk-limited
        metadata: {user: lim}
        limits: {rpm: 1}
  models:
  - name: claude-sonnet-4-5
    provider: anthropic
    params: {baseUrl: '{upstream}', apiKey: sk-ant-provider}
"#;

async fn setup() -> (FakeAnthropic, TestGateway) {
    let fake = FakeAnthropic::start().await;
    let gw = TestGateway::start(&config_with_upstream(CONFIG, &fake.base_url())).await;
    (fake, gw)
}

fn anthropic_request(gw: &TestGateway, path: &str, body: String) -> reqwest::RequestBuilder {
    gw.client
        .post(format!("{}{path}", gw.url))
        .header("x-api-key", "sk-alice")
        .header("content-type", "application/json")
        .body(body)
}

fn messages_body(stream: bool) -> String {
    format!(
        r#"{{"model":"{MODEL}","max_tokens":64,"stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

fn by_type(m: &support::gateway::Metrics, kind: &str) -> f64 {
    m.sum(TOKENS, &[("user_id", "alice"), ("gen_ai_token_type", kind)])
}

#[tokio::test]
async fn native_messages_pass_through_and_are_metered_with_cache() {
    let (fake, gw) = setup().await;
    let response = anthropic_request(&gw, "/v1/messages", messages_body(false))
        .header("anthropic-beta", "prompt-caching-2024-07-31")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let upstream_model = format!("{MODEL}{MODEL_SUFFIX}");
    assert_eq!(
        response.text().await.unwrap(),
        message_json(&upstream_model, Reply::Text),
        "a native call passes the provider's bytes through"
    );
    let stream = anthropic_request(&gw, "/v1/messages", messages_body(true))
        .header("anthropic-version", "2024-10-22")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.bytes().await.unwrap(),
        stream_bytes(&upstream_model, Reply::Text)
    );
    let counted = anthropic_request(&gw, "/v1/messages/count_tokens", messages_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(counted.text().await.unwrap(), count_tokens_json());

    let sent = fake.requests();
    assert_eq!(sent[0].path, "/v1/messages");
    assert_eq!(sent[0].header("x-api-key"), Some("sk-ant-provider"));
    assert_eq!(sent[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        sent[0].header("anthropic-beta"),
        Some("prompt-caching-2024-07-31")
    );
    assert_eq!(sent[1].header("anthropic-version"), Some("2024-10-22"));
    assert_eq!(sent[2].path, "/v1/messages/count_tokens");

    let lines = gw.wait_for_log_lines(3).await;
    let json_line = &lines[0];
    assert!(
        json_line.contains(&format!("gen_ai.usage.input_tokens={NORMALISED_INPUT} "))
            && json_line.contains(&format!(
                "gen_ai.usage.cache_read.input_tokens={CACHE_READ_INPUT_TOKENS} "
            ))
            && json_line.contains(&format!(
                "gen_ai.usage.cache_creation.input_tokens={CACHE_CREATION_INPUT_TOKENS} "
            )),
        "{json_line}"
    );
    let m = gw.metrics().await;
    // Two generations metered; count_tokens consumed nothing.
    assert_eq!(by_type(&m, "input"), 2.0 * NORMALISED_INPUT as f64);
    assert_eq!(by_type(&m, "output"), 2.0 * OUTPUT_TOKENS as f64);
    assert_eq!(
        by_type(&m, "input_cache_read"),
        2.0 * CACHE_READ_INPUT_TOKENS as f64
    );
    assert_eq!(
        by_type(&m, "input_cache_write"),
        2.0 * CACHE_CREATION_INPUT_TOKENS as f64
    );
    let series = &m.select(TOKENS, &[("gen_ai_token_type", "input")])[0];
    assert_eq!(series.labels["gen_ai_system"], "anthropic");
    assert_eq!(series.labels["gen_ai_request_model"], MODEL);
    assert_eq!(series.labels["gen_ai_response_model"], upstream_model);
    gw.shutdown().await;
}

#[tokio::test]
async fn malformed_and_failing_streams_keep_flowing_and_are_logged() {
    let (_fake, gw) = setup().await;
    let odd = anthropic_request(&gw, "/v1/messages", messages_body(true))
        .header("x-fake-scenario", "bad-event")
        .send()
        .await
        .unwrap();
    let text = odd.text().await.unwrap();
    assert!(text.contains("event: message_stop"), "{text}");
    let failing = anthropic_request(&gw, "/v1/messages", messages_body(true))
        .header("x-fake-scenario", "stream-error")
        .send()
        .await
        .unwrap();
    let text = failing.text().await.unwrap();
    assert!(text.contains("overloaded_error"), "{text}");
    let lines = gw.wait_for_log_lines(2).await;
    assert!(lines[0].contains("error=malformed_event"), "{}", lines[0]);
    assert!(lines[1].contains("error=overloaded_error"), "{}", lines[1]);
    let m = gw.metrics().await;
    // Usage seen before the failures is recorded.
    assert_eq!(by_type(&m, "input"), 2.0 * NORMALISED_INPUT as f64);
    gw.shutdown().await;
}

fn chat_body(extra: &str) -> String {
    format!(
        r#"{{"model":"{MODEL}","messages":[{{"role":"system","content":"Be brief."}},{{"role":"user","content":"hi"}}]{extra}}}"#
    )
}

#[tokio::test]
async fn openai_client_on_a_claude_model() {
    let (fake, gw) = setup().await;
    let response = gw
        .post("/v1/chat/completions", Some("sk-alice"), &chat_body(""))
        .await;
    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["choices"][0]["message"]["content"], TEXT);
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert_eq!(completion["usage"]["prompt_tokens"], NORMALISED_INPUT);
    assert_eq!(completion["usage"]["completion_tokens"], OUTPUT_TOKENS);
    assert_eq!(
        completion["usage"]["prompt_tokens_details"]["cached_tokens"],
        CACHE_READ_INPUT_TOKENS
    );
    let sent = &fake.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    let body = sent.json();
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["max_tokens"], 4096, "defaulted: Anthropic requires it");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-provider"));
    assert_eq!(sent.header("authorization"), None);

    let stream = gw
        .post(
            "/v1/chat/completions",
            Some("sk-alice"),
            &chat_body(r#","stream":true,"stream_options":{"include_usage":true}"#),
        )
        .await;
    let text = stream.text().await.unwrap();
    let chunks: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, TEXT);
    assert_eq!(
        chunks.last().unwrap()["usage"]["prompt_tokens"],
        NORMALISED_INPUT
    );
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");

    // Provider errors reach the OpenAI client in OpenAI's shape, status kept.
    let overloaded = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("sk-alice")
        .header("x-fake-scenario", "error-529")
        .body(chat_body(""))
        .send()
        .await
        .unwrap();
    assert_eq!(overloaded.status(), 529);
    let error: Value = overloaded.json().await.unwrap();
    assert_eq!(error["error"]["code"], "overloaded_error");
    // A cut stream ends with an error chunk and no [DONE].
    let cut = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("sk-alice")
        .header("x-fake-scenario", "cut-stream")
        .body(chat_body(r#","stream":true"#))
        .send()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&cut.bytes().await.unwrap_or_default()).into_owned();
    assert!(!text.contains("[DONE]"), "{text}");

    let lines = gw.wait_for_log_lines(4).await;
    assert!(lines[3].contains("error="), "{}", lines[3]);
    let m = gw.metrics().await;
    // Metered once per call, as Anthropic reported, under the provider actually called.
    assert_eq!(by_type(&m, "output"), 2.0 * OUTPUT_TOKENS as f64 + 1.0);
    let series = &m.select(TOKENS, &[("gen_ai_token_type", "output")])[0];
    assert_eq!(series.labels["gen_ai_system"], "anthropic");
    assert_eq!(series.labels["gen_ai_operation_name"], "chat");
    gw.shutdown().await;
}

const OPENAI_SDK_SCRIPT: &str = r#"
import json, sys, openai
c = openai.OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
r = c.chat.completions.create(model=sys.argv[3], messages=[{"role": "user", "content": "hi"}])
s = list(c.chat.completions.create(model=sys.argv[3], messages=[{"role": "user", "content": "hi"}],
         stream=True, stream_options={"include_usage": True}))
t = c.chat.completions.create(model=sys.argv[3], messages=[{"role": "user", "content": "weather?"}],
    tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
    extra_headers={"x-fake-scenario": "tool-use"})
call = t.choices[0].message.tool_calls[0]
print(json.dumps({"text": r.choices[0].message.content, "prompt": r.usage.prompt_tokens,
  "stream_text": "".join(x.choices[0].delta.content or "" for x in s if x.choices),
  "stream_prompt": s[-1].usage.prompt_tokens, "finish": t.choices[0].finish_reason,
  "tool": call.function.name, "args": json.loads(call.function.arguments)}))
"#;

fn run_python(python: &Path, args: &[&str]) -> Vec<Value> {
    let output = Command::new(python)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_official_sdks_through_the_gateway() {
    let Some(python) = python_with_anthropic_sdk() else {
        return;
    };
    let (_fake, gw) = setup().await;
    let base = format!("{}/v1", gw.url);
    let openai = run_python(
        &python,
        &["-c", OPENAI_SDK_SCRIPT, &base, "sk-alice", MODEL],
    );
    let o = &openai[0];
    assert_eq!(o["text"], TEXT);
    assert_eq!(o["prompt"], NORMALISED_INPUT);
    assert_eq!(o["stream_text"], TEXT);
    assert_eq!(o["stream_prompt"], NORMALISED_INPUT);
    assert_eq!(o["finish"], "tool_calls");
    assert_eq!(o["tool"], "get_weather");
    assert_eq!(o["args"]["city"], "Paris");

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sdk/anthropic_client.py");
    let steps = run_python(
        &python,
        &[
            script,
            &gw.url,
            "sk-alice",
            "--model",
            MODEL,
            "--limited-key",
            "sk-limited",
        ],
    );
    let step = |name: &str| {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("no {name} step in {steps:?}"))
            .clone()
    };
    let create = step("create");
    assert_eq!(create["text"], TEXT);
    assert_eq!(create["usage"]["input_tokens"], INPUT_TOKENS);
    assert_eq!(
        create["usage"]["cache_read_input_tokens"],
        CACHE_READ_INPUT_TOKENS
    );
    assert_eq!(step("stream")["text"], TEXT);
    assert_eq!(step("count_tokens")["input_tokens"], 42);
    assert_eq!(step("tool_use")["tool"]["input"]["city"], "Paris");
    assert_eq!(step("tool_use_stream")["tool"]["input"]["city"], "Paris");
    assert_eq!(step("unknown_model")["outcome"]["error"], "NotFoundError");
    assert_eq!(step("bad_key")["outcome"]["error"], "AuthenticationError");
    let attempts = step("rate_limit")["attempts"].clone();
    let last = attempts.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["error"], "RateLimitError", "{attempts}");
    assert_eq!(last["type"], "rate_limit_error");
    gw.shutdown().await;
}

#[test]
fn stream_events_helper_reads_the_fake() {
    // Guards the helpers the assertions above lean on.
    let bytes = stream_bytes("m", Reply::Text);
    let events = json_events(std::str::from_utf8(&bytes).unwrap());
    assert_eq!(event_names(&events).first(), Some(&"message_start"));
}
