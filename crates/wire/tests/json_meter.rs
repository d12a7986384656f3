//! JsonMeter / summarize_json on realistic OpenAI and Anthropic response bodies, whole and in
//! pieces.

mod common;

use agentgateway_wire::{summarize_json, JsonMeter, Operation, ResponseSummary, Usage};
use common::*;

fn usage(
    input: u64,
    output: Option<u64>,
    cache_read: Option<u64>,
    reasoning: Option<u64>,
) -> Usage {
    Usage {
        input_tokens: Some(input),
        output_tokens: output,
        cache_read_input_tokens: cache_read,
        cache_write_input_tokens: None,
        reasoning_output_tokens: reasoning,
    }
}

fn summary(usage: Usage, model: &str, error: Option<&str>) -> ResponseSummary {
    ResponseSummary {
        usage,
        response_model: Some(model.into()),
        error: error.map(Into::into),
    }
}

#[test]
fn chat_with_details() {
    assert_eq!(
        summarize_json(Operation::ChatCompletions, CHAT_JSON),
        summary(
            usage(2006, Some(300), Some(1920), Some(0)),
            "gpt-4o-2024-08-06",
            None
        )
    );
}

#[test]
fn chat_without_details() {
    assert_eq!(
        summarize_json(Operation::ChatCompletions, CHAT_NO_DETAILS_JSON),
        summary(usage(26, Some(3), None, None), "llama3.1:8b", None)
    );
}

#[test]
fn chat_with_null_details() {
    assert_eq!(
        summarize_json(Operation::ChatCompletions, CHAT_NULL_DETAILS_JSON),
        summary(
            usage(31, Some(2), None, None),
            "Qwen/Qwen2.5-7B-Instruct",
            None
        )
    );
}

#[test]
fn reasoning_model_with_cache_write() {
    let want = Usage {
        cache_write_input_tokens: Some(11),
        ..usage(75, Some(1186), Some(64), Some(1024))
    };
    assert_eq!(
        summarize_json(Operation::ChatCompletions, CHAT_REASONING_JSON),
        summary(want, "o3-mini-2025-01-31", None)
    );
}

#[test]
fn legacy_completions() {
    assert_eq!(
        summarize_json(Operation::Completions, COMPLETIONS_JSON),
        summary(
            usage(5, Some(7), None, None),
            "gpt-3.5-turbo-instruct",
            None
        )
    );
}

#[test]
fn embeddings_have_no_output() {
    assert_eq!(
        summarize_json(Operation::Embeddings, EMBEDDINGS_JSON),
        summary(usage(8, None, None, None), "text-embedding-3-small", None)
    );
}

#[test]
fn responses_usage_and_error_null() {
    assert_eq!(
        summarize_json(Operation::Responses, RESPONSES_JSON),
        summary(
            usage(328, Some(52), Some(128), Some(16)),
            "gpt-4o-2024-08-06",
            None
        )
    );
}

#[test]
fn responses_failed_and_incomplete() {
    assert_eq!(
        summarize_json(Operation::Responses, RESPONSES_FAILED_JSON),
        summary(Usage::default(), "o3-2025-04-16", Some("server_error"))
    );
    assert_eq!(
        summarize_json(Operation::Responses, RESPONSES_INCOMPLETE_JSON),
        summary(
            usage(12, Some(16), Some(0), Some(0)),
            "gpt-4.1-mini-2025-04-14",
            Some("response_incomplete")
        )
    );
    let failed_without_error = br#"{"status":"failed","error":null,"model":"m"}"#;
    assert_eq!(
        summarize_json(Operation::Responses, failed_without_error)
            .error
            .as_deref(),
        Some("response_failed")
    );
}

#[test]
fn error_body() {
    let s = summarize_json(Operation::ChatCompletions, ERROR_JSON);
    assert_eq!(s.error.as_deref(), Some("invalid_api_key"));
    assert!(s.usage.is_empty());
    assert_eq!(s.response_model, None);
    let typed = br#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#;
    assert_eq!(
        summarize_json(Operation::ChatCompletions, typed)
            .error
            .as_deref(),
        Some("server_error")
    );
    let bare = br#"{"error":{"message":"boom"}}"#;
    assert_eq!(
        summarize_json(Operation::ChatCompletions, bare)
            .error
            .as_deref(),
        Some("provider_error")
    );
}

#[test]
fn only_top_level_keys_count() {
    let body = br#"{"data":[{"model":"nested","usage":{"prompt_tokens":999},"error":{"code":"x"}}],
                    "model":"top","usage":{"prompt_tokens":3}}"#;
    assert_eq!(
        summarize_json(Operation::Embeddings, body),
        summary(usage(3, None, None, None), "top", None)
    );
}

