//! The exact bytes the fake Anthropic upstream ([`super::fake_anthropic`]) answers with, kept apart
//! from its server so that tests compare what their client received against the very functions
//! the fake sends from.
//!
//! Every body is written by hand in Anthropic's key order (compact JSON, `event: <name>\ndata:
//! <json>\n\n` frames): the gateway meters and translates Anthropic's real wire format, and
//! `serde_json::json!` would sort the keys. The usage numbers are all different and non-zero so a
//! test can tell which field ended up where, and check the normalised input (`input_tokens` +
//! `cache_read_input_tokens` + `cache_creation_input_tokens`). It also holds the helpers tests use
//! to read such streams and errors back ([`sse_frames`], [`json_events`], [`streamed_text`]).

use http::HeaderMap;

/// Appended to the request model in every answer, as Anthropic resolves an alias to a dated
/// snapshot: tests can then tell the request model from the response model.
pub const MODEL_SUFFIX: &str = "-20250929";
pub const MESSAGE_ID: &str = "msg_fake0001";
pub const TOOL_USE_ID: &str = "toolu_fake0001";
/// Uncached input: Anthropic's `input_tokens` excludes both cache fields.
pub const INPUT_TOKENS: u64 = 21;
pub const CACHE_CREATION_INPUT_TOKENS: u64 = 4;
pub const CACHE_READ_INPUT_TOKENS: u64 = 9;
/// The final (cumulative) output count, in the JSON answer and in `message_delta`.
pub const OUTPUT_TOKENS: u64 = 13;
/// `output_tokens` in `message_start`, before any text was generated.
pub const START_OUTPUT_TOKENS: u64 = 1;
/// What `/v1/messages/count_tokens` always answers.
pub const COUNT_TOKENS_INPUT: u64 = 42;
/// The text of the `ok` answer; streamed as [`TEXT_DELTAS`].
pub const TEXT: &str = "Hello from the fake Anthropic.";
pub const TEXT_DELTAS: [&str; 4] = ["Hello", " from the", " fake", " Anthropic."];
/// The text block before the tool call in `tool-use`; streamed as [`TOOL_TEXT_DELTAS`].
pub const TOOL_TEXT: &str = "Let me check the weather in Paris.";
pub const TOOL_TEXT_DELTAS: [&str; 2] = ["Let me check", " the weather in Paris."];
pub const TOOL_NAME: &str = "get_weather";
/// The tool call's `input`, byte for byte; the stream sends it as [`TOOL_INPUT_FRAGMENTS`]
/// (cut mid-key and mid-value, with the empty first fragment Anthropic sends).
pub const TOOL_INPUT: &str = r#"{"city":"Paris"}"#;
pub const TOOL_INPUT_FRAGMENTS: [&str; 4] = ["", r#"{"ci"#, r#"ty":"Pa"#, r#"ris"}"#];
/// The `ok` stream's event names, in order.
pub const OK_STREAM_EVENTS: [&str; 10] = [
    "message_start",
    "content_block_start",
    "ping",
    "content_block_delta",
    "content_block_delta",
    "content_block_delta",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
];
/// How many `ok` events `stream-error` and `cut-stream` send before failing: message_start,
/// content_block_start, ping and the first two text deltas ("Hello", " from the").
pub const EVENTS_BEFORE_FAILURE: usize = 5;
/// The unknown event `bad-event` inserts; Anthropic documents that new event types may appear.
pub const UNKNOWN_EVENT: &str = "event: content_block_annotation\n\
    data: {\"type\":\"content_block_annotation\",\"index\":0,\"note\":\"an event type no client knows\"}\n\n";
/// The event `bad-event` inserts whose data is not JSON (cut off mid-string).
pub const INVALID_JSON_EVENT: &str = "event: content_block_delta\n\
    data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_del\n\n";

/// Which answer a scenario gets; the header value is its kebab-case name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    Ok,
    ToolUse,
    MaxTokens,
    Error529,
    Error429,
    Error400,
    StreamError,
    CutStream,
    BadEvent,
    SlowStream,
    EchoHeaders,
    EchoRequest,
}

// === impl Scenario ===

impl Scenario {
    /// The scenario a header value names; absent or unknown means `ok`, as in the OpenAI fake.
    pub fn from_header(value: Option<&str>) -> Scenario {
        match value.unwrap_or("ok") {
            "tool-use" => Scenario::ToolUse,
            "max-tokens" => Scenario::MaxTokens,
            "error-529" => Scenario::Error529,
            "error-429" => Scenario::Error429,
            "error-400" => Scenario::Error400,
            "stream-error" => Scenario::StreamError,
            "cut-stream" => Scenario::CutStream,
            "bad-event" => Scenario::BadEvent,
            "slow-stream" => Scenario::SlowStream,
            "echo-headers" => Scenario::EchoHeaders,
            "echo-request" => Scenario::EchoRequest,
            _ => Scenario::Ok,
        }
    }

