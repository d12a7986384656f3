//! OpenAI Chat chunk stream -> Anthropic Messages stream. OpenAI streams one flat delta per
//! chunk; Anthropic streams typed blocks, each opened, filled and closed, inside a message that
//! is opened first and closed with its stop reason and usage. So this keeps which block is open
//! and opens, switches and closes blocks as the deltas change kind.
//!
//! The message is closed (`message_delta` + `message_stop`) only once the usage is known: OpenAI
//! sends usage in a chunk AFTER the one with the finish reason, so the stop reason is held until
//! that chunk, `[DONE]`, or the end of the upstream. A stream that ends with no finish reason
//! and no `[DONE]` was cut, and the client is told so with an `error` event rather than a
//! message that looks complete.
//!
//! A tool call's argument fragments are forwarded as they come. One limitation: Anthropic cannot
//! reopen a closed block, so a fragment for a tool call whose block was already closed (a
//! server interleaving two calls' fragments; none known does) is dropped.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::response::{stop_reason, stream_error};
use super::{AnthropicUsage, ErrorBody, LenientStr};
use crate::translate::stop_reason_from_openai;
use crate::usage::parse_openai_usage;
use crate::{Operation, SseParser, Usage};

const CUT_MESSAGE: &str = "upstream stream ended before the message was complete";

/// Translates a provider SSE stream into the caller's, chunk by chunk.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    parser: SseParser,
    state: State,
}

impl StreamTranslator {
    /// `include_usage` is ignored: an Anthropic stream always carries usage.
    pub fn new(include_usage: bool) -> Self {
        let _ = include_usage;
        StreamTranslator::default()
    }

    /// Translates the next upstream chunk (any split of the SSE bytes); returns what to send
    /// the caller now, possibly empty.
    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        if !self.state.done {
            let state = &mut self.state;
            self.parser.push(chunk, |event| state.on_data(event.data));
        }
        self.state.out.split().freeze()
    }

    /// The upstream stream ended (cleanly or not); returns the closing bytes for the caller.
    pub fn finish(&mut self) -> Bytes {
        if !self.state.done {
            let state = &mut self.state;
            self.parser.finish(|event| state.on_data(event.data));
            state.on_end();
        }
        self.state.out.split().freeze()
    }
}

/// The block currently open in the Anthropic stream.
#[derive(Debug, Default, PartialEq)]
enum Open {
    #[default]
    None,
    Text,
    Thinking,
    /// A tool call: OpenAI's index for it, and its id (compatible servers may repeat the id on
    /// every fragment, or reuse index 0 for every call, so both tell a new call apart).
    Tool {
        index: u64,
        id: String,
    },
}

#[derive(Debug, Default)]
struct State {
    out: BytesMut,
    started: bool,
    /// `message_stop` or an `error` event was sent: nothing more goes out.
    done: bool,
    open: Open,
    /// Index of the open block (valid while `open` is not `None`); `next` is the next one's.
    index: u32,
    next: u32,
    stop_reason: Option<&'static str>,
    had_tool_use: bool,
    usage: Option<Usage>,
}

// === upstream chunk shapes ===

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    id: LenientStr<'a>,
    #[serde(default, borrow)]
    model: LenientStr<'a>,
    #[serde(default, borrow)]
    choices: Option<Vec<ChunkChoice<'a>>>,
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ChunkChoice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    delta: Option<ChunkDelta<'a>>,
    #[serde(default, borrow)]
    finish_reason: LenientStr<'a>,
}

#[derive(Deserialize)]
struct ChunkDelta<'a> {
    #[serde(default, borrow)]
    content: LenientStr<'a>,
    #[serde(default, borrow)]
    refusal: LenientStr<'a>,
    #[serde(default, borrow)]
    reasoning_content: LenientStr<'a>,
    #[serde(default, borrow)]
    reasoning: LenientStr<'a>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCallDelta<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallDelta<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    id: LenientStr<'a>,
    #[serde(default, borrow)]
    function: Option<FunctionDelta<'a>>,
}

#[derive(Deserialize, Default)]
struct FunctionDelta<'a> {
    #[serde(default, borrow)]
    name: LenientStr<'a>,
    #[serde(default, borrow)]
    arguments: LenientStr<'a>,
}

// === Anthropic event shapes ===

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: StartMessage<'a>,
    },
    ContentBlockStart {
        index: u32,
        content_block: StartBlock<'a>,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: StopDelta,
        usage: AnthropicUsage,
    },
    MessageStop,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
        }
    }
}

#[derive(Serialize)]
struct StartMessage<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: Cow<'a, str>,
    content: [(); 0],
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    usage: StartUsage,
}

#[derive(Serialize)]
struct StartUsage {
    input_tokens: u64,
    output_tokens: u64,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock<'a> {
    Text {
        text: &'static str,
    },
    Thinking {
        thinking: &'static str,
        signature: &'static str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: EmptyObject,
    },
}

#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
#[serde(tag = "type")]
enum Delta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
}

// === impl State ===

