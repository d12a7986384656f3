//! Tests of the access log: golden lines (the `interface.md` example byte for byte, streaming,
//! refused, quoting), JSON key order and types, filter, redaction, config errors, and the writer
//! thread.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use agentgateway_wire::{Operation, Usage};
use serde_json::json;

use super::*;
use crate::auth::Identity;
use crate::record::{ListenerInfo, LlmInfo, RequestError, RouteInfo};
use writer::BatchWriter;

/// The example line of `interface.md`, byte for byte.
const INTERFACE_EXAMPLE: &str = "2025-12-12T21:56:02.809082Z\tinfo\trequest gateway=agentgateway-system/agentgateway-proxy listener=http route=agentgateway-system/openai endpoint=api.openai.com:443 src.addr=127.0.0.1:60862 http.method=POST http.host=localhost http.path=/openai http.version=HTTP/1.1 http.status=200 protocol=llm gen_ai.operation.name=chat gen_ai.provider.name=openai gen_ai.request.model=gpt-3.5-turbo gen_ai.response.model=gpt-3.5-turbo-0125 gen_ai.usage.input_tokens=68 gen_ai.usage.output_tokens=298 duration=2488ms";

/// A record whose request ended at `end` after `duration`.
fn record(end: &str, duration: Duration) -> RequestRecord {
    let end: SystemTime = chrono::DateTime::parse_from_rfc3339(end)
        .expect("RFC 3339 timestamp")
        .into();
    RequestRecord {
        start: Instant::now(),
        start_time: end - duration,
        request_id: "0b5e6a4c-request".into(),
        src_addr: "127.0.0.1:60862".parse().expect("socket address"),
        listener: Arc::new(ListenerInfo {
            bind: "4000".into(),
            gateway: "agentgateway-system/agentgateway-proxy".into(),
            listener: "http".into(),
        }),
        method: http::Method::POST,
        host: Some("localhost".into()),
        path: "/openai".into(),
        version: http::Version::HTTP_11,
        headers: None,
        status: 200,
        identity: None,
        route: None,
        llm: LlmInfo::default(),
        ttft: None,
        duration,
        error: None,
        reason: None,
        limits: Default::default(),
        admission: Default::default(),
    }
}

/// The request of the `interface.md` example.
fn example_record() -> RequestRecord {
    let mut rec = record(
        "2025-12-12T21:56:02.809082Z",
        Duration::from_micros(2_488_312),
    );
    rec.route = Some(Arc::new(RouteInfo {
        route: "agentgateway-system/openai".into(),
        system: "openai",
        endpoint: "api.openai.com:443".into(),
    }));
    rec.llm = LlmInfo {
        operation: Some(Operation::ChatCompletions),
        request_model: Some("gpt-3.5-turbo".into()),
        response_model: Some("gpt-3.5-turbo-0125".into()),
        usage: Usage {
            input_tokens: Some(68),
            output_tokens: Some(298),
            ..Usage::default()
        },
        streaming: false,
        cost: Default::default(),
    };
    rec
}

/// A streamed request by an authenticated caller, with every optional usage count.
fn streaming_record() -> RequestRecord {
    let mut rec = example_record();
    let serde_json::Value::Object(metadata) = json!({"user": "alice", "team": "search"}) else {
        unreachable!("a JSON object literal")
    };
    rec.identity = Some(Arc::new(Identity {
        id: "static-0".into(),
        name: Some("alice-key".into()),
        metadata,
        ..Default::default()
    }));
    rec.llm.streaming = true;
    rec.llm.usage = Usage {
        input_tokens: Some(1200),
        output_tokens: Some(450),
        cache_read_input_tokens: Some(1024),
        cache_write_input_tokens: Some(64),
        reasoning_output_tokens: Some(128),
    };
    rec.ttft = Some(Duration::from_micros(312_900));
    rec
}

fn config(yaml: &str) -> LoggingConfig {
    serde_yaml_ng::from_str(yaml).expect("logging config")
}

