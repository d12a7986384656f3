//! Shared test helpers: the fixtures (compiled in, so tests do no file I/O), line-ending
//! variants of them, and drivers that feed a meter a body split at given cut points.
#![allow(dead_code)]

use agentgateway_wire::{JsonMeter, Operation, ResponseSummary, StreamMeter, Usage};
use bytes::Bytes;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/",
            $name
        ))
        .as_slice()
    };
}

pub const CHAT_USAGE: &[u8] = fixture!("chat_usage.sse");
pub const CHAT_PLAIN: &[u8] = fixture!("chat_plain.sse");
pub const CHAT_TOOLS_USAGE: &[u8] = fixture!("chat_tools_usage.sse");
pub const CHAT_TOOLS_PLAIN: &[u8] = fixture!("chat_tools_plain.sse");
pub const CHAT_ERROR: &[u8] = fixture!("chat_error.sse");
pub const CHAT_CUT: &[u8] = fixture!("chat_cut.sse");
pub const COMPLETIONS_SSE: &[u8] = fixture!("completions.sse");
pub const RESPONSES_SSE: &[u8] = fixture!("responses.sse");
pub const RESPONSES_INCOMPLETE_SSE: &[u8] = fixture!("responses_incomplete.sse");
pub const RESPONSES_FAILED_SSE: &[u8] = fixture!("responses_failed.sse");
pub const RESPONSES_ERROR_SSE: &[u8] = fixture!("responses_error.sse");

pub const CHAT_JSON: &[u8] = fixture!("chat.json");
pub const CHAT_NO_DETAILS_JSON: &[u8] = fixture!("chat_no_details.json");
pub const CHAT_NULL_DETAILS_JSON: &[u8] = fixture!("chat_null_details.json");
pub const CHAT_REASONING_JSON: &[u8] = fixture!("chat_reasoning.json");
pub const COMPLETIONS_JSON: &[u8] = fixture!("completions.json");
pub const EMBEDDINGS_JSON: &[u8] = fixture!("embeddings.json");
pub const RESPONSES_JSON: &[u8] = fixture!("responses.json");
pub const RESPONSES_FAILED_JSON: &[u8] = fixture!("responses_failed.json");
pub const RESPONSES_INCOMPLETE_JSON: &[u8] = fixture!("responses_incomplete.json");
pub const ERROR_JSON: &[u8] = fixture!("error.json");

pub const ANTHROPIC_JSON: &[u8] = fixture!("anthropic/message.json");
pub const ANTHROPIC_NO_CACHE_JSON: &[u8] = fixture!("anthropic/message_no_cache.json");
pub const ANTHROPIC_ERROR_JSON: &[u8] = fixture!("anthropic/error.json");
pub const ANTHROPIC_COUNT_TOKENS_JSON: &[u8] = fixture!("anthropic/count_tokens.json");
pub const ANTHROPIC_TOOLS_SSE: &[u8] = fixture!("anthropic/stream_tools.sse");
pub const ANTHROPIC_CACHE_UPDATE_SSE: &[u8] = fixture!("anthropic/stream_cache_update.sse");
pub const ANTHROPIC_ERROR_SSE: &[u8] = fixture!("anthropic/stream_error.sse");
pub const ANTHROPIC_CUT_SSE: &[u8] = fixture!("anthropic/stream_cut.sse");
pub const ANTHROPIC_ODD_SSE: &[u8] = fixture!("anthropic/stream_odd.sse");

/// Every stream fixture with the operation it belongs to.
pub const STREAMS: &[(Operation, &[u8])] = &[
    (Operation::ChatCompletions, CHAT_USAGE),
    (Operation::ChatCompletions, CHAT_PLAIN),
    (Operation::ChatCompletions, CHAT_TOOLS_USAGE),
    (Operation::ChatCompletions, CHAT_TOOLS_PLAIN),
    (Operation::ChatCompletions, CHAT_ERROR),
    (Operation::ChatCompletions, CHAT_CUT),
    (Operation::Completions, COMPLETIONS_SSE),
    (Operation::Responses, RESPONSES_SSE),
    (Operation::Responses, RESPONSES_INCOMPLETE_SSE),
    (Operation::Responses, RESPONSES_FAILED_SSE),
    (Operation::Responses, RESPONSES_ERROR_SSE),
    (Operation::Messages, ANTHROPIC_TOOLS_SSE),
    (Operation::Messages, ANTHROPIC_CACHE_UPDATE_SSE),
    (Operation::Messages, ANTHROPIC_ERROR_SSE),
    (Operation::Messages, ANTHROPIC_CUT_SSE),
    (Operation::Messages, ANTHROPIC_ODD_SSE),
];

