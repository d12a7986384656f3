//! The conversation half of a request: OpenAI `messages` -> Anthropic `system` + `messages`.
//!
//! The two APIs cut a conversation differently. OpenAI has system/developer messages anywhere,
//! tool results as their own `tool` role, and tool calls beside the assistant's text; Anthropic
//! has one top-level `system`, strictly alternating user/assistant turns, and tool calls and
//! results as content blocks. So system text is lifted out (in order), tool results become
//! `tool_result` blocks of a user turn, and consecutive messages of one role merge into one
//! turn. Strings are carried as the caller's raw JSON wherever the output is the same JSON
//! string, so message text is never unescaped and escaped again.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::common::Str;
use crate::translate::TranslateError;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

/// One OpenAI message; only the fields the translation reads.
#[derive(Deserialize)]
pub(super) struct Message<'a> {
    role: Role,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(default, borrow)]
    tool_call_id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow)]
    id: &'a RawValue,
    #[serde(borrow)]
    function: FunctionCall<'a>,
}

#[derive(Deserialize)]
struct FunctionCall<'a> {
    #[serde(borrow)]
    name: &'a RawValue,
    #[serde(default, borrow)]
    arguments: Option<Str<'a>>,
}

/// One content part of an array-valued `content`.
#[derive(Deserialize)]
struct Part<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    refusal: Option<&'a RawValue>,
    #[serde(default, borrow)]
    image_url: Option<ImageUrl<'a>>,
    /// Not OpenAI's, but clients that target Anthropic through OpenAI-shaped APIs send it on
    /// text parts, and Anthropic accepts it there: worth keeping for prompt caching.
    #[serde(default, borrow)]
    cache_control: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ImageUrl<'a> {
    #[serde(borrow)]
    url: Str<'a>,
}

/// An Anthropic content block.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block<'a> {
    Text {
        text: &'a RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<&'a RawValue>,
    },
    Image {
        source: ImageSource<'a>,
    },
    ToolUse {
        id: &'a RawValue,
        name: &'a RawValue,
        input: Box<RawValue>,
    },
    ToolResult {
        tool_use_id: &'a RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        content: Option<Content<'a>>,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ImageSource<'a> {
    Base64 {
        media_type: Cow<'a, str>,
        data: Cow<'a, str>,
    },
    Url {
        url: Cow<'a, str>,
    },
}

/// A turn's (or a tool result's) content: the caller's string as is, or blocks.
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Content<'a> {
    Text(&'a RawValue),
    Blocks(Vec<Block<'a>>),
}

impl<'a> Content<'a> {
    fn into_blocks(self) -> Vec<Block<'a>> {
        match self {
            Content::Text(text) => vec![Block::Text {
                text,
                cache_control: None,
            }],
            Content::Blocks(blocks) => blocks,
        }
    }
}

#[derive(Serialize)]
pub(super) struct Turn<'a> {
    role: &'static str,
    content: Content<'a>,
}

/// The translated conversation.
#[derive(Default)]
pub(super) struct Conversation<'a> {
    /// System text blocks, in the order the caller gave them.
    pub system: Vec<Block<'a>>,
    /// The whole system prompt was one plain string: send it as a string, as given.
    pub system_is_string: bool,
    pub turns: Vec<Turn<'a>>,
}

/// Translates the caller's `messages`.
pub(super) fn conversation<'a>(
    messages: Vec<Message<'a>>,
) -> Result<Conversation<'a>, TranslateError> {
    let mut conv = Conversation::default();
    let mut system_messages = 0usize;
    for (i, msg) in messages.into_iter().enumerate() {
        let at = |e: TranslateError| TranslateError(format!("messages[{i}]: {}", e.0));
        match msg.role {
            Role::System | Role::Developer => {
                system_messages += 1;
                conv.system_is_string = system_messages == 1 && is_string(msg.content);
                system_blocks(msg.content, &mut conv.system).map_err(at)?;
            }
            Role::User => {
                if let Some(content) = user_content(msg.content).map_err(at)? {
                    push_turn(&mut conv.turns, "user", content);
                }
            }
            Role::Assistant => {
                if let Some(content) = assistant_content(msg).map_err(at)? {
                    push_turn(&mut conv.turns, "assistant", content);
                }
            }
            Role::Tool => {
                let block = tool_result(msg).map_err(at)?;
                push_turn(&mut conv.turns, "user", Content::Blocks(vec![block]));
            }
            Role::Function => {
                return Err(at(TranslateError(
                    "the legacy `function` role is not supported; use `tool`".into(),
                )))
            }
        }
    }
    Ok(conv)
}

