//! StreamMeter on realistic OpenAI and Anthropic streams: usage, model and error extraction,
//! passthrough without copies, and strip mode reproducing the stream the caller would have
//! received.

mod common;

use agentgateway_wire::{Operation, ResponseSummary, StreamMeter, Usage};
use bytes::Bytes;
use common::*;

fn summary_of(op: Operation, stream: &[u8]) -> ResponseSummary {
    run_stream(op, false, &whole(stream)).1
}

fn usage(input: u64, output: u64, cache_read: Option<u64>, reasoning: Option<u64>) -> Usage {
    Usage {
        input_tokens: Some(input),
        output_tokens: Some(output),
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
fn chat_with_include_usage() {
    assert_eq!(
        summary_of(Operation::ChatCompletions, CHAT_USAGE),
        summary(
            usage(19, 10, Some(0), Some(0)),
            "gpt-4o-mini-2024-07-18",
            None
        )
    );
}

#[test]
fn chat_without_usage_keeps_model() {
    assert_eq!(
        summary_of(Operation::ChatCompletions, CHAT_PLAIN),
        summary(Usage::default(), "gpt-4o-mini-2024-07-18", None)
    );
}

#[test]
fn chat_tools_with_cache_write() {
    let want = Usage {
        cache_write_input_tokens: Some(84),
        ..usage(84, 17, Some(0), Some(0))
    };
    assert_eq!(
        summary_of(Operation::ChatCompletions, CHAT_TOOLS_USAGE),
        summary(want, "gpt-4.1-2025-04-14", None)
    );
}

#[test]
fn chat_mid_stream_error() {
    assert_eq!(
        summary_of(Operation::ChatCompletions, CHAT_ERROR),
        summary(Usage::default(), "gpt-4o-2024-08-06", Some("server_error"))
    );
    let untyped = b"data: {\"model\":\"m\"}\n\ndata: {\"error\":{\"message\":\"x\"}}\n\n";
    assert_eq!(
        summary_of(Operation::ChatCompletions, untyped)
            .error
            .as_deref(),
        Some("stream_error")
    );
}

#[test]
fn cut_stream_has_model_but_no_usage() {
    // The truncated last event is the stream's error: the request is logged with it.
    let cut = Some("malformed_event");
    let (out, s) = run_stream(Operation::ChatCompletions, false, &whole(CHAT_CUT));
    assert_eq!(out, CHAT_CUT);
    assert_eq!(s, summary(Usage::default(), "gpt-4o-mini-2024-07-18", cut));
    let (out, s) = run_stream(Operation::ChatCompletions, true, &whole(CHAT_CUT));
    assert_eq!(s, summary(Usage::default(), "gpt-4o-mini-2024-07-18", cut));
    // Complete events lose their `"usage":null`; the unterminated tail is forwarded as-is.
    let tail_at = CHAT_CUT
        .windows(9)
        .rposition(|w| w == b"\n\ndata: {")
        .expect("tail")
        + 2;
    assert!(out.ends_with(&CHAT_CUT[tail_at..]));
    assert_eq!(
        out.windows(12).filter(|w| w == b"\"usage\":null").count(),
        0
    );
}

#[test]
fn completions_stream() {
    assert_eq!(
        summary_of(Operation::Completions, COMPLETIONS_SSE),
        summary(usage(5, 4, None, None), "gpt-3.5-turbo-instruct", None)
    );
}

#[test]
fn responses_completed() {
    assert_eq!(
        summary_of(Operation::Responses, RESPONSES_SSE),
        summary(usage(37, 11, Some(0), Some(0)), "gpt-4.1-2025-04-14", None)
    );
}

#[test]
fn responses_incomplete_failed_and_error() {
    assert_eq!(
        summary_of(Operation::Responses, RESPONSES_INCOMPLETE_SSE),
        summary(
            usage(20, 64, Some(4), Some(48)),
            "o4-mini-2025-04-16",
            Some("response_incomplete")
        )
    );
    assert_eq!(
        summary_of(Operation::Responses, RESPONSES_FAILED_SSE),
        summary(
            usage(9, 0, None, None),
            "gpt-4o-2024-08-06",
            Some("server_error")
        )
    );
    assert_eq!(
        summary_of(Operation::Responses, RESPONSES_ERROR_SSE),
        summary(
            Usage::default(),
            "gpt-4o-mini-2024-07-18",
            Some("rate_limit_exceeded")
        )
    );
    let bare_failed = b"event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":null}}\n\n";
    assert_eq!(
        summary_of(Operation::Responses, bare_failed)
            .error
            .as_deref(),
        Some("response_failed")
    );
    let bare_error =
        b"event: error\ndata: {\"type\":\"error\",\"code\":null,\"message\":\"x\"}\n\n";
    assert_eq!(
        summary_of(Operation::Responses, bare_error)
            .error
            .as_deref(),
        Some("stream_error")
    );
}

