//! The mock's Chat Completions answers, as JSON and as SSE streams, OpenAI's error body, and the
//! SSE framing shared with the other streams. Field order follows OpenAI's own responses (typed
//! structs, not a map, so it is stable), which keeps the bytes identical from run to run.
//!
//! Chat streams follow OpenAI's rules exactly: `data: {chunk}\n\n` lines, `"usage":null` on every
//! chunk and one `choices: []` usage chunk before `data: [DONE]` only when the request set
//! `stream_options.include_usage` (the gateway sets it on its own and hides that chunk from a
//! caller who did not ask).

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use serde::Serialize;

use super::body::{Chunk, Chunks, Paced};
use super::reply::Reply;
use super::{respond, to_json};

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: String,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [ChatChoice<'a>; 1],
    usage: ChatUsage,
    system_fingerprint: Option<&'static str>,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: ChatMessage<'a>,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
    refusal: Option<()>,
}

#[derive(Serialize)]
struct ChatUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: CachedTokens,
    completion_tokens_details: ReasoningTokens,
}

/// `{"cached_tokens": n}`: Chat's `prompt_tokens_details`, Responses' `input_tokens_details`.
#[derive(Serialize)]
pub(super) struct CachedTokens {
    pub cached_tokens: u64,
}

/// `{"reasoning_tokens": n}`: Chat's `completion_tokens_details`, Responses'
/// `output_tokens_details`.
#[derive(Serialize)]
pub(super) struct ReasoningTokens {
    pub reasoning_tokens: u64,
}

#[derive(Serialize)]
struct ChatChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: Option<&'static str>,
    choices: &'a [ChunkChoice<'a>],
    /// Absent unless usage was asked for; then `null` on every chunk but the usage chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<ChatUsage>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<()>,
    code: Option<&'static str>,
}

fn chat_usage(reply: &Reply) -> ChatUsage {
    ChatUsage {
        prompt_tokens: reply.input_tokens,
        completion_tokens: reply.output_tokens,
        total_tokens: reply.total_tokens(),
        prompt_tokens_details: CachedTokens { cached_tokens: 0 },
        completion_tokens_details: ReasoningTokens {
            reasoning_tokens: 0,
        },
    }
}

fn finish_reason(reply: &Reply) -> &'static str {
    if reply.hit_limit {
        "length"
    } else {
        "stop"
    }
}

/// A Chat Completions JSON answer.
pub fn chat(reply: &Reply) -> Bytes {
    let text = reply.text();
    let completion = ChatCompletion {
        id: format!("chatcmpl-mock-{}", reply.seq),
        object: "chat.completion",
        created: reply.created,
        model: &reply.model,
        choices: [ChatChoice {
            index: 0,
            message: ChatMessage {
                role: "assistant",
                content: &text,
                refusal: None,
            },
            logprobs: None,
            finish_reason: finish_reason(reply),
        }],
        usage: chat_usage(reply),
        system_fingerprint: None,
    };
    Bytes::from(to_json(&completion))
}

/// One `data: {chunk}\n\n` event of a chat stream.
fn chat_chunk(reply: &Reply, choices: &[ChunkChoice<'_>], usage: Option<ChatUsage>) -> Bytes {
    let id = format!("chatcmpl-mock-{}", reply.seq);
    let chunk = ChatChunk {
        id: &id,
        object: "chat.completion.chunk",
        created: reply.created,
        model: &reply.model,
        system_fingerprint: None,
        choices,
        usage: reply.include_usage.then_some(usage),
    };
    data_event(&to_json(&chunk))
}

fn choice<'a>(delta: Delta<'a>, finish: Option<&'static str>) -> ChunkChoice<'a> {
    ChunkChoice {
        index: 0,
        delta,
        logprobs: None,
        finish_reason: finish,
    }
}

/// A Chat Completions stream: the role, one chunk per token, the finish reason, the usage chunk
/// when asked for, then `[DONE]`.
pub fn chat_stream(reply: Reply) -> Chunks {
    let reply = Arc::new(reply);
    let role = Delta {
        role: Some("assistant"),
        content: Some(""),
    };
    let first = (reply.ttft, chat_chunk(&reply, &[choice(role, None)], None));
    let tokens = {
        let reply = reply.clone();
        (0..reply.output_tokens).map(move |i| {
            let delta = Delta {
                role: None,
                content: Some(reply.word(i)),
            };
            (
                reply.token_wait(i),
                chat_chunk(&reply, &[choice(delta, None)], None),
            )
        })
    };
    let last = std::iter::once_with(move || {
        let finish = choice(Delta::default(), Some(finish_reason(&reply)));
        let mut tail = vec![now(chat_chunk(&reply, &[finish], None))];
        if reply.include_usage {
            tail.push(now(chat_chunk(&reply, &[], Some(chat_usage(&reply)))));
        }
        tail.push(now(Bytes::from_static(b"data: [DONE]\n\n")));
        tail
    })
    .flatten();
    Box::new(std::iter::once(first).chain(tokens).chain(last))
}

/// `data: {json}\n\n`
fn data_event(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// `event: {name}\ndata: {json}\n\n`, the framing of Responses and Anthropic streams.
pub(super) fn named_event(name: &str, json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + name.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// A chunk sent without waiting.
pub(super) fn now(bytes: Bytes) -> Chunk {
    (std::time::Duration::ZERO, bytes)
}

/// OpenAI's error body for `status`, with OpenAI's type and code for it.
pub fn error(status: StatusCode, message: &str) -> Response<Paced> {
    let (kind, code) = match status.as_u16() {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("permission_error", None),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("rate_limit_exceeded", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    let body = ErrorBody {
        error: ErrorDetail {
            message,
            kind,
            param: None,
            code,
        },
    };
    respond(
        status,
        "application/json",
        Paced::full(Bytes::from(to_json(&body))),
    )
}
