//! Anthropic turns -> OpenAI Chat messages. The shapes differ most here: Anthropic keeps tool
//! calls and tool results as blocks inside ordinary turns, OpenAI wants `tool_calls` on the
//! assistant message and one `role: "tool"` message per result, placed right after that
//! assistant message. So a user turn is split: its tool results first (in order), then whatever
//! else it said as one user message.

use std::borrow::Cow;
use std::fmt;

use serde::{Serialize, Serializer};

use super::content::{compact_json, join, note_dropped, Block, Content, ImageSource};
use crate::translate::TranslateError;

/// One Anthropic `messages[]` entry.
#[derive(Debug, serde::Deserialize)]
pub(super) struct Turn<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow)]
    content: Content<'a>,
}

/// One OpenAI message.
#[derive(Debug, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub(super) enum ChatMessage<'a> {
    System {
        content: Cow<'a, str>,
    },
    User {
        content: UserContent<'a>,
    },
    Assistant {
        content: Option<Cow<'a, str>>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall<'a>>,
    },
    Tool {
        tool_call_id: Cow<'a, str>,
        content: Cow<'a, str>,
    },
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(super) enum UserContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Part<'a> {
    Text { text: Cow<'a, str> },
    ImageUrl { image_url: ImageUrl<'a> },
}

#[derive(Debug, Serialize)]
pub(super) struct ImageUrl<'a> {
    url: Url<'a>,
}

/// An image URL; a base64 image becomes a `data:` URL written straight into the output (an
/// image can be megabytes, so it is never assembled in a `String` first).
#[derive(Debug)]
enum Url<'a> {
    Plain(Cow<'a, str>),
    Data {
        media_type: Cow<'a, str>,
        data: Cow<'a, str>,
    },
}

impl Serialize for Url<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Url::Plain(url) => s.serialize_str(url),
            Url::Data { .. } => s.collect_str(self),
        }
    }
}

impl fmt::Display for Url<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Url::Plain(url) => f.write_str(url),
            Url::Data { media_type, data } => write!(f, "data:{media_type};base64,{data}"),
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct ToolCall<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

#[derive(Debug, Serialize)]
struct FunctionCall<'a> {
    name: Cow<'a, str>,
    arguments: Cow<'a, str>,
}

/// The `system` value as the first message (nothing when it is empty).
pub(super) fn system<'a>(
    system: Content<'a>,
    dropped: &mut Vec<String>,
) -> Option<ChatMessage<'a>> {
    let text = match system {
        Content::Text(text) => text,
        Content::Blocks(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for block in blocks {
                match (block.kind.as_ref(), block.text) {
                    ("text", Some(text)) => texts.push(text),
                    (kind, _) => note_dropped(dropped, format!("system.{kind}")),
                }
            }
            join(texts)
        }
    };
    (!text.is_empty()).then_some(ChatMessage::System { content: text })
}

/// Appends the OpenAI messages for one Anthropic turn.
pub(super) fn turn<'a>(
    turn: Turn<'a>,
    out: &mut Vec<ChatMessage<'a>>,
    dropped: &mut Vec<String>,
) -> Result<(), TranslateError> {
    match (turn.role.as_ref(), turn.content) {
        ("user", Content::Text(text)) => out.push(ChatMessage::User {
            content: UserContent::Text(text),
        }),
        ("user", Content::Blocks(blocks)) => user_blocks(blocks, out, dropped)?,
        ("assistant", Content::Text(text)) => out.push(ChatMessage::Assistant {
            content: Some(text),
            tool_calls: Vec::new(),
        }),
        ("assistant", Content::Blocks(blocks)) => out.push(assistant_blocks(blocks, dropped)),
        (role, _) => {
            return Err(TranslateError(format!(
                "messages: role \"{role}\" is neither \"user\" nor \"assistant\""
            )))
        }
    }
    Ok(())
}