#[test]
fn responses_without_event_lines_use_the_data_type() {
    let stripped: Vec<u8> = RESPONSES_SSE
        .split(|&b| b == b'\n')
        .filter(|line| !line.starts_with(b"event:"))
        .flat_map(|line| line.iter().copied().chain([b'\n']))
        .collect();
    assert_eq!(
        summary_of(Operation::Responses, &stripped[..stripped.len() - 1]),
        summary_of(Operation::Responses, RESPONSES_SSE)
    );
}

#[test]
fn usage_on_every_chunk_last_one_wins() {
    let stream = b"data: {\"model\":\"m\",\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1}}\n\n\
data: {\"model\":\"m\",\"choices\":[{\"delta\":{}}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\n\
data: {\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\ndata: [DONE]\n\n";
    assert_eq!(
        summary_of(Operation::ChatCompletions, stream),
        summary(usage(5, 3, None, None), "m", None)
    );
}

#[test]
fn first_real_model_wins() {
    let stream = b"data: {\"choices\":[],\"model\":\"\",\"prompt_filter_results\":[]}\n\n\
data: {\"model\":\"gpt-4o-2024-11-20\",\"choices\":[]}\n\ndata: {\"model\":\"other\",\"choices\":[]}\n\n";
    assert_eq!(
        summary_of(Operation::ChatCompletions, stream)
            .response_model
            .as_deref(),
        Some("gpt-4o-2024-11-20")
    );
}

#[test]
fn passthrough_returns_the_same_bytes_object() {
    for &(op, stream) in STREAMS {
        let mut meter = StreamMeter::new(op, false);
        for piece in stream.chunks(7) {
            let chunk = Bytes::copy_from_slice(piece);
            let out = meter.feed(chunk.clone());
            assert_eq!(out.as_ptr(), chunk.as_ptr());
            assert_eq!(out.len(), chunk.len());
        }
        assert!(meter.finish().is_empty());
    }
}

#[test]
fn strip_reproduces_the_stream_without_include_usage() {
    for &(with, without) in STRIP_PAIRS {
        let plain_summary = summary_of(Operation::ChatCompletions, with);
        for (with, without) in [
            (with.to_vec(), without.to_vec()),
            (crlf(with), crlf(without)),
            (cr(with), cr(without)),
        ] {
            let (out, s) = run_stream(Operation::ChatCompletions, true, &whole(&with));
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&without)
            );
            assert_eq!(s, plain_summary);
            assert!(!s.usage.is_empty());
            let (out, s) = run_stream(Operation::ChatCompletions, true, &bytewise(&with));
            assert_eq!(out, without);
            assert_eq!(s, plain_summary);
        }
    }
}

#[test]
fn strip_emits_each_event_as_soon_as_it_ends() {
    let mut meter = StreamMeter::new(Operation::ChatCompletions, true);
    let first_end = CHAT_USAGE
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("event end")
        + 2;
    let out = meter.feed(Bytes::copy_from_slice(&CHAT_USAGE[..first_end - 1]));
    assert!(out.is_empty(), "held until the blank line arrives");
    let out = meter.feed(Bytes::copy_from_slice(
        &CHAT_USAGE[first_end - 1..first_end],
    ));
    let plain_end = CHAT_PLAIN
        .windows(2)
        .position(|w| w == b"\n\n")
        .expect("event end")
        + 2;
    assert_eq!(&out[..], &CHAT_PLAIN[..plain_end]);
    assert_eq!(
        meter.summary().response_model.as_deref(),
        Some("gpt-4o-mini-2024-07-18")
    );
}

#[test]
fn strip_on_a_stream_without_usage_changes_nothing() {
    let (out, _) = run_stream(Operation::ChatCompletions, true, &whole(CHAT_PLAIN));
    assert_eq!(out, CHAT_PLAIN);
    let (out, s) = run_stream(Operation::ChatCompletions, true, &whole(CHAT_ERROR));
    assert_eq!(out, CHAT_ERROR);
    assert_eq!(s.error.as_deref(), Some("server_error"));
}

#[test]
fn strip_is_ignored_for_responses() {
    let (out, s) = run_stream(Operation::Responses, true, &whole(RESPONSES_SSE));
    assert_eq!(out, RESPONSES_SSE);
    assert_eq!(s, summary_of(Operation::Responses, RESPONSES_SSE));
}

#[test]
fn strip_forwards_multi_line_data_unchanged() {
    let stream = b"data: {\"model\":\"m\",\ndata: \"usage\":null}\n\n";
    let (out, s) = run_stream(Operation::ChatCompletions, true, &whole(stream));
    assert_eq!(out, stream);
    assert_eq!(s.response_model.as_deref(), Some("m"));
}

#[test]
fn strip_removes_non_null_usage_from_content_chunks() {
    let stream = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}\n\n";
    let (out, s) = run_stream(Operation::ChatCompletions, true, &whole(stream));
    assert_eq!(
        &out[..],
        b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
    );
    assert_eq!(s.usage.output_tokens, Some(1));
}