#[test]
fn every_byte_split_matches_whole() {
    for &(op, body) in BODIES {
        let want = summarize_json(op, body);
        assert_eq!(
            run_json(op, &bytewise(body)),
            want,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn cut_body_reports_what_was_complete() {
    let inside_usage = CHAT_JSON.windows(16).position(|w| w == b"reasoning_tokens");
    let cut = inside_usage.expect("fixture has reasoning_tokens");
    let mut meter = JsonMeter::new(Operation::ChatCompletions);
    meter.feed(&CHAT_JSON[..cut]);
    assert_eq!(
        meter.summary(),
        summary(Usage::default(), "gpt-4o-2024-08-06", None)
    );
    meter.feed(&CHAT_JSON[cut..]);
    assert_eq!(meter.summary().usage.input_tokens, Some(2006));
}

#[test]
fn huge_embedding_body_stays_bounded_and_is_metered() {
    let mut meter = JsonMeter::new(Operation::Embeddings);
    meter.feed(br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":["#);
    let floats = "-0.006929283495992422,".repeat(100_000);
    for _ in 0..20 {
        meter.feed(floats.as_bytes());
    }
    meter.feed(br#"0.1]}],"model":"text-embedding-3-large","usage":{"prompt_tokens":4096,"total_tokens":4096}}"#);
    assert_eq!(
        meter.summary(),
        summary(
            usage(4096, None, None, None),
            "text-embedding-3-large",
            None
        )
    );
}

#[test]
fn oversized_wanted_value_is_skipped_not_kept() {
    let big = format!(
        r#"{{"usage":{{"prompt_tokens":1,"pad":"{}"}},"model":"m"}}"#,
        "x".repeat(200_000)
    );
    let s = summarize_json(Operation::ChatCompletions, big.as_bytes());
    assert!(s.usage.is_empty());
    assert_eq!(s.response_model.as_deref(), Some("m"));
}

#[test]
fn not_an_object_or_garbage_yields_empty() {
    for body in [
        &b"[1,2,3]"[..],
        b"",
        b"null",
        b"{\"model\":}",
        b"\xff\xfe{",
        b"{\"model\":\"\xff\"}",
    ] {
        let s = summarize_json(Operation::ChatCompletions, body);
        assert!(s.usage.is_empty() && s.error.is_none(), "{body:?}");
    }
}

#[test]
fn scalar_values_at_chunk_ends() {
    let body = br#"{"usage":{"prompt_tokens":12345,"completion_tokens":6},"created":1741569952,"model":"m"}"#;
    for cut in 0..body.len() {
        let mut meter = JsonMeter::new(Operation::ChatCompletions);
        meter.feed(&body[..cut]);
        meter.feed(&body[cut..]);
        assert_eq!(
            meter.summary(),
            summary(usage(12345, Some(6), None, None), "m", None),
            "cut {cut}"
        );
    }
}

#[test]
fn anthropic_message_adds_cache_into_input() {
    // 21 uncached + 2051 read from cache + 188 written to it.
    assert_eq!(
        summarize_json(Operation::Messages, ANTHROPIC_JSON),
        summary(
            anthropic_usage(2260, 393, Some(2051), Some(188)),
            "claude-sonnet-4-5-20250929",
            None
        )
    );
}

#[test]
fn anthropic_message_without_cache_fields() {
    // The tool input's nested `usage` is content, not the response's usage.
    assert_eq!(
        summarize_json(Operation::Messages, ANTHROPIC_NO_CACHE_JSON),
        summary(
            anthropic_usage(12, 6, None, None),
            "claude-3-5-haiku-20241022",
            None
        )
    );
}

#[test]
fn anthropic_error_body_labels_the_inner_type() {
    for op in [Operation::Messages, Operation::CountTokens] {
        assert_eq!(
            summarize_json(op, ANTHROPIC_ERROR_JSON),
            ResponseSummary {
                error: Some("overloaded_error".into()),
                ..ResponseSummary::default()
            }
        );
    }
    let odd = br#"{"type":"error","error":{"type":"rate limit/429","message":"slow down"}}"#;
    assert_eq!(
        summarize_json(Operation::Messages, odd).error.as_deref(),
        Some("rate_limit_429")
    );
}

#[test]
fn count_tokens_is_not_consumption() {
    assert_eq!(
        summarize_json(Operation::CountTokens, ANTHROPIC_COUNT_TOKENS_JSON),
        ResponseSummary::default()
    );
    // Even a `usage` object, should one ever appear there, is not metered.
    let with_usage = br#"{"input_tokens":5,"usage":{"input_tokens":5,"output_tokens":0}}"#;
    assert!(summarize_json(Operation::CountTokens, with_usage)
        .usage
        .is_empty());
    // The same body on /v1/messages is no usage either: `input_tokens` is not inside `usage`.
    assert!(
        summarize_json(Operation::Messages, ANTHROPIC_COUNT_TOKENS_JSON)
            .usage
            .is_empty()
    );
}

#[test]
fn anthropic_partial_and_null_usage_fields() {
    let cases: [(&[u8], Usage); 4] = [
        (
            br#"{"usage":{"input_tokens":null,"output_tokens":4}}"#,
            Usage {
                output_tokens: Some(4),
                ..Usage::default()
            },
        ),
        (
            br#"{"usage":{"cache_read_input_tokens":30,"output_tokens":4}}"#,
            anthropic_usage(30, 4, Some(30), None),
        ),
        (
            br#"{"usage":{"input_tokens":3,"cache_creation_input_tokens":null,"cache_read_input_tokens":"7","output_tokens":4}}"#,
            anthropic_usage(3, 4, None, None),
        ),
        (br#"{"usage":null}"#, Usage::default()),
    ];
    for (body, want) in cases {
        let s = summarize_json(Operation::Messages, body);
        assert_eq!(s.usage, want, "{}", String::from_utf8_lossy(body));
    }
}