fn memory_log(
    cfg: &LoggingConfig,
    format: Option<LogFormat>,
) -> (AccessLog, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let log = AccessLog::new(cfg, format, LogSink::Memory(lines.clone())).expect("access log");
    (log, lines)
}

fn format_with(yaml: &str, rec: &RequestRecord) -> String {
    let (log, _) = memory_log(&config(yaml), None);
    log.format(rec).expect("not filtered")
}

#[test]
fn text_line_matches_the_interface_example_byte_for_byte() {
    let yaml = "fields: {remove: [gen_ai.request.stream, request.id]}";
    assert_eq!(format_with(yaml, &example_record()), INTERFACE_EXAMPLE);
}

#[test]
fn streaming_line_has_usage_details_ttft_and_custom_fields_in_order() {
    let yaml = r#"
fields:
  add:
    user: apiKey.user
    team: apiKey.team
    total: llm.inputTokens + llm.outputTokens
    missing: apiKey.nope
"#;
    let expected = "2025-12-12T21:56:02.809082Z\tinfo\trequest gateway=agentgateway-system/agentgateway-proxy listener=http route=agentgateway-system/openai endpoint=api.openai.com:443 src.addr=127.0.0.1:60862 http.method=POST http.host=localhost http.path=/openai http.version=HTTP/1.1 http.status=200 protocol=llm gen_ai.operation.name=chat gen_ai.provider.name=openai gen_ai.request.model=gpt-3.5-turbo gen_ai.response.model=gpt-3.5-turbo-0125 gen_ai.usage.input_tokens=1200 gen_ai.usage.output_tokens=450 gen_ai.usage.cache_read.input_tokens=1024 gen_ai.usage.cache_creation.input_tokens=64 gen_ai.usage.reasoning.output_tokens=128 gen_ai.request.stream=true agw.ai.time_to_first_token=312ms api_key.name=alice-key user=alice team=search total=1650 request.id=0b5e6a4c-request duration=2488ms";
    assert_eq!(format_with(yaml, &streaming_record()), expected);
}

#[test]
fn refused_request_without_route_has_only_http_keys() {
    let mut rec = record("2025-12-12T21:56:03.000001Z", Duration::from_micros(1_700));
    rec.path = "/v1/chat/completions".into();
    rec.status = 401;
    rec.error = Some(RequestError::with_message(
        "unauthorized",
        "missing API key",
    ));
    rec.reason = Some("unauthorized");
    let expected = "2025-12-12T21:56:03.000001Z\tinfo\trequest gateway=agentgateway-system/agentgateway-proxy listener=http src.addr=127.0.0.1:60862 http.method=POST http.host=localhost http.path=/v1/chat/completions http.version=HTTP/1.1 http.status=401 protocol=http error=\"missing API key\" reason=unauthorized request.id=0b5e6a4c-request duration=1ms";
    assert_eq!(format_with("{}", &rec), expected);
    rec.error = Some(RequestError::new("upstream_unavailable"));
    assert!(format_with("{}", &rec).contains(" error=upstream_unavailable reason="));
}

#[test]
fn values_are_quoted_and_escaped_only_when_needed() {
    let mut rec = example_record();
    rec.path = "/a b".into();
    rec.error = Some(RequestError::with_message(
        "x",
        "said \"no\"\n\tthen\\left\u{1}\u{85}é",
    ));
    let yaml = r#"
fields:
  remove: [gen_ai.request.stream, request.id]
  add: {empty: "''", eq: "'a=b'", slash: "'c:\\\\dir'", uni: "'naïve→ok'"}
"#;
    rec.src_addr = "[2001:db8::1]:443".parse().expect("socket address");
    let line = format_with(yaml, &rec);
    assert!(line.contains(" src.addr=[2001:db8::1]:443 "), "{line}");
    assert!(line.contains(r#" http.path="/a b" "#), "{line}");
    let expected_tail = r#" empty="" eq="a=b" slash=c:\dir uni=naïve→ok error="said \"no\"\n\tthen\\left\u0001\u0085é" duration=2488ms"#;
    assert!(line.ends_with(expected_tail), "{line}");
    assert!(!line.contains('\n'), "one line per request");
}

/// A JSON object's members in the order written.
struct Ordered(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Ordered {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Ordered, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Ordered(members))
            }
        }
        d.deserialize_map(Members)
    }
}

