//! Which wire format a call speaks on each side, and the gateway's use of the wire crate's
//! translators when the two differ: an OpenAI Chat caller on an Anthropic model, or an Anthropic
//! Messages caller (Claude Code and the like) on an OpenAI-style model.
//!
//! The request path decides a [`Plan`] once, after routing. Metering always reads the provider's
//! own bytes with the provider's meter (so a translated call is counted once, exactly as a native
//! one), and translation happens after the meter on the way back: streams event by event
//! ([`StreamTranslation`]), JSON bodies and error bodies whole ([`translate_body`]).

use agentgateway_wire::translate::{
    chat_to_messages, messages_to_chat, RequestOptions, TranslateError, TranslatedRequest,
};
use agentgateway_wire::Operation;
use bytes::Bytes;

use crate::config::ProviderApi;
use crate::errors::GatewayError;

/// How a call crosses the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Caller and provider speak the same API: bytes pass through (model rewrite aside).
    Native,
    /// OpenAI Chat Completions caller, Anthropic Messages provider.
    ChatToMessages,
    /// Anthropic Messages caller, OpenAI Chat Completions provider.
    MessagesToChat,
    /// `count_tokens` for a provider without it: the gateway's tokenizer answers.
    LocalCountTokens,
}

impl Plan {
    /// The plan for a caller's operation on a provider, or a 400 when the provider has no
    /// equivalent (e.g. embeddings on Anthropic).
    pub fn choose(op: Operation, api: ProviderApi, system: &str) -> Result<Plan, GatewayError> {
        match (op, api) {
            (_, ProviderApi::Both) => Ok(Plan::Native),
            (Operation::ChatCompletions, ProviderApi::Anthropic) => Ok(Plan::ChatToMessages),
            (Operation::Messages, ProviderApi::OpenAi) => Ok(Plan::MessagesToChat),
            (Operation::CountTokens, ProviderApi::OpenAi) => Ok(Plan::LocalCountTokens),
            (Operation::Messages | Operation::CountTokens, ProviderApi::Anthropic) => {
                Ok(Plan::Native)
            }
            (_, ProviderApi::Anthropic) => Err(GatewayError::InvalidRequest(format!(
                "this model is served by {system}, which has no {} API; use /v1/chat/completions or /v1/messages",
                op.upstream_path()
            ))),
            (_, ProviderApi::OpenAi) => Ok(Plan::Native),
        }
    }

    /// The operation the provider is called with.
    pub fn upstream_op(self, op: Operation) -> Operation {
        match self {
            Plan::ChatToMessages => Operation::Messages,
            Plan::MessagesToChat => Operation::ChatCompletions,
            Plan::Native | Plan::LocalCountTokens => op,
        }
    }

    pub fn translates(self) -> bool {
        matches!(self, Plan::ChatToMessages | Plan::MessagesToChat)
    }

    /// The provider's request body; fields the target cannot take are logged at debug level.
    pub fn translate_request(
        self,
        body: &[u8],
        opts: &RequestOptions<'_>,
    ) -> Result<Bytes, GatewayError> {
        let translated = match self {
            Plan::ChatToMessages => chat_to_messages::request(body, opts),
            Plan::MessagesToChat => messages_to_chat::request(body, opts),
            Plan::Native | Plan::LocalCountTokens => {
                return Err(GatewayError::Internal("nothing to translate".into()))
            }
        };
        let TranslatedRequest { body, dropped } =
            translated.map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
        if !dropped.is_empty() {
            tracing::debug!(plan = ?self, ?dropped, "fields the provider's API has no place for were dropped");
        }
        Ok(Bytes::from(body))
    }
}

/// The caller-side stream of a translated call.
#[derive(Debug)]
pub enum StreamTranslation {
    ToOpenAi(chat_to_messages::StreamTranslator),
    ToAnthropic(messages_to_chat::StreamTranslator),
}