/// Anthropic requires alternating roles, so a message of the same role as the previous turn
/// joins that turn.
fn push_turn<'a>(turns: &mut Vec<Turn<'a>>, role: &'static str, content: Content<'a>) {
    match turns.last_mut() {
        Some(last) if last.role == role => {
            let previous = std::mem::replace(&mut last.content, Content::Blocks(Vec::new()));
            let mut blocks = previous.into_blocks();
            blocks.extend(content.into_blocks());
            last.content = Content::Blocks(blocks);
        }
        _ => turns.push(Turn { role, content }),
    }
}

fn is_string(content: Option<&RawValue>) -> bool {
    content.is_some_and(|c| c.get().starts_with('"'))
}

/// Parses a `content` value: `None` for absent or null, else the string or the parts.
fn parse_content<'a>(content: Option<&'a RawValue>) -> Result<Option<Parsed<'a>>, TranslateError> {
    let Some(raw) = content else {
        return Ok(None);
    };
    match raw.get().as_bytes().first() {
        Some(b'"') => Ok(Some(Parsed::Text(raw))),
        Some(b'[') => serde_json::from_str(raw.get())
            .map(|parts| Some(Parsed::Parts(parts)))
            .map_err(|e| TranslateError(format!("invalid `content`: {e}"))),
        Some(b'n') => Ok(None),
        _ => Err(TranslateError(
            "`content` must be a string, an array of parts or null".into(),
        )),
    }
}

