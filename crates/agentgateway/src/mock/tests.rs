//! The mock's exact wire bytes, and every answer read back by the gateway's own meters
//! (`agentgateway_wire`), which must find exactly the usage the mock declared.

use std::time::Duration;

use agentgateway_wire::{summarize_json, Operation, StreamMeter, Usage};
use bytes::Bytes;
use http_body_util::BodyExt;

use super::body::Chunks;
use super::reply::Reply;
use super::*;

fn reply(output_tokens: u64, include_usage: bool) -> Reply {
    Reply {
        seq: 7,
        model: "mock-gpt".into(),
        created: 1_700_000_000,
        input_tokens: 12,
        output_tokens,
        hit_limit: false,
        include_usage,
        ttft: Duration::ZERO,
        token_delay: Duration::ZERO,
    }
}

fn concat(chunks: Chunks) -> String {
    let bytes: Vec<u8> = chunks.flat_map(|(_, b)| b.to_vec()).collect();
    String::from_utf8(bytes).unwrap()
}

fn usage(input: u64, output: u64, details: bool) -> Usage {
    Usage {
        input_tokens: Some(input),
        output_tokens: Some(output),
        cache_read_input_tokens: details.then_some(0),
        cache_write_input_tokens: None,
        reasoning_output_tokens: details.then_some(0),
    }
}

/// Meters a stream the way the gateway does, in small pieces to cross event boundaries.
fn meter(op: Operation, text: &str) -> agentgateway_wire::ResponseSummary {
    let mut meter = StreamMeter::new(op, false);
    for piece in text.as_bytes().chunks(7) {
        meter.feed(Bytes::copy_from_slice(piece));
    }
    meter.finish();
    meter.summary().clone()
}

#[test]
fn chat_stream_bytes_are_openais() {
    let text = concat(openai::chat_stream(reply(2, true)));
    let head = r#"data: {"id":"chatcmpl-mock-7","object":"chat.completion.chunk","created":1700000000,"model":"mock-gpt","system_fingerprint":null,"choices":["#;
    let expected = [
        r#"{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"index":0,"delta":{"content":"This"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"index":0,"delta":{"content":" is"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
        r#"],"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
    ]
    .iter()
    .map(|tail| format!("{head}{tail}\n\n"))
    .collect::<String>()
        + "data: [DONE]\n\n";
    assert_eq!(text, expected);
    let summary = meter(Operation::ChatCompletions, &text);
    assert_eq!(summary.usage.input_tokens, Some(12));
    assert_eq!(summary.usage.output_tokens, Some(2));
    assert_eq!(summary.response_model.as_deref(), Some("mock-gpt"));
}

#[test]
fn chat_stream_without_include_usage_has_no_usage_field() {
    let text = concat(openai::chat_stream(reply(3, false)));
    assert!(!text.contains("usage"), "{text}");
    assert_eq!(text.matches("data: ").count(), 1 + 3 + 1 + 1);
    assert!(text.ends_with("\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"));
}

#[test]
fn chat_json_is_metered_with_the_declared_usage() {
    let mut limited = reply(5, false);
    limited.hit_limit = true;
    let body = openai::chat(&limited);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json["choices"][0]["message"]["content"],
        "This is a mock answer"
    );
    assert_eq!(json["choices"][0]["finish_reason"], "length");
    assert_eq!(json["object"], "chat.completion");
    let summary = summarize_json(Operation::ChatCompletions, &body);
    assert_eq!(summary.usage, usage(12, 5, true));
    assert_eq!(summary.error, None);
}

