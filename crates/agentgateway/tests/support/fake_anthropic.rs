//! A fake Anthropic upstream for end-to-end tests: it owns the listener, the request log, the
//! header and body checks the real API makes, and how each scenario's bytes are delivered (all at
//! once, slowly, or cut off). The bytes themselves come from [`super::fake_anthropic_bodies`],
//! re-exported here, so tests compare against the same functions the fake sends from.
//!
//! Routes: `POST /v1/messages` (JSON, or SSE when the body has `"stream":true`) and
//! `POST /v1/messages/count_tokens` (`{"input_tokens":42}`); anything else is Anthropic's 404.
//! Checks, in order: `x-api-key` and `anthropic-version` present (else 401
//! `authentication_error`; Anthropic answers a missing version with a 400, but one status keeps
//! "the gateway did not send a provider header" a single check), then the body (JSON with a `model` string and a `messages` array, plus
//! `max_tokens` on `/v1/messages`, as Anthropic requires; else 400 `invalid_request_error`).
//! Every response carries Anthropic's `request-id` and `anthropic-organization-id` headers.
//!
//! The scenario is the request's `x-fake-scenario` header (the gateway forwards client headers):
//! `ok` (default), `tool-use`, `max-tokens`, `error-529`, `error-429` (with `retry-after: 1`),
//! `error-400` (those three on both routes), `stream-error`, `cut-stream`, `bad-event`,
//! `slow-stream` (300 ms between events), `echo-headers` (the text is
//! [`echo_headers_text`]: a JSON object of the provider headers received) and `echo-request` (the
//! text is the request body as received). The echoes work streamed too, as one text delta.
//!
//! [`python_with_anthropic_sdk`] finds a Python for the tests that drive it (or the gateway) with
//! the official SDK script, `tests/sdk/anthropic_client.py`.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::sse_stream::{sse_response, StreamPlan};

pub use super::fake_anthropic_bodies::*;
pub use super::fake_openai::SCENARIO_HEADER;
pub use super::fake_server::RecordedRequest;
use super::fake_server::{Body, FakeServer};

/// Anthropic's request id header, on every response.
pub const REQUEST_ID: &str = "req_fake0001";
/// Anthropic names the caller's organization on every response; a gateway that supplies its own
/// key may want to hide it.
pub const ORGANIZATION_ID: &str = "4a1d0000-0000-4000-8000-000000000001";
/// Gap between events in `slow-stream`.
pub const SLOW_GAP: Duration = Duration::from_millis(300);

// === impl FakeAnthropic ===

/// A running fake; the server stops (and drops its open connections) when this is dropped.
pub struct FakeAnthropic {
    pub addr: SocketAddr,
    server: FakeServer,
}

impl FakeAnthropic {
    /// Binds 127.0.0.1:0, serves HTTP/1.1 and h2c (hyper_util auto builder) in a spawned task.
    pub async fn start() -> FakeAnthropic {
        let server = FakeServer::start(|req: RecordedRequest| async move { answer(&req) }).await;
        FakeAnthropic {
            addr: server.addr,
            server,
        }
    }

    /// "http://127.0.0.1:PORT/v1", the provider's `baseUrl` (the gateway appends `/messages`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far, in order (refused ones included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }
}

/// A Python that has the official `anthropic` SDK (see [`super::python::python_with`]).
pub fn python_with_anthropic_sdk() -> Option<PathBuf> {
    super::python::python_with("anthropic")
}

// === server ===

/// Every answer carries Anthropic's request id and organisation headers.
fn answer(req: &RecordedRequest) -> Response<Body> {
    let mut response = respond(req, req.route());
    let headers = response.headers_mut();
    headers.insert("request-id", HeaderValue::from_static(REQUEST_ID));
    headers.insert(
        "anthropic-organization-id",
        HeaderValue::from_static(ORGANIZATION_ID),
    );
    response
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Messages,
    CountTokens,
}

