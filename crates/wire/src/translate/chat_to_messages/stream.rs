//! The stream: Anthropic Messages SSE -> OpenAI `chat.completion.chunk` SSE, event by event.
//!
//! Anthropic names every event and frames content in blocks; OpenAI sends bare `data:` chunks
//! whose `delta` carries text or tool-call pieces, a last chunk with `finish_reason`, optionally
//! a usage chunk, then `[DONE]`. Each Anthropic event maps to at most one chunk (message_stop to
//! the closing ones), so output is written as events complete and nothing is held back. Text,
//! tool names, ids and partial tool JSON are copied as the raw JSON strings Anthropic sent.
//! Every chunk starts with the same `{"id",...,"model"` head, rendered once at `message_start`.
//!
//! Thinking deltas become `delta.reasoning_content`, as in [`super::response`].

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::common::{openai_type_of_anthropic, AnthropicUsage, OpenAiError, OpenAiErrorBody, Str};
use crate::sse::{SseEvent, SseParser};
use crate::translate::finish_reason_from_anthropic;

const DONE: &[u8] = b"data: [DONE]\n\n";
const TRUNCATED: &str = "upstream stream ended before the message was complete";

/// Translates a provider SSE stream into the caller's, chunk by chunk.
#[derive(Debug)]
pub struct StreamTranslator {
    parser: SseParser,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No `message_start` yet: nothing has been sent.
    Waiting,
    Streaming,
    /// `message_stop` or `error` was seen: the caller's stream is closed.
    Done,
}

#[derive(Debug)]
struct State {
    include_usage: bool,
    created: u64,
    phase: Phase,
    /// `{"id":..,"object":"chat.completion.chunk","created":..,"model":..` without the closing
    /// brace.
    head: Vec<u8>,
    usage: AnthropicUsage,
    finish_reason: Option<&'static str>,
    /// Anthropic content block index -> OpenAI tool call index, for the tool blocks seen.
    tools: Vec<(u64, u32)>,
    out: BytesMut,
}

impl StreamTranslator {
    /// `include_usage`: the caller asked for usage in the stream (OpenAI
    /// `stream_options.include_usage`). `created`: the Unix time every chunk's `created` carries.
    pub fn new(include_usage: bool, created: u64) -> Self {
        StreamTranslator {
            parser: SseParser::new(),
            state: State {
                include_usage,
                created,
                phase: Phase::Waiting,
                head: Vec::new(),
                usage: AnthropicUsage::default(),
                finish_reason: None,
                tools: Vec::new(),
                out: BytesMut::new(),
            },
        }
    }

    /// Translates the next upstream chunk (any split of the SSE bytes); returns what to send
    /// the caller now, possibly empty.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        let state = &mut self.state;
        self.parser.push(chunk, |event| state.on_event(event));
        state.out.split().freeze()
    }

    /// The upstream stream ended (cleanly or not); returns the closing bytes for the caller. A
    /// stream that ended before `message_stop` gets an error chunk and no `[DONE]`, so the
    /// caller cannot mistake a cut answer for a whole one.
    pub fn finish(&mut self) -> Bytes {
        let state = &mut self.state;
        self.parser.finish(|event| state.on_event(event));
        if state.phase != Phase::Done {
            state.error_chunk(TRUNCATED, "api_error", Some("stream_truncated"));
            state.phase = Phase::Done;
        }
        state.out.split().freeze()
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
}

#[derive(Deserialize)]
struct MessageStart<'a> {
    #[serde(borrow)]
    message: StartedMessage<'a>,
}

#[derive(Deserialize)]
struct StartedMessage<'a> {
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct BlockStart<'a> {
    index: u64,
    #[serde(borrow)]
    content_block: BlockFields<'a>,
}

#[derive(Deserialize)]
struct BlockDelta<'a> {
    index: u64,
    #[serde(borrow)]
    delta: BlockFields<'a>,
}

/// The members of a started block or of a block delta, whichever its type uses.
#[derive(Deserialize)]
struct BlockFields<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    name: Option<&'a RawValue>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    thinking: Option<&'a RawValue>,
    #[serde(default, borrow)]
    partial_json: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct MessageDelta<'a> {
    #[serde(default, borrow)]
    delta: Option<StopInfo<'a>>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct StopInfo<'a> {
    #[serde(default, borrow)]
    stop_reason: Option<Str<'a>>,
}

