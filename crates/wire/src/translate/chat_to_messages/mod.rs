//! An OpenAI Chat Completions client calling an Anthropic Messages provider.
//! PLACEHOLDER: the translation is being written; every function below refuses until it lands.

use bytes::Bytes;

use super::{RequestOptions, TranslateError, TranslatedRequest};

/// Translates the caller's request body into the provider's.
pub fn request(
    _body: &[u8],
    _opts: &RequestOptions<'_>,
) -> Result<TranslatedRequest, TranslateError> {
    Err(TranslateError("translation not available yet".into()))
}

/// Translates a complete non-streaming success body from the provider into the caller's shape.
/// `created` is the Unix time for the OpenAI `created` field (Anthropic has none).
pub fn response(_body: &[u8], _created: u64) -> Result<Vec<u8>, TranslateError> {
    Err(TranslateError("translation not available yet".into()))
}

/// Translates a provider error body (any status >= 400) into the caller's error shape. Never
/// fails: a body that is not a recognisable error becomes a generic one carrying its text.
pub fn error(status: u16, body: &[u8]) -> Vec<u8> {
    let _ = (status, body);
    Vec::new()
}

/// Translates a provider SSE stream into the caller's, chunk by chunk.
#[derive(Debug, Default)]
pub struct StreamTranslator {
    _include_usage: bool,
}

impl StreamTranslator {
    /// `include_usage`: the caller asked for usage in the stream (OpenAI
    /// `stream_options.include_usage`; ignored where the caller's format always carries it).
    /// `created`: the Unix time every chunk's `created` field carries.
    pub fn new(include_usage: bool, _created: u64) -> Self {
        StreamTranslator {
            _include_usage: include_usage,
        }
    }

    /// Translates the next upstream chunk (any split of the SSE bytes); returns what to send
    /// the caller now, possibly empty.
    pub fn feed(&mut self, _chunk: &[u8]) -> Bytes {
        Bytes::new()
    }

    /// The upstream stream ended (cleanly or not); returns the closing bytes for the caller.
    pub fn finish(&mut self) -> Bytes {
        Bytes::new()
    }
}