fn respond(req: &RecordedRequest, path: &str) -> Response<Body> {
    let route = match (&req.method, path) {
        (&Method::POST, "/v1/messages") => Route::Messages,
        (&Method::POST, "/v1/messages/count_tokens") => Route::CountTokens,
        _ => return error_response(StatusCode::NOT_FOUND, "not_found_error", "Not Found"),
    };
    if let Err(message) = check_headers(req) {
        return error_response(StatusCode::UNAUTHORIZED, "authentication_error", message);
    }
    let params = match Params::parse(&req.body, route) {
        Ok(params) => params,
        Err(message) => {
            return error_response(StatusCode::BAD_REQUEST, "invalid_request_error", message)
        }
    };
    let scenario = Scenario::from_header(req.header(SCENARIO_HEADER));
    if let Some(error) = scenario_error(scenario) {
        return error;
    }
    match route {
        Route::CountTokens => json_response(StatusCode::OK, count_tokens_json()),
        Route::Messages => messages(req, &params, scenario),
    }
}

/// The headers Anthropic refuses a request without; empty counts as missing.
fn check_headers(req: &RecordedRequest) -> Result<(), &'static str> {
    let present = |name: &str| req.headers.get(name).is_some_and(|v| !v.is_empty());
    if !present("x-api-key") {
        return Err("x-api-key header is required");
    }
    if !present("anthropic-version") {
        return Err("anthropic-version header is required");
    }
    Ok(())
}

// === routes ===

/// The request fields the fake checks or uses.
#[derive(Deserialize)]
struct RequestFields<'a> {
    #[serde(borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow)]
    messages: Option<&'a RawValue>,
    max_tokens: Option<u64>,
    stream: Option<bool>,
}

struct Params {
    model: String,
    stream: bool,
}

// === impl Params ===

impl Params {
    /// Checks the body as Anthropic would; the error is the 400's message.
    fn parse(body: &[u8], route: Route) -> Result<Params, &'static str> {
        let Ok(fields) = serde_json::from_slice::<RequestFields<'_>>(body) else {
            return Err("The request body is not valid JSON, or a field has the wrong type.");
        };
        let Some(model) = fields.model else {
            return Err("model: Field required");
        };
        match fields.messages {
            None => return Err("messages: Field required"),
            Some(raw) if !raw.get().starts_with('[') => {
                return Err("messages: Input should be a valid list")
            }
            Some(_) => {}
        }
        if route == Route::Messages && fields.max_tokens.is_none() {
            return Err("max_tokens: Field required");
        }
        Ok(Params {
            model: model.into_owned(),
            stream: fields.stream == Some(true),
        })
    }
}

fn messages(req: &RecordedRequest, params: &Params, scenario: Scenario) -> Response<Body> {
    let model = format!("{}{MODEL_SUFFIX}", params.model);
    let echo = match scenario {
        Scenario::EchoHeaders => Some(echo_headers_text(&req.headers)),
        Scenario::EchoRequest => Some(echo_request_text(&req.body)),
        _ => None,
    };
    let reply = echo.as_deref().map_or(scenario.reply(), Reply::Echo);
    if !params.stream {
        return json_response(StatusCode::OK, message_json(&model, reply));
    }
    let plan = StreamPlan {
        events: scenario_stream_events(&model, scenario, reply),
        gap: (scenario == Scenario::SlowStream).then_some(SLOW_GAP),
        abort: scenario == Scenario::CutStream,
    };
    sse_response(plan)
}

// === errors ===

/// The error a scenario asks for, on either route.
fn scenario_error(scenario: Scenario) -> Option<Response<Body>> {
    let response = match scenario {
        // 529 is Anthropic's own status: it always parses.
        Scenario::Error529 => error_response(
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
            "Overloaded",
        ),
        Scenario::Error429 => rate_limited(),
        Scenario::Error400 => error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "messages: roles must alternate between \"user\" and \"assistant\"",
        ),
        _ => return None,
    };
    Some(response)
}

fn rate_limited() -> Response<Body> {
    let mut response = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limit_error",
        "Number of requests has exceeded your rate limit of 50 per minute. Try again in 1 s.",
    );
    let headers = response.headers_mut();
    for (name, value) in [
        ("retry-after", "1"),
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2025-01-01T00:00:01Z"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn error_response(status: StatusCode, kind: &str, message: &str) -> Response<Body> {
    json_response(status, error_json(kind, message))
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let body = Full::new(Bytes::from(body))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

// === streaming ===
