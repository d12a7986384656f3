//! `provider: mock` through the whole gateway over real sockets: every API it answers (Chat
//! Completions JSON and stream, Responses, Embeddings, Anthropic Messages JSON and stream,
//! `count_tokens`), usage equal to the gateway tokenizer's count and the caller's `max_tokens`,
//! injected errors in each API's shape, and the numbers in the metrics, the access log and the
//! cost (the configured price times the tokens, exactly).

mod support;

use std::str::FromStr;

use agentgateway::tokens::estimate_input_tokens;
use rust_decimal::Decimal;
use serde_json::Value;
use support::gateway::TestGateway;

const KEY: &str = "sk-alice";
const TOKENS: &str = "agentgateway_gen_ai_client_token_usage_sum";
const COST: &str = "agentgateway_gen_ai_client_cost_usd_total";

const CONFIG: &str = r#"
config:
  logging: {format: json}
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
  models:
  - name: mock-gpt
    provider: mock
    params:
      mock:
        outputTokens: 9
        price: {input: 2, output: 8}
  - name: mock-down
    provider: mock
    params: {mock: {errors: {503: 1.0}}}
  - name: mock-busy
    provider: mock
    params: {mock: {errors: {429: 1}}}
"#;

async fn gateway() -> TestGateway {
    TestGateway::start(CONFIG).await
}

const CHAT: &str = r#"{"model":"mock-gpt","max_tokens":5,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello to the gateway"}]}"#;

async fn post_json(gw: &TestGateway, path: &str, body: &str) -> (u16, Value) {
    let response = gw.post(path, Some(KEY), body).await;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, json)
}

