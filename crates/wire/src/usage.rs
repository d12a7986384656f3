//! Normalised token usage and response summaries, and the decoding of OpenAI and Anthropic `usage`
//! and `error` objects into them. Providers disagree on field names and on what "input" includes,
//! so this is the one place that maps their numbers onto the OpenTelemetry meaning (input includes
//! cached input, output includes reasoning). Decoding is lenient: an odd value yields `None` for
//! that field instead of failing the whole object, and nothing is ever estimated.
//!
//! Every response is metered, so the usual shapes (plain integers, ASCII keys, no duplicates)
//! are read by a small strict reader ([`Strict`]) without serde; anything it is not sure of goes
//! to the serde decoders below, which define the behaviour.

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

use crate::json_scan::Strict;
use crate::Operation;

/// Normalised token usage. `input_tokens` INCLUDES cached input; `output_tokens` INCLUDES
/// reasoning. Each field is `None` when the provider did not report it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// OpenAI `prompt_tokens_details.cached_tokens` / `input_tokens_details.cached_tokens`;
    /// Anthropic `cache_read_input_tokens`.
    pub cache_read_input_tokens: Option<u64>,
    /// OpenAI `prompt_tokens_details.cache_write_tokens`, when reported; Anthropic
    /// `cache_creation_input_tokens`.
    pub cache_write_input_tokens: Option<u64>,
    /// `completion_tokens_details.reasoning_tokens` / `output_tokens_details.reasoning_tokens`.
    pub reasoning_output_tokens: Option<u64>,
}

impl Usage {
    /// True when the provider reported no token count at all.
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }
}

/// What the gateway learns from a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseSummary {
    pub usage: Usage,
    /// Top-level `model` of the response / first stream chunk / `response.created`'s model.
    pub response_model: Option<String>,
    /// A provider-reported error, as a short low-cardinality label fit for a metric: the error's
    /// `code` or `type`, `response_failed` / `response_incomplete` for Responses terminal
    /// events, or a generic fallback. `None` when no error was seen.
    pub error: Option<String>,
}

/// Fallback label for an error object in a JSON body that names neither a code nor a type.
pub(crate) const PROVIDER_ERROR: &str = "provider_error";
/// Fallback label for a mid-stream error that names neither a code nor a type.
pub(crate) const STREAM_ERROR: &str = "stream_error";
/// Label for stream event data that is not a JSON object.
pub(crate) const MALFORMED_EVENT: &str = "malformed_event";
pub(crate) const RESPONSE_FAILED: &str = "response_failed";
pub(crate) const RESPONSE_INCOMPLETE: &str = "response_incomplete";

/// Labels longer than this are cut: a label is a metric dimension, not a message.
const MAX_LABEL_LEN: usize = 64;

/// A JSON value reduced to what usage and error decoding can use. Anything else (objects,
/// arrays, negative or fractional numbers) is accepted and drained so one odd field never
/// fails its parent.
#[derive(Debug, Default)]
enum Scalar {
    Str(String),
    Count(u64),
    #[default]
    Other,
}

impl Scalar {
    fn count(self) -> Option<u64> {
        match self {
            Scalar::Count(n) => Some(n),
            _ => None,
        }
    }

