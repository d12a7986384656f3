//! Pieces the request, response and stream halves share: a string that borrows from the body
//! when it can, OpenAI-shaped usage and error objects, the Anthropic error type -> status table,
//! and whitespace removal for tool inputs. Kept here so the three halves cannot drift apart on
//! how usage is counted or how an error looks to the caller.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::translate::openai_error_type;

/// A JSON string that borrows from the input when it has no escapes. (serde's own `Cow<str>`
/// always copies outside a derived struct field, and `Option<Cow<str>>` always copies.)
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub(super) struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(StrVisitor)
    }
}

impl Str<'_> {
    pub(super) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Anthropic `usage`, every field optional: a stream's `message_delta` carries only some.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub(super) struct AnthropicUsage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub cache_read_input_tokens: Option<u64>,
    pub cache_creation_input_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Stream rule: later values replace earlier ones (they are running totals, never deltas).
    pub(super) fn overwrite_with(&mut self, later: &AnthropicUsage) {
        let fields = [
            (&mut self.input_tokens, later.input_tokens),
            (&mut self.output_tokens, later.output_tokens),
            (
                &mut self.cache_read_input_tokens,
                later.cache_read_input_tokens,
            ),
            (
                &mut self.cache_creation_input_tokens,
                later.cache_creation_input_tokens,
            ),
        ];
        for (slot, value) in fields {
            if value.is_some() {
                *slot = value;
            }
        }
    }

    /// The OpenAI view: Anthropic's `input_tokens` excludes cached input, OpenAI's
    /// `prompt_tokens` includes it, so both cache counts are added back.
    pub(super) fn to_openai(self) -> OpenAiUsage {
        let cache_read = self.cache_read_input_tokens.unwrap_or(0);
        let cache_write = self.cache_creation_input_tokens.unwrap_or(0);
        let prompt = self
            .input_tokens
            .unwrap_or(0)
            .saturating_add(cache_read)
            .saturating_add(cache_write);
        let completion = self.output_tokens.unwrap_or(0);
        OpenAiUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
            prompt_tokens_details: PromptDetails {
                cached_tokens: cache_read,
                cache_write_tokens: (cache_write > 0).then_some(cache_write),
            },
        }
    }
}

#[derive(Debug, Serialize)]
pub(super) struct OpenAiUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
}

#[derive(Debug, Serialize)]
struct PromptDetails {
    cached_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_write_tokens: Option<u64>,
}

/// OpenAI error body: `{"error":{"message","type","param":null,"code"}}`.
#[derive(Debug, Serialize)]
pub(super) struct OpenAiError<'a> {
    pub error: OpenAiErrorBody<'a>,
}

#[derive(Debug, Serialize)]
pub(super) struct OpenAiErrorBody<'a> {
    pub message: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub param: Option<&'a str>,
    pub code: Option<&'a str>,
}

/// The HTTP status Anthropic documents for an error type, so an error seen without a status
/// (a stream's `error` event arrives after a 200) gets the same OpenAI type as one with it.
pub(super) fn status_of_anthropic_type(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// OpenAI error `type` for an Anthropic error `type`.
pub(super) fn openai_type_of_anthropic(kind: &str) -> &'static str {
    openai_error_type(status_of_anthropic_type(kind))
}

/// Appends `json` without whitespace outside strings. Anthropic sends tool inputs compact
/// already, so this is normally a plain copy; it matters for a provider that pretty-prints.
pub(super) fn push_compact(out: &mut String, json: &str) {
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_keeps_strings_intact() {
        let mut out = String::new();
        push_compact(&mut out, "{ \"a b\" : [1, \"x \\\" y\"],\n \"c\":{} }");
        assert_eq!(out, r#"{"a b":[1,"x \" y"],"c":{}}"#);
    }

    #[test]
    fn usage_adds_cache_to_prompt() {
        let usage = AnthropicUsage {
            input_tokens: Some(10),
            output_tokens: Some(5),
            cache_read_input_tokens: Some(100),
            cache_creation_input_tokens: Some(7),
        };
        let json = serde_json::to_string(&usage.to_openai()).unwrap();
        assert_eq!(
            json,
            r#"{"prompt_tokens":117,"completion_tokens":5,"total_tokens":122,"prompt_tokens_details":{"cached_tokens":100,"cache_write_tokens":7}}"#
        );
    }

    #[test]
    fn str_borrows_without_escapes() {
        let s: Str<'_> = serde_json::from_str(r#""plain""#).unwrap();
        assert!(matches!(s.0, Cow::Borrowed("plain")));
        let s: Str<'_> = serde_json::from_str(r#""a\nb""#).unwrap();
        assert_eq!(s.as_str(), "a\nb");
    }
}
