//! Formatting one access-log line from a finished record, in text or JSON. Runs on every request,
//! so it writes straight into one pre-sized `String` (numbers via `itoa`, escapes in place) and
//! never allocates per field.
//!
//! Both formats share the same key order and the same "leave unknown keys out" rule; only the
//! way a key/value pair is written differs, which is all [`Line`] encapsulates.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Datelike, Timelike, Utc};

use crate::config::LogFormat;
use crate::expr::ExprValue;
use crate::record::RequestRecord;

/// The built-in keys, in the order they are written (`fields.add` go between `ApiKeyName` and
/// `Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    Gateway,
    Listener,
    Route,
    Endpoint,
    SrcAddr,
    HttpMethod,
    HttpHost,
    HttpPath,
    HttpVersion,
    HttpStatus,
    Protocol,
    OperationName,
    ProviderName,
    RequestModel,
    ResponseModel,
    InputTokens,
    OutputTokens,
    CacheReadTokens,
    CacheCreationTokens,
    ReasoningTokens,
    Stream,
    Ttft,
    CostTotal,
    CostUnpriced,
    User,
    ApiKeyName,
    Error,
    Reason,
    RequestId,
    Duration,
}

/// Names of [`Key`]s, indexed by the key's discriminant.
pub(super) const KEY_NAMES: [&str; 30] = [
    "gateway",
    "listener",
    "route",
    "endpoint",
    "src.addr",
    "http.method",
    "http.host",
    "http.path",
    "http.version",
    "http.status",
    "protocol",
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.request.stream",
    "agw.ai.time_to_first_token",
    "agw.ai.usage.cost.total",
    "agw.ai.usage.cost.unpriced",
    "user",
    "api_key.name",
    "error",
    "reason",
    "request.id",
    "duration",
];

/// A set of built-in keys left out of every line (`fields.remove`, or replaced by `fields.add`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct KeySet(u32);

impl KeySet {
    /// The key named `name`, if it is a built-in one.
    pub(super) fn insert_name(&mut self, name: &str) -> bool {
        match KEY_NAMES.iter().position(|k| *k == name) {
            Some(index) => {
                self.0 |= 1 << index;
                true
            }
            None => false,
        }
    }

    fn contains(self, key: Key) -> bool {
        self.0 & (1 << key as u32) != 0
    }
}

/// One line being written.
pub(super) struct Line {
    buf: String,
    json: bool,
    skip: KeySet,
}

// === impl Line ===