fn user_blocks<'a>(
    blocks: Vec<Block<'a>>,
    out: &mut Vec<ChatMessage<'a>>,
    dropped: &mut Vec<String>,
) -> Result<(), TranslateError> {
    let mut result_images = Vec::new();
    let mut parts = Vec::with_capacity(blocks.len());
    let mut had_results = false;
    for block in blocks {
        match block.kind.as_ref() {
            "text" => parts.push(Part::Text {
                text: block.text.unwrap_or_default(),
            }),
            "image" => parts.extend(image(block.source, dropped)?),
            "tool_result" => {
                had_results = true;
                let mut content = tool_result(block.content, &mut result_images, dropped)?;
                // OpenAI's tool messages have no error flag: say it in the text, or the model
                // reads a failed run as a success.
                if block.is_error == Some(true) {
                    content = Cow::Owned(format!("Error: {content}"));
                }
                out.push(ChatMessage::Tool {
                    tool_call_id: block.tool_use_id.unwrap_or_default(),
                    content,
                });
            }
            "thinking" | "redacted_thinking" => {}
            kind => note_dropped(dropped, format!("messages[].content.{kind}")),
        }
    }
    if !result_images.is_empty() {
        result_images.append(&mut parts);
        parts = result_images;
    }
    if parts.is_empty() && had_results {
        return Ok(());
    }
    out.push(ChatMessage::User {
        content: user_content(parts),
    });
    Ok(())
}

/// A single text part reads as a plain string, which every compatible server accepts.
fn user_content(mut parts: Vec<Part<'_>>) -> UserContent<'_> {
    match parts.as_mut_slice() {
        [] => UserContent::Text(Cow::Borrowed("")),
        [Part::Text { text }] => UserContent::Text(std::mem::take(text)),
        _ => UserContent::Parts(parts),
    }
}

fn assistant_blocks<'a>(blocks: Vec<Block<'a>>, dropped: &mut Vec<String>) -> ChatMessage<'a> {
    let mut texts = Vec::new();
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.kind.as_ref() {
            "text" => texts.extend(block.text.filter(|t| !t.is_empty())),
            "tool_use" => tool_calls.push(ToolCall {
                id: block.id.unwrap_or_default(),
                kind: "function",
                function: FunctionCall {
                    name: block.name.unwrap_or_default(),
                    arguments: block
                        .input
                        .map_or(Cow::Borrowed("{}"), |raw| compact_json(raw.get())),
                },
            }),
            "thinking" | "redacted_thinking" => {}
            kind => note_dropped(dropped, format!("messages[].content.{kind}")),
        }
    }
    // OpenAI wants `content: null` beside tool calls with no text, and a string otherwise.
    let content = match (texts.is_empty(), tool_calls.is_empty()) {
        (true, false) => None,
        _ => Some(join(texts)),
    };
    ChatMessage::Assistant {
        content,
        tool_calls,
    }
}

/// A tool result's content as the `tool` message's string; its images go to `images`.
fn tool_result<'a>(
    content: Option<&'a serde_json::value::RawValue>,
    images: &mut Vec<Part<'a>>,
    dropped: &mut Vec<String>,
) -> Result<Cow<'a, str>, TranslateError> {
    let Some(raw) = content else {
        return Ok(Cow::Borrowed(""));
    };
    let content: Content<'a> = serde_json::from_str(raw.get())
        .map_err(|e| TranslateError(format!("messages: invalid tool_result content: {e}")))?;
    let blocks = match content {
        Content::Text(text) => return Ok(text),
        Content::Blocks(blocks) => blocks,
    };
    let mut texts = Vec::with_capacity(blocks.len());
    for block in blocks {
        match block.kind.as_ref() {
            "text" => texts.extend(block.text),
            "image" => images.extend(image(block.source, dropped)?),
            kind => note_dropped(dropped, format!("messages[].content.tool_result.{kind}")),
        }
    }
    Ok(join(texts))
}

/// An image block as an `image_url` part; `None` (and noted) for a source OpenAI cannot take.
fn image<'a>(
    source: Option<&'a serde_json::value::RawValue>,
    dropped: &mut Vec<String>,
) -> Result<Option<Part<'a>>, TranslateError> {
    let invalid = |what: &str| TranslateError(format!("messages: image block {what}"));
    let raw = source.ok_or_else(|| invalid("without a source"))?;
    let source: ImageSource<'a> = serde_json::from_str(raw.get())
        .map_err(|e| invalid(&format!("with an invalid source: {e}")))?;
    let url = match (
        source.kind.as_ref(),
        source.media_type,
        source.data,
        source.url,
    ) {
        ("base64", Some(media_type), Some(data), _) => Url::Data { media_type, data },
        ("url", _, _, Some(url)) => Url::Plain(url),
        ("base64" | "url", ..) => return Err(invalid("with an incomplete source")),
        (kind, ..) => {
            note_dropped(dropped, format!("messages[].content.image.source.{kind}"));
            return Ok(None);
        }
    };
    Ok(Some(Part::ImageUrl {
        image_url: ImageUrl { url },
    }))
}
