//! Golden tests for `translate::messages_to_chat` (an Anthropic Messages client calling an
//! OpenAI Chat provider): Anthropic requests as Claude Code sends them, OpenAI responses, error
//! bodies and byte-exact OpenAI streams, each translated and compared with a reviewed snapshot.
//! Bodies are snapshotted re-indented in their own member order (so the snapshot shows what is
//! really sent); streams as the raw SSE text. Besides the snapshots, every translated stream is
//! checked for Anthropic's event grammar, and every stream fixture must translate the same
//! however its bytes are split.

use agentgateway_wire::translate::messages_to_chat::{self as m2c, StreamTranslator};
use agentgateway_wire::translate::RequestOptions;
use proptest::prelude::*;
use serde_json::Value;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/messages_to_chat/",
            $name
        ))
        .as_slice()
    };
}

const OPTS: RequestOptions<'static> = RequestOptions {
    model: "gpt-4.1",
    default_max_tokens: 4096,
    max_completion_tokens: false,
    stream_options: true,
};

const STREAMS: &[(&str, &[u8])] = &[
    ("stream_text", fixture!("stream_text.sse")),
    ("stream_tools", fixture!("stream_tools.sse")),
    (
        "stream_usage_every_chunk",
        fixture!("stream_usage_every_chunk.sse"),
    ),
    ("stream_error", fixture!("stream_error.sse")),
    ("stream_cut", fixture!("stream_cut.sse")),
    ("stream_bad_json", fixture!("stream_bad_json.sse")),
    ("stream_no_done", fixture!("stream_no_done.sse")),
    ("stream_reasoning", fixture!("stream_reasoning.sse")),
];

// === helpers ===

/// Re-indents valid JSON, keeping member order (a `Value` would sort the keys).
fn pretty(json: &[u8]) -> String {
    serde_json::from_slice::<Value>(json).expect("output is valid JSON");
    let text = std::str::from_utf8(json).unwrap();
    let (mut out, mut depth) = (String::new(), 0usize);
    let (mut in_string, mut escaped) = (false, false);
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' if matches!(chars.peek(), Some('}' | ']')) => {
                out.push(c);
                out.push(chars.next().unwrap());
            }
            '{' | '[' => {
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth -= 1;
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_ascii_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

fn translate_request(body: &[u8]) -> (String, Vec<String>) {
    let translated = m2c::request(body, &OPTS).expect("request translates");
    (pretty(&translated.body), translated.dropped)
}

fn request_snapshot(body: &[u8]) -> String {
    let (json, dropped) = translate_request(body);
    format!("{json}\n--- dropped: {dropped:?}")
}

fn request_json(body: &[u8]) -> Value {
    serde_json::from_slice(&m2c::request(body, &OPTS).unwrap().body).unwrap()
}

fn response_snapshot(body: &[u8]) -> String {
    pretty(&m2c::response(body).expect("response translates"))
}

/// Feeds the stream in the given pieces and returns everything sent to the client.
fn run_stream(pieces: &[&[u8]]) -> String {
    let mut translator = StreamTranslator::new(false);
    let mut out = Vec::new();
    for piece in pieces {
        out.extend_from_slice(&translator.feed(piece));
    }
    out.extend_from_slice(&translator.finish());
    // Nothing more once the stream is over.
    assert!(translator.feed(b"data: [DONE]\n\n").is_empty());
    assert!(translator.finish().is_empty());
    String::from_utf8(out).expect("stream output is UTF-8")
}

/// Checks Anthropic's stream grammar and returns the events: every event is `event: <name>` +
/// `data: <json>` whose `type` is the name; blocks open, take deltas of their own kind, and
/// close, one at a time with increasing indexes; the stream ends with `message_stop` or `error`.
fn check_grammar(sse: &str) -> Vec<(String, Value)> {
    let body = sse.strip_suffix("\n\n").expect("ends with a blank line");
    let events: Vec<(String, Value)> = body
        .split("\n\n")
        .map(|block| {
            let (event, data) = block.split_once('\n').expect("two lines");
            let name = event
                .strip_prefix("event: ")
                .expect("event line")
                .to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name.as_str());
            (name, data)
        })
        .collect();
    let (mut open, mut next): (Option<(u64, String)>, u64) = (None, 0);
    let last = events.len() - 1;
    for (i, (name, data)) in events.iter().enumerate() {
        match name.as_str() {
            "message_start" => assert_eq!(i, 0),
            "content_block_start" => {
                assert!(open.is_none(), "block opened while another is open");
                assert_eq!(data["index"], next);
                let kind = data["content_block"]["type"].as_str().unwrap().to_owned();
                open = Some((next, kind));
                next += 1;
            }
            "content_block_delta" => {
                let (index, kind) = open.as_ref().expect("delta outside a block");
                assert_eq!(data["index"], *index);
                let want = match kind.as_str() {
                    "text" => "text_delta",
                    "thinking" => "thinking_delta",
                    _ => "input_json_delta",
                };
                assert_eq!(data["delta"]["type"], want);
            }
            "content_block_stop" => {
                let (index, _) = open.take().expect("stop outside a block");
                assert_eq!(data["index"], index);
            }
            "message_delta" => {
                assert!(open.is_none());
                assert_eq!(i + 1, last);
            }
            "message_stop" | "error" => assert_eq!(i, last),
            other => panic!("unexpected event {other}"),
        }
    }
    events
}

