//! Provider wire formats for agentgateway, kept apart from the gateway so they can be unit-tested,
//! fuzzed and benchmarked alone. Everything here works on bytes in memory: no I/O, no async, and
//! no panics on any input, because every byte comes from the network.
//!
//! The request path is the product, so the rules are: never build a JSON DOM of a whole body,
//! forward bytes without copying when nothing needs rewriting, and keep memory bounded however
//! large a body or stream is.
//!
//! # Layout
//! - [`operation`]: [`Operation`], the OpenAI-style APIs and their per-operation facts.
//! - [`request`]: [`scan_request`] finds `model` / `stream` / `stream_options.include_usage`
//!   in one borrowing pass; [`rewrite_request`] splices changes into the original bytes.
//! - [`usage`]: [`Usage`] and [`ResponseSummary`], and the decoding of OpenAI and Anthropic
//!   `usage` and `error` objects into them.
//! - `json_scan`: byte-level JSON structure scanning (value boundaries, top-level members)
//!   shared by the meters.
//! - [`json_meter`]: [`JsonMeter`] meters a non-streaming JSON response chunk by chunk.
//! - [`sse`]: [`SseParser`], incremental Server-Sent Events framing for every provider.
//! - [`stream`]: [`StreamMeter`] meters an SSE response stream and, when the gateway added
//!   `include_usage` on its own, removes what the caller did not ask for.
//! - [`translate`]: OpenAI Chat Completions <-> Anthropic Messages, requests, responses, streams
//!   and errors, for clients of one API calling a model behind the other.
//!
//! # Example
//! ```
//! use agentgateway_wire::{rewrite_request, scan_request, Operation, StreamMeter};
//! use bytes::Bytes;
//!
//! let body = Bytes::from_static(br#"{"model":"fast","stream":true,"messages":[]}"#);
//! let info = scan_request(&body)?;
//! // The caller did not ask for usage: the gateway asks for it and strips it on the way back.
//! let strip = info.stream() && info.include_usage() != Some(true);
//! let upstream = rewrite_request(&body, &info, Some("gpt-4o-mini"), strip);
//! assert_eq!(
//!     &upstream[..],
//!     br#"{"model":"gpt-4o-mini","stream_options":{"include_usage":true},"stream":true,"messages":[]}"#
//! );
//!
//! let mut meter = StreamMeter::new(Operation::ChatCompletions, strip);
//! let chunk = Bytes::from_static(
//!     b"data: {\"model\":\"gpt-4o-mini\",\"choices\":[{\"delta\":{}}],\"usage\":null}\n\n\
//!       data: {\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n\
//!       data: [DONE]\n\n",
//! );
//! let forwarded = meter.feed(chunk);
//! assert_eq!(
//!     &forwarded[..],
//!     b"data: {\"model\":\"gpt-4o-mini\",\"choices\":[{\"delta\":{}}]}\n\ndata: [DONE]\n\n"
//! );
//! assert_eq!(meter.summary().usage.input_tokens, Some(3));
//! assert_eq!(meter.summary().response_model.as_deref(), Some("gpt-4o-mini"));
//! # Ok::<(), agentgateway_wire::RequestError>(())
//! ```

// Run-time code must not panic on bad input; tests may unwrap freely.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod json_meter;
mod json_scan;
pub mod operation;
pub mod request;
pub mod sse;
pub mod stream;
pub mod translate;
pub mod usage;

pub use json_meter::{summarize_json, JsonMeter};
pub use operation::Operation;
pub use request::{
    rewrite_request, rewrite_request_parts, scan_request, RequestError, RequestInfo,
};
pub use sse::{SseEvent, SseFrame, SseParser};
pub use stream::StreamMeter;
pub use usage::{ResponseSummary, Usage};
