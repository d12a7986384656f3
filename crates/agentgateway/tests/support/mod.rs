//! Shared helpers for the end-to-end tests: fake upstream providers that speak each provider's exact
//! wire format over real sockets, so the gateway is exercised the way production traffic would.
//!
//! Each integration test crate declares `mod support;` and uses only part of these helpers, so
//! `dead_code` is allowed here: otherwise every test file would warn about the helpers it skips.
#![allow(dead_code)]

pub mod fake_anthropic;
pub mod fake_anthropic_bodies;
pub mod fake_openai;
pub mod fake_server;
pub mod gateway;
pub mod prometheus;
pub mod python;
pub mod sse_stream;