    fn label(self) -> Option<String> {
        match self {
            Scalar::Str(s) => sanitize_label(&s),
            Scalar::Count(n) => Some(n.to_string()),
            Scalar::Other => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Count(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(u64::try_from(v).map_or(Scalar::Other, Scalar::Count))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        // Some OpenAI-compatible servers print counts as `12.0`; accept exact integers only.
        let exact =
            v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 18_446_744_073_709_551_615.0;
        Ok(if exact {
            Scalar::Count(v as u64)
        } else {
            Scalar::Other
        })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_owned()))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

/// A details object; a non-object value (e.g. `null`, or junk) reads as empty details.
#[derive(Default)]
struct Details {
    cached: Option<u64>,
    cache_write: Option<u64>,
    reasoning: Option<u64>,
}

#[derive(Deserialize, Default)]
struct RawDetails {
    #[serde(default)]
    cached_tokens: Scalar,
    #[serde(default)]
    cache_write_tokens: Scalar,
    #[serde(default)]
    reasoning_tokens: Scalar,
}

impl<'de> Deserialize<'de> for Details {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Option::<Lenient<RawDetails>>::deserialize(d)?;
        let raw = raw.and_then(|l| l.0).unwrap_or_default();
        Ok(Details {
            cached: raw.cached_tokens.count(),
            cache_write: raw.cache_write_tokens.count(),
            reasoning: raw.reasoning_tokens.count(),
        })
    }
}

impl Details {
    fn read_plain(r: &mut Strict) -> Option<Details> {
        if r.peek()? != b'{' {
            return r.skip().map(|()| Details::default());
        }
        let (mut d, mut seen) = (Details::default(), 0);
        r.object(|key, r| match key {
            b"cached_tokens" => count(r, &mut seen, 0, &mut d.cached),
            b"cache_write_tokens" => count(r, &mut seen, 1, &mut d.cache_write),
            b"reasoning_tokens" => count(r, &mut seen, 2, &mut d.reasoning),
            _ => r.skip(),
        })?;
        Some(d)
    }
}

/// Reads a counted field for the strict readers. serde refuses an object that repeats a field,
/// so a repeat is left to it (`None`) rather than guessed at; `seen` has one bit per field.
fn count(r: &mut Strict, seen: &mut u8, field: u8, slot: &mut Option<u64>) -> Option<()> {
    first_read(seen, field)?;
    *slot = r.item()?.count();
    Some(())
}

fn first_read(seen: &mut u8, field: u8) -> Option<()> {
    let bit = 1 << field;
    (*seen & bit == 0).then(|| *seen |= bit)
}

/// `Some(T)` when the value is an object that decodes as `T`, `None` for any other value.
struct Lenient<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = <&serde_json::value::RawValue>::deserialize(d)?;
        Ok(Lenient(object_from(raw.get().as_bytes())))
    }
}

/// Both OpenAI spellings: Chat/Completions/Embeddings say prompt/completion, Responses says
/// input/output. Compatible servers sometimes mix them, so each is the other's fallback.
#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: Scalar,
    #[serde(default)]
    completion_tokens: Scalar,
    #[serde(default)]
    input_tokens: Scalar,
    #[serde(default)]
    output_tokens: Scalar,
    #[serde(default)]
    prompt_tokens_details: Details,
    #[serde(default)]
    completion_tokens_details: Details,
    #[serde(default)]
    input_tokens_details: Details,
    #[serde(default)]
    output_tokens_details: Details,
}

/// An OpenAI `usage` object's counts under both spellings, before the operation picks one.
#[derive(Default)]
struct OpenAiCounts {
    prompt: Option<u64>,
    completion: Option<u64>,
    input: Option<u64>,
    output: Option<u64>,
    prompt_details: Details,
    completion_details: Details,
    input_details: Details,
    output_details: Details,
}

impl From<OpenAiUsage> for OpenAiCounts {
    fn from(u: OpenAiUsage) -> Self {
        OpenAiCounts {
            prompt: u.prompt_tokens.count(),
            completion: u.completion_tokens.count(),
            input: u.input_tokens.count(),
            output: u.output_tokens.count(),
            prompt_details: u.prompt_tokens_details,
            completion_details: u.completion_tokens_details,
            input_details: u.input_tokens_details,
            output_details: u.output_tokens_details,
        }
    }
}

impl OpenAiCounts {
    /// The strict read; `None` when the serde decoder must decide.
    fn read_plain(r: &mut Strict) -> Option<Self> {
        let (mut c, mut seen) = (OpenAiCounts::default(), 0);
        r.object(|key, r| match key {
            b"prompt_tokens" => count(r, &mut seen, 0, &mut c.prompt),
            b"completion_tokens" => count(r, &mut seen, 1, &mut c.completion),
            b"input_tokens" => count(r, &mut seen, 2, &mut c.input),
            b"output_tokens" => count(r, &mut seen, 3, &mut c.output),
            b"prompt_tokens_details" => details(r, &mut seen, 4, &mut c.prompt_details),
            b"completion_tokens_details" => details(r, &mut seen, 5, &mut c.completion_details),
            b"input_tokens_details" => details(r, &mut seen, 6, &mut c.input_details),
            b"output_tokens_details" => details(r, &mut seen, 7, &mut c.output_details),
            _ => r.skip(),
        })?;
        Some(c)
    }
}