    /// The answer of every scenario whose text does not depend on the request (all but the
    /// echoes, which the fake builds from what it received).
    pub fn reply(self) -> Reply<'static> {
        match self {
            Scenario::ToolUse => Reply::ToolUse,
            Scenario::MaxTokens => Reply::MaxTokens,
            _ => Reply::Text,
        }
    }
}

/// What the assistant answers: its content blocks and stop reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// [`TEXT`], `end_turn`.
    Text,
    /// [`TEXT`], `max_tokens`.
    MaxTokens,
    /// [`TOOL_TEXT`], then a `get_weather` tool_use block with [`TOOL_INPUT`]; `tool_use`.
    ToolUse,
    /// One text block holding exactly this text, streamed as a single delta; `end_turn`.
    Echo(&'a str),
}

// === impl Reply ===

impl<'a> Reply<'a> {
    pub fn stop_reason(self) -> &'static str {
        match self {
            Reply::MaxTokens => "max_tokens",
            Reply::ToolUse => "tool_use",
            Reply::Text | Reply::Echo(_) => "end_turn",
        }
    }

    /// The text of the first (text) block.
    pub fn text(self) -> &'a str {
        match self {
            Reply::Text | Reply::MaxTokens => TEXT,
            Reply::ToolUse => TOOL_TEXT,
            Reply::Echo(text) => text,
        }
    }

    fn text_deltas(self) -> Vec<&'a str> {
        match self {
            Reply::Text | Reply::MaxTokens => TEXT_DELTAS.to_vec(),
            Reply::ToolUse => TOOL_TEXT_DELTAS.to_vec(),
            Reply::Echo(text) => vec![text],
        }
    }
}

// === messages ===

/// The non-streamed answer: a `message` object with the full usage.
pub fn message_json(model: &str, reply: Reply<'_>) -> String {
    let mut content = text_block(reply.text());
    if reply == Reply::ToolUse {
        content.push(',');
        content.push_str(&tool_use_block(TOOL_INPUT));
    }
    message_object(
        model,
        &content,
        Some(reply.stop_reason()),
        &usage_json(OUTPUT_TOKENS),
    )
}

