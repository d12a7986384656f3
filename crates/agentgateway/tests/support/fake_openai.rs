//! A fake OpenAI upstream for end-to-end tests: it owns the listener, the request log and the exact
//! response bytes for every scenario a test can ask for.
//!
//! The gateway's usage extraction and stream rewriting must work on OpenAI's real wire format, so
//! every body here is written byte for byte (fixed key order, compact JSON, `data: ...\n\n` events)
//! rather than built with `serde_json::json!`, whose keys come out sorted. The scenario is chosen by
//! the request's `x-fake-scenario` header, because the gateway forwards client headers: one fake
//! serves every test and each request says what it wants. Tests compare what their client received
//! with [`chat_stream_bytes`], which is also the function the fake streams from.
//!
//! Azure OpenAI's URL shapes are served too (same bodies). Scenarios: `ok` (default), `error-500`, `error-429`, `error-400` (any route), `cut-stream`,
//! `stream-error`, `slow-stream` (chat and Responses streams), `usage-every-chunk` and
//! `echo-headers` (chat), `slow-headers` (2 s before headers), `hang` (never answers).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};

pub use super::fake_server::RecordedRequest;
use super::fake_server::{Body, FakeServer};
use super::sse_stream::{sse_response, StreamPlan};

/// Appended to the request model in chat and Responses answers, as OpenAI resolves an alias to a
/// dated snapshot: tests can then tell the request model from the response model.
pub const MODEL_SUFFIX: &str = "-2024-07-18";

/// The scenario header; absent means `ok`.
pub const SCENARIO_HEADER: &str = "x-fake-scenario";

const CREATED: u64 = 1_721_000_000;
const CHAT_ID: &str = "chatcmpl-fake0001";
const FINGERPRINT: &str = "fp_fake000001";
const CHAT_USAGE: &str = concat!(
    r#"{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18,"#,
    r#""prompt_tokens_details":{"cached_tokens":3,"audio_tokens":0},"#,
    r#""completion_tokens_details":{"reasoning_tokens":2,"audio_tokens":0,"#,
    r#""accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#
);
const RESPONSES_USAGE: &str = concat!(
    r#"{"input_tokens":20,"input_tokens_details":{"cached_tokens":5},"#,
    r#""output_tokens":9,"output_tokens_details":{"reasoning_tokens":4},"total_tokens":29}"#
);
const DONE: &str = "data: [DONE]\n\n";
/// Gap between events in `slow-stream`.
const SLOW_GAP: Duration = Duration::from_millis(300);

// === impl FakeOpenAi ===

/// A running fake; the server stops (and drops its open connections) when this is dropped.
pub struct FakeOpenAi {
    pub addr: SocketAddr,
    server: FakeServer,
}

impl FakeOpenAi {
    /// Binds 127.0.0.1:0, serves HTTP/1.1 and h2c (hyper_util auto builder) in a spawned task.
    pub async fn start() -> FakeOpenAi {
        let server = FakeServer::start(|req: RecordedRequest| async move {
            let path = req.route().to_owned();
            respond(&req, &path).await
        })
        .await;
        FakeOpenAi {
            addr: server.addr,
            server,
        }
    }

    /// "http://127.0.0.1:PORT/v1"
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.server.requests()
    }

    /// Number of requests received.
    pub fn request_count(&self) -> usize {
        self.server.request_count()
    }
}

async fn respond(req: &RecordedRequest, path: &str) -> Response<Body> {
    let scenario = req.header(SCENARIO_HEADER).unwrap_or("ok").to_owned();
    match scenario.as_str() {
        "hang" => tokio::time::sleep(Duration::from_secs(3600)).await,
        "slow-headers" => tokio::time::sleep(Duration::from_secs(2)).await,
        _ => {}
    }
    if let Some(error) = scenario_error(&scenario) {
        return error;
    }
    let path = azure_to_openai_path(path);
    match (req.method.clone(), path.as_str()) {
        (Method::GET, "/v1/models") => json_response(StatusCode::OK, models_json()),
        (
            Method::POST,
            route @ ("/v1/chat/completions"
            | "/v1/completions"
            | "/v1/embeddings"
            | "/v1/responses"),
        ) => post_route(route, req, &scenario),
        (method, _) => not_found(&method, &path),
    }
}

/// Azure OpenAI's URL shapes (`/openai/deployments/{d}/...` and `/openai/v1/...`) served like
/// OpenAI's own: the bodies are the same; tests check the path and query in the request log.
fn azure_to_openai_path(path: &str) -> String {
    if let Some(rest) = path.strip_prefix("/openai/v1/") {
        return format!("/v1/{rest}");
    }
    if let Some((_, op)) = path
        .strip_prefix("/openai/deployments/")
        .and_then(|rest| rest.split_once('/'))
    {
        return format!("/v1/{op}");
    }
    path.to_owned()
}

