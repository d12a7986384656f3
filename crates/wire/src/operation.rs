//! The OpenAI-style operations the gateway proxies. It owns the small facts that differ per
//! operation (telemetry name, upstream path, whether a response can stream) so that every other
//! module and the gateway ask one place instead of matching on paths themselves.

/// Which OpenAI-style API a request targets.
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
}

impl Operation {
    /// OpenTelemetry `gen_ai.operation.name`. The Responses API is a chat API in the semantic
    /// conventions, so it shares `chat` with Chat Completions.
    pub fn otel_name(self) -> &'static str {
        match self {
            Operation::ChatCompletions | Operation::Responses => "chat",
            Operation::Completions => "text_completion",
            Operation::Embeddings => "embeddings",
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
        }
    }

    /// Whether responses can be SSE streams; embeddings are always a single JSON body.
    pub fn can_stream(self) -> bool {
        !matches!(self, Operation::Embeddings)
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
    }
}
