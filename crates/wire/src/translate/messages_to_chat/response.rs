//! Non-streaming bodies coming back: an OpenAI `chat.completion` -> an Anthropic `message`, and
//! an OpenAI-style error body -> an Anthropic error. Compatible servers vary (content as an
//! array of parts, reasoning under two names, tool arguments as an object instead of a string,
//! errors as a bare string), so the reading is lenient wherever a shape can be recognised.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{AnthropicUsage, ErrorBody, LenientStr};
use crate::translate::{anthropic_error_type, stop_reason_from_openai, TranslateError};
use crate::usage::parse_openai_usage;
use crate::Operation;

/// Error messages taken from a body that is not a recognisable error are cut to this many bytes.
const MAX_ERROR_MESSAGE: usize = 1024;

#[derive(Deserialize)]
struct Completion<'a> {
    #[serde(default, borrow)]
    id: LenientStr<'a>,
    #[serde(default, borrow)]
    model: LenientStr<'a>,
    #[serde(borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default, borrow)]
    usage: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow)]
    message: ChoiceMessage<'a>,
    #[serde(default, borrow)]
    finish_reason: LenientStr<'a>,
}

#[derive(Deserialize)]
struct ChoiceMessage<'a> {
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default, borrow)]
    refusal: LenientStr<'a>,
    #[serde(default, borrow)]
    reasoning_content: LenientStr<'a>,
    #[serde(default, borrow)]
    reasoning: LenientStr<'a>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(default, borrow)]
    id: LenientStr<'a>,
    #[serde(borrow)]
    function: Function<'a>,
}

#[derive(Deserialize)]
struct Function<'a> {
    #[serde(default, borrow)]
    name: LenientStr<'a>,
    #[serde(default, borrow)]
    arguments: Option<&'a RawValue>,
}

/// A text part of an array `content` (Mistral and others); other part types are skipped.
#[derive(Deserialize)]
struct TextPart<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: LenientStr<'a>,
    #[serde(default, borrow)]
    text: LenientStr<'a>,
}

#[derive(Serialize)]
struct Message<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: Cow<'a, str>,
    content: Vec<Block<'a>>,
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
    usage: AnthropicUsage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Thinking {
        thinking: Cow<'a, str>,
        signature: &'static str,
    },
    Text {
        text: Cow<'a, str>,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: Cow<'a, str>,
        input: ToolInput<'a>,
    },
}

/// A tool call's arguments as an Anthropic `input` object.
#[derive(Serialize)]
#[serde(untagged)]
enum ToolInput<'a> {
    Object(&'a RawValue),
    Parsed(Box<RawValue>),
    /// Arguments that are not a JSON object, kept rather than lost (see the parent module).
    Unparsed {
        _raw: Cow<'a, str>,
    },
    Empty {},
}

pub(super) fn translate(body: &[u8]) -> Result<Vec<u8>, TranslateError> {
    let completion: Completion<'_> = serde_json::from_slice(body)
        .map_err(|e| TranslateError(format!("provider response is not a chat completion: {e}")))?;
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(TranslateError(
            "provider response is not a chat completion: no choices".into(),
        ));
    };
    let content = content_blocks(choice.message);
    let has_tool_use = content.iter().any(|b| matches!(b, Block::ToolUse { .. }));
    let reason = choice
        .finish_reason
        .0
        .as_deref()
        .map(stop_reason_from_openai);
    let usage = completion
        .usage
        .and_then(|u| parse_openai_usage(Operation::ChatCompletions, u.get().as_bytes()));
    let out = Message {
        id: completion.id.0.unwrap_or_default(),
        kind: "message",
        role: "assistant",
        model: completion.model.0.unwrap_or_default(),
        content,
        stop_reason: stop_reason(reason, has_tool_use),
        stop_sequence: None,
        usage: AnthropicUsage::from_openai(usage),
    };
    let mut buf = Vec::with_capacity(body.len() + 128);
    serde_json::to_writer(&mut buf, &out)
        .map_err(|e| TranslateError(format!("cannot write the Anthropic message: {e}")))?;
    Ok(buf)
}