#[test]
fn json_line_has_the_same_keys_in_the_same_order_with_typed_values() {
    let rec = streaming_record();
    let yaml = "fields: {add: {user: apiKey.user, total: llm.inputTokens + llm.outputTokens}}";
    let (log, _) = memory_log(&config(yaml), Some(LogFormat::Json));
    let line = log.format(&rec).expect("not filtered");
    let Ordered(members) = serde_json::from_str(&line).expect("valid JSON");
    let expected = json!([
        ["timestamp", "2025-12-12T21:56:02.809082Z"],
        ["level", "info"],
        ["message", "request"],
        ["gateway", "agentgateway-system/agentgateway-proxy"],
        ["listener", "http"],
        ["route", "agentgateway-system/openai"],
        ["endpoint", "api.openai.com:443"],
        ["src.addr", "127.0.0.1:60862"],
        ["http.method", "POST"],
        ["http.host", "localhost"],
        ["http.path", "/openai"],
        ["http.version", "HTTP/1.1"],
        ["http.status", 200],
        ["protocol", "llm"],
        ["gen_ai.operation.name", "chat"],
        ["gen_ai.provider.name", "openai"],
        ["gen_ai.request.model", "gpt-3.5-turbo"],
        ["gen_ai.response.model", "gpt-3.5-turbo-0125"],
        ["gen_ai.usage.input_tokens", 1200],
        ["gen_ai.usage.output_tokens", 450],
        ["gen_ai.usage.cache_read.input_tokens", 1024],
        ["gen_ai.usage.cache_creation.input_tokens", 64],
        ["gen_ai.usage.reasoning.output_tokens", 128],
        ["gen_ai.request.stream", true],
        ["agw.ai.time_to_first_token", "312ms"],
        ["api_key.name", "alice-key"],
        ["user", "alice"],
        ["total", 1650],
        ["request.id", "0b5e6a4c-request"],
        ["duration", "2488ms"],
    ]);
    let actual: Vec<serde_json::Value> = members.into_iter().map(|(k, v)| json!([k, v])).collect();
    assert_eq!(serde_json::Value::Array(actual), expected);
}

#[test]
fn json_escapes_strings_and_config_format_applies_without_override() {
    let mut rec = example_record();
    rec.error = Some(RequestError::with_message("x", "bad \"thing\"\n"));
    let (log, _) = memory_log(&config("format: json"), None);
    let line = log.format(&rec).expect("not filtered");
    let parsed: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
    assert_eq!(parsed["error"], "bad \"thing\"\n");
    let (text, _) = memory_log(&config("format: json"), Some(LogFormat::Text));
    assert!(text
        .format(&rec)
        .expect("not filtered")
        .contains("\tinfo\trequest "));
}

#[test]
fn filter_keeps_only_matching_requests() {
    let (log, lines) = memory_log(&config("filter: 'response.code >= 400'"), None);
    let ok = example_record();
    let mut failed = example_record();
    failed.status = 502;
    log.log(&ok);
    log.log(&failed);
    let lines = lines.lock().expect("lines");
    assert_eq!(lines.len(), 1);
    assert!(lines[0].contains(" http.status=502 "), "{}", lines[0]);
}

#[test]
fn credential_headers_are_redacted_in_custom_fields() {
    let mut rec = example_record();
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "authorization",
        "Bearer sk-secret".parse().expect("header value"),
    );
    headers.insert("x-api-key", "sk-secret".parse().expect("header value"));
    headers.insert("x-team", "search".parse().expect("header value"));
    rec.headers = Some(headers);
    let yaml = r#"
fields:
  add:
    auth: request.headers.authorization
    key: request.headers["x-api-key"]
    joined: "'k=' + request.headers['x-api-key']"
    all: request.headers
    team: request.headers["x-team"]
