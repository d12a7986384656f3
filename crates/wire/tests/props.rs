//! Property tests: chunking never changes what is metered or forwarded, strip mode always yields
//! the stream without include_usage, and no input of any shape makes anything panic.

mod common;

use agentgateway_wire::{rewrite_request, scan_request, summarize_json, Operation, StreamMeter};
use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};

const OPS: [Operation; 4] = [
    Operation::ChatCompletions,
    Operation::Responses,
    Operation::Completions,
    Operation::Embeddings,
];

/// 512 cases by default; set PROPTEST_CASES for a longer soak.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok());
    ProptestConfig::with_cases(cases.unwrap_or(512))
}

fn line_ending(stream: &[u8], variant: u8) -> Vec<u8> {
    match variant % 3 {
        0 => stream.to_vec(),
        1 => crlf(stream),
        _ => cr(stream),
    }
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(any::<usize>(), 0..24)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn stream_summary_and_output_ignore_chunking(
        idx in 0..STREAMS.len(), variant in 0u8..3, cuts in cuts(), strip in any::<bool>(),
    ) {
        let (op, stream) = STREAMS[idx];
        let stream = line_ending(stream, variant);
        let (whole_out, whole_summary) = run_stream(op, strip, &whole(&stream));
        let (out, summary) = run_stream(op, strip, &split(&stream, &cuts));
        prop_assert_eq!(&summary, &whole_summary);
        prop_assert_eq!(&out, &whole_out);
        if !strip {
            prop_assert_eq!(&out, &stream);
        }
    }

    #[test]
    fn strip_pairs_under_any_chunking(idx in 0..STRIP_PAIRS.len(), variant in 0u8..3, cuts in cuts()) {
        let (with, without) = STRIP_PAIRS[idx];
        let (with, without) = (line_ending(with, variant), line_ending(without, variant));
        let (out, summary) = run_stream(Operation::ChatCompletions, true, &split(&with, &cuts));
        prop_assert_eq!(out, without);
        prop_assert!(!summary.usage.is_empty());
    }

    #[test]
    fn json_summary_ignores_chunking(idx in 0..BODIES.len(), cuts in cuts()) {
        let (op, body) = BODIES[idx];
        prop_assert_eq!(run_json(op, &split(body, &cuts)), summarize_json(op, body));
    }

    #[test]
    fn generated_chat_streams_strip_exactly(
        contents in prop::collection::vec(any::<String>(), 1..6),
        variant in 0u8..3,
        prompt in any::<u32>(),
        completion in any::<u32>(),
        cuts in cuts(),
    ) {
        let (with, without) = chat_pair(&contents, u64::from(prompt), u64::from(completion));
        let (with, without) = (line_ending(&with, variant), line_ending(&without, variant));
        let (out, summary) = run_stream(Operation::ChatCompletions, true, &split(&with, &cuts));
        prop_assert_eq!(out, without);
        prop_assert_eq!(summary.usage.input_tokens, Some(u64::from(prompt)));
        prop_assert_eq!(summary.usage.output_tokens, Some(u64::from(completion)));
        prop_assert_eq!(summary.response_model.as_deref(), Some("m-1"));
    }

    #[test]
    fn scan_and_rewrite_any_model(model in any::<String>(), new_model in any::<String>(), stream in any::<bool>()) {
        let body = json!({"messages": [{"role": "user", "content": model}], "model": model, "stream": stream});
        let body = Bytes::from(serde_json::to_vec(&body).expect("serializes"));
        match scan_request(&body) {
            Ok(info) => {
                prop_assert_eq!(info.model(), model.as_str());
                prop_assert_eq!(info.stream(), stream);
                let out = rewrite_request(&body, &info, Some(&new_model), true);
                let v: Value = serde_json::from_slice(&out).expect("valid JSON");
                prop_assert_eq!(&v["model"], &json!(new_model));
                prop_assert_eq!(&v["messages"][0]["content"], &json!(model));
                prop_assert_eq!(&v["stream_options"], &json!({"include_usage": true}));
            }
            Err(e) => prop_assert!(model.is_empty(), "{e}"),
        }
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), cuts in cuts()) {
        garbage(&bytes, &cuts);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        idx in 0..STREAMS.len() + BODIES.len(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..16),
        cuts in cuts(),
    ) {
        let mut bytes = match idx.checked_sub(STREAMS.len()) {
            None => STREAMS[idx].1.to_vec(),
            Some(i) => BODIES[i].1.to_vec(),
        };
        for (at, byte, kind) in edits {
            let at = at % (bytes.len() + 1);
            match kind {
                0 => bytes.insert(at, byte),
                1 if at < bytes.len() => { bytes.remove(at); }
                _ if at < bytes.len() => bytes[at] = byte,
                _ => {}
            }
        }
        garbage(&bytes, &cuts);
    }
}

/// Runs every entry point over `bytes`; only a panic can fail this.
fn garbage(bytes: &[u8], cuts: &[usize]) {
    let body = Bytes::copy_from_slice(bytes);
    if let Ok(info) = scan_request(&body) {
        let _ = rewrite_request(&body, &info, Some("x"), true);
    }
    let chunks = split(bytes, cuts);
    for op in OPS {
        let _ = run_json(op, &chunks);
        for strip in [false, true] {
            let (out, _) = run_stream(op, strip, &chunks);
            if !strip {
                assert_eq!(out, bytes);
            }
        }
        let mut meter = StreamMeter::new(op, true);
        for chunk in &chunks {
            let _ = meter.feed(chunk.clone());
            let _ = meter.summary();
        }
    }
}

/// A chat stream with include_usage and the same stream without it, built chunk by chunk.
fn chat_pair(contents: &[String], prompt: u64, completion: u64) -> (Vec<u8>, Vec<u8>) {
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for content in contents {
        let chunk = json!({"id": "c", "model": "m-1", "choices": [{"index": 0, "delta": {"content": content}}]});
        let plain = serde_json::to_string(&chunk).expect("serializes");
        let usage_null = format!("{},\"usage\":null}}", &plain[..plain.len() - 1]);
        with.extend_from_slice(format!("data: {usage_null}\n\n").as_bytes());
        without.extend_from_slice(format!("data: {plain}\n\n").as_bytes());
    }
    let usage = json!({"id": "c", "model": "m-1", "choices": [],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}});
    with.extend_from_slice(format!("data: {usage}\n\n").as_bytes());
    for out in [&mut with, &mut without] {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
    (with, without)
}
