//! Property tests: chunking never changes what is metered or forwarded, strip mode always yields
//! the stream without include_usage, and no input of any shape makes anything panic.

mod common;

use agentgateway_wire::{
    rewrite_request, scan_request, summarize_json, Operation, StreamMeter, Usage,
};
use bytes::Bytes;
use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};

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
    fn anthropic_stream_summary_ignores_chunking_and_event_lines(
        idx in 0..ANTHROPIC_STREAMS.len(), variant in 0u8..3, cuts in cuts(), bare in any::<bool>(),
    ) {
        let (fixture, want) = ANTHROPIC_STREAMS[idx];
        let (_, whole_summary) = run_stream(Operation::Messages, false, &whole(fixture));
        let stream = if bare { without_event_lines(fixture) } else { fixture.to_vec() };
        let stream = line_ending(&stream, variant);
        let (out, summary) = run_stream(Operation::Messages, false, &split(&stream, &cuts));
        prop_assert_eq!(&out, &stream);
        prop_assert_eq!(summary.usage, want);
        prop_assert!(summary.response_model.is_some());
        prop_assert_eq!(&summary, &whole_summary);
    }

    #[test]
    fn anthropic_garbage_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..512), cuts in cuts(),
    ) {
        for op in [Operation::Messages, Operation::CountTokens] {
            let _ = run_json(op, &split(&bytes, &cuts));
            let (out, _) = run_stream(op, true, &split(&bytes, &cuts));
            prop_assert_eq!(&out, &bytes);
        }
    }

    #[test]
    fn anthropic_shaped_garbage_never_panics(
        events in prop::collection::vec((0usize..EVENT_NAMES.len(), any::<String>(), any::<bool>()), 0..12),
        cuts in cuts(),
    ) {
        let mut stream = Vec::new();
        for (name, data, with_line) in events {
            if with_line {
                stream.extend_from_slice(format!("event: {}\n", EVENT_NAMES[name]).as_bytes());
            }
            let data = data.replace(['\n', '\r'], " ");
            stream.extend_from_slice(format!("data: {{\"type\":\"{}\",{data}\n\n", EVENT_NAMES[name]).as_bytes());
        }
        garbage(&stream, &cuts);
    }

    #[test]
    fn anthropic_generated_streams_overwrite_field_by_field(
        start in fields(),
        deltas in prop::collection::vec((fields(), prop::collection::vec(any::<String>(), 0..3)), 0..4),
        cuts in cuts(),
    ) {
        let (stream, want) = anthropic_stream(start, &deltas);
        let (_, summary) = run_stream(Operation::Messages, false, &split(&stream, &cuts));
        prop_assert_eq!(summary.usage, want);
        prop_assert_eq!(summary.response_model.as_deref(), Some("claude-gen"));
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

    /// The fast top-level scan agrees with a full parse on any valid JSON object: every member
    /// the gateway does not read is an arbitrary nested value, written compact or pretty.
    #[test]
    fn scan_agrees_with_a_full_parse(
        model in any::<String>(),
        others in prop::collection::vec(
            ("[a-z_\\\\\"]{0,8}".prop_filter("not a key the scan reads", |k| {
                !["model", "stream", "stream_options"].contains(&k.as_str())
            }), json_value()),
            0..6,
        ),
        stream in prop::option::of(any::<bool>()),
        include_usage in prop::option::of(prop::option::of(any::<bool>())),
        pretty in any::<bool>(),
    ) {
        let mut object = serde_json::Map::new();
        for (key, value) in others {
            object.insert(key, value);
        }
        object.insert("model".into(), json!(model));
        if let Some(stream) = stream {
            object.insert("stream".into(), json!(stream));
        }
        if let Some(include_usage) = include_usage {
            object.insert("stream_options".into(), json!({"include_usage": include_usage}));
        }
        let body = match pretty {
            true => serde_json::to_vec_pretty(&object),
            false => serde_json::to_vec(&object),
        }.expect("serializes");
        match scan_request(&body) {
            Ok(info) => {
                prop_assert_eq!(info.model(), object["model"].as_str().unwrap_or_default());
                prop_assert_eq!(info.stream(), object.get("stream") == Some(&json!(true)));
                let want = object.get("stream_options").and_then(|o| o["include_usage"].as_bool());
                prop_assert_eq!(info.include_usage(), want);
            }
            Err(e) => prop_assert!(object["model"] == json!(""), "{e}"),
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

/// Anthropic event names, for garbage that gets past classification into the decoders.
const EVENT_NAMES: [&str; 5] = [
    "message_start",
    "message_delta",
    "error",
    "content_block_delta",
    "ping",
];

/// Every Anthropic stream fixture with the normalised usage it must yield (see tests/stream.rs
/// for how each is derived).
const ANTHROPIC_STREAMS: [(&[u8], Usage); 5] = [
    (ANTHROPIC_TOOLS_SSE, usage(472, 89, Some(0), Some(0))),
    (
        ANTHROPIC_CACHE_UPDATE_SSE,
        usage(12218, 510, Some(1024), Some(512)),
    ),
    (ANTHROPIC_ERROR_SSE, usage(1530, 1, Some(0), Some(0))),
    (ANTHROPIC_CUT_SSE, usage(4121, 1, Some(4096), Some(0))),
    (ANTHROPIC_ODD_SSE, usage(40, 7, None, None)),
];

const fn usage(input: u64, output: u64, read: Option<u64>, write: Option<u64>) -> Usage {
    Usage {
        input_tokens: Some(input),
        output_tokens: Some(output),
        cache_read_input_tokens: read,
        cache_write_input_tokens: write,
        reasoning_output_tokens: None,
    }
}

/// Anthropic usage fields as a stream may report them: input, output, cache creation, cache
/// read; `None` is sent as `null` or left out.
type Fields = [Option<u32>; 4];
const FIELD_NAMES: [&str; 4] = [
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
];

/// Arbitrary JSON: strings with quotes, backslashes, brackets and non-ASCII, nested arrays and
/// objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z\\\\\"\\[\\]{}:, é😀\n]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec(("[a-z\\\\\"{}\\[\\]]{0,6}", inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

fn fields() -> impl Strategy<Value = Fields> {
    [
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
        prop::option::of(any::<u32>()),
    ]
}

fn usage_json(fields: &Fields) -> Value {
    let mut usage = serde_json::Map::new();
    for (i, (name, value)) in FIELD_NAMES.iter().zip(fields).enumerate() {
        match value {
            Some(n) => {
                usage.insert((*name).into(), json!(n));
            }
            // Alternate between `null` and leaving the field out: both must keep the old value.
            None if i % 2 == 0 => {
                usage.insert((*name).into(), Value::Null);
            }
            None => {}
        }
    }
    Value::Object(usage)
}

/// A stream with the given message_start usage and message_deltas (each after some text
/// deltas), and the usage it must be metered as, computed independently of the crate.
fn anthropic_stream(start: Fields, deltas: &[(Fields, Vec<String>)]) -> (Vec<u8>, Usage) {
    let mut out = String::new();
    let mut event = |name: &str, data: Value| {
        out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    };
    event(
        "message_start",
        json!({"type": "message_start", "message": {"model": "claude-gen",
        "content": [], "usage": usage_json(&start)}}),
    );
    let mut current = start;
    for (fields, texts) in deltas {
        for text in texts {
            event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": text}}),
            );
        }
        event(
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "end_turn"}, "usage": usage_json(fields)}),
        );
        for (kept, newer) in current.iter_mut().zip(fields) {
            *kept = newer.or(*kept);
        }
    }
    let [input, output, creation, read] = current.map(|f| f.map(u64::from));
    let any_input = input.is_some() || creation.is_some() || read.is_some();
    let want = Usage {
        input_tokens: any_input
            .then(|| input.unwrap_or(0) + creation.unwrap_or(0) + read.unwrap_or(0)),
        output_tokens: output,
        cache_read_input_tokens: read,
        cache_write_input_tokens: creation,
        reasoning_output_tokens: None,
    };
    (out.into_bytes(), want)
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
            // Anthropic streams are never rewritten, strip or not.
            if !strip || op.is_anthropic() {
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
