//! agentgateway: an LLM gateway. It authenticates callers by API key, routes each request by its
//! `model` to a provider, forwards it (streams event by event, never buffered), and meters what
//! happened into Prometheus metrics and one access-log line per request.
//!
//! # Layout
//! - [`config`]: the YAML config file: shape, `$VAR` expansion, validation.
//! - [`cli`]: `agentgateway keys ...` (an admin API client) and the environment overrides.
//! - [`gateway`]: builds the runtime state from a config and runs the listeners ([`gateway::Gateway::start`]).
//! - [`server`]: listeners (HTTP/1.1 + h2c, optional TLS), readiness, stats, graceful drain.
//! - [`proxy`]: the request path as named stages: classify, authenticate, read, allow, route,
//!   limit, forward.
//! - [`auth`]: API keys (static, then dynamic) -> the caller's [`identity::Identity`].
//! - [`identity`]: who the caller is, its model allow-list and per-key limits.
//! - [`limits`]: which rate limits apply to a request, as demands on the limiter.
//! - [`ratelimit`]: token buckets behind the `RateLimiter` trait; OpenAI rate-limit headers.
//! - [`tokens`]: tiktoken input estimates for token limits.
//! - [`keys`]: dynamic virtual keys: the SQLite store, the in-memory cache the request path reads.
//! - [`admin`]: the admin port: `/config_dump` and the virtual-key API (`/v1/keys`).
//! - [`mock`]: `provider: mock`, the in-process model endpoint every API can be tried against.
//! - [`routing`]: model name -> model route (exact, then longest wildcard).
//! - [`upstream`]: the pooled HTTPS client and the upstream request.
//! - [`metered_body`]: the response body wrapper that forwards, meters, and finishes the record.
//! - [`record`]: the per-request record every stage fills in.
//! - [`telemetry`]: turns a finished record into metrics and a log line, once.
//! - [`metrics`] / [`exposition`]: the Prometheus families and their text formats.
//! - [`accesslog`]: text and JSON access-log lines on stdout.
//! - [`expr`]: CEL expressions over a request record (log fields, filters, metric labels).
//! - [`errors`]: the gateway's own errors, in the caller's API shape.
//! - Provider wire formats live in the `agentgateway-wire` crate (no I/O).

// Run-time code must not panic on bad input; tests may unwrap freely.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod accesslog;
pub mod admin;
pub mod auth;
pub mod budget;
pub mod cli;
pub mod config;
pub mod costing;
pub mod errors;
pub mod exposition;
pub mod expr;
pub mod gateway;
pub mod identity;
pub mod keys;
pub mod limits;
pub mod metered_body;
pub mod metrics;
pub mod mock;
pub mod pricing;
pub mod proxy;
pub mod ratelimit;
pub mod record;
pub mod routing;
pub mod server;
pub mod spend;
pub mod telemetry;
pub mod tokens;
pub mod translation;
pub mod upstream;

pub use gateway::{Gateway, Listeners, Options, RunningGateway};