/// Thinking first (as Claude orders it), then the text, then one `tool_use` per call.
fn content_blocks(message: ChoiceMessage<'_>) -> Vec<Block<'_>> {
    let mut content = Vec::new();
    let reasoning = message.reasoning_content.non_empty();
    if let Some(thinking) = reasoning.or_else(|| message.reasoning.non_empty()) {
        content.push(Block::Thinking {
            thinking,
            signature: "",
        });
    }
    // A refusal (OpenAI puts it beside a null content) is what the model said: show it.
    if let Some(text) = message_text(message.content).or_else(|| message.refusal.non_empty()) {
        content.push(Block::Text { text });
    }
    let calls = message.tool_calls.unwrap_or_default();
    for (i, call) in calls.into_iter().enumerate() {
        let id = call.id.non_empty();
        content.push(Block::ToolUse {
            id: id.unwrap_or_else(|| format!("call_{i}").into()),
            name: call.function.name.0.unwrap_or_default(),
            input: tool_input(call.function.arguments),
        });
    }
    content
}

/// The stop reason, made `tool_use` when tools were called but the server said `stop` (or
/// nothing): an agent only runs tools on `tool_use`.
pub(super) fn stop_reason(mapped: Option<&'static str>, has_tool_use: bool) -> &'static str {
    match mapped {
        Some("end_turn") | None if has_tool_use => "tool_use",
        Some(reason) => reason,
        None => "end_turn",
    }
}

/// `content` as text: a string, or the joined text parts of an array; `None` when empty.
fn message_text(content: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = content?.get();
    if raw.starts_with('[') {
        let parts: Vec<TextPart<'_>> = serde_json::from_str(raw).ok()?;
        let text: String = parts
            .into_iter()
            .filter(|p| p.kind.0.as_deref() == Some("text"))
            .filter_map(|p| p.text.0)
            .collect();
        return (!text.is_empty()).then_some(Cow::Owned(text));
    }
    serde_json::from_str::<LenientStr<'_>>(raw)
        .ok()?
        .non_empty()
}

/// Arguments are a JSON string holding an object (OpenAI), or the object itself (some
/// compatible servers).
fn tool_input(arguments: Option<&RawValue>) -> ToolInput<'_> {
    let Some(arguments) = arguments else {
        return ToolInput::Empty {};
    };
    let raw = arguments.get();
    if raw.starts_with('{') {
        return ToolInput::Object(arguments);
    }
    if raw == "null" {
        return ToolInput::Empty {};
    }
    if !raw.starts_with('"') {
        return ToolInput::Unparsed {
            _raw: Cow::Borrowed(raw),
        };
    }
    let Some(text) = serde_json::from_str::<LenientStr<'_>>(raw)
        .ok()
        .and_then(|s| s.0)
    else {
        return ToolInput::Empty {};
    };
    if text.trim().is_empty() {
        return ToolInput::Empty {};
    }
    let is_object =
        serde_json::from_str::<&RawValue>(&text).is_ok_and(|v| v.get().starts_with('{'));
    if !is_object {
        return ToolInput::Unparsed { _raw: text };
    }
    match RawValue::from_string(text.into_owned()) {
        Ok(value) => ToolInput::Parsed(value),
        Err(_) => ToolInput::Empty {},
    }
}

#[derive(Deserialize)]
struct ErrorEnvelope<'a> {
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
    /// vLLM and others answer `{"object":"error","message":...}`.
    #[serde(default, borrow)]
    message: LenientStr<'a>,
}

#[derive(Deserialize)]
struct ErrorObject<'a> {
    #[serde(default, borrow)]
    message: LenientStr<'a>,
    #[serde(rename = "type", default, borrow)]
    kind: LenientStr<'a>,
    #[serde(default, borrow)]
    code: Option<&'a RawValue>,
}

pub(super) fn error(status: u16, body: &[u8]) -> Vec<u8> {
    let message = error_message(body).unwrap_or_else(|| body_text(status, body));
    let out = ErrorBody::new(anthropic_error_type(status), message);
    serde_json::to_vec(&out).unwrap_or_default()
}

/// The message of an OpenAI error body: `error.message`, a bare `error` string (Ollama), or a
/// top-level `message`.
fn error_message(body: &[u8]) -> Option<Cow<'_, str>> {
    let envelope: ErrorEnvelope<'_> = serde_json::from_slice(body).ok()?;
    let from_error = envelope.error.and_then(|raw| {
        if raw.get().starts_with('"') {
            return serde_json::from_str::<LenientStr<'_>>(raw.get())
                .ok()?
                .non_empty();
        }
        serde_json::from_str::<ErrorObject<'_>>(raw.get())
            .ok()?
            .message
            .non_empty()
    });
    from_error.or_else(|| envelope.message.non_empty())
}

/// The body itself as the message: valid UTF-8, trimmed, cut to [`MAX_ERROR_MESSAGE`] bytes.
fn body_text(status: u16, body: &[u8]) -> Cow<'static, str> {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return Cow::Owned(format!(
            "provider returned HTTP {status} with an empty body"
        ));
    }
    let mut end = text.len().min(MAX_ERROR_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(text[..end].to_owned())
}

/// A mid-stream `error` value as an Anthropic error event payload. There is no HTTP status
/// here, so the type comes from the error's own `type` / `code`.
pub(super) fn stream_error(raw: &RawValue) -> ErrorBody<'_> {
    let object = serde_json::from_str::<ErrorObject<'_>>(raw.get()).ok();
    let (message, kind) = match object {
        Some(e) => {
            let kind = e.kind.0.as_deref().and_then(error_type_from_openai);
            let kind = kind.or_else(|| e.code.and_then(code_error_type));
            (e.message.non_empty(), kind)
        }
        None => (
            serde_json::from_str::<LenientStr<'_>>(raw.get())
                .ok()
                .and_then(LenientStr::non_empty),
            None,
        ),
    };
    ErrorBody::new(
        kind.unwrap_or("api_error"),
        message.unwrap_or(Cow::Borrowed(
            "the provider reported an error during the stream",
        )),
    )
}

fn error_type_from_openai(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "invalid_request_error" => "invalid_request_error",
        "authentication_error" => "authentication_error",
        "permission_error" => "permission_error",
        "not_found_error" => "not_found_error",
        "rate_limit_exceeded" | "rate_limit_error" | "insufficient_quota" | "tokens" => {
            "rate_limit_error"
        }
        "overloaded_error" | "server_overloaded" => "overloaded_error",
        _ => return None,
    })
}

/// A string code is read like a type; an HTTP-like numeric code (some servers) like a status.
fn code_error_type(code: &RawValue) -> Option<&'static str> {
    let raw = code.get();
    if let Ok(status) = raw.parse::<u16>() {
        return Some(anthropic_error_type(status));
    }
    let code = serde_json::from_str::<LenientStr<'_>>(raw).ok()?.0?;
    error_type_from_openai(&code)
}
