//! The mock's Anthropic answers: Messages as JSON and as a stream, `count_tokens`, and
//! Anthropic's error body (`{"type":"error","error":{"type":...,"message":...}}`, its type named
//! after the status as Anthropic names it).
//!
//! A stream is `event: <name>\ndata: {"type": <name>, ...}\n\n` pairs: `message_start` (whose
//! usage has the input and one output token, as Anthropic's does), `content_block_start`, a
//! `ping`, one `content_block_delta` per token, `content_block_stop`, `message_delta` with the
//! cumulative output tokens and the stop reason, then `message_stop`.

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Serialize;

use super::body::{Chunks, Paced};
use super::openai::{named_event, now};
use super::reply::Reply;
use super::{respond, to_json};

#[derive(Serialize)]
struct Message<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<TextBlock<'a>>,
    stop_reason: Option<&'static str>,
    stop_sequence: Option<()>,
    usage: Usage,
}

#[derive(Serialize)]
struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: Message<'a>,
}

#[derive(Serialize)]
struct BlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    content_block: TextBlock<'a>,
}

#[derive(Serialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: TextDelta<'a>,
}

#[derive(Serialize)]
struct TextDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

#[derive(Serialize)]
struct MessageDelta {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopDelta,
    usage: OutputUsage,
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<()>,
}

#[derive(Serialize)]
struct OutputUsage {
    output_tokens: u64,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

fn stop_reason(reply: &Reply) -> &'static str {
    if reply.hit_limit {
        "max_tokens"
    } else {
        "end_turn"
    }
}

fn message<'a>(reply: &'a Reply, text: Option<&'a str>) -> Message<'a> {
    let (content, stop, output_tokens) = match text {
        Some(text) => (
            vec![TextBlock { kind: "text", text }],
            Some(stop_reason(reply)),
            reply.output_tokens,
        ),
        None => (Vec::new(), None, 1),
    };
    Message {
        id: format!("msg_mock_{}", reply.seq),
        kind: "message",
        role: "assistant",
        model: &reply.model,
        content,
        stop_reason: stop,
        stop_sequence: None,
        usage: Usage {
            input_tokens: reply.input_tokens,
            cache_creation_input_tokens: 0,
            cache_read_input_tokens: 0,
            output_tokens,
        },
    }
}

/// A Messages JSON answer.
pub fn messages(reply: &Reply) -> Bytes {
    let text = reply.text();
    Bytes::from(to_json(&message(reply, Some(&text))))
}

/// `{"input_tokens": N}`: what the same request would be billed as input.
pub fn count_tokens(reply: &Reply) -> Bytes {
    Bytes::from(format!("{{\"input_tokens\":{}}}", reply.input_tokens))
}

fn event(name: &'static str, value: &impl Serialize) -> Bytes {
    named_event(name, &to_json(value))
}

/// A Messages stream, produced token by token.
pub fn messages_stream(reply: Reply) -> Chunks {
    let reply = Arc::new(reply);
    let start = MessageStart {
        kind: "message_start",
        message: message(&reply, None),
    };
    let block = BlockStart {
        kind: "content_block_start",
        index: 0,
        content_block: TextBlock {
            kind: "text",
            text: "",
        },
    };
    let opening = [
        (reply.ttft, event("message_start", &start)),
        now(event("content_block_start", &block)),
        now(named_event("ping", br#"{"type": "ping"}"#)),
    ];
    let tokens = {
        let reply = reply.clone();
        (0..reply.output_tokens).map(move |i| {
            let delta = BlockDelta {
                kind: "content_block_delta",
                index: 0,
                delta: TextDelta {
                    kind: "text_delta",
                    text: reply.word(i),
                },
            };
            (reply.token_wait(i), event("content_block_delta", &delta))
        })
    };
    let closing = std::iter::once_with(move || closing(&reply)).flatten();
    Box::new(opening.into_iter().chain(tokens).chain(closing))
}

fn closing(reply: &Reply) -> [(std::time::Duration, Bytes); 3] {
    let delta = MessageDelta {
        kind: "message_delta",
        delta: StopDelta {
            stop_reason: stop_reason(reply),
            stop_sequence: None,
        },
        usage: OutputUsage {
            output_tokens: reply.output_tokens,
        },
    };
    [
        now(named_event(
            "content_block_stop",
            br#"{"type":"content_block_stop","index":0}"#,
        )),
        now(event("message_delta", &delta)),
        now(named_event("message_stop", br#"{"type":"message_stop"}"#)),
    ]
}

/// Anthropic's error body for `status`, typed as Anthropic types that status.
pub fn error(status: StatusCode, message: &str) -> Response<Paced> {
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    let body = ErrorBody {
        kind: "error",
        error: ErrorDetail { kind, message },
    };
    respond(
        status,
        "application/json",
        Paced::full(Bytes::from(to_json(&body))),
    )
}