"#;
    for format in [LogFormat::Text, LogFormat::Json] {
        let (log, _) = memory_log(&config(yaml), Some(format));
        assert!(log.uses_request_headers());
        let line = log.format(&rec).expect("not filtered");
        assert!(!line.contains("sk-secret"), "{line}");
        assert!(line.contains("<redacted>"), "{line}");
    }
    let line = format_with(yaml, &rec);
    assert!(
        line.contains(" auth=<redacted> key=<redacted> joined=\"k=<redacted>\" "),
        "{line}"
    );
    assert!(line.contains(" team=search "), "{line}");
}

#[test]
fn remove_and_add_manage_built_in_keys() {
    let yaml = "fields: {remove: [src.addr, duration], add: {http.status: \"'custom'\"}}";
    let line = format_with(yaml, &example_record());
    assert!(
        !line.contains("src.addr=") && !line.contains("duration="),
        "{line}"
    );
    assert_eq!(line.matches("http.status=").count(), 1, "{line}");
    assert!(line.contains(" http.status=custom request.id="), "{line}");
    let (plain, _) = memory_log(&config("{}"), None);
    assert!(!plain.uses_request_headers());
}

#[test]
fn config_errors_name_the_field() {
    let error = |yaml: &str| {
        let cfg = config(yaml);
        AccessLog::new(&cfg, None, LogSink::Memory(Arc::default()))
            .err()
            .expect("an error")
    };
    assert!(
        error("fields: {remove: [src.adr]}").starts_with("fields.remove: unknown field `src.adr`")
    );
    assert!(error("filter: 'response.code >='").starts_with("filter: invalid CEL expression"));
    assert!(error("fields: {add: {user: apikey.user}}").starts_with("fields.add.user: "));
    assert!(AccessLog::new(
        &config("fields: {remove: [trace.id]}"),
        None,
        LogSink::Stdout
    )
    .is_ok());
}

#[derive(Clone, Default)]
struct SharedOut(Arc<Mutex<Vec<u8>>>);

impl Write for SharedOut {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SharedOut {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().expect("buffer").clone()).expect("utf-8")
    }
}

#[test]
fn writer_thread_writes_every_line_in_order_and_close_flushes() {
    let out = SharedOut::default();
    let writer = BatchWriter::spawn(out.clone()).expect("writer");
    for i in 0..10 {
        writer.send(&format!("line {i}"));
    }
    writer.close();
    writer.send("after close");
    let expected: String = (0..10).map(|i| format!("line {i}\n")).collect();
    assert_eq!(out.text(), expected);
}

#[test]
fn writer_thread_writes_a_batch_without_waiting_for_close() {
    let out = SharedOut::default();
    let writer = BatchWriter::spawn(out.clone()).expect("writer");
    writer.send("first");
    // Written within FLUSH_INTERVAL; polled (not timed) so a slow machine only waits longer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while out.text().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(writer::FLUSH_INTERVAL);
    }
    assert_eq!(out.text(), "first\n");
    writer.send("second");
    writer.close();
    assert_eq!(out.text(), "first\nsecond\n");
}

#[test]
fn lines_sent_from_many_threads_are_all_written_whole() {
    let out = SharedOut::default();
    let writer = Arc::new(BatchWriter::spawn(out.clone()).expect("writer"));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let writer = writer.clone();
            std::thread::spawn(move || {
                for i in 0..1000 {
                    writer.send(&format!("t{t} line {i}"));
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("sender");
    }
    writer.close();
    let text = out.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4000);
    for t in 0..4 {
        let own: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with(&format!("t{t} ")))
            .collect();
        let expected: Vec<String> = (0..1000).map(|i| format!("t{t} line {i}")).collect();
        assert_eq!(own, expected, "thread {t}'s lines, in its order");
    }
}

#[test]
fn close_is_idempotent_and_logging_after_close_is_safe() {
    let log = AccessLog::new(&config("filter: 'false'"), None, LogSink::Stdout).expect("log");
    log.log(&example_record());
    log.close();
    log.close();
    log.log(&example_record());
}