impl Line {
    /// Starts a line with its timestamp, level and message.
    pub(super) fn start(format: LogFormat, capacity: usize, skip: KeySet, at: SystemTime) -> Line {
        let mut buf = String::with_capacity(capacity);
        let json = format == LogFormat::Json;
        if json {
            buf.push_str(r#"{"timestamp":""#);
            write_timestamp(&mut buf, at);
            buf.push_str(r#"","level":"info","message":"request""#);
        } else {
            write_timestamp(&mut buf, at);
            buf.push_str("\tinfo\trequest");
        }
        Line { buf, json, skip }
    }

    pub(super) fn finish(mut self) -> String {
        if self.json {
            self.buf.push('}');
        }
        self.buf
    }

    /// Writes the key's name and separator; false when the key is left out.
    fn key(&mut self, key: Key) -> bool {
        if self.skip.contains(key) {
            return false;
        }
        // Built-in names are plain ASCII: nothing to escape.
        let name = KEY_NAMES[key as usize];
        if self.json {
            self.buf.push_str(",\"");
            self.buf.push_str(name);
            self.buf.push_str("\":");
        } else {
            self.buf.push(' ');
            self.buf.push_str(name);
            self.buf.push('=');
        }
        true
    }

    /// A `fields.add` name, which the user chose: escaped in JSON. In text it is written as is:
    /// a key is never quoted, and a YAML map key with spaces is the user's own choice.
    fn custom_name(&mut self, name: &str) {
        if self.json {
            self.buf.push(',');
            push_json_string(&mut self.buf, name);
            self.buf.push(':');
        } else {
            self.buf.push(' ');
            self.buf.push_str(name);
            self.buf.push('=');
        }
    }

    /// A string value; empty strings count as unknown and are left out.
    pub(super) fn str(&mut self, key: Key, value: &str) {
        if !value.is_empty() && self.key(key) {
            self.str_value(value);
        }
    }

    fn str_value(&mut self, value: &str) {
        if self.json {
            push_json_string(&mut self.buf, value);
        } else {
            push_text_value(&mut self.buf, value);
        }
    }

    pub(super) fn uint(&mut self, key: Key, value: u64) {
        if self.key(key) {
            self.buf.push_str(itoa::Buffer::new().format(value));
        }
    }

    /// A decimal amount, exact: a bare number in both formats.
    pub(super) fn decimal(&mut self, key: Key, value: rust_decimal::Decimal) {
        if self.key(key) {
            // Writing into a String cannot fail.
            let _ = write!(self.buf, "{}", value.normalize());
        }
    }

    pub(super) fn bool(&mut self, key: Key, value: bool) {
        if self.key(key) {
            self.buf.push_str(if value { "true" } else { "false" });
        }
    }

    /// `<ms>ms`, whole milliseconds; a string in JSON, as agentgateway writes it.
    pub(super) fn millis(&mut self, key: Key, value: Duration) {
        if self.key(key) {
            let ms = u64::try_from(value.as_millis()).unwrap_or(u64::MAX);
            let quote = if self.json { "\"" } else { "" };
            self.buf.push_str(quote);
            self.buf.push_str(itoa::Buffer::new().format(ms));
            self.buf.push_str("ms");
            self.buf.push_str(quote);
        }
    }

    /// An `ip:port`, which never contains a character that needs quoting or escaping.
    pub(super) fn addr(&mut self, key: Key, value: SocketAddr) {
        if self.key(key) {
            let quote = if self.json { "\"" } else { "" };
            self.buf.push_str(quote);
            push_addr(&mut self.buf, value);
            self.buf.push_str(quote);
        }
    }

    /// A `fields.add` value: typed in JSON, rendered as text otherwise. Null is left out.
    pub(super) fn custom(&mut self, name: &str, value: &ExprValue) {
        if matches!(value, ExprValue::Null) {
            return;
        }
        self.custom_name(name);
        match value {
            ExprValue::Null => {}
            ExprValue::String(s) => self.str_value(s),
            ExprValue::Bool(b) => self.buf.push_str(if *b { "true" } else { "false" }),
            ExprValue::Int(i) => self.buf.push_str(itoa::Buffer::new().format(*i)),
            ExprValue::UInt(u) => self.buf.push_str(itoa::Buffer::new().format(*u)),
            ExprValue::Float(f) if self.json && !f.is_finite() => self.buf.push_str("null"),
            ExprValue::Float(f) => {
                let _ = write!(self.buf, "{f}");
            }
            complex @ (ExprValue::List(_) | ExprValue::Map(_)) => {
                let text = complex.to_json().to_string();
                if self.json {
                    self.buf.push_str(&text);
                } else {
                    push_text_value(&mut self.buf, &text);
                }
            }
        }
    }
}

/// Writes every built-in key up to `api_key.name` (the caller: never the key itself).
pub(super) fn write_head(line: &mut Line, rec: &RequestRecord) {
    line.str(Key::Gateway, &rec.listener.gateway);
    line.str(Key::Listener, &rec.listener.listener);
    if let Some(route) = &rec.route {
        line.str(Key::Route, &route.route);
        line.str(Key::Endpoint, &route.endpoint);
    }
    line.addr(Key::SrcAddr, rec.src_addr);
    line.str(Key::HttpMethod, rec.method.as_str());
    if let Some(host) = &rec.host {
        line.str(Key::HttpHost, host);
    }
    line.str(Key::HttpPath, &rec.path);
    line.str(Key::HttpVersion, rec.version_str());
    if rec.status != 0 {
        line.uint(Key::HttpStatus, u64::from(rec.status));
    }
    let is_llm = rec.llm.operation.is_some();
    line.str(Key::Protocol, if is_llm { "llm" } else { "http" });
    write_gen_ai(line, rec);
    if let Some(ttft) = rec.ttft {
        line.millis(Key::Ttft, ttft);
    }
    match &rec.llm.cost {
        crate::record::CostOutcome::Priced(cost) => line.decimal(Key::CostTotal, cost.total),
        crate::record::CostOutcome::Unpriced => line.bool(Key::CostUnpriced, true),
        crate::record::CostOutcome::NotApplicable => {}
    }
    if let Some(identity) = rec.identity.as_deref() {
        if let Some(user) = &identity.user {
            line.str(Key::User, user);
        }
        if let Some(name) = &identity.name {
            line.str(Key::ApiKeyName, name);
        }
    }
}

fn write_gen_ai(line: &mut Line, rec: &RequestRecord) {
    let llm = &rec.llm;
    if let Some(operation) = rec.operation_name() {
        line.str(Key::OperationName, operation);
    }
    if let Some(system) = rec.system() {
        line.str(Key::ProviderName, system);
    }
    if let Some(model) = &llm.request_model {
        line.str(Key::RequestModel, model);
    }
    if let Some(model) = &llm.response_model {
        line.str(Key::ResponseModel, model);
    }
    let usage = &llm.usage;
    let counts = [
        (Key::InputTokens, usage.input_tokens),
        (Key::OutputTokens, usage.output_tokens),
        (Key::CacheReadTokens, usage.cache_read_input_tokens),
        (Key::CacheCreationTokens, usage.cache_write_input_tokens),
        (Key::ReasoningTokens, usage.reasoning_output_tokens),
    ];
    for (key, count) in counts {
        if let Some(count) = count {
            line.uint(key, count);
        }
    }
    if llm.operation.is_some() {
        line.bool(Key::Stream, llm.streaming);
    }
}

/// Writes the keys after the custom fields: `error`, `reason`, `request.id`, `duration`.
pub(super) fn write_tail(line: &mut Line, rec: &RequestRecord) {
    if let Some(error) = &rec.error {
        line.str(Key::Error, error.message.as_deref().unwrap_or(&error.label));
    }
    if let Some(reason) = rec.reason {
        line.str(Key::Reason, reason);
    }
    line.str(Key::RequestId, &rec.request_id);
    line.millis(Key::Duration, rec.duration);
}

/// `ip:port`. IPv4 (nearly every client) is written digit by digit: `Display` costs several
/// times more on a path that runs per request.
fn push_addr(buf: &mut String, addr: SocketAddr) {
    let SocketAddr::V4(v4) = addr else {
        // Writing into a String cannot fail.
        let _ = write!(buf, "{addr}");
        return;
    };
    let mut digits = itoa::Buffer::new();
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            buf.push('.');
        }
        buf.push_str(digits.format(octet));
    }
    buf.push(':');
    buf.push_str(digits.format(v4.port()));
}