enum Parsed<'a> {
    Text(&'a RawValue),
    Parts(Vec<Part<'a>>),
}

fn system_blocks<'a>(
    content: Option<&'a RawValue>,
    out: &mut Vec<Block<'a>>,
) -> Result<(), TranslateError> {
    match parse_content(content)? {
        None => {}
        Some(Parsed::Text(text)) => out.push(Block::Text {
            text,
            cache_control: None,
        }),
        Some(Parsed::Parts(parts)) => {
            for part in parts {
                match part_block(part, false)? {
                    block @ Block::Text { .. } => out.push(block),
                    _ => {
                        return Err(TranslateError(
                            "system and developer messages may only hold text".into(),
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}

fn user_content(content: Option<&RawValue>) -> Result<Option<Content<'_>>, TranslateError> {
    Ok(match parse_content(content)? {
        None => None,
        // Anthropic rejects an empty turn: one from a framework's history is left out.
        Some(Parsed::Text(text)) if text.get() == "\"\"" => None,
        Some(Parsed::Text(text)) => Some(Content::Text(text)),
        Some(Parsed::Parts(parts)) if parts.is_empty() => None,
        Some(Parsed::Parts(parts)) => Some(Content::Blocks(
            parts
                .into_iter()
                .map(|p| part_block(p, false))
                .collect::<Result<_, _>>()?,
        )),
    })
}

/// Text first, then one `tool_use` block per tool call. An empty text next to tool calls is
/// left out: Anthropic rejects empty text blocks.
fn assistant_content(msg: Message<'_>) -> Result<Option<Content<'_>>, TranslateError> {
    let calls = msg.tool_calls.unwrap_or_default();
    let mut blocks = match parse_content(msg.content)? {
        None => Vec::new(),
        Some(Parsed::Text(text)) if text.get() == "\"\"" => Vec::new(),
        Some(Parsed::Text(text)) if calls.is_empty() => return Ok(Some(Content::Text(text))),
        Some(Parsed::Text(text)) => vec![Block::Text {
            text,
            cache_control: None,
        }],
        Some(Parsed::Parts(parts)) => parts
            .into_iter()
            .map(|p| part_block(p, true))
            .collect::<Result<_, _>>()?,
    };
    for call in calls {
        blocks.push(tool_use(call)?);
    }
    Ok((!blocks.is_empty()).then_some(Content::Blocks(blocks)))
}

fn tool_use(call: ToolCall<'_>) -> Result<Block<'_>, TranslateError> {
    let arguments = call.function.arguments.as_ref().map_or("", Str::as_str);
    let arguments = arguments.trim();
    // Some clients send "" for a call without arguments.
    let arguments = if arguments.is_empty() {
        "{}"
    } else {
        arguments
    };
    let input = RawValue::from_string(arguments.to_owned())
        .ok()
        .filter(|v| v.get().starts_with('{'))
        .ok_or_else(|| {
            TranslateError(format!(
                "tool call {}: `arguments` is not a JSON object",
                call.id.get()
            ))
        })?;
    Ok(Block::ToolUse {
        id: call.id,
        name: call.function.name,
        input,
    })
}

fn tool_result(msg: Message<'_>) -> Result<Block<'_>, TranslateError> {
    let tool_use_id = msg
        .tool_call_id
        .ok_or_else(|| TranslateError("a `tool` message needs `tool_call_id`".into()))?;
    Ok(Block::ToolResult {
        tool_use_id,
        content: user_content(msg.content)?,
    })
}

fn part_block(part: Part<'_>, assistant: bool) -> Result<Block<'_>, TranslateError> {
    let missing = |field: &str| TranslateError(format!("a `{}` part needs `{field}`", part.kind.0));
    match part.kind.as_str() {
        "text" => Ok(Block::Text {
            text: part.text.ok_or_else(|| missing("text"))?,
            cache_control: part.cache_control,
        }),
        // A refusal the model gave earlier is, to Anthropic, just something it said.
        "refusal" if assistant => Ok(Block::Text {
            text: part.refusal.ok_or_else(|| missing("refusal"))?,
            cache_control: None,
        }),
        "image_url" if !assistant => {
            let url = part.image_url.ok_or_else(|| missing("image_url"))?.url.0;
            Ok(Block::Image {
                source: image_source(url)?,
            })
        }
        other => Err(TranslateError(format!(
            "content part type `{other}` is not supported here"
        ))),
    }
}

/// `data:<media type>;base64,<data>` becomes a base64 source; an http(s) URL a url source.
fn image_source(url: Cow<'_, str>) -> Result<ImageSource<'_>, TranslateError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let comma = rest
            .find(',')
            .ok_or_else(|| TranslateError("image data URL has no `,`".into()))?;
        let meta = rest.get(..comma).unwrap_or_default();
        let media = meta
            .strip_suffix(";base64")
            .ok_or_else(|| TranslateError("image data URL must be base64-encoded".into()))?;
        let media_end = "data:".len() + media.len();
        let data_start = "data:".len() + comma + 1;
        return Ok(ImageSource::Base64 {
            media_type: slice(&url, "data:".len(), media_end),
            data: slice(&url, data_start, url.len()),
        });
    }
    let lower = url.get(..8).unwrap_or(&url).to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Ok(ImageSource::Url { url });
    }
    Err(TranslateError(
        "image URL must be an http(s) URL or a base64 data URL".into(),
    ))
}

/// A sub-string that still borrows from the body when the whole did.
fn slice<'a>(whole: &Cow<'a, str>, start: usize, end: usize) -> Cow<'a, str> {
    match whole {
        Cow::Borrowed(s) => Cow::Borrowed(s.get(start..end).unwrap_or_default()),
        Cow::Owned(s) => Cow::Owned(s.get(start..end).unwrap_or_default().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_url_splits_and_borrows() {
        let src = image_source(Cow::Borrowed("data:image/png;base64,iVBORw0=")).unwrap();
        let ImageSource::Base64 { media_type, data } = src else {
            panic!("not base64");
        };
        assert!(matches!(media_type, Cow::Borrowed("image/png")));
        assert!(matches!(data, Cow::Borrowed("iVBORw0=")));
    }

    #[test]
    fn odd_urls_are_refused() {
        assert!(image_source(Cow::Borrowed("ftp://x/y.png")).is_err());
        assert!(image_source(Cow::Borrowed("data:image/png,raw")).is_err());
        assert!(image_source(Cow::Borrowed("data:image/png;base64")).is_err());
        assert!(image_source(Cow::Borrowed("HTTPS://example.com/a.png")).is_ok());
        assert!(image_source(Cow::Borrowed("")).is_err());
    }
}
