//! Golden tests for `translate::chat_to_messages`: an OpenAI Chat client calling an Anthropic
//! provider. Each fixture under `tests/fixtures/chat_to_messages/` goes through the translation
//! and the result is compared with its snapshot under `tests/snapshots/` (bodies pretty-printed
//! with sorted keys; streams as the raw SSE text the caller receives). Every snapshot was read
//! and checked by hand against the mapping rules when it was accepted.
//!
//! Besides the snapshots: every stream fixture, fed split at every byte position, byte by byte
//! and in pseudo-random chunk sizes, must give exactly the output of feeding it whole.

use agentgateway_wire::translate::chat_to_messages::{error, request, response, StreamTranslator};
use agentgateway_wire::translate::RequestOptions;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/chat_to_messages/",
            $name
        ))
        .as_slice()
    };
}

const OPTS: RequestOptions<'static> = RequestOptions {
    model: "claude-sonnet-4-5",
    default_max_tokens: 4096,
    max_completion_tokens: false,
    stream_options: true,
};
const CREATED: u64 = 1_767_225_600;

/// Pretty-prints a JSON body, failing the test if it is not JSON.
fn pretty(body: &[u8]) -> String {
    let value: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(body)));
    serde_json::to_string_pretty(&value).unwrap()
}

/// The translated request, or the error, as snapshot text.
fn translate_request(body: &[u8]) -> String {
    match request(body, &OPTS) {
        Ok(t) => format!("{}\n--- dropped: {:?}", pretty(&t.body), t.dropped),
        Err(e) => format!("error: {e}"),
    }
}

fn translate_response(body: &[u8]) -> String {
    match response(body, CREATED) {
        Ok(out) => pretty(&out),
        Err(e) => format!("error: {e}"),
    }
}

/// Feeds the stream in the given pieces, then ends it.
fn stream_in_pieces<'a>(
    include_usage: bool,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut t = StreamTranslator::new(include_usage, CREATED);
    let mut out = Vec::new();
    for piece in pieces {
        out.extend_from_slice(&t.feed(piece));
    }
    out.extend_from_slice(&t.finish());
    out
}

/// The whole stream translated, checked to be well-formed OpenAI SSE, as text.
fn translate_stream(sse: &[u8], include_usage: bool) -> String {
    let out = String::from_utf8(stream_in_pieces(include_usage, [sse])).unwrap();
    for block in out.split_terminator("\n\n") {
        let data = block
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not a data line: {block:?}"));
        if data != "[DONE]" {
            let chunk: serde_json::Value = serde_json::from_str(data).unwrap();
            if chunk.get("error").is_none() {
                assert_eq!(chunk["object"], "chat.completion.chunk");
                assert_eq!(chunk.get("usage").is_some(), include_usage, "{data}");
            }
        }
    }
    assert!(out.is_empty() || out.ends_with("\n\n"));
    out
}

// === requests ===

#[test]
fn request_plain_chat_defaults_max_tokens() {
    insta::assert_snapshot!(
        "request_plain",
        translate_request(fixture!("req_plain.json"))
    );
}

#[test]
fn request_system_and_developer_messages_lift_in_order() {
    insta::assert_snapshot!(
        "request_system_developer",
        translate_request(fixture!("req_system_developer.json"))
    );
}

#[test]
fn request_multipart_with_base64_and_url_images() {
    insta::assert_snapshot!(
        "request_multipart_images",
        translate_request(fixture!("req_multipart_images.json"))
    );
}

#[test]
fn request_tools_and_every_tool_choice() {
    insta::assert_snapshot!(
        "request_tools_auto_parallel_off",
        translate_request(fixture!("req_tools_auto_parallel_off.json"))
    );
    insta::assert_snapshot!(
        "request_tool_choice_required",
        translate_request(fixture!("req_tool_choice_required.json"))
    );
    insta::assert_snapshot!(
        "request_tool_choice_none",
        translate_request(fixture!("req_tool_choice_none.json"))
    );
    insta::assert_snapshot!(
        "request_tool_choice_function",
        translate_request(fixture!("req_tool_choice_function.json"))
    );
    insta::assert_snapshot!(
        "request_parallel_off_no_choice",
        translate_request(fixture!("req_parallel_off_no_choice.json"))
    );
}

#[test]
fn request_tool_calls_and_results_merge_into_alternating_turns() {
    insta::assert_snapshot!(
        "request_tool_turns",
        translate_request(fixture!("req_tool_turns.json"))
    );
}

#[test]
fn request_sampling_parameters() {
    insta::assert_snapshot!(
        "request_max_completion_tokens_wins",
        translate_request(fixture!("req_max_completion_tokens_wins.json"))
    );
    insta::assert_snapshot!(
        "request_stop_string",
        translate_request(fixture!("req_stop_string.json"))
    );
    insta::assert_snapshot!(
        "request_stop_array",
        translate_request(fixture!("req_stop_array.json"))
    );
    insta::assert_snapshot!(
        "request_temperature_clamped",
        translate_request(fixture!("req_temperature_clamped.json"))
    );
}

