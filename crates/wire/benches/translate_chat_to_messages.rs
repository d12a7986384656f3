//! Benchmarks for `translate::chat_to_messages`, the per-request cost the gateway adds when an
//! OpenAI Chat client calls an Anthropic model: translating a typical ~2 KB request (system
//! prompt, a few turns, one tool; reported in bytes/s), translating a complete response, and
//! translating a ~40-event Anthropic text stream into OpenAI chunks (reported in events/s).
//! Inputs are built here in memory, so a run does no I/O.
//!
//! Run with `cargo bench -p agentgateway-wire --bench translate_chat_to_messages`.

use std::hint::black_box;

use agentgateway_wire::translate::chat_to_messages::{request, response, StreamTranslator};
use agentgateway_wire::translate::RequestOptions;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const OPTS: RequestOptions<'static> = RequestOptions {
    model: "claude-sonnet-4-5",
    default_max_tokens: 4096,
    max_completion_tokens: false,
    stream_options: true,
};

/// Words the synthetic texts are made of, with escapes as real traffic has them.
const WORDS: &[&str] = &[
    "The",
    " gateway",
    " translates",
    " \\\"requests\\\"",
    ",",
    " streams",
    " and",
    " errors",
    ":",
    " {braces}",
    "\\n",
    " 42",
    " tokens",
    ".",
];

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

/// A typical agent turn of about 2 KB: system prompt, user, an assistant tool call, its
/// result, a follow-up question, and one tool definition.
fn chat_request_2k() -> Vec<u8> {
    format!(
        concat!(
            r#"{{"model":"claude-fast","stream":true,"stream_options":{{"include_usage":true}},"#,
            r#""temperature":0.7,"max_completion_tokens":1024,"user":"user-42","messages":["#,
            r#"{{"role":"system","content":"{system}"}},"#,
            r#"{{"role":"user","content":"{user}"}},"#,
            r#"{{"role":"assistant","content":"Let me look that up.","tool_calls":[{{"id":"call_1","type":"function","function":{{"name":"search_docs","arguments":"{{\"query\":\"rate limits\",\"top_k\":5}}"}}}}]}},"#,
            r#"{{"role":"tool","tool_call_id":"call_1","content":"{tool}"}},"#,
            r#"{{"role":"user","content":"{follow_up}"}}],"#,
            r#""tools":[{{"type":"function","function":{{"name":"search_docs","description":"Search the documentation","#,
            r#""parameters":{{"type":"object","properties":{{"query":{{"type":"string"}},"top_k":{{"type":"integer"}}}},"required":["query"]}}}}}}],"#,
            r#""tool_choice":"auto"}}"#
        ),
        system = json_text(500),
        user = json_text(300),
        tool = json_text(600),
        follow_up = json_text(150),
    )
    .into_bytes()
}

fn response_body() -> Vec<u8> {
    format!(
        r#"{{"id":"msg_01Bench","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{{"type":"text","text":"{}"}},{{"type":"tool_use","id":"toolu_01","name":"search_docs","input":{{"query":"limits","top_k":3}}}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{{"input_tokens":512,"cache_creation_input_tokens":0,"cache_read_input_tokens":1024,"output_tokens":128}}}}"#,
        json_text(1500)
    )
    .into_bytes()
}

/// Number of events in [`text_stream`].
const STREAM_EVENTS: u64 = 40;

/// An Anthropic text stream of exactly [`STREAM_EVENTS`] events, as Anthropic frames it.
fn text_stream() -> Vec<u8> {
    let mut s = String::new();
    let mut event = |name: &str, data: &str| {
        s.push_str("event: ");
        s.push_str(name);
        s.push_str("\ndata: ");
        s.push_str(data);
        s.push_str("\n\n");
    };
    event(
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_01Bench","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":512,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}"#,
    );
    event(
        "content_block_start",
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
    );
    event("ping", r#"{"type": "ping"}"#);
    for i in 0..34 {
        let text = json_text(20 + i % 7);
        event(
            "content_block_delta",
            &format!(
                r#"{{"type":"content_block_delta","index":0,"delta":{{"type":"text_delta","text":"{text}"}}}}"#
            ),
        );
    }
    event(
        "content_block_stop",
        r#"{"type":"content_block_stop","index":0}"#,
    );
    event(
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":180}}"#,
    );
    event("message_stop", r#"{"type":"message_stop"}"#);
    s.into_bytes()
}

/// The figures are only meaningful if the inputs are what they claim to be.
fn check_inputs(body: &[u8], resp: &[u8], sse: &[u8]) {
    assert!((1800..2600).contains(&body.len()), "{}", body.len());
    let translated = request(body, &OPTS).expect("request translates");
    assert!(translated.dropped.is_empty());
    response(resp, 0).expect("response translates");
    let events = sse.windows(8).filter(|w| w == b"\nevent: ").count() + 1;
    assert_eq!(events as u64, STREAM_EVENTS);
    let mut t = StreamTranslator::new(true, 0);
    let mut out = t.feed(sse).to_vec();
    out.extend_from_slice(&t.finish());
    assert!(out.ends_with(b"data: [DONE]\n\n"));
}

fn bench_request(c: &mut Criterion) {
    let body = chat_request_2k();
    check_inputs(&body, &response_body(), &text_stream());
    let mut group = c.benchmark_group("chat_to_messages");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("request_2k", |b| {
        b.iter(|| request(black_box(&body), &OPTS))
    });
    let resp = response_body();
    group.throughput(Throughput::Bytes(resp.len() as u64));
    group.bench_function("response_2k", |b| {
        b.iter(|| response(black_box(&resp), 1_767_225_600))
    });
    group.finish();
}

fn bench_stream(c: &mut Criterion) {
    let sse = text_stream();
    // Upstream reads rarely line up with events: feed it in 512-byte pieces.
    let pieces: Vec<&[u8]> = sse.chunks(512).collect();
    let mut group = c.benchmark_group("chat_to_messages");
    group.throughput(Throughput::Elements(STREAM_EVENTS));
    group.bench_function("stream_40_events", |b| {
        b.iter(|| {
            let mut t = StreamTranslator::new(true, 1_767_225_600);
            let mut bytes = 0;
            for piece in &pieces {
                bytes += t.feed(black_box(piece)).len();
            }
            bytes + t.finish().len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_request, bench_stream);
criterion_main!(benches);