/// RFC 3339, UTC, microseconds: `2025-12-12T21:56:02.809082Z`.
fn write_timestamp(buf: &mut String, at: SystemTime) {
    let t: DateTime<Utc> = at.into();
    push_padded(buf, u64::try_from(t.year()).unwrap_or(0), 4);
    buf.push('-');
    push_padded(buf, t.month().into(), 2);
    buf.push('-');
    push_padded(buf, t.day().into(), 2);
    buf.push('T');
    push_padded(buf, t.hour().into(), 2);
    buf.push(':');
    push_padded(buf, t.minute().into(), 2);
    buf.push(':');
    push_padded(buf, t.second().into(), 2);
    buf.push('.');
    // A leap second shows as nanos >= 1e9; clamp rather than print 7 digits.
    push_padded(buf, t.timestamp_subsec_micros().min(999_999).into(), 6);
    buf.push('Z');
}

fn push_padded(buf: &mut String, value: u64, width: usize) {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(value);
    for _ in text.len()..width {
        buf.push('0');
    }
    buf.push_str(text);
}

/// What a byte means to the writers: most bytes are [`PLAIN`], so one table lookup per byte
/// decides whether a value can be copied as is (the common case).
const PLAIN: u8 = 0;
/// Forces quotes in text (space, `=`) but needs no escape.
const QUOTE: u8 = 1;
/// Must be escaped: `"`, `\`, C0 controls, DEL.
const ESCAPE: u8 = 2;
/// First byte of U+0080..U+00BF; escaped only for U+0080..U+009F (C1 controls).
const C2: u8 = 3;

static BYTE_CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = ESCAPE;
        b += 1;
    }
    table[0x7f] = ESCAPE;
    table[b'"' as usize] = ESCAPE;
    table[b'\\' as usize] = ESCAPE;
    table[b' ' as usize] = QUOTE;
    table[b'=' as usize] = QUOTE;
    table[0xc2] = C2;
    table
};

/// A text value, double-quoted (and escaped) only when it is empty or contains a space, `"`,
/// `=` or a control character, so ordinary values stay easy to grep.
fn push_text_value(buf: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let needs_quotes = value.is_empty()
        || bytes
            .iter()
            .enumerate()
            .any(|(i, &b)| match BYTE_CLASS[usize::from(b)] {
                PLAIN => false,
                // A lone backslash is unambiguous unquoted (`c:\dir`); only quoted values escape it.
                ESCAPE => b != b'\\',
                _ => b != 0xc2 || escape_len(bytes, i).is_some(),
            });
    if needs_quotes {
        buf.push('"');
        push_escaped(buf, value);
        buf.push('"');
    } else {
        buf.push_str(value);
    }
}

fn push_json_string(buf: &mut String, value: &str) {
    buf.push('"');
    push_escaped(buf, value);
    buf.push('"');
}

/// When the byte at `i` starts a character that must be escaped (`"`, `\`, or a control
/// character: C0, DEL or C1), the length of that character in bytes.
fn escape_len(bytes: &[u8], i: usize) -> Option<usize> {
    let b = *bytes.get(i)?;
    match BYTE_CLASS[usize::from(b)] {
        ESCAPE => Some(1),
        C2 if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => Some(2),
        _ => None,
    }
}

/// Escapes `"`, `\` and control characters (`\n`, `\t`, `\r`, else `\u00XX`): valid JSON
/// string content, and unambiguous inside a quoted text value. Runs of other characters are
/// copied in one go; escapes only ever split the string at character boundaries.
fn push_escaped(buf: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let Some(len) = escape_len(bytes, i) else {
            i += 1;
            continue;
        };
        buf.push_str(value.get(start..i).unwrap_or_default());
        match bytes[i] {
            b'"' => buf.push_str("\\\""),
            b'\\' => buf.push_str("\\\\"),
            b'\n' => buf.push_str("\\n"),
            b'\t' => buf.push_str("\\t"),
            b'\r' => buf.push_str("\\r"),
            _ => {
                let code = value.get(i..i + len).and_then(|c| c.chars().next());
                let _ = write!(buf, "\\u{:04x}", code.map_or(0, u32::from));
            }
        }
        i += len;
        start = i;
    }
    buf.push_str(value.get(start..).unwrap_or_default());
}