#[test]
fn responses_stream_events_are_numbered_and_end_with_usage() {
    let text = concat(responses::stream(reply(3, false)));
    let events: Vec<(&str, serde_json::Value)> = text
        .split_terminator("\n\n")
        .map(|event| {
            let (name, data) = event.split_once('\n').unwrap();
            let data: serde_json::Value =
                serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            (name.strip_prefix("event: ").unwrap(), data)
        })
        .collect();
    let names: Vec<&str> = events.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    for (i, (name, data)) in events.iter().enumerate() {
        assert_eq!(data["type"], *name);
        assert_eq!(data["sequence_number"], i as u64);
    }
    let done = &events[10].1["response"];
    assert_eq!(done["output"][0]["content"][0]["text"], "This is a");
    assert_eq!(done["usage"]["total_tokens"], 15);
    let summary = meter(Operation::Responses, &text);
    assert_eq!(summary.usage, usage(12, 3, true));
    assert_eq!(summary.error, None);
}

#[test]
fn responses_json_is_metered_with_the_declared_usage() {
    let body = responses::json(&reply(4, false));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["status"], "completed");
    assert_eq!(json["output"][0]["content"][0]["text"], "This is a mock");
    let summary = summarize_json(Operation::Responses, &body);
    assert_eq!(summary.usage, usage(12, 4, true));
}

#[test]
fn anthropic_stream_bytes_are_anthropics() {
    let text = concat(anthropic::messages_stream(reply(2, false)));
    let expected = concat!(
        "event: message_start\n",
        r#"data: {"type":"message_start","message":{"id":"msg_mock_7","type":"message","role":"assistant","model":"mock-gpt","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#,
        "\n\nevent: content_block_start\n",
        r#"data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        "\n\nevent: ping\n",
        r#"data: {"type": "ping"}"#,
        "\n\nevent: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"This"}}"#,
        "\n\nevent: content_block_delta\n",
        r#"data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" is"}}"#,
        "\n\nevent: content_block_stop\n",
        r#"data: {"type":"content_block_stop","index":0}"#,
        "\n\nevent: message_delta\n",
        r#"data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}"#,
        "\n\nevent: message_stop\n",
        r#"data: {"type":"message_stop"}"#,
        "\n\n",
    );
    assert_eq!(text, expected);
    let summary = meter(Operation::Messages, &text);
    assert_eq!(summary.usage.input_tokens, Some(12));
    assert_eq!(summary.usage.output_tokens, Some(2));
}

#[test]
fn anthropic_json_and_count_tokens() {
    let mut limited = reply(3, false);
    limited.hit_limit = true;
    let body = anthropic::messages(&limited);
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["content"][0]["text"], "This is a");
    assert_eq!(json["stop_reason"], "max_tokens");
    let summary = summarize_json(Operation::Messages, &body);
    assert_eq!(summary.usage.input_tokens, Some(12));
    assert_eq!(summary.usage.output_tokens, Some(3));
    assert_eq!(
        &anthropic::count_tokens(&limited)[..],
        br#"{"input_tokens":12}"#
    );
}

