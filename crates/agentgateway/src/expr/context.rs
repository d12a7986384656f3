//! The CEL context as a view of a [`RequestRecord`]: which variables exist (`apiKey`, `request`,
//! `source`, `llm`, `response`), which keys each has, and what each key's value is.
//!
//! Both evaluation paths read this one definition: the fast path looks a single key up with
//! [`field`] and converts only that value, the interpreter builds whole maps from the same
//! [`field`] calls (borrowing the record's strings, so building a context copies little). Having
//! one source of truth is what makes the two paths agree.
//!
//! Every variable is always bound, as a map holding only the keys whose values are known; for an
//! anonymous caller `apiKey` is the empty map. A missing key is then an evaluation error (no
//! value) while `has(apiKey.user) ? apiKey.user : 'anonymous'` still works, which it could not if
//! the variable itself were undeclared.
//!
//! Headers that carry credentials are replaced by `<redacted>` here, at the only place header
//! values enter CEL, so no expression (log field, metric label, filter) can leak a key.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use http::HeaderMap;
use rust_decimal::prelude::ToPrimitive;

use super::ExprValue;
use crate::record::RequestRecord;

/// What a credential header reads as in any expression.
pub(crate) const REDACTED: &str = "<redacted>";

/// Headers whose values are secrets (the caller's key, or a provider key some clients send).
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
];

/// A top-level CEL variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Root {
    ApiKey,
    Request,
    Source,
    Llm,
    Response,
}

const REQUEST_KEYS: &[&str] = &["method", "path", "headers"];
const SOURCE_KEYS: &[&str] = &["address"];
const LLM_KEYS: &[&str] = &[
    "requestModel",
    "responseModel",
    "provider",
    "inputTokens",
    "outputTokens",
    "streaming",
    "cost",
];
const RESPONSE_KEYS: &[&str] = &["code"];

// === impl Root ===

impl Root {
    pub(super) const ALL: [Root; 5] = [
        Root::ApiKey,
        Root::Request,
        Root::Source,
        Root::Llm,
        Root::Response,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Root::ApiKey => "apiKey",
            Root::Request => "request",
            Root::Source => "source",
            Root::Llm => "llm",
            Root::Response => "response",
        }
    }

    pub(super) fn parse(name: &str) -> Option<Root> {
        Root::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// One value of the context, borrowed from the record where it can be.
pub(super) enum Field<'r> {
    Str(Cow<'r, str>),
    Int(i64),
    Double(f64),
    Bool(bool),
    Json(&'r serde_json::Value),
    Headers(&'r HeaderMap),
}

/// The value of `root.key`, or `None` when the record does not know it (the key is then absent
/// from the map, so `has(root.key)` is false and reading it is an error).
pub(super) fn field<'r>(rec: &'r RequestRecord, root: Root, key: &str) -> Option<Field<'r>> {
    match root {
        Root::ApiKey => {
            let identity = rec.identity.as_deref()?;
            // The key's own name, user and team win over metadata entries of the same name.
            let own = match key {
                "name" => identity.name.as_deref(),
                "user" => identity.user.as_deref(),
                "team" => identity.team.as_deref(),
                _ => None,
            };
            match own {
                Some(text) => Some(Field::Str(Cow::Borrowed(text))),
                None => identity.metadata.get(key).map(Field::Json),
            }
        }
        Root::Request => match key {
            "method" => Some(Field::Str(Cow::Borrowed(rec.method.as_str()))),
            "path" => Some(Field::Str(Cow::Borrowed(&rec.path))),
            "headers" => rec.headers.as_ref().map(Field::Headers),
            _ => None,
        },
        Root::Source => {
            (key == "address").then(|| Field::Str(Cow::Owned(rec.src_addr.ip().to_string())))
        }
        Root::Llm => llm_field(rec, key),
        Root::Response => (key == "code").then_some(Field::Int(i64::from(rec.status))),
    }
}

fn llm_field<'r>(rec: &'r RequestRecord, key: &str) -> Option<Field<'r>> {
    let llm = &rec.llm;
    let tokens = |n: Option<u64>| n.map(|n| Field::Int(i64::try_from(n).unwrap_or(i64::MAX)));
    match key {
        "requestModel" => llm
            .request_model
            .as_deref()
            .map(|m| Field::Str(Cow::Borrowed(m))),
        "responseModel" => llm
            .response_model
            .as_deref()
            .map(|m| Field::Str(Cow::Borrowed(m))),
        "provider" => rec.system().map(|s| Field::Str(Cow::Borrowed(s))),
        "inputTokens" => tokens(llm.usage.input_tokens),
        "outputTokens" => tokens(llm.usage.output_tokens),
        // Whether the call streamed is only known once it is known to be an LLM call.
        "streaming" => llm.operation.map(|_| Field::Bool(llm.streaming)),
        // USD as a CEL double: expressions compare and label, they do not do accounting.
        "cost" => llm.cost.total().and_then(|c| c.to_f64()).map(Field::Double),
        _ => None,
    }
}

