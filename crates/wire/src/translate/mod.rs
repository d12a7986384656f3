//! Translation between OpenAI Chat Completions and Anthropic Messages, so a client written for
//! one API can use a model that lives behind the other. Two directions, one module each:
//!
//! - [`chat_to_messages`]: an OpenAI Chat client calling an Anthropic provider (request
//!   OpenAI -> Anthropic; response, stream and errors Anthropic -> OpenAI).
//! - [`messages_to_chat`]: an Anthropic Messages client (Claude Code and the like) calling an
//!   OpenAI-compatible provider (request Anthropic -> OpenAI; the rest OpenAI -> Anthropic).
//!
//! Both directions expose the same shape: `request`, `response`, `error` and a
//! `StreamTranslator` fed upstream chunks as they arrive. Metering is not done here: the gateway
//! meters the provider's own bytes (one meter, the provider's format), so a translated request is
//! counted once and exactly as a native one would be. The facts both directions share (finish
//! reasons, error types) live in this module.

pub mod chat_to_messages;
pub mod messages_to_chat;

use std::fmt;

/// A request body that cannot be translated; the message says why (it goes to the caller in a
/// 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateError(pub String);

impl fmt::Display for TranslateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TranslateError {}

/// What a request translation needs besides the body.
#[derive(Debug, Clone, Copy)]
pub struct RequestOptions<'a> {
    /// The model to send upstream (the route's target model, or what the caller asked for).
    pub model: &'a str,
    /// `max_tokens` to send to Anthropic when the caller gave none (Anthropic requires it).
    pub default_max_tokens: u64,
    /// Towards an OpenAI-style provider, send the output limit as `max_completion_tokens`
    /// (OpenAI's own API, whose reasoning models refuse `max_tokens`) instead of the
    /// `max_tokens` most compatible servers take.
    pub max_completion_tokens: bool,
    /// Towards an OpenAI-style provider, ask for stream usage with
    /// `stream_options.include_usage`; false for providers that report it on their own and may
    /// refuse the option.
    pub stream_options: bool,
}

/// A translated request body, and the top-level fields of the caller's body that the target API
/// has no place for (the gateway logs them at debug level).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranslatedRequest {
    pub body: Vec<u8>,
    pub dropped: Vec<String>,
}

/// Anthropic `stop_reason` -> OpenAI `finish_reason`.
pub fn finish_reason_from_anthropic(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        // end_turn, stop_sequence, pause_turn and anything new.
        _ => "stop",
    }
}

/// OpenAI `finish_reason` -> Anthropic `stop_reason`.
pub fn stop_reason_from_openai(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Anthropic error `type` for an HTTP status (Anthropic's documented table).
pub fn anthropic_error_type(status: u16) -> &'static str {
    match status {
        400 | 405 | 408 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    }
}

/// OpenAI error `type` for an HTTP status, as OpenAI's own API answers.
pub fn openai_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 | 400 | 405 | 408 | 413 | 422 => "invalid_request_error",
        429 => "rate_limit_exceeded",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_round_trip() {
        for (anthropic, openai) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("tool_use", "tool_calls"),
        ] {
            assert_eq!(finish_reason_from_anthropic(anthropic), openai);
            assert_eq!(stop_reason_from_openai(openai), anthropic);
        }
        assert_eq!(finish_reason_from_anthropic("stop_sequence"), "stop");
        assert_eq!(finish_reason_from_anthropic("something_new"), "stop");
    }

    #[test]
    fn error_types_by_status() {
        assert_eq!(anthropic_error_type(429), "rate_limit_error");
        assert_eq!(anthropic_error_type(529), "overloaded_error");
        assert_eq!(anthropic_error_type(500), "api_error");
        assert_eq!(openai_error_type(401), "authentication_error");
        assert_eq!(openai_error_type(502), "api_error");
    }
}
