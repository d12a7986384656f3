//! Micro-benchmarks for the wire formats on the gateway's request path: scanning and rewriting
//! request bodies (`scan_request`, `rewrite_request`), metering JSON responses (`JsonMeter`,
//! `summarize_json`) and metering / stripping SSE streams (`StreamMeter`), for OpenAI's formats
//! and Anthropic Messages (the `anthropic` group). The request path is
//! the product, so this is the per-request overhead the gateway adds on top of the network;
//! issue 6 sets the targets these figures are measured against. Every benchmark reports
//! bytes/s (`Throughput::Bytes`) next to the time per body or per stream. Inputs are the test
//! fixtures or are built here in memory, so a run does no I/O.
//!
//! Run with `cargo bench -p agentgateway-wire`; measurement times are kept short so the whole
//! run takes well under two minutes.

use std::hint::black_box;
use std::time::Duration;

use agentgateway_wire::{
    rewrite_request, scan_request, summarize_json, JsonMeter, Operation, StreamMeter,
};
use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

const CHAT_JSON: &[u8] = include_bytes!("../tests/fixtures/chat.json");
const ANTHROPIC_JSON: &[u8] = include_bytes!("../tests/fixtures/anthropic/message.json");

/// The exact chat completion the load benchmark's fake provider answers (`bench/bench.py
/// fixtures`, compact `json.dumps`), so these figures line up with its per-response profile.
const LOAD_BENCH_JSON: &[u8] = concat!(
    r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"#,
    r#""model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"stop","#,
    r#""message":{"role":"assistant","content":"Hello! Hello! Hello! Hello! Hello! "#,
    r#"Hello! Hello! Hello! Hello! Hello! Hello! Hello! Hello! Hello! Hello! Hello! "#,
    r#"Hello! Hello! Hello! Hello! "}}],"#,
    r#""usage":{"prompt_tokens":12,"completion_tokens":40,"total_tokens":52}}"#
)
.as_bytes();

/// Words the synthetic message contents and stream deltas are made of (with a quote, a
/// backslash and a newline, so strings carry escapes as real traffic does).
const WORDS: &[&str] = &[
    "The",
    " gateway",
    " forwards",
    " bytes",
    ",",
    " meters",
    " usage",
    " and",
    " \\\"quotes\\\"",
    " survive",
    ":",
    " {braces}",
    " [brackets]",
    " a\\\\b",
    "\\n",
    " 42",
    " tokens",
    ".",
];

/// Text of about `len` bytes as a JSON string body (already escaped).
fn json_text(len: usize) -> String {
    let mut s = String::with_capacity(len + 16);
    for word in WORDS.iter().cycle() {
        if s.len() >= len {
            break;
        }
        s.push_str(word);
    }
    s
}

/// A typical chat request of about 2 KB, in the member order the OpenAI Python client sends
/// (`messages` before `model`), streaming, without `stream_options`.
fn chat_request_2k() -> Vec<u8> {
    let body = format!(
        concat!(
            r#"{{"messages":[{{"role":"system","content":"{system}"}},"#,
            r#"{{"role":"user","content":"{q1}"}},"#,
            r#"{{"role":"assistant","content":"{a1}"}},"#,
            r#"{{"role":"user","content":"{q2}"}}],"#,
            r#""model":"fast","max_completion_tokens":1024,"temperature":0.7,"top_p":1,"#,
            r#""user":"user-1234","metadata":{{"session":"s-5678"}},"stream":true}}"#
        ),
        system = json_text(400),
        q1 = json_text(300),
        a1 = json_text(900),
        q2 = json_text(200),
    );
    body.into_bytes()
}

/// A request whose single message content string is about 200 KB (a pasted document).
fn chat_request_200k() -> Vec<u8> {
    format!(
        r#"{{"messages":[{{"role":"user","content":"{}"}}],"model":"fast","stream":true}}"#,
        json_text(200 * 1024)
    )
    .into_bytes()
}