#[test]
fn anthropic_text_and_tool_use() {
    // message_delta's cumulative output_tokens replaces message_start's, never adds to it.
    assert_eq!(
        summary_of(Operation::Messages, ANTHROPIC_TOOLS_SSE),
        summary(
            anthropic_usage(472, 89, Some(0), Some(0)),
            "claude-sonnet-4-5-20250929",
            None
        )
    );
}

#[test]
fn anthropic_message_delta_updates_input_and_cache() {
    // 10682 (updated) + 1024 read (kept: the delta says null) + 512 written (updated).
    assert_eq!(
        summary_of(Operation::Messages, ANTHROPIC_CACHE_UPDATE_SSE),
        summary(
            anthropic_usage(12218, 510, Some(1024), Some(512)),
            "claude-opus-4-1-20250805",
            None
        )
    );
}

#[test]
fn anthropic_error_event_after_content() {
    assert_eq!(
        summary_of(Operation::Messages, ANTHROPIC_ERROR_SSE),
        summary(
            anthropic_usage(1530, 1, Some(0), Some(0)),
            "claude-sonnet-4-20250514",
            Some("overloaded_error")
        )
    );
    let undecodable = b"event: error\ndata: {\"type\":\"error\",\"error\":\n\n";
    assert_eq!(
        summary_of(Operation::Messages, undecodable)
            .error
            .as_deref(),
        Some("stream_error")
    );
}

#[test]
fn anthropic_cut_stream_keeps_message_start_usage() {
    let (out, s) = run_stream(Operation::Messages, false, &whole(ANTHROPIC_CUT_SSE));
    assert_eq!(out, ANTHROPIC_CUT_SSE);
    assert_eq!(
        s,
        summary(
            anthropic_usage(4121, 1, Some(4096), Some(0)),
            "claude-3-7-sonnet-20250219",
            Some("malformed_event")
        )
    );
}

#[test]
fn anthropic_bad_json_and_unknown_events_are_ignored() {
    // The unknown event's usage and error, and the later malformed message_delta, change
    // nothing: the last good message_delta stands.
    assert_eq!(
        summary_of(Operation::Messages, ANTHROPIC_ODD_SSE),
        summary(
            anthropic_usage(40, 7, None, None),
            "claude-haiku-4-5-20251001",
            None
        )
    );
}

#[test]
fn anthropic_without_event_lines_uses_the_data_type() {
    for stream in [
        ANTHROPIC_TOOLS_SSE,
        ANTHROPIC_CACHE_UPDATE_SSE,
        ANTHROPIC_ERROR_SSE,
        ANTHROPIC_CUT_SSE,
        ANTHROPIC_ODD_SSE,
    ] {
        let bare = without_event_lines(stream);
        assert!(!bare.windows(6).any(|w| w == b"event:"));
        assert_eq!(
            summary_of(Operation::Messages, &bare),
            summary_of(Operation::Messages, stream)
        );
    }
}

#[test]
fn anthropic_every_message_delta_overwrites() {
    let stream = b"event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-x\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":20}}\n\n\
event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":35,\"input_tokens\":null}}\n\n\
event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    assert_eq!(
        summary_of(Operation::Messages, stream),
        summary(anthropic_usage(10, 35, None, None), "claude-x", None)
    );
}

#[test]
fn anthropic_summary_is_current_after_each_event() {
    let mut meter = StreamMeter::new(Operation::Messages, false);
    let delta_at = ANTHROPIC_TOOLS_SSE
        .windows(20)
        .position(|w| w == b"event: message_delta")
        .expect("fixture has a message_delta");
    meter.feed(Bytes::copy_from_slice(&ANTHROPIC_TOOLS_SSE[..delta_at]));
    assert_eq!(meter.summary().usage.output_tokens, Some(2));
    assert_eq!(meter.summary().usage.input_tokens, Some(472));
    meter.feed(Bytes::copy_from_slice(&ANTHROPIC_TOOLS_SSE[delta_at..]));
    assert_eq!(meter.summary().usage.output_tokens, Some(89));
}

#[test]
fn anthropic_streams_are_never_stripped() {
    for &(op, stream) in STREAMS.iter().filter(|(op, _)| op.is_anthropic()) {
        let mut meter = StreamMeter::new(op, true);
        let chunk = Bytes::copy_from_slice(stream);
        let out = meter.feed(chunk.clone());
        assert_eq!(out.as_ptr(), chunk.as_ptr());
        assert!(meter.finish().is_empty());
        assert_eq!(meter.summary(), &summary_of(op, stream));
    }
}

#[test]
fn count_tokens_stream_records_no_usage() {
    let s = summary_of(Operation::CountTokens, ANTHROPIC_CACHE_UPDATE_SSE);
    assert!(s.usage.is_empty());
    assert_eq!(
        s.response_model.as_deref(),
        Some("claude-opus-4-1-20250805")
    );
    let s = summary_of(Operation::CountTokens, ANTHROPIC_ERROR_SSE);
    assert_eq!(s.error.as_deref(), Some("overloaded_error"));
}
