//! [`Reply`]: what one mock answer says, decided from the request before a wire format is chosen
//! — its model, its token counts and its pace — and the filler text whose tokens those are.
//!
//! The counts are honest: input tokens are counted by [`crate::tokens`], the tokenizer the
//! gateway's token limits use, and the text has exactly as many tokens as the usage reports
//! (every filler word is one token in both of its encodings; a unit test checks it), so a client
//! that counts for itself agrees with the bill.

use std::time::Duration;

use agentgateway_wire::RequestInfo;

use super::MockModel;
use crate::config::mock::MAX_OUTPUT_TOKENS;

/// The filler, one token each in `cl100k_base` and `o200k_base`, cycled. Every word carries its
/// leading space, so words never merge into one token at a boundary.
const WORDS: [&str; 8] = [
    " This", " is", " a", " mock", " answer", " from", " the", " gateway",
];

#[derive(Debug, Clone)]
pub struct Reply {
    /// Tells this answer's ids apart from the others' (`chatcmpl-mock-7`).
    pub seq: u64,
    pub model: String,
    pub created: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// The output stopped at the caller's own limit (`length`, `max_tokens`).
    pub hit_limit: bool,
    pub include_usage: bool,
    pub ttft: Duration,
    pub token_delay: Duration,
}

impl Reply {
    pub fn new(body: &[u8], info: &RequestInfo, model: &MockModel, seq: u64) -> Reply {
        // One parse gives both: the input as token limits count it, and the caller's limit.
        let estimate = crate::tokens::estimate_request(body, info.model());
        let limit = estimate.max_output;
        let output_tokens = limit
            .unwrap_or(model.output_tokens)
            .clamp(1, MAX_OUTPUT_TOKENS);
        Reply {
            seq,
            model: info.model().to_owned(),
            created: crate::auth::unix_now().max(0) as u64,
            input_tokens: estimate.input,
            output_tokens,
            hit_limit: limit.is_some(),
            include_usage: info.include_usage() == Some(true),
            ttft: model.ttft,
            token_delay: model.token_delay,
        }
    }

    /// The text of output token `index`; the first one without its leading space.
    pub fn word(&self, index: u64) -> &'static str {
        let word = WORDS
            .get((index % WORDS.len() as u64) as usize)
            .copied()
            .unwrap_or(" mock");
        if index == 0 {
            word.trim_start()
        } else {
            word
        }
    }

    /// The whole answer's text.
    pub fn text(&self) -> String {
        let mut text = String::with_capacity(self.output_tokens as usize * 7);
        for index in 0..self.output_tokens {
            text.push_str(self.word(index));
        }
        text
    }

    /// The wait before output token `index` of a stream (its first event carries the TTFT).
    pub fn token_wait(&self, index: u64) -> Duration {
        if index == 0 {
            Duration::ZERO
        } else {
            self.token_delay
        }
    }

    /// The wait before a JSON answer: as long as the same answer streamed.
    pub fn json_wait(&self) -> Duration {
        let tokens = u32::try_from(self.output_tokens.saturating_sub(1)).unwrap_or(u32::MAX);
        self.ttft
            .saturating_add(self.token_delay.saturating_mul(tokens))
    }

    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(output_tokens: u64) -> Reply {
        Reply {
            seq: 1,
            model: "m".into(),
            created: 0,
            input_tokens: 3,
            output_tokens,
            hit_limit: false,
            include_usage: false,
            ttft: Duration::from_millis(100),
            token_delay: Duration::from_millis(10),
        }
    }

    #[test]
    fn the_text_has_exactly_the_reported_tokens_in_both_encodings() {
        for n in [1, 2, 7, 8, 9, 16, 100] {
            let text = reply(n).text();
            for bpe in [
                tiktoken_rs::cl100k_base_singleton(),
                tiktoken_rs::o200k_base_singleton(),
            ] {
                assert_eq!(bpe.encode_ordinary(&text).len() as u64, n, "{text:?}");
            }
        }
        assert_eq!(reply(3).text(), "This is a");
    }

    #[test]
    fn the_request_limit_wins_and_is_capped() {
        let body = br#"{"model":"m","max_tokens":5,"max_completion_tokens":4}"#;
        let info = agentgateway_wire::scan_request(body).unwrap();
        let model = MockModel::for_tests();
        let reply = Reply::new(body, &info, &model, 1);
        assert_eq!((reply.output_tokens, reply.hit_limit), (4, true));
        let huge = br#"{"model":"m","max_tokens":99999999999}"#;
        let info = agentgateway_wire::scan_request(huge).unwrap();
        assert_eq!(
            Reply::new(huge, &info, &model, 1).output_tokens,
            MAX_OUTPUT_TOKENS
        );
        let open = br#"{"model":"m","messages":[]}"#;
        let info = agentgateway_wire::scan_request(open).unwrap();
        let reply = Reply::new(open, &info, &model, 1);
        assert_eq!((reply.output_tokens, reply.hit_limit), (16, false));
    }

    #[test]
    fn a_json_answer_waits_as_long_as_its_stream() {
        assert_eq!(reply(5).json_wait(), Duration::from_millis(140));
        assert_eq!(reply(5).token_wait(0), Duration::ZERO);
        assert_eq!(reply(5).token_wait(1), Duration::from_millis(10));
    }
}
