//! Self-test of the fake Anthropic upstream, talking to it directly with reqwest (no gateway).
//!
//! The end-to-end tests take the fake's bytes as ground truth for Anthropic's wire format, so a
//! mistake here would hide (or invent) gateway bugs: these checks pin each scenario's status,
//! headers, byte-exact bodies, stream frame order and usage numbers, and the request log. The
//! last test has the official `anthropic` Python SDK read the fake (`tests/sdk/anthropic_client.py`);
//! it is skipped when no Python with that SDK is found (`AGW_PYTHON`, `target/sdk-venv`, `python3`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_anthropic::{
    assert_anthropic_error, assert_fake_usage, assert_key_order, count_tokens_json,
    echo_headers_text, event_names, json_events, message_json, python_with_anthropic_sdk, quote,
    scenario_stream_bytes, sse_frames, stream_bytes, streamed_text, streamed_tool_input,
    FakeAnthropic, Reply, Scenario, SseFrame, CACHE_CREATION_INPUT_TOKENS, CACHE_READ_INPUT_TOKENS,
    COUNT_TOKENS_INPUT, EVENTS_BEFORE_FAILURE, INPUT_TOKENS, KNOWN_EVENTS, MODEL_SUFFIX,
    OK_STREAM_EVENTS, ORGANIZATION_ID, OUTPUT_TOKENS, REQUEST_ID, SCENARIO_HEADER, SLOW_GAP,
    START_OUTPUT_TOKENS, TEXT, TEXT_DELTAS, TOOL_INPUT, TOOL_INPUT_FRAGMENTS, TOOL_NAME, TOOL_TEXT,
    TOOL_TEXT_DELTAS,
};

const MODEL: &str = "claude-sonnet-4-6";

fn dated_model() -> String {
    format!("{MODEL}{MODEL_SUFFIX}")
}

fn body(stream: bool) -> Value {
    json!({
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    })
}

/// A request with Anthropic's two required headers and the scenario header.
fn request(fake: &FakeAnthropic, route: &str, scenario: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .post(format!("{}{route}", fake.base_url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .header(SCENARIO_HEADER, scenario)
}

async fn post(fake: &FakeAnthropic, scenario: &str, body: &Value) -> reqwest::Response {
    send(request(fake, "/messages", scenario).json(body)).await
}

async fn send(builder: reqwest::RequestBuilder) -> reqwest::Response {
    builder.send().await.expect("request to fake")
}

async fn text_of(resp: reqwest::Response) -> String {
    resp.text().await.expect("whole body")
}

#[test]
fn constants_fit_together() {
    assert_eq!(TEXT_DELTAS.concat(), TEXT);
    assert_eq!(TOOL_TEXT_DELTAS.concat(), TOOL_TEXT);
    assert_eq!(TOOL_INPUT_FRAGMENTS.concat(), TOOL_INPUT);
    assert_eq!(
        serde_json::from_str::<Value>(TOOL_INPUT).expect("JSON"),
        json!({"city": "Paris"})
    );
    // All different and non-zero, so a test can tell which field went where.
    let mut numbers = [
        INPUT_TOKENS,
        CACHE_CREATION_INPUT_TOKENS,
        CACHE_READ_INPUT_TOKENS,
        OUTPUT_TOKENS,
        START_OUTPUT_TOKENS,
        COUNT_TOKENS_INPUT,
    ];
    numbers.sort_unstable();
    assert!(numbers[0] > 0);
    assert!(numbers.windows(2).all(|w| w[0] != w[1]), "{numbers:?}");
}

#[tokio::test]
async fn ok_message_is_byte_exact_in_anthropic_key_order() {
    let fake = FakeAnthropic::start().await;
    let resp = post(&fake, "ok", &body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.headers()["request-id"], REQUEST_ID);
    assert_eq!(resp.headers()["anthropic-organization-id"], ORGANIZATION_ID);
    let text = text_of(resp).await;
    assert_eq!(text, message_json(&dated_model(), Reply::Text));
    let keys = "id type role model content type text stop_reason stop_sequence usage input_tokens \
                cache_creation_input_tokens cache_read_input_tokens output_tokens";
    assert_key_order(&text, keys.split_whitespace());
    let message: Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(message["id"], "msg_fake0001");
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], dated_model());
    assert_eq!(message["content"], json!([{"type": "text", "text": TEXT}]));
    assert_eq!(message["stop_reason"], "end_turn");
    assert!(message["stop_sequence"].is_null());
    assert_fake_usage(&message["usage"], OUTPUT_TOKENS);
}