#[test]
fn request_unknown_fields_are_dropped_and_named() {
    let body = fixture!("req_unknown_fields.json");
    insta::assert_snapshot!("request_unknown_fields", translate_request(body));
    let dropped = request(body, &OPTS).unwrap().dropped;
    assert_eq!(
        dropped,
        [
            "service_tier",
            "frequency_penalty",
            "presence_penalty",
            "logit_bias",
            "logprobs",
            "top_logprobs",
            "seed",
            "response_format",
            "reasoning_effort",
            "store",
            "modalities",
            "audio",
            "prediction",
            "web_search_options",
            "x_custom_flag",
        ]
    );
}

/// Anthropic's metadata takes `user_id` only: other members are dropped and named.
#[test]
fn request_user_merges_into_metadata() {
    insta::assert_snapshot!(
        "request_user_and_metadata",
        translate_request(fixture!("req_user_and_metadata.json"))
    );
}

#[test]
fn request_errors() {
    insta::assert_snapshot!("request_n2", translate_request(fixture!("req_n2.json")));
    insta::assert_snapshot!(
        "request_malformed",
        translate_request(fixture!("req_malformed.json"))
    );
    insta::assert_snapshot!(
        "request_missing_messages",
        translate_request(fixture!("req_missing_messages.json"))
    );
    insta::assert_snapshot!(
        "request_bad_arguments",
        translate_request(fixture!("req_bad_arguments.json"))
    );
}

#[test]
fn request_garbage_never_panics() {
    for body in [
        &b""[..],
        b"null",
        b"[]",
        b"\"messages\"",
        b"{\"messages\":null}",
        b"{\"messages\":{}}",
        b"{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
        b"{\"messages\":[{\"role\":\"user\",\"content\":42}]}",
        b"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
        b"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
        b"{\"messages\":[],\"tools\":[{\"type\":\"custom\"}]}",
        b"{\"messages\":[],\"tool_choice\":\"sometimes\"}",
        b"{\"messages\":[],\"stop\":5}",
        b"\xff\xfe",
    ] {
        let err = request(body, &OPTS).unwrap_err();
        assert!(!err.0.is_empty());
    }
}

// === responses and errors ===

#[test]
fn response_text() {
    insta::assert_snapshot!(
        "response_text",
        translate_response(fixture!("resp_text.json"))
    );
}

#[test]
fn response_tool_use() {
    insta::assert_snapshot!(
        "response_tool_use",
        translate_response(fixture!("resp_tool_use.json"))
    );
}

#[test]
fn response_max_tokens_joins_text_blocks() {
    insta::assert_snapshot!(
        "response_max_tokens",
        translate_response(fixture!("resp_max_tokens.json"))
    );
}

#[test]
fn response_cache_usage_and_thinking() {
    insta::assert_snapshot!(
        "response_cache_thinking",
        translate_response(fixture!("resp_cache_thinking.json"))
    );
}

#[test]
fn response_that_is_not_a_message_is_refused() {
    insta::assert_snapshot!(
        "response_not_message",
        translate_response(fixture!("resp_not_message.json"))
    );
    assert!(response(b"<html>", CREATED).is_err());
    assert!(response(b"", CREATED).is_err());
}

#[test]
fn error_bodies() {
    insta::assert_snapshot!(
        "error_overloaded_529",
        pretty(&error(529, fixture!("err_overloaded_529.json")))
    );
    insta::assert_snapshot!(
        "error_invalid_request_400",
        pretty(&error(400, fixture!("err_invalid_request_400.json")))
    );
    insta::assert_snapshot!(
        "error_bad_gateway_502",
        pretty(&error(502, fixture!("err_bad_gateway_502.html")))
    );
    insta::assert_snapshot!("error_empty_503", pretty(&error(503, b"")));
}

// === streams ===

#[test]
fn stream_text_with_and_without_usage() {
    let sse = fixture!("stream_text.sse");
    insta::assert_snapshot!("stream_text_usage", translate_stream(sse, true));
    insta::assert_snapshot!("stream_text_plain", translate_stream(sse, false));
}

#[test]
fn stream_tool_use_with_input_json_delta() {
    let sse = fixture!("stream_tool_use.sse");
    insta::assert_snapshot!("stream_tool_use_usage", translate_stream(sse, true));
    insta::assert_snapshot!("stream_tool_use_plain", translate_stream(sse, false));
}

#[test]
fn stream_error_event_ends_the_stream() {
    insta::assert_snapshot!(
        "stream_error",
        translate_stream(fixture!("stream_error.sse"), true)
    );
}