#[derive(Deserialize)]
struct ErrorEvent<'a> {
    #[serde(borrow)]
    error: ErrorDetail<'a>,
}

#[derive(Deserialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(default, borrow)]
    message: Option<Str<'a>>,
}

/// An OpenAI chunk's `delta`.
#[derive(Serialize, Default)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Json<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolDelta<'a>; 1]>,
}

/// A JSON value that is either Anthropic's raw bytes or a literal of ours.
#[derive(Serialize)]
#[serde(untagged)]
enum Json<'a> {
    Raw(&'a RawValue),
    Str(&'static str),
}

#[derive(Serialize)]
struct ToolDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a RawValue>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a RawValue>,
    arguments: Json<'a>,
}

/// An empty JSON string as Anthropic writes it: a delta that would add nothing.
fn is_empty_string(raw: &RawValue) -> bool {
    raw.get() == "\"\""
}

impl State {
    fn on_event(&mut self, event: SseEvent<'_>) {
        if self.phase == Phase::Done {
            return;
        }
        // A malformed event is skipped (`.ok()` below), not fatal: the rest of the answer is
        // still worth delivering, and a real end or cut is still reported by what follows.
        let envelope;
        let name = match event.event {
            Some(name) => name,
            None => match serde_json::from_slice::<Envelope<'_>>(event.data) {
                Ok(e) => {
                    envelope = e;
                    envelope.kind.as_str()
                }
                Err(_) => return,
            },
        };
        let data = event.data;
        match name {
            "message_start" => {
                if let Ok(start) = serde_json::from_slice::<MessageStart<'_>>(data) {
                    self.message_start(start.message);
                }
            }
            "content_block_start" => {
                if let Ok(start) = serde_json::from_slice::<BlockStart<'_>>(data) {
                    self.block_start(start.index, &start.content_block);
                }
            }
            "content_block_delta" => {
                if let Ok(delta) = serde_json::from_slice::<BlockDelta<'_>>(data) {
                    self.block_delta(delta.index, &delta.delta);
                }
            }
            "message_delta" => {
                if let Ok(delta) = serde_json::from_slice::<MessageDelta<'_>>(data) {
                    self.message_delta(delta);
                }
            }
            "message_stop" => self.message_stop(),
            "error" => {
                if let Ok(e) = serde_json::from_slice::<ErrorEvent<'_>>(data) {
                    let message = e.error.message.as_ref().map_or("", Str::as_str);
                    let kind = e.error.kind.as_str();
                    self.error_chunk(message, openai_type_of_anthropic(kind), Some(kind));
                    self.phase = Phase::Done;
                }
            }
            // ping, content_block_stop and event types newer than this code.
            _ => {}
        }
    }

    fn message_start(&mut self, message: StartedMessage<'_>) {
        if self.phase != Phase::Waiting {
            return;
        }
        if let Some(usage) = &message.usage {
            self.usage.overwrite_with(usage);
        }
        self.start(message.id, message.model);
    }

    /// Renders the chunk head and sends the first chunk, which OpenAI always opens with.
    fn start(&mut self, id: Option<&RawValue>, model: Option<&RawValue>) {
        let empty = "\"\"";
        let head = &mut self.head;
        head.clear();
        head.extend_from_slice(b"{\"id\":");
        head.extend_from_slice(id.map_or(empty, RawValue::get).as_bytes());
        head.extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
        // Writing to a Vec cannot fail.
        let _ = write!(head, "{}", self.created);
        head.extend_from_slice(b",\"model\":");
        head.extend_from_slice(model.map_or(empty, RawValue::get).as_bytes());
        self.phase = Phase::Streaming;
        let first = Delta {
            role: Some("assistant"),
            content: Some(Json::Str("")),
            ..Delta::default()
        };
        self.chunk(&first, None);
    }

    /// Content before any `message_start` still reaches the caller, under an empty id.
    fn ensure_started(&mut self) {
        if self.phase == Phase::Waiting {
            self.start(None, None);
        }
    }

    fn block_start(&mut self, index: u64, block: &BlockFields<'_>) {
        self.ensure_started();
        match block.kind.as_str() {
            "tool_use" => {
                let tool_index = u32::try_from(self.tools.len()).unwrap_or(u32::MAX);
                self.tools.push((index, tool_index));
                let start = ToolDelta {
                    index: tool_index,
                    id: block.id,
                    kind: Some("function"),
                    function: FunctionDelta {
                        name: block.name,
                        arguments: Json::Str(""),
                    },
                };
                self.tool_chunk(start);
            }
            // Anthropic opens text and thinking blocks empty, but nothing says it must.
            "text" | "thinking" => self.block_delta(index, block),
            _ => {}
        }
    }

    fn block_delta(&mut self, index: u64, delta: &BlockFields<'_>) {
        self.ensure_started();
        let mut out = Delta::default();
        if let Some(text) = delta.text.filter(|t| !is_empty_string(t)) {
            out.content = Some(Json::Raw(text));
        } else if let Some(thinking) = delta.thinking.filter(|t| !is_empty_string(t)) {
            out.reasoning_content = Some(thinking);
        } else if let Some(json) = delta.partial_json.filter(|j| !is_empty_string(j)) {
            let Some(&(_, tool_index)) = self.tools.iter().find(|(block, _)| *block == index)
            else {
                return;
            };
            return self.tool_chunk(ToolDelta {
                index: tool_index,
                id: None,
                kind: None,
                function: FunctionDelta {
                    name: None,
                    arguments: Json::Raw(json),
                },
            });
        } else {
            // signature_delta, citations_delta, empty deltas: nothing for an OpenAI client.
            return;
        }
        self.chunk(&out, None);
    }

    fn tool_chunk(&mut self, tool: ToolDelta<'_>) {
        let delta = Delta {
            tool_calls: Some([tool]),
            ..Delta::default()
        };
        self.chunk(&delta, None);
    }

    fn message_delta(&mut self, delta: MessageDelta<'_>) {
        if let Some(reason) = delta.delta.and_then(|d| d.stop_reason) {
            self.finish_reason = Some(finish_reason_from_anthropic(reason.as_str()));
        }
        if let Some(usage) = &delta.usage {
            self.usage.overwrite_with(usage);
        }
    }

    /// The closing chunks: `finish_reason`, usage when asked for, `[DONE]`.
    fn message_stop(&mut self) {
        self.ensure_started();
        let finish = self.finish_reason.unwrap_or("stop");
        self.chunk(&Delta::default(), Some(finish));
        if self.include_usage {
            self.out.put_slice(b"data: ");
            self.out.put_slice(&self.head);
            self.out.put_slice(b",\"choices\":[],\"usage\":");
            let usage = self.usage.to_openai();
            self.write_json(&usage);
            self.out.put_slice(b"}\n\n");
        }
        self.out.put_slice(DONE);
        self.phase = Phase::Done;
    }

    fn chunk(&mut self, delta: &Delta<'_>, finish: Option<&str>) {
        self.out.put_slice(b"data: ");
        self.out.put_slice(&self.head);
        self.out.put_slice(b",\"choices\":[{\"index\":0,\"delta\":");
        self.write_json(delta);
        self.out.put_slice(b",\"finish_reason\":");
        match finish {
            Some(reason) => {
                self.out.put_u8(b'"');
                self.out.put_slice(reason.as_bytes());
                self.out.put_u8(b'"');
            }
            None => self.out.put_slice(b"null"),
        }
        self.out.put_slice(b"}]");
        if self.include_usage {
            self.out.put_slice(b",\"usage\":null");
        }
        self.out.put_slice(b"}\n\n");
    }

    fn error_chunk(&mut self, message: &str, kind: &str, code: Option<&str>) {
        let error = OpenAiError {
            error: OpenAiErrorBody {
                message,
                kind,
                param: None,
                code,
            },
        };
        self.out.put_slice(b"data: ");
        self.write_json(&error);
        self.out.put_slice(b"\n\n");
    }

    /// Serializing our own structs of raw JSON and numbers into memory cannot fail, so an
    /// error here is not worth a code path.
    fn write_json(&mut self, value: &impl Serialize) {
        let _ = serde_json::to_writer((&mut self.out).writer(), value);
    }
}