/// An embeddings response of about 1 MB: 1536-dimension float arrays, as OpenAI returns them.
fn embeddings_1m() -> Vec<u8> {
    let mut out = String::from("{\n  \"object\": \"list\",\n  \"data\": [\n");
    // Deterministic pseudo-random floats (a 64-bit LCG), printed shortest like f32 values.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut index = 0;
    while out.len() < 1024 * 1024 {
        if index > 0 {
            out.push_str(",\n");
        }
        out.push_str(&format!(
            "    {{\n      \"object\": \"embedding\",\n      \"index\": {index},\n      \"embedding\": ["
        ));
        for dim in 0..1536 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32; // [0, 1)
            let value = (unit - 0.5) * 0.2;
            if dim > 0 {
                out.push_str(", ");
            }
            out.push_str(&value.to_string());
        }
        out.push_str("]\n    }");
        index += 1;
    }
    out.push_str(concat!(
        "\n  ],\n  \"model\": \"text-embedding-3-small\",\n",
        "  \"usage\": {\n    \"prompt_tokens\": 8192,\n    \"total_tokens\": 8192\n  }\n}\n"
    ));
    out.into_bytes()
}

/// A 40-event Chat Completions stream (a role event, 38 content deltas, a finish event) and
/// `[DONE]`, one network chunk per event. With `include_usage` every chunk carries
/// `"usage":null` and a usage-only chunk precedes `[DONE]`, as OpenAI sends it.
fn chat_stream(include_usage: bool) -> Vec<Bytes> {
    const HEAD: &str = concat!(
        r#"data: {"id":"chatcmpl-BfD8dqXyZ","object":"chat.completion.chunk","created":1749000000,"#,
        r#""model":"gpt-4o-mini-2024-07-18","service_tier":"default","#,
        r#""system_fingerprint":"fp_34a54ae93c","choices":"#
    );
    let tail = if include_usage {
        ",\"usage\":null}\n\n"
    } else {
        "}\n\n"
    };
    let event = |choices: &str| Bytes::from(format!("{HEAD}{choices}{tail}"));
    let mut chunks = vec![event(
        r#"[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]"#,
    )];
    for word in WORDS.iter().cycle().take(38) {
        chunks.push(event(&format!(
            r#"[{{"index":0,"delta":{{"content":"{word}"}},"logprobs":null,"finish_reason":null}}]"#
        )));
    }
    chunks.push(event(
        r#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]"#,
    ));
    if include_usage {
        chunks.push(Bytes::from(format!(
            concat!(
                "{}[],\"usage\":{{\"prompt_tokens\":19,\"completion_tokens\":38,",
                "\"total_tokens\":57,\"prompt_tokens_details\":{{\"cached_tokens\":0,",
                "\"audio_tokens\":0}},\"completion_tokens_details\":{{\"reasoning_tokens\":0,",
                "\"audio_tokens\":0,\"accepted_prediction_tokens\":0,",
                "\"rejected_prediction_tokens\":0}}}}}}\n\n"
            ),
            HEAD
        )));
    }
    chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
    chunks
}

/// A 42-event Anthropic Messages stream, one network chunk per event: message_start,
/// content_block_start, a ping, 36 text deltas, content_block_stop, message_delta and
/// message_stop. Without `event_lines` the meter must classify every event by its data's `type`.
fn anthropic_stream(event_lines: bool) -> Vec<Bytes> {
    let event = |name: &str, data: String| {
        let line = if event_lines {
            format!("event: {name}\n")
        } else {
            String::new()
        };
        Bytes::from(format!("{line}data: {data}\n\n"))
    };
    let mut chunks = vec![event(
        "message_start",
        concat!(
            r#"{"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","#,
            r#""type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","#,
            r#""content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"#,
            r#""cache_creation_input_tokens":0,"cache_read_input_tokens":2048,"#,
            r#""cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"#,
            r#""output_tokens":2,"service_tier":"standard"}}}"#
        )
        .to_owned(),
    )];
    chunks.push(event(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#
            .to_owned(),
    ));
    chunks.push(event("ping", r#"{"type": "ping"}"#.to_owned()));
    for word in WORDS.iter().cycle().take(36) {
        chunks.push(event(
            "content_block_delta",
            format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{word}"}}}}"#
            ),
        ));
    }
    chunks.push(event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#.to_owned(),
    ));
    chunks.push(event(
        "message_delta",
        concat!(
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"#,
            r#""usage":{"output_tokens":38}}"#
        )
        .to_owned(),
    ));
    chunks.push(event(
        "message_stop",
        r#"{"type":"message_stop"}"#.to_owned(),
    ));
    chunks
}

