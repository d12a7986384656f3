//! The LLM operations the gateway proxies (OpenAI's APIs and Anthropic's Messages). It owns the
//! small facts that differ per operation (telemetry name, upstream path, whether a response can
//! stream, whose wire format it speaks) so that every other module and the gateway ask one place
//! instead of matching on paths themselves.

/// Which API a request targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `POST /v1/chat/completions`
    ChatCompletions,
    /// `POST /v1/responses`
    Responses,
    /// `POST /v1/completions` (legacy text completions)
    Completions,
    /// `POST /v1/embeddings`
    Embeddings,
    /// Anthropic `POST /v1/messages`
    Messages,
    /// Anthropic `POST /v1/messages/count_tokens`: no tokens are consumed, so none are metered.
    CountTokens,
}

impl Operation {
    /// OpenTelemetry `gen_ai.operation.name`. The Responses API is a chat API in the semantic
    /// conventions, so it shares `chat` with Chat Completions.
    pub fn otel_name(self) -> &'static str {
        match self {
            Operation::ChatCompletions | Operation::Responses | Operation::Messages => "chat",
            Operation::Completions => "text_completion",
            Operation::Embeddings => "embeddings",
            Operation::CountTokens => "count_tokens",
        }
    }

    /// Path appended to a provider base URL (which already carries its version prefix, e.g.
    /// `https://api.openai.com/v1`).
    pub fn upstream_path(self) -> &'static str {
        match self {
            Operation::ChatCompletions => "/chat/completions",
            Operation::Responses => "/responses",
            Operation::Completions => "/completions",
            Operation::Embeddings => "/embeddings",
            Operation::Messages => "/messages",
            Operation::CountTokens => "/messages/count_tokens",
        }
    }

    /// Whether the operation speaks Anthropic's wire format (usage fields, stream events,
    /// error bodies) rather than OpenAI's.
    pub fn is_anthropic(self) -> bool {
        matches!(self, Operation::Messages | Operation::CountTokens)
    }

    /// Whether responses can be SSE streams; embeddings are always a single JSON body.
    pub fn can_stream(self) -> bool {
        !matches!(self, Operation::Embeddings | Operation::CountTokens)
    }
}

#[cfg(test)]
mod tests {
    use super::Operation::*;

    #[test]
    fn names_paths_and_streaming() {
        assert_eq!(ChatCompletions.otel_name(), "chat");
        assert_eq!(Responses.otel_name(), "chat");
        assert_eq!(Completions.otel_name(), "text_completion");
        assert_eq!(Embeddings.otel_name(), "embeddings");
        assert_eq!(ChatCompletions.upstream_path(), "/chat/completions");
        assert_eq!(Responses.upstream_path(), "/responses");
        assert_eq!(Completions.upstream_path(), "/completions");
        assert_eq!(Embeddings.upstream_path(), "/embeddings");
        assert!(ChatCompletions.can_stream() && Responses.can_stream() && Completions.can_stream());
        assert!(!Embeddings.can_stream());
        assert_eq!(Messages.otel_name(), "chat");
        assert_eq!(Messages.upstream_path(), "/messages");
        assert_eq!(CountTokens.upstream_path(), "/messages/count_tokens");
        assert!(Messages.can_stream() && !CountTokens.can_stream());
        assert!(Messages.is_anthropic() && CountTokens.is_anthropic() && !Responses.is_anthropic());
    }
}