fn stream_snapshot(stream: &[u8]) -> String {
    let out = run_stream(&[stream]);
    check_grammar(&out);
    out
}

// === requests ===

#[test]
fn request_plain() {
    insta::assert_snapshot!(request_snapshot(fixture!("req_plain.json")));
}

#[test]
fn request_max_completion_tokens_for_openai_itself() {
    let body = br#"{"model":"m","max_tokens":300,"messages":[{"role":"user","content":"hi"}]}"#;
    let opts = RequestOptions {
        max_completion_tokens: true,
        ..OPTS
    };
    let out = m2c::request(body, &opts).unwrap();
    let json: Value = serde_json::from_slice(&out.body).unwrap();
    assert_eq!(json["max_completion_tokens"], 300);
    assert!(json.get("max_tokens").is_none(), "{json}");
    assert_eq!(request_json(body)["max_tokens"], 300);
}

#[test]
fn request_system_string() {
    insta::assert_snapshot!(request_snapshot(fixture!("req_system_string.json")));
}

#[test]
fn request_claude_code_tool_history() {
    let body = fixture!("req_claude_code.json");
    insta::assert_snapshot!(request_snapshot(body));
    // OpenAI requires the tool messages right after the assistant's tool calls.
    let json = request_json(body);
    let roles: Vec<&str> = json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["system", "user", "assistant", "tool", "tool", "user"]
    );
}

#[test]
fn request_images() {
    insta::assert_snapshot!(request_snapshot(fixture!("req_images.json")));
}

#[test]
fn request_tools_and_server_tool_dropped() {
    insta::assert_snapshot!(request_snapshot(fixture!("req_tools.json")));
}

#[test]
fn request_every_tool_choice() {
    let template = std::str::from_utf8(fixture!("req_tools.json")).unwrap();
    let original = r#""tool_choice": {
    "type": "auto",
    "disable_parallel_tool_use": true
  }"#;
    assert!(template.contains(original));
    let mut lines = Vec::new();
    for choice in [
        r#"{"type":"auto"}"#,
        r#"{"type":"auto","disable_parallel_tool_use":true}"#,
        r#"{"type":"any"}"#,
        r#"{"type":"any","disable_parallel_tool_use":false}"#,
        r#"{"type":"none"}"#,
        r#"{"type":"tool","name":"get_weather"}"#,
        r#"{"type":"tool","name":"get_time","disable_parallel_tool_use":true}"#,
        r#"{"type":"mystery"}"#,
    ] {
        let body = template.replace(original, &format!("\"tool_choice\": {choice}"));
        let translated = m2c::request(body.as_bytes(), &OPTS).unwrap();
        let json: Value = serde_json::from_slice(&translated.body).unwrap();
        lines.push(format!(
            "{choice} -> tool_choice: {}, parallel_tool_calls: {}, dropped: {:?}",
            json.get("tool_choice").unwrap_or(&Value::Null),
            json.get("parallel_tool_calls").unwrap_or(&Value::Null),
            translated.dropped,
        ));
    }
    insta::assert_snapshot!(lines.join("\n"));
}

#[test]
fn request_stop_sequences_and_user() {
    insta::assert_snapshot!(request_snapshot(fixture!("req_stop_sequences.json")));
}

#[test]
fn request_dropped_fields_are_listed() {
    let body = fixture!("req_dropped.json");
    let (_, dropped) = translate_request(body);
    assert_eq!(
        dropped,
        [
            "thinking",
            "top_k",
            "service_tier",
            "container",
            "mcp_servers",
            "some_future_field",
            "messages[].content.document",
            "messages[].content.server_tool_use",
            "messages[].content.web_search_tool_result",
            "tools[].web_search_20250305",
            "tool_choice",
        ]
    );
    insta::assert_snapshot!(request_snapshot(body));
}