/// `{"input_tokens":42}`, the count_tokens answer.
pub fn count_tokens_json() -> String {
    format!(r#"{{"input_tokens":{COUNT_TOKENS_INPUT}}}"#)
}

fn message_object(model: &str, content: &str, stop_reason: Option<&str>, usage: &str) -> String {
    let stop_reason = stop_reason.map_or_else(|| "null".to_owned(), quote);
    format!(
        concat!(
            r#"{{"id":"{id}","type":"message","role":"assistant","model":{model},"#,
            r#""content":[{content}],"stop_reason":{stop},"stop_sequence":null,"usage":{usage}}}"#
        ),
        id = MESSAGE_ID,
        model = quote(model),
        content = content,
        stop = stop_reason,
        usage = usage,
    )
}

/// Usage with every field; `output_tokens` varies between message_start and the end.
fn usage_json(output_tokens: u64) -> String {
    format!(
        concat!(
            r#"{{"input_tokens":{},"cache_creation_input_tokens":{},"#,
            r#""cache_read_input_tokens":{},"output_tokens":{}}}"#
        ),
        INPUT_TOKENS, CACHE_CREATION_INPUT_TOKENS, CACHE_READ_INPUT_TOKENS, output_tokens
    )
}

fn text_block(text: &str) -> String {
    format!(r#"{{"type":"text","text":{}}}"#, quote(text))
}

/// A tool_use block; the stream opens it with `input` `{}` and fills it with deltas.
fn tool_use_block(input: &str) -> String {
    format!(r#"{{"type":"tool_use","id":"{TOOL_USE_ID}","name":"{TOOL_NAME}","input":{input}}}"#)
}

// === streams ===

/// A clean stream of `reply`: message_start, each content block (start, a ping after the first,
/// deltas, stop), message_delta, message_stop.
pub fn stream_events(model: &str, reply: Reply<'_>) -> Vec<String> {
    let start = message_object(model, "", None, &usage_json(START_OUTPUT_TOKENS));
    let mut events = vec![event("message_start", &format!(r#","message":{start}"#))];
    events.push(block_start(0, &text_block("")));
    events.push(event("ping", ""));
    for text in reply.text_deltas() {
        events.push(block_delta(0, "text_delta", "text", text));
    }
    events.push(event("content_block_stop", r#","index":0"#));
    if reply == Reply::ToolUse {
        events.push(block_start(1, &tool_use_block("{}")));
        for fragment in TOOL_INPUT_FRAGMENTS {
            events.push(block_delta(1, "input_json_delta", "partial_json", fragment));
        }
        events.push(event("content_block_stop", r#","index":1"#));
    }
    let delta = format!(
        r#","delta":{{"stop_reason":"{}","stop_sequence":null}},"usage":{{"output_tokens":{}}}"#,
        reply.stop_reason(),
        OUTPUT_TOKENS
    );
    events.push(event("message_delta", &delta));
    events.push(event("message_stop", ""));
    events
}

/// The exact bytes of a clean stream of `reply` (the `ok`, `tool-use`, `max-tokens`,
/// `slow-stream` and echo scenarios).
pub fn stream_bytes(model: &str, reply: Reply<'_>) -> Vec<u8> {
    stream_events(model, reply).concat().into_bytes()
}

/// The events the fake sends for a streamed `scenario` answering `reply`: `stream-error` and
/// `cut-stream` stop after [`EVENTS_BEFORE_FAILURE`] (the first adding an error event),
/// `bad-event` inserts [`INVALID_JSON_EVENT`] and [`UNKNOWN_EVENT`] after the first text delta.
pub fn scenario_stream_events(model: &str, scenario: Scenario, reply: Reply<'_>) -> Vec<String> {
    let mut events = stream_events(model, reply);
    match scenario {
        Scenario::StreamError => {
            events.truncate(EVENTS_BEFORE_FAILURE);
            events.push(stream_error_event());
        }
        Scenario::CutStream => events.truncate(EVENTS_BEFORE_FAILURE),
        Scenario::BadEvent => {
            // After message_start, content_block_start, ping and "Hello".
            let at = events.len().min(4);
            events.splice(
                at..at,
                [INVALID_JSON_EVENT.to_owned(), UNKNOWN_EVENT.to_owned()],
            );
        }
        _ => {}
    }
    events
}

/// [`scenario_stream_events`] for the scenario's own reply, as one byte string: for
/// `cut-stream`, what arrives before the connection dies.
pub fn scenario_stream_bytes(model: &str, scenario: Scenario) -> Vec<u8> {
    scenario_stream_events(model, scenario, scenario.reply())
        .concat()
        .into_bytes()
}

/// The mid-stream failure Anthropic sends after a 200: an `error` event, then nothing.
pub fn stream_error_event() -> String {
    event(
        "error",
        &format!(
            r#","error":{}"#,
            error_object("overloaded_error", "Overloaded")
        ),
    )
}

fn block_start(index: usize, block: &str) -> String {
    event(
        "content_block_start",
        &format!(r#","index":{index},"content_block":{block}"#),
    )
}

fn block_delta(index: usize, kind: &str, field: &str, value: &str) -> String {
    let rest = format!(
        r#","index":{index},"delta":{{"type":"{kind}","{field}":{}}}"#,
        quote(value)
    );
    event("content_block_delta", &rest)
}

/// `event: <name>` and `data: {"type":"<name>"<rest>}`; `rest` starts with a comma or is empty.
fn event(name: &str, rest: &str) -> String {
    format!("event: {name}\ndata: {{\"type\":\"{name}\"{rest}}}\n\n")
}

// === errors ===

/// `{"type":"error","error":{"type":..,"message":..}}`
pub fn error_json(kind: &str, message: &str) -> String {
    format!(
        r#"{{"type":"error","error":{}}}"#,
        error_object(kind, message)
    )
}

fn error_object(kind: &str, message: &str) -> String {
    format!(r#"{{"type":{},"message":{}}}"#, quote(kind), quote(message))
}

// === reading streams (for tests) ===
// What a test needs to check an Anthropic stream or error it received, from the fake or through
// the gateway. These assert: they panic with the offending text when the bytes are malformed.

/// Every event type Anthropic documents for a Messages stream.
pub const KNOWN_EVENTS: [&str; 8] = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
];

/// One SSE frame: its event name and its data as text (not necessarily JSON).
pub struct SseFrame {
    pub event: String,
    pub data: String,
}

/// Splits a stream into frames, asserting each is exactly `event: <name>\ndata: <data>`.
pub fn sse_frames(stream: &str) -> Vec<SseFrame> {
    assert!(
        stream.ends_with("\n\n"),
        "stream ends mid-frame: {stream:?}"
    );
    stream
        .split_terminator("\n\n")
        .map(|frame| {
            let (event, data) = frame.split_once('\n').expect("two lines per frame");
            SseFrame {
                event: event
                    .strip_prefix("event: ")
                    .expect("event line")
                    .to_owned(),
                data: data.strip_prefix("data: ").expect("data line").to_owned(),
            }
        })
        .collect()
}

/// Every frame's data parsed, each checked to carry its own event name as `type`.
pub fn json_events(stream: &str) -> Vec<(String, serde_json::Value)> {
    sse_frames(stream)
        .into_iter()
        .map(|f| {
            let data: serde_json::Value = serde_json::from_str(&f.data).expect("JSON data");
            assert_eq!(data["type"], f.event.as_str());
            (f.event, data)
        })
        .collect()
}

pub fn event_names(events: &[(String, serde_json::Value)]) -> Vec<&str> {
    events.iter().map(|(name, _)| name.as_str()).collect()
}

/// The concatenated `text_delta`s of block `index`.
pub fn streamed_text(events: &[(String, serde_json::Value)], index: u64) -> String {
    events
        .iter()
        .filter(|(_, d)| d["type"] == "content_block_delta" && d["index"] == index)
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect()
}

/// The concatenated `input_json_delta` fragments of block `index`: the tool call's input.
pub fn streamed_tool_input(events: &[(String, serde_json::Value)], index: u64) -> String {
    events
        .iter()
        .filter(|(_, d)| d["type"] == "content_block_delta" && d["index"] == index)
        .filter(|(_, d)| d["delta"]["type"] == "input_json_delta")
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect()
}

/// Asserts `usage` is the fake's, field for field, with this `output_tokens` (the JSON answer and
/// message_start carry every field; only the output count differs).
pub fn assert_fake_usage(usage: &serde_json::Value, output_tokens: u64) {
    // Spelled out rather than parsed from `usage_json`, so the self-test checks the field names.
    let want = serde_json::json!({
        "input_tokens": INPUT_TOKENS,
        "cache_creation_input_tokens": CACHE_CREATION_INPUT_TOKENS,
        "cache_read_input_tokens": CACHE_READ_INPUT_TOKENS,
        "output_tokens": output_tokens,
    });
    assert_eq!(usage, &want);
}

/// Asserts `keys` appear in `text` in this order: serde_json's `Value` sorts keys, so a test
/// that cares about order (the gateway forwarding bytes untouched) checks the raw text.
pub fn assert_key_order<'a>(text: &str, keys: impl IntoIterator<Item = &'a str>) {
    let mut from = 0;
    for key in keys {
        let needle = format!("\"{key}\":");
        let at = text
            .get(from..)
            .and_then(|rest| rest.find(&needle))
            .unwrap_or_else(|| panic!("{key} missing or out of order in {text}"));
        from += at + needle.len();
    }
}

/// Exactly `{"type":"error","error":{"type":kind,"message":<non-empty>}}`, in that key order.
pub fn assert_anthropic_error(text: &str, kind: &str) {
    assert!(
        text.starts_with(&format!(
            r#"{{"type":"error","error":{{"type":"{kind}","message":""#
        )),
        "{text}"
    );
    let error: serde_json::Value = serde_json::from_str(text).expect("JSON error");
    assert_eq!(error.as_object().map(|o| o.len()), Some(2), "{text}");
    assert_eq!(
        error["error"].as_object().map(|o| o.len()),
        Some(2),
        "{text}"
    );
    assert!(error["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

// === echoes ===

/// The text `echo-headers` answers: a JSON object, in this key order, of the request headers a
/// provider cares about: `anthropic-version` and `anthropic-beta` (the value, repeated headers
/// joined with ",", or null), `x-api-key` and `authorization` (whether present: secrets are not
/// copied into answers; tests read the values from the request log).
pub fn echo_headers_text(headers: &HeaderMap) -> String {
    let value = |name: &str| {
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        if values.is_empty() {
            "null".to_owned()
        } else {
            quote(&values.join(","))
        }
    };
    format!(
        r#"{{"anthropic-version":{},"anthropic-beta":{},"x-api-key":{},"authorization":{}}}"#,
        value("anthropic-version"),
        value("anthropic-beta"),
        headers.contains_key("x-api-key"),
        headers.contains_key("authorization"),
    )
}

/// The text `echo-request` answers: the request body as received (invalid UTF-8 replaced).
pub fn echo_request_text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// A JSON string literal.
pub fn quote(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}
