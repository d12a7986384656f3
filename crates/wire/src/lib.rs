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
//! - [`usage`]: [`Usage`] and [`ResponseSummary`], and the decoding of OpenAI `usage` and
//!   `error` objects into them.
//! - `json_scan`: byte-level JSON structure scanning (value boundaries, top-level members)
//!   shared by the meters.
//! - [`json_meter`]: [`JsonMeter`] meters a non-streaming JSON response chunk by chunk.
//! - [`sse`]: [`SseParser`], incremental Server-Sent Events framing for every provider.
//! - [`stream`]: [`StreamMeter`] meters an SSE response stream and, when the gateway added
//!   `include_usage` on its own, removes what the caller did not ask for.

pub mod json_meter;
mod json_scan;
pub mod operation;
pub mod request;
pub mod sse;
pub mod stream;
pub mod usage;

pub use json_meter::{summarize_json, JsonMeter};
pub use operation::Operation;
pub use request::{rewrite_request, scan_request, RequestError, RequestInfo};
pub use sse::{SseEvent, SseFrame, SseParser};
pub use stream::StreamMeter;
pub use usage::{ResponseSummary, Usage};