fn details(r: &mut Strict, seen: &mut u8, field: u8, slot: &mut Details) -> Option<()> {
    first_read(seen, field)?;
    *slot = Details::read_plain(r)?;
    Some(())
}

/// Decodes `T` from a JSON object. serde's derived structs also accept arrays (fields by
/// position), which would read junk like `[1]` as counts, so anything but an object is refused.
fn object_from<'a, T: Deserialize<'a>>(value: &'a [u8]) -> Option<T> {
    let first = value.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return None;
    }
    serde_json::from_slice(value).ok()
}

/// Decodes an OpenAI `usage` value. `None` for `null` or anything that is not an object, so a
/// `"usage":null` never erases usage already seen.
pub(crate) fn parse_openai_usage(op: Operation, value: &[u8]) -> Option<Usage> {
    let mut r = Strict::new(value);
    let u = match OpenAiCounts::read_plain(&mut r).filter(|_| r.at_end()) {
        Some(counts) => counts,
        None => object_from::<OpenAiUsage>(value)?.into(),
    };
    Some(openai_usage(op, u))
}

fn openai_usage(op: Operation, u: OpenAiCounts) -> Usage {
    let (input, output, in_details, out_details) = if op == Operation::Responses {
        (
            u.input.or(u.prompt),
            u.output.or(u.completion),
            u.input_details,
            u.output_details,
        )
    } else {
        (
            u.prompt.or(u.input),
            u.completion.or(u.output),
            u.prompt_details,
            u.completion_details,
        )
    };
    if op == Operation::Embeddings {
        // Embeddings produce no output tokens; `total_tokens` is not an output count.
        return Usage {
            input_tokens: input,
            ..Usage::default()
        };
    }
    Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_input_tokens: in_details.cached,
        cache_write_input_tokens: in_details.cache_write,
        reasoning_output_tokens: out_details.reasoning,
    }
}

/// Anthropic `usage` as reported, before normalisation. A stream reports it in pieces
/// (`message_start`, then `message_delta`s that restate some fields), so the raw fields are kept
/// until the end: normalising adds cache counts into input, which cannot be undone per field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AnthropicUsage {
    input: Option<u64>,
    output: Option<u64>,
    cache_creation: Option<u64>,
    cache_read: Option<u64>,
}

#[derive(Deserialize)]
struct RawAnthropicUsage {
    #[serde(default)]
    input_tokens: Scalar,
    #[serde(default)]
    output_tokens: Scalar,
    #[serde(default)]
    cache_creation_input_tokens: Scalar,
    #[serde(default)]
    cache_read_input_tokens: Scalar,
}

impl AnthropicUsage {
    /// Decodes an Anthropic `usage` value; `None` for `null` or anything but an object.
    pub(crate) fn parse(value: &[u8]) -> Option<Self> {
        let mut r = Strict::new(value);
        if let Some(plain) = Self::read_plain(&mut r).filter(|_| r.at_end()) {
            return Some(plain);
        }
        let raw: RawAnthropicUsage = object_from(value)?;
        Some(AnthropicUsage {
            input: raw.input_tokens.count(),
            output: raw.output_tokens.count(),
            cache_creation: raw.cache_creation_input_tokens.count(),
            cache_read: raw.cache_read_input_tokens.count(),
        })
    }

    /// The strict read; `None` when the serde decoder must decide.
    fn read_plain(r: &mut Strict) -> Option<Self> {
        let (mut u, mut seen) = (AnthropicUsage::default(), 0);
        r.object(|key, r| match key {
            b"input_tokens" => count(r, &mut seen, 0, &mut u.input),
            b"output_tokens" => count(r, &mut seen, 1, &mut u.output),
            b"cache_creation_input_tokens" => count(r, &mut seen, 2, &mut u.cache_creation),
            b"cache_read_input_tokens" => count(r, &mut seen, 3, &mut u.cache_read),
            _ => r.skip(),
        })?;
        Some(u)
    }

