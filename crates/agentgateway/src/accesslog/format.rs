//! Formatting one access-log line from a finished record, in text or JSON. Runs on every request,
//! so it writes straight into the caller's buffer (key prefixes built at compile time, numbers via
//! `itoa`, escapes in place, see [`super::values`]) and never allocates per field.
//!
//! Both formats share the same key order and the same "leave unknown keys out" rule; only the
//! way a key/value pair is written differs, which is all [`Line`] encapsulates.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use super::timestamp;
use super::values::{push_addr, push_decimal, push_json_string, push_text_value};
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

/// Defines the names of [`Key`]s, indexed by the key's discriminant, and what is written before
/// each key's value in either format, built at compile time so a key costs one copy.
macro_rules! key_names {
    ($($name:literal),* $(,)?) => {
        pub(super) const KEY_NAMES: [&str; 30] = [$($name),*];
        /// ` name=`.
        const TEXT_PREFIXES: [&str; 30] = [$(concat!(" ", $name, "=")),*];
        /// `,"name":`; built-in names are plain ASCII, nothing to escape.
        const JSON_PREFIXES: [&str; 30] = [$(concat!(",\"", $name, "\":")),*];
    };
}

key_names!(
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
);

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

/// One line being written into a caller's buffer.
pub(super) struct Line<'a> {
    buf: &'a mut String,
    json: bool,
    skip: KeySet,
}

// === impl Line ===

impl<'a> Line<'a> {
    /// Starts a line in `buf` (appended to) with its timestamp, level and message.
    pub(super) fn start(
        buf: &'a mut String,
        format: LogFormat,
        skip: KeySet,
        at: SystemTime,
    ) -> Line<'a> {
        let json = format == LogFormat::Json;
        if json {
            buf.push_str(r#"{"timestamp":""#);
            timestamp::write(buf, at);
            buf.push_str(r#"","level":"info","message":"request""#);
        } else {
            timestamp::write(buf, at);
            buf.push_str("\tinfo\trequest");
        }
        Line { buf, json, skip }
    }

    pub(super) fn finish(self) {
        if self.json {
            self.buf.push('}');
        }
    }

    /// Writes the key's name and separator; false when the key is left out.
    fn key(&mut self, key: Key) -> bool {
        if self.skip.contains(key) {
            return false;
        }
        let prefixes = if self.json {
            &JSON_PREFIXES
        } else {
            &TEXT_PREFIXES
        };
        self.buf.push_str(prefixes[key as usize]);
        true
    }

    /// A `fields.add` name, which the user chose: escaped in JSON. In text it is written as is:
    /// a key is never quoted, and a YAML map key with spaces is the user's own choice.
    fn custom_name(&mut self, name: &str) {
        if self.json {
            self.buf.push(',');
            push_json_string(self.buf, name);
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
            push_json_string(self.buf, value);
        } else {
            push_text_value(self.buf, value);
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
            push_decimal(self.buf, value.normalize());
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
            push_addr(self.buf, value);
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
                    push_text_value(self.buf, &text);
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