impl StreamTranslation {
    /// `include_usage`: the OpenAI caller asked for the usage chunk.
    pub fn new(plan: Plan, include_usage: bool, created: u64) -> Option<StreamTranslation> {
        match plan {
            Plan::ChatToMessages => Some(StreamTranslation::ToOpenAi(
                chat_to_messages::StreamTranslator::new(include_usage, created),
            )),
            Plan::MessagesToChat => Some(StreamTranslation::ToAnthropic(
                messages_to_chat::StreamTranslator::new(include_usage),
            )),
            Plan::Native | Plan::LocalCountTokens => None,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Bytes {
        match self {
            StreamTranslation::ToOpenAi(t) => t.feed(chunk),
            StreamTranslation::ToAnthropic(t) => t.feed(chunk),
        }
    }

    pub fn finish(&mut self) -> Bytes {
        match self {
            StreamTranslation::ToOpenAi(t) => t.finish(),
            StreamTranslation::ToAnthropic(t) => t.finish(),
        }
    }
}

/// A complete provider body (a success, or an error of any status) in the caller's shape.
pub fn translate_body(
    plan: Plan,
    status: u16,
    body: &Bytes,
    created: u64,
) -> Result<Bytes, TranslateError> {
    let error = status >= 400;
    let translated = match plan {
        Plan::ChatToMessages if error => Ok(chat_to_messages::error(status, body)),
        Plan::ChatToMessages => chat_to_messages::response(body, created),
        Plan::MessagesToChat if error => Ok(messages_to_chat::error(status, body)),
        Plan::MessagesToChat => messages_to_chat::response(body),
        // Read whole only to price it: the bytes go out as they came.
        Plan::Native | Plan::LocalCountTokens => return Ok(body.clone()),
    };
    translated.map(Bytes::from)
}

/// The `count_tokens` answer for a provider without that API.
pub fn local_count_tokens(body: &[u8], model: &str) -> Bytes {
    let tokens = crate::tokens::estimate_input_tokens(body, model);
    Bytes::from(format!("{{\"input_tokens\":{tokens}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_by_operation_and_provider() {
        use Operation::*;
        let pick = |op, api| Plan::choose(op, api, "anthropic");
        assert_eq!(pick(ChatCompletions, ProviderApi::OpenAi), Ok(Plan::Native));
        assert_eq!(
            pick(ChatCompletions, ProviderApi::Anthropic),
            Ok(Plan::ChatToMessages)
        );
        assert_eq!(pick(Messages, ProviderApi::Anthropic), Ok(Plan::Native));
        assert_eq!(
            pick(Messages, ProviderApi::OpenAi),
            Ok(Plan::MessagesToChat)
        );
        assert_eq!(
            pick(CountTokens, ProviderApi::OpenAi),
            Ok(Plan::LocalCountTokens)
        );
        let refused = pick(Embeddings, ProviderApi::Anthropic).unwrap_err();
        assert_eq!(refused.status(), http::StatusCode::BAD_REQUEST);
        assert!(refused.message().contains("/embeddings"));
        assert_eq!(Plan::ChatToMessages.upstream_op(ChatCompletions), Messages);
        for op in [Messages, CountTokens, Embeddings, Responses] {
            let mock = Plan::choose(op, crate::config::ProviderKind::Mock.api(), "mock");
            assert_eq!(mock, Ok(Plan::Native), "{op:?}");
        }
        assert_eq!(Plan::MessagesToChat.upstream_op(Messages), ChatCompletions);
    }

    #[test]
    fn local_count_is_an_anthropic_shaped_answer() {
        let body = br#"{"model":"gpt-4o","max_tokens":32000,"messages":[{"role":"user","content":"hello there"}]}"#;
        let answer: serde_json::Value =
            serde_json::from_slice(&local_count_tokens(body, "gpt-4o")).unwrap();
        let tokens = answer["input_tokens"].as_u64().unwrap();
        // The input only: the output allowance is not counted.
        assert!(tokens > 0 && tokens < 100, "{tokens}");
    }
}