/// The `data:` payloads of an SSE body (with `event:` names when present).
fn sse_events(text: &str) -> Vec<(Option<String>, String)> {
    assert!(text.ends_with("\n\n"), "{text}");
    text.split_terminator("\n\n")
        .map(|event| {
            let mut name = None;
            let mut data = String::new();
            for line in event.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = Some(n.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = d.to_owned();
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            (name, data)
        })
        .collect()
}

async fn stream(gw: &TestGateway, path: &str, body: &str) -> Vec<(Option<String>, String)> {
    let response = gw.post(path, Some(KEY), body).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    sse_events(&response.text().await.unwrap())
}

#[tokio::test]
async fn chat_usage_is_the_tokenizers_count_and_max_tokens() {
    let gw = gateway().await;
    let input = estimate_input_tokens(CHAT.as_bytes(), "mock-gpt");
    assert!(input > 10, "{input}");
    let (status, json) = post_json(&gw, "/v1/chat/completions", CHAT).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["model"], "mock-gpt");
    assert_eq!(json["usage"]["prompt_tokens"], input);
    assert_eq!(json["usage"]["completion_tokens"], 5);
    assert_eq!(json["usage"]["total_tokens"], input + 5);
    assert_eq!(
        json["choices"][0]["message"]["content"],
        "This is a mock answer"
    );
    assert_eq!(json["choices"][0]["finish_reason"], "length");

    // Without a limit the model's configured length applies.
    let open = CHAT.replace(r#""max_tokens":5,"#, "");
    let (_, json) = post_json(&gw, "/v1/chat/completions", &open).await;
    assert_eq!(json["usage"]["completion_tokens"], 9);
    assert_eq!(json["choices"][0]["finish_reason"], "stop");
    gw.shutdown().await;
}

#[tokio::test]
async fn chat_streams_carry_the_usage_chunk_only_when_asked() {
    let gw = gateway().await;
    let asked = CHAT.replace(
        r#""max_tokens":5,"#,
        r#""max_tokens":3,"stream":true,"stream_options":{"include_usage":true},"#,
    );
    let input = estimate_input_tokens(asked.as_bytes(), "mock-gpt");
    let events = stream(&gw, "/v1/chat/completions", &asked).await;
    // role, 3 tokens, finish, usage, [DONE]
    assert_eq!(events.len(), 7, "{events:?}");
    assert!(events.iter().all(|(name, _)| name.is_none()));
    assert_eq!(events[6].1, "[DONE]");
    let usage: Value = serde_json::from_str(&events[5].1).unwrap();
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(usage["usage"]["prompt_tokens"], input);
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    let text: String = events[1..4]
        .iter()
        .map(|(_, data)| {
            let chunk: Value = serde_json::from_str(data).unwrap();
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(text, "This is a");

    // Not asked: the gateway asks on its own, meters it, and hides it.
    let unasked = CHAT.replace(r#""max_tokens":5,"#, r#""max_tokens":3,"stream":true,"#);
    let events = stream(&gw, "/v1/chat/completions", &unasked).await;
    assert_eq!(events.len(), 6, "{events:?}");
    assert!(events.iter().all(|(_, data)| !data.contains("usage")));
    let lines = gw.wait_for_log_lines(2).await;
    let hidden: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(hidden["gen_ai.usage.input_tokens"], input);
    assert_eq!(hidden["gen_ai.usage.output_tokens"], 3);
    assert_eq!(hidden["gen_ai.request.stream"], true);
    gw.shutdown().await;
}

#[tokio::test]
async fn responses_json_and_stream() {
    let gw = gateway().await;
    let body = r#"{"model":"mock-gpt","instructions":"Be brief.","input":"What is a gateway?","max_output_tokens":4}"#;
    let input = estimate_input_tokens(body.as_bytes(), "mock-gpt");
    let (status, json) = post_json(&gw, "/v1/responses", body).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["object"], "response");
    assert_eq!(json["status"], "completed");
    assert_eq!(json["output"][0]["content"][0]["text"], "This is a mock");
    assert_eq!(json["usage"]["input_tokens"], input);
    assert_eq!(json["usage"]["output_tokens"], 4);

    let streamed = body.replace(
        r#""max_output_tokens":4"#,
        r#""max_output_tokens":4,"stream":true"#,
    );
    let events = stream(&gw, "/v1/responses", &streamed).await;
    assert_eq!(events.len(), 4 + 4 + 4, "{events:?}");
    let (name, data) = events.last().unwrap();
    assert_eq!(name.as_deref(), Some("response.completed"));
    let done: Value = serde_json::from_str(data).unwrap();
    assert_eq!(done["sequence_number"], 11);
    assert_eq!(done["response"]["usage"]["input_tokens"], input);
    assert_eq!(done["response"]["usage"]["output_tokens"], 4);
    let lines = gw.wait_for_log_lines(2).await;
    let line: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(line["gen_ai.usage.output_tokens"], 4);
    assert!(line.get("error").is_none(), "{line}");
    gw.shutdown().await;
}

#[tokio::test]
async fn embeddings_one_unit_vector_per_input() {
    let gw = gateway().await;
    let body = r#"{"model":"mock-gpt","input":["first text","second text"],"dimensions":8}"#;
    let input = estimate_input_tokens(body.as_bytes(), "mock-gpt");
    let (status, json) = post_json(&gw, "/v1/embeddings", body).await;
    assert_eq!(status, 200, "{json}");
    let data = json["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    let vector: Vec<f64> = data[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert_eq!(vector.len(), 8);
    let norm = vector.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "{norm}");
    assert_eq!(json["usage"]["prompt_tokens"], input);
    assert_eq!(json["usage"]["total_tokens"], input);

    let base64 =
        r#"{"model":"mock-gpt","input":"first text","dimensions":8,"encoding_format":"base64"}"#;
    let (_, json) = post_json(&gw, "/v1/embeddings", base64).await;
    // 8 little-endian f32s are 32 bytes: 44 base64 characters with padding.
    assert_eq!(json["data"][0]["embedding"].as_str().unwrap().len(), 44);
    let lines = gw.wait_for_log_lines(2).await;
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["gen_ai.operation.name"], "embeddings");
    assert_eq!(line["gen_ai.usage.input_tokens"], input);
    gw.shutdown().await;
}

const MESSAGES: &str = r#"{"model":"mock-gpt","max_tokens":6,"system":"You are terse.","messages":[{"role":"user","content":"Say hello"}]}"#;

#[tokio::test]
async fn anthropic_messages_are_answered_natively() {
    let gw = gateway().await;
    let input = estimate_input_tokens(MESSAGES.as_bytes(), "mock-gpt");
    let (status, json) = post_json(&gw, "/v1/messages", MESSAGES).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["type"], "message");
    assert_eq!(json["content"][0]["text"], "This is a mock answer from");
    assert_eq!(json["stop_reason"], "max_tokens");
    assert_eq!(json["usage"]["input_tokens"], input);
    assert_eq!(json["usage"]["output_tokens"], 6);

    let streamed = MESSAGES.replace(r#""max_tokens":6,"#, r#""max_tokens":6,"stream":true,"#);
    let events = stream(&gw, "/v1/messages", &streamed).await;
    let names: Vec<&str> = events.iter().filter_map(|(n, _)| n.as_deref()).collect();
    assert_eq!(names.len(), events.len(), "every event is named");
    assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert_eq!(
        names
            .iter()
            .filter(|n| **n == "content_block_delta")
            .count(),
        6
    );
    let delta: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert_eq!(delta["usage"]["output_tokens"], 6);

    let count = r#"{"model":"mock-gpt","messages":[{"role":"user","content":"Say hello"}]}"#;
    let (status, json) = post_json(&gw, "/v1/messages/count_tokens", count).await;
    assert_eq!(status, 200);
    assert_eq!(
        json["input_tokens"],
        estimate_input_tokens(count.as_bytes(), "mock-gpt")
    );

    let lines = gw.wait_for_log_lines(3).await;
    let line: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(line["gen_ai.provider.name"], "mock");
    assert_eq!(line["gen_ai.usage.input_tokens"], input);
    assert_eq!(line["gen_ai.usage.output_tokens"], 6);
    gw.shutdown().await;
}

#[tokio::test]
async fn injected_errors_come_in_the_callers_api_shape() {
    let gw = gateway().await;
    let chat = r#"{"model":"mock-down","messages":[{"role":"user","content":"hi"}]}"#;
    let (status, json) = post_json(&gw, "/v1/chat/completions", chat).await;
    assert_eq!(status, 503);
    assert_eq!(json["error"]["type"], "server_error");
    assert!(json["error"]["message"].as_str().unwrap().contains("503"));
    let busy = chat.replace("mock-down", "mock-busy");
    let (status, json) = post_json(&gw, "/v1/chat/completions", &busy).await;
    assert_eq!(status, 429);
    assert_eq!(json["error"]["code"], "rate_limit_exceeded");
    let messages = MESSAGES.replace("mock-gpt", "mock-busy");
    let (status, json) = post_json(&gw, "/v1/messages", &messages).await;
    assert_eq!(status, 429);
    assert_eq!(json["type"], "error");
    assert_eq!(json["error"]["type"], "rate_limit_error");
    let lines = gw.wait_for_log_lines(3).await;
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["http.status"], 503);
    assert_eq!(line["reason"], "upstream_error");
    gw.shutdown().await;
}

fn usd(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

#[tokio::test]
async fn metrics_log_and_cost_show_the_mocks_numbers() {
    let gw = gateway().await;
    let input = estimate_input_tokens(CHAT.as_bytes(), "mock-gpt");
    let (status, _) = post_json(&gw, "/v1/chat/completions", CHAT).await;
    assert_eq!(status, 200);
    let (status, _) = post_json(&gw, "/v1/messages", MESSAGES).await;
    assert_eq!(status, 200);
    let messages_input = estimate_input_tokens(MESSAGES.as_bytes(), "mock-gpt");
    let lines = gw.wait_for_log_lines(2).await;

    // $2 in and $8 out per 1M tokens, exactly.
    let million = Decimal::from(1_000_000);
    let expected = |input: u64, output: u64| {
        (Decimal::from(input) * Decimal::TWO + Decimal::from(output) * Decimal::from(8)) / million
    };
    for (line, input, output) in [(&lines[0], input, 5), (&lines[1], messages_input, 6)] {
        let line: Value = serde_json::from_str(line).unwrap();
        assert_eq!(line["gen_ai.provider.name"], "mock", "{line}");
        assert_eq!(line["gen_ai.usage.input_tokens"], input);
        assert_eq!(line["gen_ai.usage.output_tokens"], output);
        let cost = line["agw.ai.usage.cost.total"].to_string();
        assert_eq!(
            usd(cost.trim_matches('"')),
            expected(input, output),
            "{line}"
        );
    }

    let m = gw.metrics().await;
    let labels = |kind| {
        [
            ("gen_ai_system", "mock"),
            ("user_id", "alice"),
            ("gen_ai_token_type", kind),
        ]
    };
    assert_eq!(
        m.sum(TOKENS, &labels("input")),
        (input + messages_input) as f64
    );
    assert_eq!(m.sum(TOKENS, &labels("output")), 11.0);
    let cost = m.sum(COST, &labels("input")) + m.sum(COST, &labels("output"));
    let total = expected(input, 5) + expected(messages_input, 6);
    let total: f64 = total.to_string().parse().unwrap();
    assert!((cost - total).abs() < 1e-12, "{cost} != {total}");
    gw.shutdown().await;
}

/// What the official SDKs read from the mock, as `[text, output tokens, ...]` per call.
const SDK_SCRIPT: &str = r#"
import json, sys
import anthropic, openai
base = sys.argv[1]
hi = [{"role": "user", "content": "hi"}]
out = {}
o = openai.OpenAI(base_url=base + "/v1", api_key="sk-alice", max_retries=0)
c = o.chat.completions.create(model="mock-gpt", max_tokens=4, messages=hi)
out["chat"] = [c.choices[0].message.content, c.usage.completion_tokens]
text, usage = "", None
for chunk in o.chat.completions.create(model="mock-gpt", max_tokens=3, messages=hi, stream=True,
                                        stream_options={"include_usage": True}):
    if chunk.choices:
        text += chunk.choices[0].delta.content or ""
    if chunk.usage:
        usage = chunk.usage.completion_tokens
out["chat_stream"] = [text, usage]
r = o.responses.create(model="mock-gpt", input="hi", max_output_tokens=2)
out["responses"] = [r.output_text, r.usage.output_tokens]
for event in o.responses.create(model="mock-gpt", input="hi", max_output_tokens=2, stream=True):
    if event.type == "response.completed":
        out["responses_stream"] = [event.response.output_text, event.response.usage.output_tokens]
e = o.embeddings.create(model="mock-gpt", input=["a", "b"], dimensions=4)
out["embeddings"] = [len(e.data), len(e.data[1].embedding)]
try:
    o.chat.completions.create(model="mock-busy", messages=hi)
except openai.RateLimitError as err:
    out["openai_error"] = [err.status_code, err.code]
a = anthropic.Anthropic(base_url=base, api_key="sk-alice", max_retries=0)
m = a.messages.create(model="mock-gpt", max_tokens=5, messages=hi)
out["messages"] = [m.content[0].text, m.usage.output_tokens, m.stop_reason]
with a.messages.stream(model="mock-gpt", max_tokens=3, messages=hi) as stream:
    final = stream.get_final_message()
out["messages_stream"] = [final.content[0].text, final.usage.output_tokens]
try:
    a.messages.create(model="mock-busy", max_tokens=5, messages=hi)
except anthropic.RateLimitError as err:
    out["anthropic_error"] = [err.status_code, err.body["error"]["type"]]
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_read_the_mock() {
    let Some(python) = support::python::python_with("openai, anthropic") else {
        return;
    };
    let gw = gateway().await;
    let url = gw.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args(["-c", SDK_SCRIPT, &url])
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let out: Value = serde_json::from_slice(&output.stdout).unwrap();
    let expected = serde_json::json!({
        "chat": ["This is a mock", 4],
        "chat_stream": ["This is a", 3],
        "responses": ["This is", 2],
        "responses_stream": ["This is", 2],
        "embeddings": [2, 4],
        "openai_error": [429, "rate_limit_exceeded"],
        "messages": ["This is a mock answer", 5, "max_tokens"],
        "messages_stream": ["This is a", 3],
        "anthropic_error": [429, "rate_limit_error"],
    });
    assert_eq!(out, expected);
    gw.shutdown().await;
}