fn total_len(chunks: &[Bytes]) -> u64 {
    chunks.iter().map(|c| c.len() as u64).sum()
}

/// Feeds a whole stream through a fresh meter, as the gateway does for one response.
fn run_stream(strip: bool, chunks: &[Bytes]) -> StreamMeter {
    run_stream_as(Operation::ChatCompletions, strip, chunks)
}

fn run_stream_as(op: Operation, strip: bool, chunks: &[Bytes]) -> StreamMeter {
    let mut meter = StreamMeter::new(op, strip);
    for chunk in chunks {
        black_box(meter.feed(chunk.clone()));
    }
    black_box(meter.finish());
    meter
}

fn request(c: &mut Criterion) {
    let small = Bytes::from(chat_request_2k());
    let large = Bytes::from(chat_request_200k());
    let info = scan_request(&small).expect("2 KB request scans");
    assert!(info.stream() && info.include_usage().is_none() && info.model() == "fast");
    assert_eq!(
        scan_request(&large).expect("200 KB request scans").model(),
        "fast"
    );
    let rewritten = rewrite_request(&small, &info, Some("gpt-4o-mini-2024-07-18"), true);
    assert_eq!(
        scan_request(&rewritten)
            .expect("rewritten request scans")
            .include_usage(),
        Some(true)
    );

    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Bytes(small.len() as u64));
    group.bench_function("scan_2k", |b| b.iter(|| scan_request(black_box(&small))));
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.bench_function("scan_200k", |b| b.iter(|| scan_request(black_box(&large))));
    group.throughput(Throughput::Bytes(small.len() as u64));
    group.bench_function("rewrite_2k_model_include_usage", |b| {
        b.iter(|| {
            rewrite_request(
                black_box(&small),
                black_box(&info),
                Some("gpt-4o-mini-2024-07-18"),
                true,
            )
        })
    });
    group.finish();
}

fn json(c: &mut Criterion) {
    let chunks: Vec<&[u8]> = CHAT_JSON.chunks(64).collect();
    let embeddings = embeddings_1m();
    let summary = summarize_json(Operation::Embeddings, &embeddings);
    assert_eq!(summary.usage.input_tokens, Some(8192));
    assert_eq!(
        summary.response_model.as_deref(),
        Some("text-embedding-3-small")
    );
    assert_eq!(
        summarize_json(Operation::ChatCompletions, CHAT_JSON)
            .usage
            .input_tokens,
        Some(2006)
    );

    let mut group = c.benchmark_group("json");
    load_bench_body(&mut group);
    group.throughput(Throughput::Bytes(CHAT_JSON.len() as u64));
    group.bench_function("meter_chat_whole", |b| {
        b.iter(|| {
            let mut meter = JsonMeter::new(Operation::ChatCompletions);
            meter.feed(black_box(CHAT_JSON));
            meter.summary()
        })
    });
    group.bench_function("meter_chat_64b_chunks", |b| {
        b.iter(|| {
            let mut meter = JsonMeter::new(Operation::ChatCompletions);
            for chunk in black_box(&chunks) {
                meter.feed(chunk);
            }
            meter.summary()
        })
    });
    group.throughput(Throughput::Bytes(embeddings.len() as u64));
    group.bench_function("summarize_embeddings_1m", |b| {
        b.iter(|| summarize_json(Operation::Embeddings, black_box(&embeddings)))
    });
    group.finish();
}