// === routes ===

/// What the fake reads from a request body.
struct Params {
    model: String,
    stream: bool,
    include_usage: bool,
}

/// Reads the fields the fake needs; the error is the message of OpenAI's 400.
fn params(req: &RecordedRequest) -> Result<Params, &'static str> {
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
        return Err(
            "We could not parse the JSON body of your request. (HINT: This likely means \
                    you aren't using your HTTP library correctly.)",
        );
    };
    let Some(model) = body.get("model").and_then(|m| m.as_str()) else {
        return Err("you must provide a model parameter");
    };
    let flag = |pointer: &str| body.pointer(pointer).and_then(|v| v.as_bool()) == Some(true);
    Ok(Params {
        model: model.to_owned(),
        stream: flag("/stream"),
        include_usage: flag("/stream_options/include_usage"),
    })
}

/// Dispatches the POST routes, which all carry a JSON body with a model.
fn post_route(route: &str, req: &RecordedRequest, scenario: &str) -> Response<Body> {
    let p = match params(req) {
        Ok(p) => p,
        Err(message) => return invalid_request(message, None),
    };
    match route {
        "/v1/chat/completions" => chat(req, &p, scenario),
        "/v1/completions" => json_response(StatusCode::OK, completion_json(&p.model)),
        "/v1/embeddings" => json_response(StatusCode::OK, embeddings_json(&p.model)),
        _ => responses(&p, scenario),
    }
}

fn chat(req: &RecordedRequest, p: &Params, scenario: &str) -> Response<Body> {
    let model = format!("{}{MODEL_SUFFIX}", p.model);
    if scenario == "echo-headers" {
        let body = chat_completion_json(&model, Some(&req.headers));
        return json_response(StatusCode::OK, body);
    }
    if !p.stream {
        return json_response(StatusCode::OK, chat_completion_json(&model, None));
    }
    sse_response(chat_stream_plan(&model, p.include_usage, scenario))
}

fn responses(p: &Params, scenario: &str) -> Response<Body> {
    let model = format!("{}{MODEL_SUFFIX}", p.model);
    if !p.stream {
        return json_response(StatusCode::OK, response_json(&model, true));
    }
    let mut events = responses_stream_events(&model);
    let plan = match scenario {
        "cut-stream" => StreamPlan::cut(events[..3].to_vec()),
        "stream-error" => {
            events.truncate(3);
            events.push(responses_error_event(3));
            StreamPlan::clean(events)
        }
        "slow-stream" => StreamPlan::slow(events, SLOW_GAP),
        _ => StreamPlan::clean(events),
    };
    sse_response(plan)
}

// === chat completions bodies ===

/// The exact bytes the fake sends for a streamed chat completion in the `ok` and `slow-stream`
/// scenarios; `model` is the model the fake returns (request model + [`MODEL_SUFFIX`]).
pub fn chat_stream_bytes(model: &str, include_usage: bool) -> Vec<u8> {
    chat_stream_events(model, include_usage)
        .concat()
        .into_bytes()
}

/// The `ok` stream as separate SSE events: five chunks (role, "Hel", "lo", "!", finish), the usage
/// chunk when asked for, then `[DONE]`.
fn chat_stream_events(model: &str, include_usage: bool) -> Vec<String> {
    let usage = include_usage.then_some("null");
    let mut events: Vec<String> = chat_choices()
        .iter()
        .map(|choices| sse_data(&chunk_json(model, choices, usage)))
        .collect();
    if include_usage {
        events.push(sse_data(&chunk_json(model, "[]", Some(CHAT_USAGE))));
    }
    events.push(DONE.to_owned());
    events
}