    /// Applies a later report: Anthropic's stream counts are cumulative, so every field the
    /// newer report carries replaces the old one (summing would count twice), and a field it
    /// leaves out or sends as `null` keeps its earlier value.
    pub(crate) fn overwrite(&mut self, newer: AnthropicUsage) {
        self.input = newer.input.or(self.input);
        self.output = newer.output.or(self.output);
        self.cache_creation = newer.cache_creation.or(self.cache_creation);
        self.cache_read = newer.cache_read.or(self.cache_read);
    }

    /// Anthropic's `input_tokens` excludes cache reads and writes; ours includes both. A cache
    /// count alone still says how much input there was, so input is `None` only when all three
    /// are missing. Thinking tokens are not split out (output already includes them).
    pub(crate) fn normalise(self) -> Usage {
        let parts = [self.input, self.cache_read, self.cache_creation];
        let input = parts.iter().any(Option::is_some).then(|| {
            parts
                .iter()
                .flatten()
                .fold(0u64, |sum, n| sum.saturating_add(*n))
        });
        Usage {
            input_tokens: input,
            output_tokens: self.output,
            cache_read_input_tokens: self.cache_read,
            cache_write_input_tokens: self.cache_creation,
            reasoning_output_tokens: None,
        }
    }
}

/// Decodes a `usage` value in the wire format of `op`. `None` when there is nothing to record:
/// `null`, not an object, or an operation whose numbers are not consumption (count_tokens).
pub(crate) fn parse_usage(op: Operation, value: &[u8]) -> Option<Usage> {
    match op {
        Operation::CountTokens => None,
        Operation::Messages => AnthropicUsage::parse(value).map(AnthropicUsage::normalise),
        _ => parse_openai_usage(op, value),
    }
}

/// For a usage object at the start of `bytes` (a chunk, say) that the strict reader accepts
/// whole: what [`parse_usage`] would say of it, and its length. `None` when the general path
/// must decide (including when the object does not end within `bytes`).
pub(crate) fn parse_usage_prefix(op: Operation, bytes: &[u8]) -> Option<(Usage, usize)> {
    let mut r = Strict::new(bytes);
    let usage = match op {
        Operation::CountTokens => return None,
        Operation::Messages => AnthropicUsage::read_plain(&mut r)?.normalise(),
        _ => openai_usage(op, OpenAiCounts::read_plain(&mut r)?),
    };
    Some((usage, r.position()))
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default)]
    code: Scalar,
    #[serde(default, rename = "type")]
    kind: Scalar,
}

/// Turns an `error` value into a metric label: `None` for `null`, the object's `code` or `type`
/// when it has one, else `fallback` (a bare string or an object without either still means an
/// error happened).
pub(crate) fn error_label(value: &[u8], fallback: &str) -> Option<String> {
    let value = value.trim_ascii();
    if value.is_empty() || value == b"null" {
        return None;
    }
    let named =
        object_from::<ErrorObject>(value).and_then(|e| e.code.label().or_else(|| e.kind.label()));
    Some(named.unwrap_or_else(|| fallback.to_owned()))
}

/// A string or integer value as a metric label (e.g. a bare `code`); `None` for anything else.
pub(crate) fn scalar_label(value: &[u8]) -> Option<String> {
    serde_json::from_slice::<Scalar>(value).ok()?.label()
}

/// Decodes a JSON string value (e.g. a `model`); `None` for any other value.
pub(crate) fn parse_string(value: &[u8]) -> Option<String> {
    // The usual model name: quoted, no escapes, no control bytes. serde would check the same
    // UTF-8 and copy the same bytes.
    let inner = value
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""));
    if let Some(inner) = inner.filter(|s| s.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\')) {
        return std::str::from_utf8(inner).ok().map(str::to_owned);
    }
    match serde_json::from_slice::<Scalar>(value).ok()? {
        Scalar::Str(s) => Some(s),
        _ => None,
    }
}