/// Streams produced with include_usage, paired with the same stream without it.
pub const STRIP_PAIRS: &[(&[u8], &[u8])] = &[
    (CHAT_USAGE, CHAT_PLAIN),
    (CHAT_TOOLS_USAGE, CHAT_TOOLS_PLAIN),
];

/// Every JSON body fixture with the operation it belongs to.
pub const BODIES: &[(Operation, &[u8])] = &[
    (Operation::ChatCompletions, CHAT_JSON),
    (Operation::ChatCompletions, CHAT_NO_DETAILS_JSON),
    (Operation::ChatCompletions, CHAT_NULL_DETAILS_JSON),
    (Operation::ChatCompletions, CHAT_REASONING_JSON),
    (Operation::Completions, COMPLETIONS_JSON),
    (Operation::Embeddings, EMBEDDINGS_JSON),
    (Operation::Responses, RESPONSES_JSON),
    (Operation::Responses, RESPONSES_FAILED_JSON),
    (Operation::Responses, RESPONSES_INCOMPLETE_JSON),
    (Operation::ChatCompletions, ERROR_JSON),
    (Operation::Messages, ANTHROPIC_JSON),
    (Operation::Messages, ANTHROPIC_NO_CACHE_JSON),
    (Operation::Messages, ANTHROPIC_ERROR_JSON),
    (Operation::CountTokens, ANTHROPIC_COUNT_TOKENS_JSON),
    (Operation::CountTokens, ANTHROPIC_ERROR_JSON),
];

/// The same stream with every `\n` line ending replaced by `\r\n`.
pub fn crlf(stream: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(stream.len() * 2);
    for &b in stream {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The same stream with every `\n` line ending replaced by `\r`.
pub fn cr(stream: &[u8]) -> Vec<u8> {
    stream
        .iter()
        .map(|&b| if b == b'\n' { b'\r' } else { b })
        .collect()
}

/// The stream as a server that sends no `event:` lines would: the data's `type` must suffice.
pub fn without_event_lines(stream: &[u8]) -> Vec<u8> {
    stream
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| !line.starts_with(b"event:"))
        .flatten()
        .copied()
        .collect()
}

/// Splits `body` at the given cut points (any values; they are reduced modulo the length).
pub fn split(body: &[u8], cuts: &[usize]) -> Vec<Bytes> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
    points.push(0);
    points.push(body.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| Bytes::copy_from_slice(&body[w[0]..w[1]]))
        .collect()
}

/// Every one-byte chunk of `body`.
pub fn bytewise(body: &[u8]) -> Vec<Bytes> {
    body.iter().map(|&b| Bytes::copy_from_slice(&[b])).collect()
}

/// Feeds a stream in the given chunks; returns everything forwarded and the final summary.
pub fn run_stream(op: Operation, strip: bool, chunks: &[Bytes]) -> (Vec<u8>, ResponseSummary) {
    let mut meter = StreamMeter::new(op, strip);
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(&meter.feed(chunk.clone()));
    }
    out.extend_from_slice(&meter.finish());
    (out, meter.summary().clone())
}

/// Feeds a JSON body in the given chunks and returns the summary.
pub fn run_json(op: Operation, chunks: &[Bytes]) -> ResponseSummary {
    let mut meter = JsonMeter::new(op);
    for chunk in chunks {
        meter.feed(chunk);
    }
    meter.summary()
}

pub fn whole(body: &[u8]) -> Vec<Bytes> {
    vec![Bytes::copy_from_slice(body)]
}

/// Normalised Anthropic usage: input already includes the cache reads and writes.
pub fn anthropic_usage(
    input: u64,
    output: u64,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
) -> Usage {
    Usage {
        input_tokens: Some(input),
        output_tokens: Some(output),
        cache_read_input_tokens: cache_read,
        cache_write_input_tokens: cache_write,
        reasoning_output_tokens: None,
    }
}

/// Every operation, for properties that must hold whatever the API.
pub const OPS: [Operation; 6] = [
    Operation::ChatCompletions,
    Operation::Responses,
    Operation::Completions,
    Operation::Embeddings,
    Operation::Messages,
    Operation::CountTokens,
];

/// 512 cases by default; set PROPTEST_CASES for a longer soak.
pub fn config() -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok());
    proptest::test_runner::Config::with_cases(cases.unwrap_or(512))
}
