//! An Anthropic Messages client (Claude Code and the like) calling an OpenAI Chat Completions
//! provider (OpenAI itself, or a compatible server: vLLM, Ollama, Groq...). The request goes
//! Anthropic -> OpenAI; the response, the stream and errors come back OpenAI -> Anthropic.
//!
//! Nothing here builds a JSON DOM of a body: bodies are read into borrowed structs (strings
//! borrowed when unescaped, schemas, tool inputs and images kept as `&RawValue`) and written
//! with serde straight into one output buffer.
//!
//! # Layout
//! - `content`: the Anthropic content shapes a request carries (string or blocks).
//! - `request`: the request body, top-level fields, tools and tool choice.
//! - `messages`: Anthropic turns -> OpenAI messages (tool results become `tool` messages).
//! - `response`: a `chat.completion` body -> an Anthropic `message`; error bodies.
//! - `stream`: [`StreamTranslator`], OpenAI chunks -> Anthropic stream events.
//!
//! # Choices made where the two APIs do not line up
//! - Texts joined into one string (system blocks, an assistant turn's text blocks, a tool
//!   result's text blocks) are joined with a blank line, so paragraphs never run together.
//! - Images inside a `tool_result` cannot ride in an OpenAI `tool` message (text only): they go
//!   into the user message that follows the tool messages, before that turn's own content.
//! - Tool call `arguments` that are not a JSON object (a model that wrote broken JSON) become the
//!   input `{"_raw": "<arguments>"}`: Anthropic requires an object, and dropping the text
//!   (`{}`) would hide what the model wrote; empty arguments become `{}`.
//! - `reasoning_content` / `reasoning` (DeepSeek, vLLM, OpenRouter) become a `thinking` block
//!   (with an empty signature) before the text, so the client shows it as it shows Claude's.
//! - A response with tool calls whose finish reason says `stop` (some compatible servers do)
//!   gets `stop_reason: "tool_use"`, which is what makes an agent run the tools.

mod content;
mod messages;
mod request;
mod response;
mod stream;

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::Usage;

use super::{RequestOptions, TranslateError, TranslatedRequest};

pub use stream::StreamTranslator;

/// Translates the caller's request body into the provider's.
pub fn request(
    body: &[u8],
    opts: &RequestOptions<'_>,
) -> Result<TranslatedRequest, TranslateError> {
    request::translate(body, opts)
}

/// Translates a complete non-streaming success body from the provider into the caller's shape.
pub fn response(body: &[u8]) -> Result<Vec<u8>, TranslateError> {
    response::translate(body)
}

/// Translates a provider error body (any status >= 400) into the caller's error shape. Never
/// fails: a body that is not a recognisable error becomes a generic one carrying its text.
pub fn error(status: u16, body: &[u8]) -> Vec<u8> {
    response::error(status, body)
}

/// Anthropic `usage`, from OpenAI's. OpenAI's `prompt_tokens` INCLUDES cached input and
/// Anthropic's `input_tokens` EXCLUDES it, hence the (saturating) subtraction. A stream or body
/// without usage reads as zeros: Anthropic clients expect numbers here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
struct AnthropicUsage {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation_input_tokens: u64,
}

impl AnthropicUsage {
    fn from_openai(usage: Option<Usage>) -> Self {
        let usage = usage.unwrap_or_default();
        let cached = usage.cache_read_input_tokens.unwrap_or(0);
        AnthropicUsage {
            input_tokens: usage.input_tokens.unwrap_or(0).saturating_sub(cached),
            output_tokens: usage.output_tokens.unwrap_or(0),
            cache_read_input_tokens: cached,
            cache_creation_input_tokens: usage.cache_write_input_tokens.unwrap_or(0),
        }
    }
}

/// An Anthropic error body / `error` stream event payload.
#[derive(Debug, Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: Cow<'a, str>,
}

impl<'a> ErrorBody<'a> {
    fn new(kind: &'static str, message: Cow<'a, str>) -> Self {
        ErrorBody {
            kind: "error",
            error: ErrorDetail { kind, message },
        }
    }
}

/// A value that is kept only when it is a JSON string; any other value (null, a number, an
/// object a server put where a string belongs) reads as absent instead of failing its parent,
/// so one odd field never loses a whole response or stream chunk.
#[derive(Debug, Default)]
struct LenientStr<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for LenientStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientStrVisitor(PhantomData))
    }
}

struct LenientStrVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for LenientStrVisitor<'a> {
    type Value = LenientStr<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(LenientStr(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(LenientStr(Some(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(LenientStr(Some(Cow::Owned(v))))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(LenientStr(None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(LenientStr(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(LenientStr(None))
    }
}

impl<'a> LenientStr<'a> {
    /// The string, when present and not empty.
    fn non_empty(self) -> Option<Cow<'a, str>> {
        self.0.filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_subtracts_cached_input_saturating() {
        let usage = Usage {
            input_tokens: Some(100),
            output_tokens: Some(7),
            cache_read_input_tokens: Some(60),
            cache_write_input_tokens: Some(5),
            reasoning_output_tokens: None,
        };
        let mapped = AnthropicUsage::from_openai(Some(usage));
        assert_eq!(
            mapped,
            AnthropicUsage {
                input_tokens: 40,
                output_tokens: 7,
                cache_read_input_tokens: 60,
                cache_creation_input_tokens: 5,
            }
        );
        let odd = Usage {
            input_tokens: Some(3),
            cache_read_input_tokens: Some(9),
            ..Usage::default()
        };
        assert_eq!(AnthropicUsage::from_openai(Some(odd)).input_tokens, 0);
        assert_eq!(AnthropicUsage::from_openai(None), AnthropicUsage::default());
    }

    #[test]
    fn lenient_str_keeps_only_strings() {
        #[derive(Deserialize)]
        struct Probe<'a> {
            #[serde(borrow, default)]
            a: LenientStr<'a>,
        }
        let probe = |json: &str| {
            serde_json::from_str::<Probe>(json)
                .unwrap()
                .a
                .0
                .map(Cow::into_owned)
        };
        assert_eq!(probe(r#"{"a":"x"}"#).as_deref(), Some("x"));
        assert_eq!(probe(r#"{"a":"x\ny"}"#).as_deref(), Some("x\ny"));
        assert_eq!(probe(r#"{"a":null}"#), None);
        assert_eq!(probe(r#"{"a":{"b":[1,2]}}"#), None);
        assert_eq!(probe(r#"{"a":[1,"s"]}"#), None);
        assert_eq!(probe(r#"{}"#), None);
    }
}
