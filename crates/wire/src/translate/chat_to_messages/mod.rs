//! An OpenAI Chat Completions client calling an Anthropic Messages provider: the request goes
//! OpenAI -> Anthropic, and the response, the stream and errors come back Anthropic -> OpenAI.
//!
//! Every function works on borrowed bytes and serde structs that type only the members used;
//! strings that cross unchanged are carried as raw JSON, so text is neither unescaped nor
//! re-escaped, and no DOM of a body is ever built.
//!
//! # Layout
//! - `request`: top-level members, tools and tool choice; the public [`request`].
//! - `messages`: the conversation (`system`, alternating turns, content blocks).
//! - `response`: [`response`] (a `message` -> `chat.completion`) and [`error`].
//! - `stream`: [`StreamTranslator`], Anthropic SSE events -> OpenAI chunks.
//! - `common`: usage and error shapes and the small helpers the others share.
//!
//! Anthropic `thinking` is exposed to the caller as `reasoning_content` (on the message, and on
//! stream deltas), the member OpenAI-compatible servers use for reasoning text.

mod common;
mod messages;
mod request;
mod response;
mod stream;

pub use request::request;
pub use response::{error, response};
pub use stream::StreamTranslator;
