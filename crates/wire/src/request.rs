//! Request bodies of the OpenAI-style APIs: finding what the gateway routes and meters on
//! (`model`, `stream`, `stream_options.include_usage`) and rewriting exactly those bytes.
//!
//! The scan walks the top-level object ([`top_level`]), stepping over the values it does not need
//! at memchr speed, and parses only the few it reads (with serde_json, strictly), so a large
//! prompt is never copied, built into a DOM or even parsed. The rewrite splices new bytes into the original body at the spans the scan recorded, so
//! the body the provider sees is byte-identical to the client's except for what changed.

mod top_level;

use bytes::Bytes;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::fmt;
use std::ops::Range;

/// What the gateway needs from a request body; see [`scan_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    model: String,
    model_span: Range<usize>,
    stream: bool,
    stream_options: StreamOptions,
}

/// The top-level `stream_options` as found, with the spans a rewrite needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StreamOptions {
    Absent,
    Null(Range<usize>),
    Object {
        /// Index just past the object's `{`.
        open_end: usize,
        empty: bool,
        /// Span of the `include_usage` value, and the value when it is a bool.
        include_usage: Option<(Range<usize>, Option<bool>)>,
    },
}

impl RequestInfo {
    /// The unescaped top-level `model` string.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Whether top-level `stream` is `true` (absent, `null` or `false` mean no).
    pub fn stream(&self) -> bool {
        self.stream
    }

    /// `stream_options.include_usage` when present as a bool.
    pub fn include_usage(&self) -> Option<bool> {
        match &self.stream_options {
            StreamOptions::Object {
                include_usage: Some((_, value)),
                ..
            } => *value,
            _ => None,
        }
    }
}

/// Why a request body was rejected. Messages are written for the API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Zero bytes or only whitespace.
    Empty,
    /// Not valid JSON; the message includes serde_json's line and column.
    Malformed(String),
    /// Valid JSON whose top level is not an object.
    NotAnObject,
    /// No top-level `model`.
    MissingModel,
    /// `model` present but not a non-empty string.
    InvalidModel,
    /// A field the gateway reads has the wrong type (its JSON path is given).
    InvalidField(&'static str),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Empty => f.write_str("the request body is empty; expected a JSON object"),
            RequestError::Malformed(e) => write!(f, "the request body is not valid JSON: {e}"),
            RequestError::NotAnObject => f.write_str("the request body must be a JSON object"),
            RequestError::MissingModel => f.write_str("you must provide a model parameter"),
            RequestError::InvalidModel => {
                f.write_str("the model parameter must be a non-empty string")
            }
            RequestError::InvalidField("stream") => {
                f.write_str("the stream parameter must be a boolean")
            }
            RequestError::InvalidField(field) => {
                write!(f, "invalid type for the {field} parameter")
            }
        }
    }
}

impl std::error::Error for RequestError {}

/// Deserializes a member as its raw bytes, keeping `null` visible (a plain `Option` would turn
/// `"model": null` into "absent").
fn raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// The value spans of the top-level members the gateway reads.
#[derive(Default)]
struct TopLevel {
    model: Option<Range<usize>>,
    stream: Option<Range<usize>>,
    stream_options: Option<Range<usize>>,
}

impl TopLevel {
    /// Records `member` if it is one we read; a second one is an error, since the provider
    /// might read a different one than the gateway routed on.
    fn note(&mut self, member: top_level::Member<'_>) -> Result<(), String> {
        let key: std::borrow::Cow<'_, [u8]> = match memchr::memchr(b'\\', member.key) {
            None => member.key.into(),
            // An escaped key (`"mod\u0065l"`) is rare: unescape it the standard way.
            Some(_) => {
                let quoted = [b"\"", member.key, b"\""].concat();
                match serde_json::from_slice::<String>(&quoted) {
                    Ok(key) => key.into_bytes().into(),
                    Err(e) => return Err(format!("invalid key: {e}")),
                }
            }
        };
        let (slot, name) = match &*key {
            b"model" => (&mut self.model, "model"),
            b"stream" => (&mut self.stream, "stream"),
            b"stream_options" => (&mut self.stream_options, "stream_options"),
            _ => return Ok(()),
        };
        match slot.replace(member.value) {
            Some(_) => Err(format!("duplicate field `{name}`")),
            None => Ok(()),
        }
    }
}

#[derive(Deserialize)]
struct StreamOptionsObject<'a> {
    #[serde(default, borrow, deserialize_with = "raw")]
    include_usage: Option<&'a RawValue>,
}

/// Scans a request body for [`RequestInfo`] in one pass. Only top-level keys count. The body
/// must be UTF-8 JSON; a duplicated `model`, `stream` or `stream_options` key is rejected as
/// malformed, since the provider might read a different one than the gateway routed on.
pub fn scan_request(body: &[u8]) -> Result<RequestInfo, RequestError> {
    let Some(&first) = body.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(RequestError::Empty);
    };
    if first != b'{' {
        // serde would happily read a struct from an array, so shape is checked up front.
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Ok(_) => RequestError::NotAnObject,
                Err(e) => RequestError::Malformed(e.to_string()),
            },
        );
    }
    let mut top = TopLevel::default();
    top_level::members(body, |member| top.note(member)).map_err(RequestError::Malformed)?;
    let model_span = top.model.ok_or(RequestError::MissingModel)?;
    let model = match serde_json::from_slice::<String>(value(body, &model_span)) {
        Ok(model) if !model.is_empty() => model,
        _ => return Err(RequestError::InvalidModel),
    };
    let stream = match top.stream.as_ref().map(|span| value(body, span)) {
        None | Some(b"null" | b"false") => false,
        Some(b"true") => true,
        Some(_) => return Err(RequestError::InvalidField("stream")),
    };
    let stream_options = match top.stream_options {
        None => StreamOptions::Absent,
        Some(span) => stream_options(body, span)?,
    };
    Ok(RequestInfo {
        model,
        model_span,
        stream,
        stream_options,
    })
}

