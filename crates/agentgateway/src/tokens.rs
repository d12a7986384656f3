//! Token estimates for token and cost rate limits, which must be checked before the provider has said
//! anything: the request's text counted with tiktoken (OpenAI's own tokenizers), plus a small
//! per-message overhead, plus the output the caller allows (`max_tokens` and friends).
//!
//! It is an estimate by design: the limiter trues it up with the provider's reported usage when
//! the response ends. What matters is that it is cheap to skip (only requests under a token limit
//! pay for it) and never panics, whatever the body holds.

use serde_json::Value;
use tiktoken_rs::CoreBPE;

/// OpenAI's cookbook: every chat message costs about 3 tokens of framing, every reply 3 more.
const PER_MESSAGE: u64 = 3;
const PER_REPLY: u64 = 3;

/// Model families tokenized with `o200k_base`; everything else gets `cl100k_base`, a fair
/// approximation for other providers' models too.
const O200K_PREFIXES: [&str; 8] = [
    "gpt-4o",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-5",
    "o1",
    "o3",
    "o4",
    "chatgpt-4o",
];

/// Fields whose text the model reads, at any depth below the request's top level.
const TEXT_FIELDS: [&str; 7] = [
    "messages",
    "input",
    "prompt",
    "instructions",
    "system",
    "tools",
    "functions",
];

/// Output limits, first present wins.
const MAX_OUTPUT_FIELDS: [&str; 3] = ["max_completion_tokens", "max_tokens", "max_output_tokens"];

/// A request's expected tokens, split so that cost limits can price input and output at their
/// own rates from one tokenization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestEstimate {
    pub input: u64,
    /// The output the caller allows, when it set a limit.
    pub max_output: Option<u64>,
}

impl RequestEstimate {
    /// Input plus the output allowance (none when the caller set no limit).
    pub fn total(&self) -> u64 {
        self.input.saturating_add(self.max_output.unwrap_or(0))
    }
}

/// The tokens a request is expected to use: input estimate plus its output allowance.
pub fn estimate_request_tokens(body: &[u8], model: &str) -> u64 {
    estimate_request(body, model).total()
}

/// The input estimate and the output allowance of a request, from one parse.
pub fn estimate_request(body: &[u8], model: &str) -> RequestEstimate {
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return RequestEstimate {
            input: (body.len() as u64).div_ceil(4),
            max_output: None,
        };
    };
    let max_output = MAX_OUTPUT_FIELDS
        .iter()
        .find_map(|field| request.get(*field).and_then(Value::as_u64));
    RequestEstimate {
        input: input_tokens(&request, model),
        max_output,
    }
}

/// The input alone (what `count_tokens` answers): the request's text and message framing.
pub fn estimate_input_tokens(body: &[u8], model: &str) -> u64 {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(request)) => input_tokens(&request, model),
        _ => (body.len() as u64).div_ceil(4),
    }
}

fn input_tokens(request: &serde_json::Map<String, Value>, model: &str) -> u64 {
    let bpe = encoding_for(model);
    let mut tokens = 0u64;
    for field in TEXT_FIELDS {
        if let Some(value) = request.get(field) {
            tokens = tokens.saturating_add(count_value(bpe, field, value));
        }
    }
    if let Some(Value::Array(messages)) = request.get("messages") {
        tokens = tokens
            .saturating_add(PER_MESSAGE.saturating_mul(messages.len() as u64))
            .saturating_add(PER_REPLY);
    }
    tokens
}

/// Loads both tokenizers (a fraction of a second) so the first limited request does not pay.
pub fn warm_up() {
    let _ = tiktoken_rs::o200k_base_singleton();
    let _ = tiktoken_rs::cl100k_base_singleton();
}

fn encoding_for(model: &str) -> &'static CoreBPE {
    // `openai/gpt-4o` style names (routers, other gateways) name the family after the slash.
    let family = model.rsplit('/').next().unwrap_or(model);
    if O200K_PREFIXES.iter().any(|p| family.starts_with(p)) {
        tiktoken_rs::o200k_base_singleton()
    } else {
        tiktoken_rs::cl100k_base_singleton()
    }
}

/// Tokens of every string below `value`. Tool and function definitions count as their JSON text
/// (that is roughly what the provider feeds the model); elsewhere only string values count.
fn count_value(bpe: &CoreBPE, field: &str, value: &Value) -> u64 {
    if matches!(field, "tools" | "functions") {
        return count_text(bpe, &value.to_string());
    }
    let mut total = 0u64;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(text) => total = total.saturating_add(count_text(bpe, text)),
            Value::Array(items) => stack.extend(items.iter()),
            Value::Object(map) => stack.extend(
                map.iter()
                    // Images and audio are not text: their bytes would wildly overcount.
                    .filter(|(k, _)| !matches!(k.as_str(), "image_url" | "input_audio" | "url"))
                    .map(|(_, v)| v),
            ),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
    total
}

fn count_text(bpe: &CoreBPE, text: &str) -> u64 {
    bpe.encode_ordinary(text).len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_world_is_two_tokens_in_both_encodings() {
        for model in ["gpt-4o-mini", "gpt-3.5-turbo", "claude-3-5-sonnet"] {
            let body = br#"{"model":"m","prompt":"hello world"}"#;
            assert_eq!(estimate_request_tokens(body, model), 2, "{model}");
        }
    }

    #[test]
    fn chat_counts_content_roles_and_framing_plus_max_tokens() {
        let body = br#"{"model":"gpt-4o","max_tokens":100,"messages":[
            {"role":"system","content":"You are terse."},
            {"role":"user","content":[{"type":"text","text":"hello world"},
                                      {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
        let estimate = estimate_request_tokens(body, "gpt-4o");
        // content 4 + 2, roles 1 + 1, "text" type markers 2 + 1, framing 3*2 + 3, output 100.
        assert!((115..=125).contains(&estimate), "{estimate}");
    }

    #[test]
    fn the_family_picks_the_encoding() {
        assert!(std::ptr::eq(
            encoding_for("openai/gpt-4o-mini"),
            tiktoken_rs::o200k_base_singleton()
        ));
        assert!(std::ptr::eq(
            encoding_for("o3-mini"),
            tiktoken_rs::o200k_base_singleton()
        ));
        assert!(std::ptr::eq(
            encoding_for("llama3.2"),
            tiktoken_rs::cl100k_base_singleton()
        ));
    }

    #[test]
    fn malformed_bodies_fall_back_to_bytes_over_four() {
        assert_eq!(estimate_request_tokens(b"not json at all", "gpt-4o"), 4);
        assert_eq!(estimate_request_tokens(b"", "gpt-4o"), 0);
    }

    #[test]
    fn the_estimate_keeps_input_and_output_allowance_apart() {
        let body = br#"{"model":"gpt-4o","max_completion_tokens":50,"max_tokens":9,"prompt":"hello world"}"#;
        let estimate = estimate_request(body, "gpt-4o");
        assert_eq!(
            estimate,
            RequestEstimate {
                input: 2,
                max_output: Some(50)
            },
            "max_completion_tokens wins over max_tokens"
        );
        assert_eq!(estimate.total(), 52);
        let open_ended = estimate_request(br#"{"prompt":"hello world"}"#, "gpt-4o");
        assert_eq!(open_ended.max_output, None);
        assert_eq!(open_ended.total(), 2);
    }

    #[test]
    fn responses_input_and_instructions_count() {
        let body = br#"{"model":"gpt-4.1","instructions":"hello world","input":"hello world","max_output_tokens":10}"#;
        assert_eq!(estimate_request_tokens(body, "gpt-4.1"), 14);
    }
}