async fn body_of(response: Response<Paced>) -> (StatusCode, serde_json::Value) {
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn errors_take_each_apis_shape() {
    let (status, json) = body_of(error(
        Operation::ChatCompletions,
        StatusCode::TOO_MANY_REQUESTS,
        "slow down",
    ))
    .await;
    assert_eq!(status, 429);
    assert_eq!(
        json,
        serde_json::json!({"error": {"message": "slow down", "type": "rate_limit_exceeded",
                                     "param": null, "code": "rate_limit_exceeded"}})
    );
    let (status, json) = body_of(error(
        Operation::Messages,
        StatusCode::from_u16(529).unwrap(),
        "busy",
    ))
    .await;
    assert_eq!(status, 529);
    assert_eq!(
        json,
        serde_json::json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    );
    let summary = summarize_json(
        Operation::ChatCompletions,
        br#"{"error":{"message":"m","type":"server_error","param":null,"code":null}}"#,
    );
    assert_eq!(summary.error.as_deref(), Some("server_error"));
}

#[test]
fn error_rates_of_one_and_zero_are_exact() {
    let always = MockParams {
        errors: [(503, 1.0), (500, 0.0)].into_iter().collect(),
        ..MockParams::default()
    };
    let model = MockModel::new(&always);
    assert!((0..1000).all(|_| model.draw_error() == Some(StatusCode::SERVICE_UNAVAILABLE)));
    let never = MockParams {
        errors: [(500, 0.0)].into_iter().collect(),
        ..MockParams::default()
    };
    let model = MockModel::new(&never);
    assert!((0..1000).all(|_| model.draw_error().is_none()));
}

#[test]
fn a_seed_makes_the_error_sequence_reproducible() {
    let params = MockParams {
        errors: [(429, 0.5)].into_iter().collect(),
        seed: Some(42),
        ..MockParams::default()
    };
    let draws = |model: MockModel| (0..64).map(|_| model.draw_error()).collect::<Vec<_>>();
    let first = draws(MockModel::new(&params));
    assert_eq!(first, draws(MockModel::new(&params)));
    assert!(first.iter().any(Option::is_some) && first.iter().any(Option::is_none));
}

#[test]
fn paths_name_the_model_and_the_operation() {
    assert_eq!(
        parse_path("/3/v1/chat/completions"),
        Some((3, Operation::ChatCompletions))
    );
    assert_eq!(
        parse_path("/0/v1/messages/count_tokens"),
        Some((0, Operation::CountTokens))
    );
    assert_eq!(parse_path("/x/v1/responses"), None);
    assert_eq!(parse_path("/1/v2/responses"), None);
    assert_eq!(parse_path("/"), None);
}

#[test]
fn prices_are_filed_under_the_answered_model_per_token() {
    let yaml = "llm:\n  models:\n  - name: mock-gpt\n    provider: mock\n    params:\n      mock:\n        price: {input: 1.5, output: 6}\n  - name: other\n    provider: mock\n";
    let config = crate::config::Config::from_yaml(yaml, &|_| None).unwrap();
    let catalog = prices(&config.llm.models).unwrap();
    let (_, price) = catalog.lookup(SYSTEM, Some("mock-gpt"), None).unwrap();
    assert_eq!(price.input.to_string(), "0.0000015");
    assert_eq!(price.output.to_string(), "0.000006");
    assert!(catalog.lookup(SYSTEM, Some("other"), None).is_none());
}

#[tokio::test]
async fn configured_prices_survive_a_catalog_reload() {
    let yaml = "llm:\n  models:\n  - name: mock-gpt\n    provider: mock\n    params:\n      mock:\n        price: {input: 1, output: 2}\n";
    let config = crate::config::Config::from_yaml(yaml, &|_| None).unwrap();
    let dir = std::env::temp_dir().join(format!("agw-mock-prices-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("prices.yaml");
    std::fs::write(&file, "mock:\n  mock-gpt: {input: 9, output: 9}\n").unwrap();
    let files = vec![file.clone()];
    let loaded = crate::pricing::PriceCatalog::load(&files).unwrap();
    let handle =
        crate::pricing::CatalogHandle::with_pinned(loaded, prices(&config.llm.models).unwrap());
    let input = |handle: &crate::pricing::CatalogHandle| {
        let catalog = handle.current();
        catalog
            .lookup(SYSTEM, Some("mock-gpt"), None)
            .map(|(_, p)| p.input.to_string())
    };
    assert_eq!(
        input(&handle).as_deref(),
        Some("0.000001"),
        "params win over files"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = handle.spawn_reload(files, Duration::from_millis(10), async move {
        let _ = stopped.await;
    });
    // A change the reload must pick up, with a new model to tell when it has.
    std::fs::write(
        &file,
        "mock:\n  mock-gpt: {input: 9, output: 9}\n  other: {input: 3, output: 3}\n",
    )
    .unwrap();
    for _ in 0..500 {
        if handle
            .current()
            .lookup(SYSTEM, Some("other"), None)
            .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        handle
            .current()
            .lookup(SYSTEM, Some("other"), None)
            .is_some(),
        "reloaded"
    );
    assert_eq!(input(&handle).as_deref(), Some("0.000001"));
    let _ = stop.send(());
    task.await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
