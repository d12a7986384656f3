//! Micro-benchmarks for `translate::messages_to_chat`, the cost the gateway adds when an
//! Anthropic Messages client (Claude Code) talks to an OpenAI-compatible provider:
//! - `request`: a typical ~2 KB Anthropic request (system blocks, a few turns with a tool call
//!   and its result, one tool) translated to OpenAI Chat; throughput in bytes of input.
//! - `stream`: a 40-event OpenAI text stream (role chunk, text deltas, finish, usage chunk,
//!   `[DONE]`) translated to Anthropic events, fed as it would arrive (one network chunk per
//!   event); throughput in upstream events.
//!
//! Inputs are built in memory, so a run does no I/O. Run with
//! `cargo bench -p agentgateway-wire --bench translate_messages_to_chat`.

use std::hint::black_box;
use std::time::Duration;

use agentgateway_wire::translate::messages_to_chat::{request, StreamTranslator};
use agentgateway_wire::translate::RequestOptions;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const STREAM_EVENTS: usize = 40;

/// A Claude-Code-like request of about 2 KB.
fn anthropic_request_2k() -> Vec<u8> {
    let filler = "Keep answers short, cite file paths, and never invent APIs. ".repeat(8);
    let body = serde_json::json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 8192,
        "stream": true,
        "system": [
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
             "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": format!("You help with software engineering tasks.\n{filler}"),
             "cache_control": {"type": "ephemeral"}}
        ],
        "tools": [{
            "name": "Read",
            "description": "Reads a file from the local filesystem.",
            "input_schema": {"type": "object", "properties": {
                "file_path": {"type": "string", "description": "Absolute path"},
                "offset": {"type": "number"}, "limit": {"type": "number"}},
                "required": ["file_path"], "additionalProperties": false}
        }],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What does src/main.rs do?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me read it."},
                {"type": "tool_use", "id": "toolu_01A", "name": "Read",
                 "input": {"file_path": "/repo/src/main.rs"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A",
                 "content": "     1\tfn main() {\n     2\t    println!(\"hello\");\n     3\t}\n"},
                {"type": "text", "text": "And explain \"println!\" too."}]},
            {"role": "assistant", "content": "It prints \"hello\"; `println!` is a macro that formats and writes a line to stdout."},
            {"role": "user", "content": "Thanks. Now suggest a test for it, briefly."}
        ],
        "metadata": {"user_id": "user_5c3e9f0d2b_account_8a1b_session_2f4c6e8a"}
    });
    serde_json::to_vec(&body).expect("serialisable")
}

/// An OpenAI chat stream of exactly [`STREAM_EVENTS`] SSE events, one per element.
fn openai_text_stream() -> Vec<Vec<u8>> {
    let head = r#"{"id":"chatcmpl-Bench","object":"chat.completion.chunk","created":1754000000,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_b3f1157249","choices":"#;
    let chunk = |choices: &str, usage: &str| {
        format!("data: {head}{choices},\"usage\":{usage},\"obfuscation\":\"x\"}}\n\n").into_bytes()
    };
    let words = [
        " The",
        " gateway",
        " \"translates\"",
        " every",
        " event",
        ".\n",
    ];
    let mut events = vec![chunk(
        r#"[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]"#,
        "null",
    )];
    for word in words.iter().cycle().take(STREAM_EVENTS - 4) {
        let escaped = word
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        events.push(chunk(
            &format!(r#"[{{"index":0,"delta":{{"content":"{escaped}"}},"logprobs":null,"finish_reason":null}}]"#),
            "null",
        ));
    }
    events.push(chunk(
        r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]"#,
        "null",
    ));
    events.push(chunk(
        "[]",
        r#"{"prompt_tokens":1950,"completion_tokens":36,"total_tokens":1986,"prompt_tokens_details":{"cached_tokens":1536,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}"#,
    ));
    events.push(b"data: [DONE]\n\n".to_vec());
    assert_eq!(events.len(), STREAM_EVENTS);
    events
}

fn bench_request(c: &mut Criterion) {
    let body = anthropic_request_2k();
    let opts = RequestOptions {
        model: "gpt-4.1",
        default_max_tokens: 4096,
        max_completion_tokens: false,
        stream_options: true,
    };
    let mut group = c.benchmark_group("messages_to_chat");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function(format!("request_{}B", body.len()), |b| {
        b.iter(|| request(black_box(&body), &opts).expect("translates"))
    });
    group.finish();
}

fn bench_stream(c: &mut Criterion) {
    let events = openai_text_stream();
    let mut group = c.benchmark_group("messages_to_chat");
    group.throughput(Throughput::Elements(STREAM_EVENTS as u64));
    group.bench_function("stream_40_events", |b| {
        b.iter(|| {
            let mut translator = StreamTranslator::new(false);
            let mut sent = 0;
            for event in &events {
                sent += translator.feed(black_box(event)).len();
            }
            sent + translator.finish().len()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_request, bench_stream
}
criterion_main!(benches);