fn value<'a>(body: &'a [u8], span: &Range<usize>) -> &'a [u8] {
    body.get(span.clone()).unwrap_or_default()
}

fn stream_options(body: &[u8], span: Range<usize>) -> Result<StreamOptions, RequestError> {
    let text = std::str::from_utf8(value(body, &span))
        .map_err(|_| RequestError::InvalidField("stream_options"))?;
    if text == "null" {
        return Ok(StreamOptions::Null(span));
    }
    if !text.starts_with('{') {
        return Err(RequestError::InvalidField("stream_options"));
    }
    let object: StreamOptionsObject<'_> =
        serde_json::from_str(text).map_err(|_| RequestError::InvalidField("stream_options"))?;
    let include_usage = match object.include_usage {
        None => None,
        Some(value) => {
            let parsed = match value.get() {
                "true" => Some(true),
                "false" => Some(false),
                "null" => None,
                _ => return Err(RequestError::InvalidField("stream_options.include_usage")),
            };
            Some((span_of(body, value), parsed))
        }
    };
    let empty = text[1..].trim_start().starts_with('}');
    Ok(StreamOptions::Object {
        open_end: span.start + 1,
        empty,
        include_usage,
    })
}

/// Where a borrowed raw value sits in `body`. serde_json hands out sub-slices of the input for
/// borrowed raw values, so the offset is the distance between the two addresses; the result is
/// checked, and an impossible span becomes empty (a rewrite then changes nothing there).
fn span_of(body: &[u8], raw: &RawValue) -> Range<usize> {
    let text = raw.get().as_bytes();
    let start = (text.as_ptr() as usize).wrapping_sub(body.as_ptr() as usize);
    let span = start..start.wrapping_add(text.len());
    match body.get(span.clone()) {
        Some(found) if found.as_ptr() == text.as_ptr() => span,
        _ => 0..0,
    }
}

/// Rewrites `body` by splicing: `new_model` replaces the model value; `force_include_usage`
/// makes `stream_options.include_usage` true (inserting the member or the whole
/// `stream_options` when missing, and keeping any other stream options). `info` must come from
/// [`scan_request`] on this same body. Returns `body` itself, uncopied, when nothing changes.
pub fn rewrite_request(
    body: &Bytes,
    info: &RequestInfo,
    new_model: Option<&str>,
    force_include_usage: bool,
) -> Bytes {
    let mut parts = rewrite_request_parts(body, info, new_model, force_include_usage);
    match parts.len() {
        1 => parts.pop().unwrap_or_default(),
        _ => Bytes::from(parts.concat()),
    }
}

/// [`rewrite_request`] without the final copy: the new body as pieces to send one after the
/// other — slices of `body` (shared, not copied) with the edited bytes between them. A 200 KB
/// prompt whose model is renamed is forwarded without being copied again.
pub fn rewrite_request_parts(
    body: &Bytes,
    info: &RequestInfo,
    new_model: Option<&str>,
    force_include_usage: bool,
) -> Vec<Bytes> {
    let mut edits: Vec<(Range<usize>, String)> = Vec::with_capacity(2);
    if let Some(model) = new_model {
        let quoted = serde_json::to_string(model).unwrap_or_default();
        if body.get(info.model_span.clone()) != Some(quoted.as_bytes()) {
            edits.push((info.model_span.clone(), quoted));
        }
    }
    if force_include_usage {
        edits.extend(include_usage_edit(info));
    }
    // Edits touch different members, so they never overlap; sorted, they apply front to back.
    edits.sort_by_key(|(r, _)| (r.start, r.end));
    splice(body, edits).unwrap_or_else(|| vec![body.clone()])
}

/// Applies sorted edits; `None` if a span does not fit the body (an `info` scanned from some
/// other body), in which case the caller forwards the body unchanged rather than corrupt it.
fn splice(body: &Bytes, edits: Vec<(Range<usize>, String)>) -> Option<Vec<Bytes>> {
    let mut parts = Vec::with_capacity(2 * edits.len() + 1);
    let mut at = 0;
    for (range, text) in edits {
        // Every real span ends after the opening `{`; 0..0 marks a span the scan could not place.
        if range.end == 0 || range.start < at || range.start > range.end || range.end > body.len() {
            return None;
        }
        if range.start > at {
            parts.push(body.slice(at..range.start));
        }
        parts.push(Bytes::from(text));
        at = range.end;
    }
    if at < body.len() || parts.is_empty() {
        parts.push(body.slice(at..));
    }
    Some(parts)
}

fn include_usage_edit(info: &RequestInfo) -> Option<(Range<usize>, String)> {
    const FRESH: &str = r#"{"include_usage":true}"#;
    match &info.stream_options {
        StreamOptions::Absent => {
            // Right after the model value: the object is known to have a member there.
            let at = info.model_span.end;
            Some((at..at, format!(r#","stream_options":{FRESH}"#)))
        }
        StreamOptions::Null(span) => Some((span.clone(), FRESH.to_owned())),
        StreamOptions::Object {
            include_usage: Some((_, Some(true))),
            ..
        } => None,
        StreamOptions::Object {
            include_usage: Some((span, _)),
            ..
        } => Some((span.clone(), "true".to_owned())),
        StreamOptions::Object {
            open_end,
            empty,
            include_usage: None,
        } => {
            let comma = if *empty { "" } else { "," };
            Some((
                *open_end..*open_end,
                format!(r#""include_usage":true{comma}"#),
            ))
        }
    }
}
