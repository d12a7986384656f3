//! The mock's Responses API answers (`POST /v1/responses`): one `message` output item with one
//! `output_text` part, as JSON or as a stream of `event:` + `data:` pairs numbered by
//! `sequence_number` — `response.created`, `response.in_progress`, the item and part openings,
//! one `response.output_text.delta` per token, their closings, then `response.completed`
//! carrying the whole response with its usage. No `[DONE]` follows, as with OpenAI.
//!
//! An answer as long as the caller's `max_output_tokens` is still `completed`, not OpenAI's
//! `incomplete`: the gateway meters an incomplete response as a failed one, and a load test that
//! sets a limit should not read as a run of errors.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use super::body::{Chunk, Chunks};
use super::openai::{named_event, now, CachedTokens, ReasoningTokens};
use super::reply::Reply;
use super::to_json;

#[derive(Serialize)]
struct ResponseObject<'a> {
    id: String,
    object: &'static str,
    created_at: u64,
    status: &'static str,
    incomplete_details: Option<()>,
    model: &'a str,
    output: Vec<OutputItem<'a>>,
    parallel_tool_calls: bool,
    tool_choice: &'static str,
    tools: [(); 0],
    usage: Option<Usage>,
}

#[derive(Serialize)]
struct OutputItem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    status: &'static str,
    role: &'static str,
    content: Vec<OutputText<'a>>,
}

#[derive(Serialize)]
struct OutputText<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    annotations: [(); 0],
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    input_tokens_details: CachedTokens,
    output_tokens: u64,
    output_tokens_details: ReasoningTokens,
    total_tokens: u64,
}

/// A stream event: its type, its number, then its own fields.
#[derive(Serialize)]
struct Event<T> {
    #[serde(rename = "type")]
    kind: &'static str,
    sequence_number: u64,
    #[serde(flatten)]
    fields: T,
}

#[derive(Serialize)]
struct WithResponse<'a> {
    response: ResponseObject<'a>,
}

#[derive(Serialize)]
struct WithItem<'a> {
    output_index: u32,
    item: OutputItem<'a>,
}

#[derive(Serialize)]
struct WithPart<'a> {
    item_id: &'a str,
    output_index: u32,
    content_index: u32,
    part: OutputText<'a>,
}

#[derive(Serialize)]
struct TextDelta<'a> {
    item_id: &'a str,
    output_index: u32,
    content_index: u32,
    delta: &'a str,
}

#[derive(Serialize)]
struct TextDone<'a> {
    item_id: &'a str,
    output_index: u32,
    content_index: u32,
    text: &'a str,
}

/// Where an answer stands: still streaming (no text yet), or done with its text.
#[derive(Clone, Copy)]
enum Stage<'a> {
    InProgress,
    Done(&'a str),
}

fn item_id(reply: &Reply) -> String {
    format!("msg_mock_{}", reply.seq)
}

fn output_text(text: &str) -> OutputText<'_> {
    OutputText {
        kind: "output_text",
        text,
        annotations: [],
    }
}

fn item<'a>(id: &'a str, stage: Stage<'a>) -> OutputItem<'a> {
    let (status, content) = match stage {
        Stage::InProgress => ("in_progress", Vec::new()),
        Stage::Done(text) => ("completed", vec![output_text(text)]),
    };
    OutputItem {
        kind: "message",
        id,
        status,
        role: "assistant",
        content,
    }
}

/// The response object: in progress (no output, no usage) or finished.
fn response<'a>(reply: &'a Reply, id: &'a str, stage: Stage<'a>) -> ResponseObject<'a> {
    let (status, output, usage) = match stage {
        Stage::InProgress => ("in_progress", Vec::new(), None),
        Stage::Done(_) => (
            "completed",
            vec![item(id, stage)],
            Some(Usage {
                input_tokens: reply.input_tokens,
                input_tokens_details: CachedTokens { cached_tokens: 0 },
                output_tokens: reply.output_tokens,
                output_tokens_details: ReasoningTokens {
                    reasoning_tokens: 0,
                },
                total_tokens: reply.total_tokens(),
            }),
        ),
    };
    ResponseObject {
        id: format!("resp_mock_{}", reply.seq),
        object: "response",
        created_at: reply.created,
        status,
        incomplete_details: None,
        model: &reply.model,
        output,
        parallel_tool_calls: true,
        tool_choice: "auto",
        tools: [],
        usage,
    }
}

/// A Responses JSON answer.
pub fn json(reply: &Reply) -> Bytes {
    let text = reply.text();
    let id = item_id(reply);
    Bytes::from(to_json(&response(reply, &id, Stage::Done(&text))))
}

fn event<T: Serialize>(kind: &'static str, sequence_number: u64, fields: T) -> Bytes {
    let event = Event {
        kind,
        sequence_number,
        fields,
    };
    named_event(kind, &to_json(&event))
}

/// The four events before the first token; the first carries the time to first token.
fn opening(reply: &Reply) -> Vec<Chunk> {
    let id = item_id(reply);
    let stage = Stage::InProgress;
    let with_response = || WithResponse {
        response: response(reply, &id, stage),
    };
    let part = WithPart {
        item_id: &id,
        output_index: 0,
        content_index: 0,
        part: output_text(""),
    };
    vec![
        (reply.ttft, event("response.created", 0, with_response())),
        now(event("response.in_progress", 1, with_response())),
        now(event(
            "response.output_item.added",
            2,
            WithItem {
                output_index: 0,
                item: item(&id, stage),
            },
        )),
        now(event("response.content_part.added", 3, part)),
    ]
}

/// The closing events after the last token (numbered from `first`), ending with usage.
fn closing(reply: &Reply, first: u64) -> Vec<Chunk> {
    let id = item_id(reply);
    let text = reply.text();
    let done = TextDone {
        item_id: &id,
        output_index: 0,
        content_index: 0,
        text: &text,
    };
    let part = WithPart {
        item_id: &id,
        output_index: 0,
        content_index: 0,
        part: output_text(&text),
    };
    let stage = Stage::Done(&text);
    let finished = WithItem {
        output_index: 0,
        item: item(&id, stage),
    };
    vec![
        now(event("response.output_text.done", first, done)),
        now(event("response.content_part.done", first + 1, part)),
        now(event("response.output_item.done", first + 2, finished)),
        now(event(
            "response.completed",
            first + 3,
            WithResponse {
                response: response(reply, &id, stage),
            },
        )),
    ]
}

/// A Responses stream, produced token by token.
pub fn stream(reply: Reply) -> Chunks {
    let reply = Arc::new(reply);
    let opening = opening(&reply);
    let tokens = {
        let reply = reply.clone();
        (0..reply.output_tokens).map(move |i| {
            let id = item_id(&reply);
            let delta = TextDelta {
                item_id: &id,
                output_index: 0,
                content_index: 0,
                delta: reply.word(i),
            };
            let bytes = event("response.output_text.delta", 4 + i, delta);
            (reply.token_wait(i), bytes)
        })
    };
    let closing = std::iter::once_with(move || closing(&reply, 4 + reply.output_tokens)).flatten();
    Box::new(opening.into_iter().chain(tokens).chain(closing))
}