impl State {
    fn on_data(&mut self, data: &[u8]) {
        if self.done {
            return;
        }
        if data.trim_ascii() == b"[DONE]" {
            return self.complete();
        }
        // A chunk that is not JSON is skipped: the rest of the stream is still good.
        let Ok(chunk) = serde_json::from_slice::<Chunk<'_>>(data) else {
            return;
        };
        if let Some(error) = chunk.error.filter(|e| e.get() != "null") {
            self.write_error(&stream_error(error));
            self.done = true;
            return;
        }
        if !self.started {
            self.start(
                chunk.id.0.unwrap_or_default(),
                chunk.model.0.unwrap_or_default(),
            );
        }
        // Usage arriving after the finish reason is OpenAI's last chunk before [DONE].
        let finished_before = self.stop_reason.is_some();
        let usage = chunk
            .usage
            .and_then(|u| parse_openai_usage(Operation::ChatCompletions, u.get().as_bytes()));
        let choice = chunk
            .choices
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0);
        if let Some(choice) = choice {
            self.on_choice(choice);
        }
        if usage.is_some() {
            // Servers that send usage on every chunk send running totals: the last one wins.
            self.usage = usage;
            if finished_before {
                self.complete();
            }
        }
    }

    fn on_choice(&mut self, choice: ChunkChoice<'_>) {
        if let Some(delta) = choice.delta {
            let reasoning = delta.reasoning_content.non_empty();
            if let Some(thinking) = reasoning.or_else(|| delta.reasoning.non_empty()) {
                self.ensure_open(Open::Thinking);
                self.delta(Delta::Thinking {
                    thinking: &thinking,
                });
            }
            if let Some(text) = delta.content.non_empty().or(delta.refusal.non_empty()) {
                self.ensure_open(Open::Text);
                self.delta(Delta::Text { text: &text });
            }
            for call in delta.tool_calls.unwrap_or_default() {
                self.on_tool_call(call);
            }
        }
        if let Some(reason) = choice.finish_reason.non_empty() {
            self.stop_reason = Some(stop_reason_from_openai(&reason));
            self.close();
        }
    }

    fn on_tool_call(&mut self, call: ToolCallDelta<'_>) {
        let index = call.index.unwrap_or(0);
        let id = call.id.non_empty();
        let function = call.function.unwrap_or_default();
        let continues = matches!(&self.open,
            Open::Tool { index: i, id: open_id }
                if *i == index && id.as_deref().is_none_or(|id| id == open_id));
        if !continues {
            let name = function.name.non_empty();
            if id.is_none() && name.is_none() {
                return; // a fragment of a call whose block is closed (see the module docs)
            }
            let id = id.map_or_else(|| format!("call_{index}"), Cow::into_owned);
            self.close();
            let block = StartBlock::ToolUse {
                id: &id,
                name: name.as_deref().unwrap_or_default(),
                input: EmptyObject {},
            };
            self.open_block(block);
            self.open = Open::Tool { index, id };
            self.had_tool_use = true;
        }
        if let Some(arguments) = function.arguments.non_empty() {
            self.delta(Delta::InputJson {
                partial_json: &arguments,
            });
        }
    }

    /// Upstream ended: complete when it had finished, else tell the client it was cut.
    fn on_end(&mut self) {
        if self.done {
            return;
        }
        if self.stop_reason.is_some() {
            return self.complete();
        }
        self.write_error(&ErrorBody::new("api_error", Cow::Borrowed(CUT_MESSAGE)));
        self.done = true;
    }

    fn start(&mut self, id: Cow<'_, str>, model: Cow<'_, str>) {
        self.started = true;
        self.write(&Event::MessageStart {
            message: StartMessage {
                id,
                kind: "message",
                role: "assistant",
                model,
                content: [],
                stop_reason: None,
                stop_sequence: None,
                usage: StartUsage {
                    input_tokens: 0,
                    output_tokens: 0,
                },
            },
        });
    }

    fn complete(&mut self) {
        if !self.started {
            self.start(Cow::Borrowed(""), Cow::Borrowed(""));
        }
        self.close();
        let delta = StopDelta {
            stop_reason: stop_reason(self.stop_reason, self.had_tool_use),
            stop_sequence: None,
        };
        let usage = AnthropicUsage::from_openai(self.usage);
        self.write(&Event::MessageDelta { delta, usage });
        self.write(&Event::MessageStop);
        self.done = true;
    }

    /// Opens a text or thinking block unless one of that kind is already open.
    fn ensure_open(&mut self, kind: Open) {
        if self.open == kind {
            return;
        }
        self.close();
        let block = match kind {
            Open::Thinking => StartBlock::Thinking {
                thinking: "",
                signature: "",
            },
            _ => StartBlock::Text { text: "" },
        };
        self.open_block(block);
        self.open = kind;
    }

    fn open_block(&mut self, content_block: StartBlock<'_>) {
        self.index = self.next;
        self.next = self.next.saturating_add(1);
        let index = self.index;
        self.write(&Event::ContentBlockStart {
            index,
            content_block,
        });
    }

    fn close(&mut self) {
        if std::mem::take(&mut self.open) != Open::None {
            let index = self.index;
            self.write(&Event::ContentBlockStop { index });
        }
    }

    fn delta(&mut self, delta: Delta<'_>) {
        let index = self.index;
        self.write(&Event::ContentBlockDelta { index, delta });
    }

    fn write(&mut self, event: &Event<'_>) {
        self.write_named(event.name(), event);
    }

    fn write_error(&mut self, error: &ErrorBody<'_>) {
        self.write_named("error", error);
    }

    fn write_named(&mut self, name: &str, data: &impl Serialize) {
        self.out.extend_from_slice(b"event: ");
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b"\ndata: ");
        // Writing our own types into memory cannot fail.
        let _ = serde_json::to_writer((&mut self.out).writer(), data);
        self.out.extend_from_slice(b"\n\n");
    }
}