/// Keeps labels bounded and safe as Prometheus label values: ASCII word characters, `.` and
/// `-` only, at most [`MAX_LABEL_LEN`] characters. `None` for an empty label.
pub(crate) fn sanitize_label(s: &str) -> Option<String> {
    let label: String = s
        .chars()
        .take(MAX_LABEL_LEN)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    (!label.is_empty()).then_some(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_counts() {
        let u = parse_openai_usage(
            Operation::ChatCompletions,
            br#"{"prompt_tokens":12.0,"completion_tokens":-1,"prompt_tokens_details":7,
                "completion_tokens_details":{"reasoning_tokens":"x"}}"#,
        );
        assert_eq!(
            u,
            Some(Usage {
                input_tokens: Some(12),
                ..Usage::default()
            })
        );
        assert_eq!(
            parse_openai_usage(Operation::ChatCompletions, b"null"),
            None
        );
        assert_eq!(parse_openai_usage(Operation::ChatCompletions, b"[1]"), None);
    }

    #[test]
    fn anthropic_usage_normalises_and_overwrites() {
        let start = AnthropicUsage::parse(
            br#"{"input_tokens":10,"cache_creation_input_tokens":null,"cache_read_input_tokens":90,
                "output_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":0},"service_tier":"standard"}"#,
        );
        let mut u = start.expect("object");
        assert_eq!(
            u.normalise(),
            Usage {
                input_tokens: Some(100),
                output_tokens: Some(1),
                cache_read_input_tokens: Some(90),
                ..Usage::default()
            }
        );
        let delta = AnthropicUsage::parse(
            br#"{"output_tokens":40,"cache_creation_input_tokens":5,"cache_read_input_tokens":null}"#,
        );
        u.overwrite(delta.expect("object"));
        assert_eq!(
            u.normalise(),
            Usage {
                input_tokens: Some(105),
                output_tokens: Some(40),
                cache_read_input_tokens: Some(90),
                cache_write_input_tokens: Some(5),
                reasoning_output_tokens: None,
            }
        );
        assert_eq!(AnthropicUsage::parse(b"null"), None);
        assert_eq!(AnthropicUsage::parse(b"[1,2]"), None);
    }

    #[test]
    fn anthropic_input_needs_some_input_field() {
        let norm = |json: &[u8]| AnthropicUsage::parse(json).map(AnthropicUsage::normalise);
        let only_output = norm(br#"{"output_tokens":3}"#).expect("object");
        assert_eq!(only_output.input_tokens, None);
        let only_cache = norm(br#"{"cache_read_input_tokens":7,"output_tokens":3}"#);
        assert_eq!(only_cache.and_then(|u| u.input_tokens), Some(7));
        let huge = format!(
            r#"{{"input_tokens":{m},"cache_read_input_tokens":{m}}}"#,
            m = u64::MAX
        );
        assert_eq!(
            norm(huge.as_bytes()).and_then(|u| u.input_tokens),
            Some(u64::MAX)
        );
        assert_eq!(
            parse_usage(Operation::CountTokens, br#"{"input_tokens":5}"#),
            None
        );
    }

    #[test]
    fn error_labels() {
        assert_eq!(error_label(b"null", "f"), None);
        assert_eq!(
            error_label(br#"{"code":null,"type":"server_error"}"#, "f").as_deref(),
            Some("server_error")
        );
        assert_eq!(
            error_label(br#"{"code":429,"status":"RESOURCE_EXHAUSTED"}"#, "f").as_deref(),
            Some("429")
        );
        assert_eq!(error_label(br#""boom""#, "f").as_deref(), Some("f"));
        assert_eq!(
            error_label(br#"{"message":"x"}"#, "f").as_deref(),
            Some("f")
        );
        assert_eq!(
            error_label(br#"{"code":"a b/c"}"#, "f").as_deref(),
            Some("a_b_c")
        );
        let long = format!(r#"{{"code":"{}"}}"#, "x".repeat(500));
        assert_eq!(
            error_label(long.as_bytes(), "f").map(|l| l.len()),
            Some(MAX_LABEL_LEN)
        );
    }
}
