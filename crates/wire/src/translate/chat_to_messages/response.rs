//! Complete (non-streaming) bodies from Anthropic -> OpenAI: a `message` becomes a
//! `chat.completion` with one choice, an error body becomes an OpenAI error object.
//!
//! Thinking blocks are exposed as `message.reasoning_content` (the name OpenAI-compatible
//! servers such as DeepSeek and vLLM use), so a client that knows the field can show them and
//! others ignore an unknown member. Redacted thinking carries nothing readable and is left out.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::common::{push_compact, AnthropicUsage, OpenAiError, OpenAiErrorBody, OpenAiUsage, Str};
use crate::translate::{finish_reason_from_anthropic, openai_error_type, TranslateError};

/// Error text longer than this (in bytes) is cut: it is a message for a person, and an upstream
/// that answers with a whole HTML page must not be echoed whole.
const MAX_ERROR_TEXT: usize = 1024;

#[derive(Deserialize)]
struct AnthropicMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    // Optional here so a body of another type is named as such, not as a missing member.
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    model: Option<&'a RawValue>,
    #[serde(default, borrow)]
    content: Option<Vec<ContentBlock<'a>>>,
    #[serde(default, borrow)]
    stop_reason: Option<Str<'a>>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct ContentBlock<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(default, borrow)]
    text: Option<&'a RawValue>,
    #[serde(default, borrow)]
    thinking: Option<Str<'a>>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    name: Option<&'a RawValue>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct ChatCompletion<'a> {
    id: &'a RawValue,
    object: &'static str,
    created: u64,
    model: &'a RawValue,
    choices: [Choice<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OpenAiUsage>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: AssistantMessage<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct AssistantMessage<'a> {
    role: &'static str,
    content: Option<Text<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCall<'a>>,
}

/// One text block is sent as Anthropic wrote it; several are decoded and joined.
#[derive(Serialize)]
#[serde(untagged)]
enum Text<'a> {
    Raw(&'a RawValue),
    Joined(String),
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'a RawValue,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCall<'a>,
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a RawValue,
    arguments: String,
}

/// Translates an Anthropic Messages success body into an OpenAI `chat.completion`.
pub fn response(body: &[u8], created: u64) -> Result<Vec<u8>, TranslateError> {
    let msg: AnthropicMessage<'_> = serde_json::from_slice(body)
        .map_err(|e| TranslateError(format!("not an Anthropic message: {e}")))?;
    if msg.kind.as_str() != "message" {
        return Err(TranslateError(format!(
            "not an Anthropic message: `type` is `{}`",
            msg.kind.as_str()
        )));
    }
    let missing = |field| TranslateError(format!("not an Anthropic message: no `{field}`"));
    let id = msg.id.ok_or_else(|| missing("id"))?;
    let model = msg.model.ok_or_else(|| missing("model"))?;
    let content = msg.content.as_deref().ok_or_else(|| missing("content"))?;
    let message = assistant_message(content)?;
    let out = ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [Choice {
            index: 0,
            message,
            logprobs: None,
            finish_reason: msg
                .stop_reason
                .as_ref()
                .map(|r| finish_reason_from_anthropic(r.as_str())),
        }],
        usage: msg.usage.map(AnthropicUsage::to_openai),
    };
    let mut buf = Vec::with_capacity(body.len() + 128);
    serde_json::to_writer(&mut buf, &out)
        .map_err(|e| TranslateError(format!("cannot write the translated response: {e}")))?;
    Ok(buf)
}

fn assistant_message<'a>(
    blocks: &[ContentBlock<'a>],
) -> Result<AssistantMessage<'a>, TranslateError> {
    let mut texts: Vec<&'a RawValue> = Vec::new();
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in blocks {
        match block.kind.as_str() {
            "text" => texts.extend(block.text),
            "thinking" => {
                if let Some(thinking) = &block.thinking {
                    reasoning
                        .get_or_insert_with(String::new)
                        .push_str(thinking.as_str());
                }
            }
            "tool_use" => tool_calls.push(tool_call(block)?),
            // Server tools, redacted thinking and anything newer have no OpenAI counterpart.
            _ => {}
        }
    }
    Ok(AssistantMessage {
        role: "assistant",
        content: join_texts(&texts)?,
        reasoning_content: reasoning,
        tool_calls,
    })
}

fn join_texts<'a>(texts: &[&'a RawValue]) -> Result<Option<Text<'a>>, TranslateError> {
    match texts {
        [] => Ok(None),
        [one] => Ok(Some(Text::Raw(one))),
        many => {
            let mut joined = String::new();
            for raw in many {
                let part: Str<'_> = serde_json::from_str(raw.get())
                    .map_err(|e| TranslateError(format!("text block: {e}")))?;
                joined.push_str(part.as_str());
            }
            Ok(Some(Text::Joined(joined)))
        }
    }
}

fn tool_call<'a>(block: &ContentBlock<'a>) -> Result<ToolCall<'a>, TranslateError> {
    let missing = |field| TranslateError(format!("tool_use block without `{field}`"));
    let input = block.input.map_or("{}", RawValue::get);
    let mut arguments = String::with_capacity(input.len());
    push_compact(&mut arguments, input);
    Ok(ToolCall {
        id: block.id.ok_or_else(|| missing("id"))?,
        kind: "function",
        function: FunctionCall {
            name: block.name.ok_or_else(|| missing("name"))?,
            arguments,
        },
    })
}

#[derive(Deserialize)]
struct AnthropicError<'a> {
    #[serde(borrow)]
    error: ErrorDetail<'a>,
}

#[derive(Deserialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(borrow)]
    message: Str<'a>,
}

/// Translates an Anthropic error body into an OpenAI one. The OpenAI `type` follows the HTTP
/// status (what OpenAI's own API would say for it); `code` keeps Anthropic's type, which is the
/// more precise of the two (`overloaded_error` has no OpenAI type of its own).
pub fn error(status: u16, body: &[u8]) -> Vec<u8> {
    let parsed = serde_json::from_slice::<AnthropicError<'_>>(body).ok();
    let generic;
    let error = match &parsed {
        Some(e) => OpenAiErrorBody {
            message: e.error.message.as_str(),
            kind: openai_error_type(status),
            param: None,
            code: Some(e.error.kind.as_str()),
        },
        None => {
            generic = generic_message(status, body);
            OpenAiErrorBody {
                message: &generic,
                kind: openai_error_type(status),
                param: None,
                code: None,
            }
        }
    };
    serde_json::to_vec(&OpenAiError { error }).unwrap_or_default()
}

/// A message carrying the start of an unrecognised body, as valid UTF-8.
fn generic_message(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return format!("upstream returned HTTP {status} with an empty body");
    }
    let mut end = text.len().min(MAX_ERROR_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < text.len() { "..." } else { "" };
    format!(
        "upstream returned HTTP {status}: {}{cut}",
        text.get(..end).unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_error_text_is_cut_on_a_char_boundary() {
        let body = "é".repeat(MAX_ERROR_TEXT);
        let msg = generic_message(502, body.as_bytes());
        assert!(msg.ends_with("..."));
        assert!(msg.len() < MAX_ERROR_TEXT + 40);
    }

    #[test]
    fn invalid_utf8_error_body_still_yields_json() {
        let out = error(500, b"\xff\xfe oops");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["error"]["type"], "api_error");
        assert!(v["error"]["message"].as_str().unwrap().contains("oops"));
    }
}