#[tokio::test]
async fn ok_stream_is_byte_exact_and_in_order() {
    let fake = FakeAnthropic::start().await;
    let resp = post(&fake, "ok", &body(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let text = text_of(resp).await;
    assert_eq!(text.as_bytes(), stream_bytes(&dated_model(), Reply::Text));
    let frames = json_events(&text);
    assert_eq!(event_names(&frames), OK_STREAM_EVENTS);

    let start = &frames[0].1["message"];
    assert_eq!(start["model"], dated_model());
    assert_eq!(start["content"], json!([]));
    assert!(start["stop_reason"].is_null());
    assert_fake_usage(&start["usage"], START_OUTPUT_TOKENS);
    assert_eq!(
        frames[1].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(streamed_text(&frames, 0), TEXT);
    let delta = &frames[8].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    // Cumulative: the final count, not an increment over message_start's.
    assert_eq!(delta["usage"], json!({"output_tokens": OUTPUT_TOKENS}));
}

#[tokio::test]
async fn tool_use_answers_with_a_text_then_a_tool_block() {
    let fake = FakeAnthropic::start().await;
    let text = text_of(post(&fake, "tool-use", &body(false)).await).await;
    assert_eq!(text, message_json(&dated_model(), Reply::ToolUse));
    assert!(text.contains(r#""input":{"city":"Paris"}"#), "{text}");
    let message: Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(message["stop_reason"], "tool_use");
    assert_eq!(
        message["content"][0],
        json!({"type": "text", "text": TOOL_TEXT})
    );
    let tool = &message["content"][1];
    assert_eq!(tool["type"], "tool_use");
    assert_eq!(tool["name"], TOOL_NAME);
    assert!(tool["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("toolu_")));
    assert_eq!(tool["input"], json!({"city": "Paris"}));

    let text = text_of(post(&fake, "tool-use", &body(true)).await).await;
    assert_eq!(
        text.as_bytes(),
        stream_bytes(&dated_model(), Reply::ToolUse)
    );
    let frames = json_events(&text);
    assert_eq!(streamed_text(&frames, 0), TOOL_TEXT);
    let tool_start = frames
        .iter()
        .find(|(name, d)| name == "content_block_start" && d["index"] == 1)
        .expect("tool block start");
    assert_eq!(tool_start.1["content_block"]["name"], TOOL_NAME);
    assert_eq!(tool_start.1["content_block"]["input"], json!({}));
    let partial = streamed_tool_input(&frames, 1);
    assert_eq!(partial, TOOL_INPUT);
    let input: Value = serde_json::from_str(&partial).expect("fragments join into JSON");
    assert_eq!(input, json!({"city": "Paris"}));
    let stops: Vec<&Value> = frames
        .iter()
        .filter(|(name, _)| name == "content_block_stop")
        .map(|(_, d)| &d["index"])
        .collect();
    assert_eq!(stops, [&json!(0), &json!(1)]);
    assert_eq!(
        event_names(&frames)[frames.len() - 2..],
        ["message_delta", "message_stop"]
    );
    assert_eq!(
        frames[frames.len() - 2].1["delta"]["stop_reason"],
        "tool_use"
    );
}

#[tokio::test]
async fn max_tokens_scenario_stops_on_max_tokens() {
    let fake = FakeAnthropic::start().await;
    let text = text_of(post(&fake, "max-tokens", &body(false)).await).await;
    assert_eq!(text, message_json(&dated_model(), Reply::MaxTokens));
    let message: Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(message["stop_reason"], "max_tokens");

    let text = text_of(post(&fake, "max-tokens", &body(true)).await).await;
    let frames = json_events(&text);
    assert_eq!(event_names(&frames), OK_STREAM_EVENTS);
    assert_eq!(frames[8].1["delta"]["stop_reason"], "max_tokens");
}

#[tokio::test]
async fn error_scenarios_use_anthropic_error_bodies_on_both_routes() {
    let fake = FakeAnthropic::start().await;
    let cases = [
        ("error-529", 529, "overloaded_error"),
        ("error-429", 429, "rate_limit_error"),
        ("error-400", 400, "invalid_request_error"),
    ];
    for (scenario, status, kind) in cases {
        for (route, stream) in [
            ("/messages", false),
            ("/messages", true),
            ("/messages/count_tokens", false),
        ] {
            let resp = send(request(&fake, route, scenario).json(&body(stream))).await;
            assert_eq!(resp.status(), status, "{scenario} {route}");
            assert_eq!(resp.headers()["content-type"], "application/json");
            if status == 429 {
                assert_eq!(resp.headers()["retry-after"], "1");
                assert_eq!(
                    resp.headers()["anthropic-ratelimit-requests-remaining"],
                    "0"
                );
            }
            assert_anthropic_error(&text_of(resp).await, kind);
        }
    }
}

#[tokio::test]
async fn missing_provider_headers_are_refused_with_401() {
    let fake = FakeAnthropic::start().await;
    let url = format!("{}/messages", fake.base_url());
    let client = reqwest::Client::new();
    let requests = [
        client.post(&url).header("anthropic-version", "2023-06-01"),
        client.post(&url).header("x-api-key", "sk-ant-test"),
        client
            .post(&url)
            .header("x-api-key", "")
            .header("anthropic-version", "2023-06-01"),
        // The Bearer form is not Anthropic's: a gateway must translate it into x-api-key.
        client
            .post(&url)
            .header("authorization", "Bearer sk-ant-test")
            .header("anthropic-version", "2023-06-01"),
    ];
    for builder in requests {
        let resp = send(builder.json(&body(false))).await;
        assert_eq!(resp.status(), 401);
        let text = text_of(resp).await;
        assert_anthropic_error(&text, "authentication_error");
    }
    // Refused requests are logged too, so a test can see what the gateway did send.
    assert_eq!(fake.request_count(), 4);
    assert!(fake.requests()[1].header("x-api-key").is_some());
}

#[tokio::test]
async fn stream_error_sends_an_error_event_after_some_text() {
    let fake = FakeAnthropic::start().await;
    let resp = post(&fake, "stream-error", &body(true)).await;
    assert_eq!(resp.status(), 200);
    let text = text_of(resp).await;
    assert_eq!(
        text.as_bytes(),
        scenario_stream_bytes(&dated_model(), Scenario::StreamError)
    );
    let frames = json_events(&text);
    let mut want = OK_STREAM_EVENTS[..EVENTS_BEFORE_FAILURE].to_vec();
    want.push("error");
    assert_eq!(event_names(&frames), want);
    assert_eq!(streamed_text(&frames, 0), "Hello from the");
    assert!(text.ends_with(concat!(
        "event: error\n",
        r#"data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        "\n\n"
    )));
}

#[tokio::test]
async fn cut_stream_ends_with_a_body_error_before_message_delta() {
    let fake = FakeAnthropic::start().await;
    let mut resp = post(&fake, "cut-stream", &body(true)).await;
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
    assert_eq!(
        received,
        scenario_stream_bytes(&dated_model(), Scenario::CutStream)
    );
    let text = String::from_utf8(received).expect("UTF-8 stream");
    let frames = json_events(&text);
    assert_eq!(
        event_names(&frames),
        OK_STREAM_EVENTS[..EVENTS_BEFORE_FAILURE]
    );
    assert!(!text.contains("message_delta") && !text.contains("message_stop"));
}

#[tokio::test]
async fn bad_event_adds_one_invalid_and_one_unknown_event() {
    let fake = FakeAnthropic::start().await;
    let text = text_of(post(&fake, "bad-event", &body(true)).await).await;
    assert_eq!(
        text.as_bytes(),
        scenario_stream_bytes(&dated_model(), Scenario::BadEvent)
    );
    let all = sse_frames(&text);
    assert_eq!(all.len(), OK_STREAM_EVENTS.len() + 2);
    let is_json = |f: &&SseFrame| serde_json::from_str::<Value>(&f.data).is_ok();
    let is_known = |f: &&SseFrame| KNOWN_EVENTS.contains(&f.event.as_str());
    assert_eq!(all.iter().filter(|f| !is_json(f)).count(), 1);
    assert_eq!(all.iter().filter(|f| !is_known(f)).count(), 1);
    // Without those two it is exactly the ok stream: a client that skips them loses nothing.
    let rest: String = all
        .iter()
        .filter(|f| is_known(f) && is_json(f))
        .map(|f| format!("event: {}\ndata: {}\n\n", f.event, f.data))
        .collect();
    assert_eq!(rest.as_bytes(), stream_bytes(&dated_model(), Reply::Text));
}

#[tokio::test]
async fn slow_stream_spaces_its_events() {
    let fake = FakeAnthropic::start().await;
    let mut resp = post(&fake, "slow-stream", &body(true)).await;
    let started = Instant::now();
    let mut received = Vec::new();
    let mut arrivals = Vec::new();
    while let Some(chunk) = resp.chunk().await.expect("chunk") {
        arrivals.push(started.elapsed());
        received.extend_from_slice(&chunk);
    }
    assert_eq!(received, stream_bytes(&dated_model(), Reply::Text));
    // Ten events, each its own read once 300 ms separate them.
    assert_eq!(arrivals.len(), OK_STREAM_EVENTS.len());
    assert!(arrivals[0] < SLOW_GAP, "{arrivals:?}");
    let spread = arrivals[arrivals.len() - 1] - arrivals[0];
    let gaps = u32::try_from(OK_STREAM_EVENTS.len() - 1).expect("small");
    assert!(
        spread >= SLOW_GAP * gaps - Duration::from_millis(100),
        "{arrivals:?}"
    );
}

#[tokio::test]
async fn echo_headers_reports_the_provider_headers_received() {
    let fake = FakeAnthropic::start().await;
    for stream in [false, true] {
        let resp = send(
            request(&fake, "/messages", "echo-headers")
                .header("anthropic-beta", "prompt-caching-2024-07-31")
                .header("anthropic-beta", "token-counting-2024-11-01")
                .json(&body(stream)),
        )
        .await;
        let text = text_of(resp).await;
        let want = concat!(
            r#"{"anthropic-version":"2023-06-01","#,
            r#""anthropic-beta":"prompt-caching-2024-07-31,token-counting-2024-11-01","#,
            r#""x-api-key":true,"authorization":false}"#
        );
        let recorded = fake.requests().pop().expect("recorded");
        assert_eq!(echo_headers_text(&recorded.headers), want);
        if stream {
            let expected = stream_bytes(&dated_model(), Reply::Echo(want));
            assert_eq!(text.as_bytes(), expected);
            assert_eq!(streamed_text(&json_events(&text), 0), want);
        } else {
            assert_eq!(text, message_json(&dated_model(), Reply::Echo(want)));
            let message: Value = serde_json::from_str(&text).expect("JSON body");
            assert_eq!(message["content"][0]["text"], want);
            assert_fake_usage(&message["usage"], OUTPUT_TOKENS);
        }
    }
    let resp = send(
        request(&fake, "/messages", "echo-headers")
            .header("authorization", "Bearer x")
            .json(&body(false)),
    )
    .await;
    let message: Value = serde_json::from_str(&text_of(resp).await).expect("JSON body");
    let echoed: Value =
        serde_json::from_str(message["content"][0]["text"].as_str().expect("text")).expect("JSON");
    assert!(echoed["anthropic-beta"].is_null());
    assert_eq!(echoed["authorization"], true);
}

#[tokio::test]
async fn echo_request_returns_the_body_as_received() {
    let fake = FakeAnthropic::start().await;
    let raw = concat!(
        r#"{"model":"claude-haiku-4-5", "max_tokens": 5,"#,
        r#""messages":[{"role":"user","content":"say \"hi\" ✓"}]}"#
    );
    let resp = send(
        request(&fake, "/messages", "echo-request")
            .header("content-type", "application/json")
            .body(raw),
    )
    .await;
    let text = text_of(resp).await;
    // JSON-escaped in the raw bytes, the exact body once parsed.
    assert!(
        text.contains(&format!(r#""text":{}"#, quote(raw))),
        "{text}"
    );
    let message: Value = serde_json::from_str(&text).expect("JSON body");
    assert_eq!(message["content"][0]["text"], raw);
    assert_eq!(message["model"], format!("claude-haiku-4-5{MODEL_SUFFIX}"));
    assert_eq!(message["usage"]["output_tokens"], OUTPUT_TOKENS);
}

#[tokio::test]
async fn count_tokens_answers_a_fixed_count() {
    let fake = FakeAnthropic::start().await;
    let resp = send(
        request(&fake, "/messages/count_tokens", "ok")
            .json(&json!({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = text_of(resp).await;
    assert_eq!(text, count_tokens_json());
    assert_eq!(text, format!(r#"{{"input_tokens":{COUNT_TOKENS_INPUT}}}"#));
}

#[tokio::test]
async fn requests_are_recorded_with_headers_and_body() {
    let fake = FakeAnthropic::start().await;
    let resp = send(request(&fake, "/messages?beta=true", "ok").json(&body(false))).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.request_count(), 1);
    let recorded = &fake.requests()[0];
    assert_eq!(recorded.method, http::Method::POST);
    assert_eq!(recorded.path, "/v1/messages?beta=true");
    assert_eq!(recorded.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(recorded.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(recorded.json()["max_tokens"], 64);
}

#[tokio::test]
async fn bodies_and_routes_anthropic_refuses_are_refused() {
    let fake = FakeAnthropic::start().await;
    let cases = [
        ("not json", "not valid JSON"),
        (r#"{"max_tokens":5,"messages":[]}"#, "model: Field required"),
        (
            r#"{"model":"m","max_tokens":5}"#,
            "messages: Field required",
        ),
        (
            r#"{"model":"m","max_tokens":5,"messages":"hi"}"#,
            "valid list",
        ),
        (
            r#"{"model":"m","messages":[]}"#,
            "max_tokens: Field required",
        ),
        (
            r#"{"model":"m","max_tokens":5,"messages":[],"stream":"yes"}"#,
            "wrong type",
        ),
    ];
    for (raw, message) in cases {
        let resp = send(request(&fake, "/messages", "ok").body(raw)).await;
        assert_eq!(resp.status(), 400, "{raw}");
        let text = text_of(resp).await;
        assert_anthropic_error(&text, "invalid_request_error");
        assert!(text.contains(message), "{raw}: {text}");
    }
    for route in ["/chat/completions", "/messages/batches"] {
        let resp = send(request(&fake, route, "ok").json(&body(false))).await;
        assert_eq!(resp.status(), 404);
        assert_anthropic_error(&text_of(resp).await, "not_found_error");
    }
}

#[tokio::test]
async fn serves_h2c_with_prior_knowledge() {
    let fake = FakeAnthropic::start().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .expect("h2c client");
    let resp = client
        .post(format!("{}/messages", fake.base_url()))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(&body(true))
        .send()
        .await
        .expect("h2c request to fake");
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let text = text_of(resp).await;
    assert_eq!(text.as_bytes(), stream_bytes(&dated_model(), Reply::Text));
}

// === the official SDK against the fake ===

/// The official SDK parses every answer of the fake the way it parses Anthropic's: a check of
/// the fake's wire format by the client that real applications use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_python_sdk_reads_the_fake() {
    let Some(python) = python_with_anthropic_sdk() else {
        return;
    };
    let fake = FakeAnthropic::start().await;
    let lines = run_sdk_script(python, &fake).await;
    let step = |name: &str| -> Vec<&Value> { lines.iter().filter(|l| l["step"] == name).collect() };
    let usage = json!({
        "input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS,
        "cache_creation_input_tokens": CACHE_CREATION_INPUT_TOKENS,
        "cache_read_input_tokens": CACHE_READ_INPUT_TOKENS,
    });
    let create = step("create")[0];
    assert_eq!(create["model"], dated_model());
    assert_eq!((&create["text"], &create["usage"]), (&json!(TEXT), &usage));
    let stream = step("stream")[0];
    assert_eq!(
        (&stream["text"], &stream["text_events"]),
        (&json!(TEXT), &json!(TEXT_DELTAS.len()))
    );
    assert_eq!(
        (&stream["stop_reason"], &stream["usage"]),
        (&json!("end_turn"), &usage)
    );
    assert_eq!(step("count_tokens")[0]["input_tokens"], COUNT_TOKENS_INPUT);
    for tool_step in ["tool_use", "tool_use_stream"] {
        let tool = step(tool_step)[0];
        assert_eq!(tool["stop_reason"], "tool_use", "{tool}");
        assert_eq!(tool["text"], TOOL_TEXT);
        assert_eq!(
            tool["tool"],
            json!({"name": TOOL_NAME, "input": {"city": "Paris"}})
        );
    }
    check_sdk_errors(&step("upstream_errors"));
    // The fake knows no models and checks no key values: refusing those is the gateway's job.
    assert_eq!(step("unknown_model")[0]["outcome"], "accepted");
    assert_eq!(step("bad_key")[0]["outcome"], "accepted");
    assert_eq!(
        step("rate_limit")[0]["attempts"],
        json!(["accepted", "accepted", "accepted"])
    );
    // 5 successful steps (two tool calls), 4 upstream errors, 2 refusals, 3 rate-limit tries.
    assert_eq!(fake.request_count(), 14, "{lines:?}");
}

/// Runs `tests/sdk/anthropic_client.py` against the fake; one JSON value per printed line.
async fn run_sdk_script(python: PathBuf, fake: &FakeAnthropic) -> Vec<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/anthropic_client.py");
    // The SDK appends /v1/messages itself.
    let base_url = format!("http://{}", fake.addr);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([base_url.as_str(), "sk-ant-test", "--model", MODEL])
            // The fake requires Anthropic's x-api-key; SDK 2.x sends only Authorization: Bearer.
            .arg("--x-api-key")
            .output()
    })
    .await
    .expect("join")
    .expect("run python");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "SDK script failed:\n{stderr}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

/// The SDK's exception classes for the fake's upstream errors.
fn check_sdk_errors(errors: &[&Value]) {
    let outcome = |scenario: &str| {
        let line = errors.iter().find(|l| l["scenario"] == scenario);
        line.map(|l| l["outcome"].clone()).expect("scenario line")
    };
    let error = |class: &str, status: Value, kind: &str, retry_after: Value| json!({"error": class, "status": status, "type": kind, "retry_after": retry_after});
    let rate = error("RateLimitError", json!(429), "rate_limit_error", json!("1"));
    assert_eq!(outcome("error-429"), rate);
    let overloaded = error(
        "OverloadedError",
        json!(529),
        "overloaded_error",
        Value::Null,
    );
    assert_eq!(outcome("error-529"), overloaded);
    let bad = error(
        "BadRequestError",
        json!(400),
        "invalid_request_error",
        Value::Null,
    );
    assert_eq!(outcome("error-400"), bad);
    // A mid-stream error event raises from the stream after the text sent before it.
    let mid = outcome("stream-error");
    assert_eq!(
        (&mid["error"], &mid["status"], &mid["type"]),
        (
            &json!("APIStatusError"),
            &json!(200),
            &json!("overloaded_error")
        ),
        "{mid}"
    );
    assert_eq!(mid["text_before"], "Hello from the");
}