#[test]
fn request_refusals() {
    let cases: [(&[u8], &str); 7] = [
        (fixture!("req_malformed.json"), "invalid Anthropic Messages request: EOF while parsing"),
        (br#"{"model":"m","max_tokens":5}"#, "missing field `messages`"),
        (br#"[1,2]"#, "invalid Anthropic Messages request: invalid type: sequence"),
        (b"", "invalid Anthropic Messages request: EOF while parsing"),
        (br#"{"messages":"hi"}"#, "invalid type: string \"hi\""),
        (
            br#"{"messages":[{"role":"system","content":"x"}]}"#,
            "role \"system\" is neither",
        ),
        (
            br#"{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64"}}]}]}"#,
            "image block with an incomplete source",
        ),
    ];
    for (body, want) in cases {
        let err = m2c::request(body, &OPTS).expect_err(want).0;
        assert!(err.contains(want), "{err:?} should contain {want:?}");
    }
}

#[test]
fn request_never_panics_on_truncations() {
    let body = fixture!("req_claude_code.json");
    for end in 0..body.len() {
        let _ = m2c::request(&body[..end], &OPTS);
    }
}

// === responses ===

#[test]
fn response_text() {
    insta::assert_snapshot!(response_snapshot(fixture!("resp_text.json")));
}

#[test]
fn response_tool_calls() {
    insta::assert_snapshot!(response_snapshot(fixture!("resp_tool_calls.json")));
}

#[test]
fn response_length() {
    insta::assert_snapshot!(response_snapshot(fixture!("resp_length.json")));
}

#[test]
fn response_cached_usage() {
    insta::assert_snapshot!(response_snapshot(fixture!("resp_cached.json")));
}

#[test]
fn response_reasoning_becomes_thinking() {
    insta::assert_snapshot!(response_snapshot(fixture!("resp_reasoning.json")));
}

#[test]
fn response_odd_tool_arguments() {
    insta::assert_snapshot!(response_snapshot(fixture!("resp_odd_tool_args.json")));
}

#[test]
fn response_refusals() {
    for (body, want) in [
        (
            fixture!("resp_not_completion.json"),
            "missing field `choices`",
        ),
        (br#"{"id":"x","choices":[]}"#.as_slice(), "no choices"),
        (b"<html>".as_slice(), "not a chat completion"),
        (
            br#"{"error":{"message":"boom","type":"server_error"}}"#.as_slice(),
            "not a chat completion",
        ),
    ] {
        let err = m2c::response(body).expect_err(want).0;
        assert!(err.contains(want), "{err:?} should contain {want:?}");
    }
}

// === errors ===

#[test]
fn errors() {
    let cases: [(u16, &[u8]); 7] = [
        (429, fixture!("err_429.json")),
        (400, fixture!("err_400.json")),
        (502, fixture!("err_502.html")),
        (404, fixture!("err_ollama_404.json")),
        (400, fixture!("err_vllm_400.json")),
        (503, b""),
        (500, b"\xff\xfe not utf-8 \xc3"),
    ];
    let out: Vec<String> = cases
        .iter()
        .map(|(status, body)| format!("{status}: {}", pretty(&m2c::error(*status, body))))
        .collect();
    insta::assert_snapshot!(out.join("\n"));
}

#[test]
fn error_message_from_a_huge_body_is_cut_on_a_char_boundary() {
    let body = "é".repeat(5000);
    let out: Value = serde_json::from_slice(&m2c::error(500, body.as_bytes())).unwrap();
    let message = out["error"]["message"].as_str().unwrap();
    assert!(
        message.len() <= 1024 && message.len() > 1000,
        "{}",
        message.len()
    );
    assert!(message.chars().all(|c| c == 'é'));
    assert_eq!(out["error"]["type"], "api_error");
}

// === streams ===

#[test]
fn stream_text_with_usage_chunk() {
    insta::assert_snapshot!(stream_snapshot(fixture!("stream_text.sse")));
}

#[test]
fn stream_two_parallel_tool_calls() {
    let out = stream_snapshot(fixture!("stream_tools.sse"));
    // The fragments of each call reassemble into its arguments.
    let events = check_grammar(&out);
    let mut args = vec![String::new(); 3];
    for (_, data) in &events {
        if data["delta"]["type"] == "input_json_delta" {
            let index = data["index"].as_u64().unwrap() as usize;
            args[index].push_str(data["delta"]["partial_json"].as_str().unwrap());
        }
    }
    assert_eq!(args[1], r#"{"location": "Paris, FR"}"#);
    assert_eq!(args[2], r#"{"timezone":"Europe/Paris"}"#);
    insta::assert_snapshot!(out);
}

#[test]
fn stream_usage_on_every_chunk_takes_the_last() {
    insta::assert_snapshot!(stream_snapshot(fixture!("stream_usage_every_chunk.sse")));
}

#[test]
fn stream_mid_stream_error() {
    insta::assert_snapshot!(stream_snapshot(fixture!("stream_error.sse")));
}

#[test]
fn stream_cut() {
    insta::assert_snapshot!(stream_snapshot(fixture!("stream_cut.sse")));
}

#[test]
fn stream_bad_json_chunk_is_skipped() {
    insta::assert_snapshot!(stream_snapshot(fixture!("stream_bad_json.sse")));
}

#[test]
fn stream_no_done_after_usage_is_complete() {
    insta::assert_snapshot!(stream_snapshot(fixture!("stream_no_done.sse")));
}

#[test]
fn stream_reasoning_becomes_thinking() {
    insta::assert_snapshot!(stream_snapshot(fixture!("stream_reasoning.sse")));
}

#[test]
fn stream_edge_cases() {
    // Nothing at all, only [DONE], finish reason without usage or [DONE], CRLF line endings.
    let cases: [&[u8]; 4] = [
        b"",
        b"data: [DONE]\n\n",
        b"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        b"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\r\n\r\ndata: [DONE]\r\n\r\n",
    ];
    let out: Vec<String> = cases
        .iter()
        .map(|case| {
            let out = run_stream(&[case]);
            check_grammar(&out);
            out
        })
        .collect();
    insta::assert_snapshot!(out.join("=====\n"));
}

#[test]
fn stream_split_anywhere_gives_the_same_output() {
    for (name, stream) in STREAMS {
        let whole = run_stream(&[stream]);
        for cut in 0..=stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(run_stream(&[a, b]), whole, "{name} cut at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run_stream(&bytes), whole, "{name} byte by byte");
        // Random chunk sizes from a fixed-seed generator, so a failure reproduces.
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        for round in 0..20 {
            let mut pieces = Vec::new();
            let mut rest: &[u8] = stream;
            while !rest.is_empty() {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let size = 1 + (seed >> 33) as usize % 97;
                let (piece, tail) = rest.split_at(size.min(rest.len()));
                pieces.push(piece);
                rest = tail;
            }
            assert_eq!(run_stream(&pieces), whole, "{name} random round {round}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Every entry point takes arbitrary bytes without panicking, and whatever the stream
    /// translator emits still follows Anthropic's event grammar.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = m2c::request(&bytes, &OPTS);
        let _ = m2c::response(&bytes);
        let error: Value = serde_json::from_slice(&m2c::error(500, &bytes)).unwrap();
        prop_assert_eq!(&error["type"], "error");
        let out = run_stream(&[&bytes]);
        check_grammar(&out);
    }

    /// Fixture streams with a few bytes overwritten: still no panic, still a valid stream.
    #[test]
    fn corrupted_streams_stay_well_formed(
        which in 0..STREAMS.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut stream = STREAMS[which].1.to_vec();
        for (at, byte) in edits {
            let i = at.index(stream.len());
            stream[i] = byte;
        }
        let out = run_stream(&[&stream]);
        check_grammar(&out);
    }
}

/// A failed tool run must not read as a success to a model that has no error flag.
#[test]
fn request_tool_result_error_is_said_in_the_text() {
    let body = br#"{"model":"m","max_tokens":10,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"Bash","input":{}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","is_error":true,"content":"command failed"}]}]}"#;
    let json = request_json(body);
    assert_eq!(json["messages"][1]["role"], "tool");
    assert_eq!(json["messages"][1]["content"], "Error: command failed");
}

/// Providers that refuse `stream_options` are not sent it.
#[test]
fn request_without_stream_options() {
    let body = br#"{"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(request_json(body)["stream_options"]["include_usage"], true);
    let opts = RequestOptions {
        stream_options: false,
        ..OPTS
    };
    let json: Value = serde_json::from_slice(&m2c::request(body, &opts).unwrap().body).unwrap();
    assert!(json.get("stream_options").is_none(), "{json}");
    assert_eq!(json["stream"], true);
}

/// Some compatible servers send `"finish_reason":""` on every chunk: that is not the end.
#[test]
fn stream_empty_finish_reason_is_not_a_stop() {
    let stream = concat!(
        "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":\"\"}]}\n\n",
        "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"\"}]}\n\n",
        "data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n",
        "data: [DONE]\n\n",
    );
    let out = run_stream(&[stream.as_bytes()]);
    let events = check_grammar(&out);
    let starts = events
        .iter()
        .filter(|(name, _)| name == "content_block_start")
        .count();
    assert_eq!(starts, 1, "{out}");
    assert_eq!(
        events
            .iter()
            .filter(|(name, _)| name == "message_stop")
            .count(),
        1
    );
}