/// Calls `f` with every key `root` may have for this record.
fn for_each_key<'r>(rec: &'r RequestRecord, root: Root, mut f: impl FnMut(&'r str)) {
    let fixed: &[&str] = match root {
        Root::ApiKey => {
            if let Some(identity) = rec.identity.as_deref() {
                identity.metadata.keys().for_each(|k| f(k));
                // A name also in the metadata is visited twice; both visits read the same value.
                ["name", "user", "team"].into_iter().for_each(&mut f);
            }
            return;
        }
        Root::Request => REQUEST_KEYS,
        Root::Source => SOURCE_KEYS,
        Root::Llm => LLM_KEYS,
        Root::Response => RESPONSE_KEYS,
    };
    fixed.iter().for_each(|k| f(k));
}

// === the fast path: one value, straight from the record ===

/// Resolves `root.path...` without the interpreter. Same result as CEL would give: a missing
/// key, or selecting a field of a non-map, is `None`.
pub(super) fn lookup(rec: &RequestRecord, root: Root, path: &[String]) -> Option<ExprValue> {
    let Some((key, rest)) = path.split_first() else {
        return Some(root_value(rec, root));
    };
    match field(rec, root, key)? {
        Field::Json(json) => {
            let mut value = json;
            for segment in rest {
                value = value.as_object()?.get(segment.as_str())?;
            }
            Some(ExprValue::from_json(value))
        }
        Field::Headers(headers) => match rest {
            [] => Some(headers_value(headers)),
            [name] => header_text(headers, name).map(|v| ExprValue::String(v.into_owned())),
            _ => None,
        },
        scalar if rest.is_empty() => Some(scalar_value(scalar)),
        _ => None,
    }
}

fn root_value(rec: &RequestRecord, root: Root) -> ExprValue {
    let mut map = BTreeMap::new();
    for_each_key(rec, root, |key| {
        if let Some(value) = field(rec, root, key) {
            map.insert(key.to_owned(), scalar_value(value));
        }
    });
    ExprValue::Map(map)
}

fn scalar_value(field: Field<'_>) -> ExprValue {
    match field {
        Field::Str(s) => ExprValue::String(s.into_owned()),
        Field::Int(i) => ExprValue::Int(i),
        Field::Double(d) => ExprValue::Float(d),
        Field::Bool(b) => ExprValue::Bool(b),
        Field::Json(json) => ExprValue::from_json(json),
        Field::Headers(headers) => headers_value(headers),
    }
}

fn headers_value(headers: &HeaderMap) -> ExprValue {
    let map = headers
        .keys()
        .filter_map(|name| {
            let value = header_text(headers, name.as_str())?;
            Some((
                name.as_str().to_owned(),
                ExprValue::String(value.into_owned()),
            ))
        })
        .collect();
    ExprValue::Map(map)
}

/// One header as CEL sees it: repeated headers joined with `, ` (RFC 9110), credentials
/// redacted. Only lowercase names match, as in the CEL map whose keys are lowercase.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<Cow<'h, str>> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    if SECRET_HEADERS.contains(&name) {
        return Some(Cow::Borrowed(REDACTED));
    }
    let mut text = String::from_utf8_lossy(first.as_bytes());
    for more in values {
        let joined = text.to_mut();
        joined.push_str(", ");
        joined.push_str(&String::from_utf8_lossy(more.as_bytes()));
    }
    Some(text)
}

// === the interpreter's context: whole variables, borrowing the record ===

/// The CEL value of a top-level variable: a map of the keys the record knows.
pub(super) fn root_val(rec: &RequestRecord, root: Root) -> Box<dyn Val + '_> {
    let mut map: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = HashMap::new();
    for_each_key(rec, root, |key| {
        if let Some(value) = field(rec, root, key) {
            map.insert(CelMapKey::from(key), field_val(value));
        }
    });
    Box::new(CelMap::from(map))
}

fn field_val(field: Field<'_>) -> Box<dyn Val + '_> {
    match field {
        Field::Str(Cow::Borrowed(s)) => Box::new(CelString::from(s)),
        Field::Str(Cow::Owned(s)) => Box::new(CelString::from(s)),
        Field::Int(i) => Box::new(CelInt::from(i)),
        Field::Double(d) => Box::new(CelDouble::from(d)),
        Field::Bool(b) => Box::new(CelBool::from(b)),
        Field::Json(json) => json_val(json),
        Field::Headers(headers) => headers_val(headers),
    }
}

fn json_val(value: &serde_json::Value) -> Box<dyn Val + '_> {
    match value {
        serde_json::Value::Null => Box::new(CelNull),
        serde_json::Value::Bool(b) => Box::new(CelBool::from(*b)),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Box::new(CelInt::from(i)),
            (None, Some(u)) => Box::new(CelUInt::from(u)),
            _ => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        serde_json::Value::String(s) => Box::new(CelString::from(s.as_str())),
        serde_json::Value::Array(items) => Box::new(CelList::from(
            items.iter().map(json_val).collect::<Vec<_>>(),
        )),
        serde_json::Value::Object(map) => Box::new(CelMap::from(
            map.iter()
                .map(|(k, v)| (CelMapKey::from(k.as_str()), json_val(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

fn headers_val(headers: &HeaderMap) -> Box<dyn Val + '_> {
    let map = headers
        .keys()
        .filter_map(|name| {
            let value = match header_text(headers, name.as_str())? {
                Cow::Borrowed(s) => CelString::from(s),
                Cow::Owned(s) => CelString::from(s),
            };
            let boxed: Box<dyn Val + '_> = Box::new(value);
            Some((CelMapKey::from(name.as_str()), boxed))
        })
        .collect::<HashMap<_, _>>();
    Box::new(CelMap::from(map))
}