/// The `choices` arrays of the five content chunks, in stream order.
fn chat_choices() -> [String; 5] {
    [
        choice(
            r#"{"role":"assistant","content":"","refusal":null}"#,
            "null",
        ),
        choice(r#"{"content":"Hel"}"#, "null"),
        choice(r#"{"content":"lo"}"#, "null"),
        choice(r#"{"content":"!"}"#, "null"),
        choice("{}", r#""stop""#),
    ]
}

fn choice(delta: &str, finish_reason: &str) -> String {
    format!(r#"[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish_reason}}}]"#)
}

/// One `chat.completion.chunk`; `usage` None omits the member, as OpenAI does without
/// `include_usage`.
fn chunk_json(model: &str, choices: &str, usage: Option<&str>) -> String {
    let usage = usage
        .map(|u| format!(r#","usage":{u}"#))
        .unwrap_or_default();
    format!(
        r#"{{"id":"{CHAT_ID}","object":"chat.completion.chunk","created":{CREATED},"model":{},"system_fingerprint":"{FINGERPRINT}","choices":{choices}{usage}}}"#,
        quote(model)
    )
}

/// The events of a streamed chat for `scenario`; unknown scenarios stream like `ok`.
fn chat_stream_plan(model: &str, include_usage: bool, scenario: &str) -> StreamPlan {
    let mut events = chat_stream_events(model, include_usage);
    match scenario {
        // Role chunk, "Hel", "lo": two pieces of text, then the connection dies.
        "cut-stream" => StreamPlan::cut(events[..3].to_vec()),
        "stream-error" => {
            events.truncate(2);
            events.push(sse_data(&error_json(
                "overloaded",
                "server_error",
                Some("overloaded"),
            )));
            StreamPlan::clean(events)
        }
        "slow-stream" => StreamPlan::slow(events, SLOW_GAP),
        "usage-every-chunk" => StreamPlan::clean(usage_every_chunk_events(model)),
        _ => StreamPlan::clean(events),
    }
}

/// Some OpenAI-compatible servers (e.g. vLLM's continuous usage stats) put a running total in every
/// chunk; the last one is the total. No separate `choices: []` chunk is sent.
fn usage_every_chunk_events(model: &str) -> Vec<String> {
    const COMPLETION_SO_FAR: [u32; 5] = [0, 2, 4, 6, 7];
    let mut events: Vec<String> = chat_choices()
        .iter()
        .zip(COMPLETION_SO_FAR)
        .map(|(choices, completion)| {
            let usage = format!(
                r#"{{"prompt_tokens":11,"completion_tokens":{completion},"total_tokens":{}}}"#,
                11 + completion
            );
            sse_data(&chunk_json(model, choices, Some(&usage)))
        })
        .collect();
    events.push(DONE.to_owned());
    events
}

/// A non-streamed `chat.completion`; with `echo` set it also carries `received_headers`.
fn chat_completion_json(model: &str, echo: Option<&HeaderMap>) -> String {
    let echoed = echo
        .map(|h| format!(r#","received_headers":{}"#, headers_json(h)))
        .unwrap_or_default();
    format!(
        concat!(
            r#"{{"id":"{id}","object":"chat.completion","created":{created},"model":{model},"#,
            r#""choices":[{{"index":0,"message":{{"role":"assistant","content":"Hello!","#,
            r#""refusal":null,"annotations":[]}},"logprobs":null,"finish_reason":"stop"}}],"#,
            r#""usage":{usage},"service_tier":"default","system_fingerprint":"{fp}"{echoed}}}"#
        ),
        id = CHAT_ID,
        created = CREATED,
        model = quote(model),
        usage = CHAT_USAGE,
        fp = FINGERPRINT,
        echoed = echoed,
    )
}

/// Request headers as a JSON object; repeated headers are joined with ", " as HTTP allows.
fn headers_json(headers: &HeaderMap) -> String {
    let mut map = serde_json::Map::new();
    for name in headers.keys() {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        map.insert(name.as_str().to_owned(), values.join(", ").into());
    }
    serde_json::Value::Object(map).to_string()
}

// === other bodies ===

fn completion_json(model: &str) -> String {
    format!(
        concat!(
            r#"{{"id":"cmpl-fake0001","object":"text_completion","created":{},"model":{},"#,
            r#""choices":[{{"text":"Hello!","index":0,"logprobs":null,"finish_reason":"stop"}}],"#,
            r#""usage":{{"prompt_tokens":4,"completion_tokens":6,"total_tokens":10}}}}"#
        ),
        CREATED,
        quote(model)
    )
}

fn embeddings_json(model: &str) -> String {
    format!(
        concat!(
            r#"{{"object":"list","data":[{{"object":"embedding","index":0,"embedding":"#,
            r#"[0.0023064255,-0.009327292,0.015797347,-0.0077780345,"#,
            r#"-0.0046922187,0.010093546,-0.028178912,0.019545482]}}],"#,
            r#""model":{},"usage":{{"prompt_tokens":5,"total_tokens":5}}}}"#
        ),
        quote(model)
    )
}

fn models_json() -> String {
    let models = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"].map(|id| {
        format!(r#"{{"id":"{id}","object":"model","created":{CREATED},"owned_by":"system"}}"#)
    });
    format!(r#"{{"object":"list","data":[{}]}}"#, models.join(","))
}

// === Responses API bodies ===

/// A `response` object; while in progress it has no output and `usage: null`, as OpenAI sends it in
/// `response.created` and `response.in_progress`.
fn response_json(model: &str, completed: bool) -> String {
    let (status, output, usage) = if completed {
        let output = concat!(
            r#"[{"id":"msg_fake0001","type":"message","status":"completed","role":"assistant","#,
            r#""content":[{"type":"output_text","text":"Hello!","annotations":[]}]}]"#
        );
        ("completed", output, RESPONSES_USAGE)
    } else {
        ("in_progress", "[]", "null")
    };
    format!(
        concat!(
            r#"{{"id":"resp_fake0001","object":"response","created_at":{},"status":"{}","#,
            r#""error":null,"incomplete_details":null,"model":{},"output":{},"#,
            r#""parallel_tool_calls":true,"usage":{}}}"#
        ),
        CREATED,
        status,
        quote(model),
        output,
        usage
    )
}

/// The Responses stream: created, in_progress, two text deltas, text done, completed.
fn responses_stream_events(model: &str) -> Vec<String> {
    let text = r#""item_id":"msg_fake0001","output_index":0,"content_index":0"#;
    let bodies = [
        format!(r#""response":{}"#, response_json(model, false)),
        format!(r#""response":{}"#, response_json(model, false)),
        format!(r#"{text},"delta":"Hel""#),
        format!(r#"{text},"delta":"lo!""#),
        format!(r#"{text},"text":"Hello!""#),
        format!(r#""response":{}"#, response_json(model, true)),
    ];
    let types = [
        "response.created",
        "response.in_progress",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.completed",
    ];
    types
        .iter()
        .zip(bodies)
        .enumerate()
        .map(|(seq, (kind, rest))| {
            format!(
                "event: {kind}\ndata: {{\"type\":\"{kind}\",\"sequence_number\":{seq},{rest}}}\n\n"
            )
        })
        .collect()
}

/// The exact bytes of a streamed Responses answer in the `ok` scenario.
pub fn responses_stream_bytes(model: &str) -> Vec<u8> {
    responses_stream_events(model).concat().into_bytes()
}

fn responses_error_event(seq: usize) -> String {
    format!(
        concat!(
            "event: error\ndata: ",
            r#"{{"type":"error","sequence_number":{},"code":"overloaded","#,
            r#""message":"overloaded","param":null}}"#,
            "\n\n"
        ),
        seq
    )
}

// === errors ===

/// The error a scenario asks for, on any route.
fn scenario_error(scenario: &str) -> Option<Response<Body>> {
    let response = match scenario {
        "error-500" => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            error_json("The server had an error", "server_error", None),
        ),
        "error-429" => rate_limited(),
        "error-400" => invalid_request("Invalid value for 'messages'.", Some("invalid_value")),
        _ => return None,
    };
    Some(response)
}

fn rate_limited() -> Response<Body> {
    let msg = "Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1. \
               Please try again in 1s.";
    let mut response = json_response(
        StatusCode::TOO_MANY_REQUESTS,
        error_json(msg, "rate_limit_exceeded", Some("rate_limit_exceeded")),
    );
    let headers = response.headers_mut();
    for (name, value) in [
        ("retry-after", "1"),
        ("retry-after-ms", "1000"),
        ("x-ratelimit-limit-requests", "500"),
        ("x-ratelimit-limit-tokens", "30000"),
        ("x-ratelimit-remaining-requests", "0"),
        ("x-ratelimit-remaining-tokens", "29000"),
        ("x-ratelimit-reset-requests", "1s"),
        ("x-ratelimit-reset-tokens", "6m0s"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn invalid_request(message: &str, code: Option<&str>) -> Response<Body> {
    json_response(
        StatusCode::BAD_REQUEST,
        error_json(message, "invalid_request_error", code),
    )
}

/// OpenAI's 404 for an unknown route.
fn not_found(method: &Method, path: &str) -> Response<Body> {
    let message = format!("Invalid URL ({method} {path})");
    json_response(
        StatusCode::NOT_FOUND,
        error_json(&message, "invalid_request_error", None),
    )
}

/// `{"error":{"message","type","param","code"}}` with `param` always null.
fn error_json(message: &str, kind: &str, code: Option<&str>) -> String {
    format!(
        r#"{{"error":{{"message":{},"type":{},"param":null,"code":{}}}}}"#,
        quote(message),
        quote(kind),
        code.map_or_else(|| "null".to_owned(), quote)
    )
}

// === responses and streaming ===

fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn sse_data(json: &str) -> String {
    format!("data: {json}\n\n")
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