#[test]
fn stream_cut_reports_truncation_without_done() {
    insta::assert_snapshot!(
        "stream_cut",
        translate_stream(fixture!("stream_cut.sse"), true)
    );
}

#[test]
fn stream_bad_json_event_is_skipped() {
    insta::assert_snapshot!(
        "stream_bad_json",
        translate_stream(fixture!("stream_bad_json.sse"), false)
    );
}

#[test]
fn stream_unknown_event_types_are_ignored() {
    insta::assert_snapshot!(
        "stream_unknown_event",
        translate_stream(fixture!("stream_unknown_event.sse"), false)
    );
}

#[test]
fn stream_thinking_becomes_reasoning_content() {
    insta::assert_snapshot!(
        "stream_thinking",
        translate_stream(fixture!("stream_thinking.sse"), false)
    );
}

#[test]
fn stream_of_nothing_is_a_truncation() {
    let out = stream_in_pieces(false, []);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("data: {\"error\":"), "{text}");
    assert!(text.contains("\"code\":\"stream_truncated\""));
    assert!(!text.contains("[DONE]"));
}

#[test]
fn stream_error_before_message_start_is_only_the_error() {
    let sse = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Slow down\"}}\n\n";
    let out = String::from_utf8(stream_in_pieces(true, [&sse[..]])).unwrap();
    assert_eq!(
        out,
        "data: {\"error\":{\"message\":\"Slow down\",\"type\":\"rate_limit_exceeded\",\"param\":null,\"code\":\"rate_limit_error\"}}\n\n"
    );
}

#[test]
fn stream_without_event_lines_is_read_by_its_data_type() {
    let sse = fixture!("stream_tool_use.sse");
    let text = String::from_utf8(sse.to_vec()).unwrap();
    let data_only: String = text
        .split_inclusive('\n')
        .filter(|line| !line.starts_with("event: "))
        .collect();
    assert_ne!(data_only.as_bytes(), sse);
    assert_eq!(
        stream_in_pieces(true, [data_only.as_bytes()]),
        stream_in_pieces(true, [sse])
    );
}

const STREAMS: &[&[u8]] = &[
    fixture!("stream_text.sse"),
    fixture!("stream_tool_use.sse"),
    fixture!("stream_error.sse"),
    fixture!("stream_cut.sse"),
    fixture!("stream_bad_json.sse"),
    fixture!("stream_unknown_event.sse"),
    fixture!("stream_thinking.sse"),
];

#[test]
fn stream_output_does_not_depend_on_chunking() {
    for (n, sse) in STREAMS.iter().enumerate() {
        for include_usage in [false, true] {
            let whole = stream_in_pieces(include_usage, [*sse]);
            for cut in 0..=sse.len() {
                let (a, b) = sse.split_at(cut);
                let split = stream_in_pieces(include_usage, [a, b]);
                assert_eq!(split, whole, "stream {n} split at {cut}");
            }
            let bytes = stream_in_pieces(include_usage, sse.chunks(1));
            assert_eq!(bytes, whole, "stream {n} byte by byte");
            let mut seed = 0x9E37_79B9_u32 ^ n as u32;
            let mut rest: &[u8] = sse;
            let mut pieces = Vec::new();
            while !rest.is_empty() {
                // xorshift: reproducible chunk sizes from 1 to 64 bytes.
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let (piece, tail) = rest.split_at((seed as usize % 64 + 1).min(rest.len()));
                pieces.push(piece);
                rest = tail;
            }
            let random = stream_in_pieces(include_usage, pieces);
            assert_eq!(random, whole, "stream {n} in random chunks");
        }
    }
}

#[test]
fn stream_with_crlf_line_endings_translates_the_same() {
    let sse = fixture!("stream_tool_use.sse");
    let crlf = String::from_utf8(sse.to_vec())
        .unwrap()
        .replace('\n', "\r\n");
    assert_eq!(
        stream_in_pieces(true, [crlf.as_bytes()]),
        stream_in_pieces(true, [sse])
    );
}

/// Frameworks echo empty turns into history; Anthropic refuses them, so they are left out.
#[test]
fn request_empty_turns_are_left_out() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":""},{"role":"user","content":""},{"role":"user","content":"again"}]}"#;
    let out = request(body, &OPTS).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
    let turns = json["messages"].as_array().unwrap();
    assert_eq!(turns.len(), 1, "{json}");
    assert_eq!(turns[0]["role"], "user");
    let texts: Vec<&str> = turns[0]["content"]
        .as_array()
        .map(|blocks| blocks.iter().filter_map(|b| b["text"].as_str()).collect())
        .unwrap_or_else(|| vec![turns[0]["content"].as_str().unwrap()]);
    assert_eq!(texts, ["hi", "again"]);
}