/// The load benchmark's body, whole and in three network chunks (cut inside `content` and
/// inside `usage`, the harder case for a resumable scanner).
fn load_bench_body(group: &mut BenchmarkGroup<'_, WallTime>) {
    let summary = summarize_json(Operation::ChatCompletions, LOAD_BENCH_JSON);
    assert_eq!(summary.usage.input_tokens, Some(12));
    assert_eq!(summary.usage.output_tokens, Some(40));
    assert_eq!(summary.response_model.as_deref(), Some("gpt-4o-mini"));
    let third = LOAD_BENCH_JSON.len() / 3;
    let usage_at = LOAD_BENCH_JSON
        .windows(8)
        .position(|w| w == b"\"usage\":")
        .expect("body has usage");
    let pieces = [
        &LOAD_BENCH_JSON[..third],
        &LOAD_BENCH_JSON[third..usage_at + 20],
        &LOAD_BENCH_JSON[usage_at + 20..],
    ];
    group.throughput(Throughput::Bytes(LOAD_BENCH_JSON.len() as u64));
    group.bench_function("meter_load_bench_whole", |b| {
        b.iter(|| {
            let mut meter = JsonMeter::new(Operation::ChatCompletions);
            meter.feed(black_box(LOAD_BENCH_JSON));
            meter.summary()
        })
    });
    group.bench_function("meter_load_bench_3_chunks", |b| {
        b.iter(|| {
            let mut meter = JsonMeter::new(Operation::ChatCompletions);
            for piece in black_box(&pieces) {
                meter.feed(piece);
            }
            meter.summary()
        })
    });
}

fn stream(c: &mut Criterion) {
    let plain = chat_stream(false);
    let with_usage = chat_stream(true);
    // Sanity checks outside the timed loops: strip mode must give back the plain stream.
    let stripped: Vec<u8> = {
        let mut meter = StreamMeter::new(Operation::ChatCompletions, true);
        let mut out = Vec::new();
        for chunk in &with_usage {
            out.extend_from_slice(&meter.feed(chunk.clone()));
        }
        out.extend_from_slice(&meter.finish());
        assert_eq!(meter.summary().usage.output_tokens, Some(38));
        out
    };
    assert_eq!(stripped, plain.concat());
    assert_eq!(
        run_stream(false, &plain)
            .summary()
            .response_model
            .as_deref(),
        Some("gpt-4o-mini-2024-07-18")
    );

    let mut group = c.benchmark_group("stream");
    group.throughput(Throughput::Bytes(total_len(&plain)));
    group.bench_function("chat40_passthrough", |b| {
        b.iter(|| run_stream(false, black_box(&plain)))
    });
    group.throughput(Throughput::Bytes(total_len(&with_usage)));
    group.bench_function("chat40_strip_usage", |b| {
        b.iter(|| run_stream(true, black_box(&with_usage)))
    });
    group.finish();
}

fn anthropic(c: &mut Criterion) {
    let chunks: Vec<&[u8]> = ANTHROPIC_JSON.chunks(64).collect();
    let json = summarize_json(Operation::Messages, ANTHROPIC_JSON);
    assert_eq!(json.usage.input_tokens, Some(2260));
    assert_eq!(json.usage.output_tokens, Some(393));
    let named = anthropic_stream(true);
    let bare = anthropic_stream(false);
    assert_eq!(named.len(), 42);
    for stream in [&named, &bare] {
        let meter = run_stream_as(Operation::Messages, false, stream);
        assert_eq!(meter.summary().usage.input_tokens, Some(2520));
        assert_eq!(meter.summary().usage.output_tokens, Some(38));
        assert_eq!(
            meter.summary().response_model.as_deref(),
            Some("claude-sonnet-4-5-20250929")
        );
    }

    let mut group = c.benchmark_group("anthropic");
    group.throughput(Throughput::Bytes(ANTHROPIC_JSON.len() as u64));
    group.bench_function("json_meter_message_whole", |b| {
        b.iter(|| {
            let mut meter = JsonMeter::new(Operation::Messages);
            meter.feed(black_box(ANTHROPIC_JSON));
            meter.summary()
        })
    });
    group.bench_function("json_meter_message_64b_chunks", |b| {
        b.iter(|| {
            let mut meter = JsonMeter::new(Operation::Messages);
            for chunk in black_box(&chunks) {
                meter.feed(chunk);
            }
            meter.summary()
        })
    });
    group.throughput(Throughput::Bytes(total_len(&named)));
    group.bench_function("stream42_passthrough", |b| {
        b.iter(|| run_stream_as(Operation::Messages, false, black_box(&named)))
    });
    group.throughput(Throughput::Bytes(total_len(&bare)));
    group.bench_function("stream42_no_event_lines", |b| {
        b.iter(|| run_stream_as(Operation::Messages, false, black_box(&bare)))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = config();
    targets = request, json, stream, anthropic
}
criterion_main!(benches);
