//! [`ExprValue`]: the small owned result of evaluating an expression. It exists so callers (log
//! fields, metric labels, rate-limit keys) never see the CEL crate's value type, and so the fast
//! path (which reads the record directly) and the interpreter produce one comparable type.

use std::collections::BTreeMap;

/// The result of an expression: CEL's JSON-like subset of values.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprValue {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    String(String),
    List(Vec<ExprValue>),
    /// Keys are rendered as strings; a `BTreeMap` keeps rendering deterministic.
    Map(BTreeMap<String, ExprValue>),
}

// === impl ExprValue ===

impl ExprValue {
    /// Maps a JSON value (API-key metadata) the way CEL sees it: integers that fit stay `Int`,
    /// larger positive ones become `UInt`, everything else numeric is `Float`.
    pub fn from_json(value: &serde_json::Value) -> ExprValue {
        match value {
            serde_json::Value::Null => ExprValue::Null,
            serde_json::Value::Bool(b) => ExprValue::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    ExprValue::Int(i)
                } else if let Some(u) = n.as_u64() {
                    ExprValue::UInt(u)
                } else {
                    ExprValue::Float(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => ExprValue::String(s.clone()),
            serde_json::Value::Array(items) => {
                ExprValue::List(items.iter().map(ExprValue::from_json).collect())
            }
            serde_json::Value::Object(map) => ExprValue::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), ExprValue::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Converts an interpreter result. `None` for values with no sensible rendering in a log
    /// line or label (functions, opaque values, durations).
    pub(crate) fn from_cel(value: &cel::Value) -> Option<ExprValue> {
        Some(match value {
            cel::Value::Null => ExprValue::Null,
            cel::Value::Bool(b) => ExprValue::Bool(*b),
            cel::Value::Int(i) => ExprValue::Int(*i),
            cel::Value::UInt(u) => ExprValue::UInt(*u),
            cel::Value::Float(f) => ExprValue::Float(*f),
            cel::Value::String(s) => ExprValue::String(s.as_ref().clone()),
            cel::Value::Bytes(b) => ExprValue::String(String::from_utf8_lossy(b).into_owned()),
            cel::Value::Timestamp(t) => ExprValue::String(t.to_rfc3339()),
            cel::Value::List(items) => ExprValue::List(
                items
                    .iter()
                    .map(ExprValue::from_cel)
                    .collect::<Option<Vec<_>>>()?,
            ),
            cel::Value::Map(map) => ExprValue::Map(
                map.map
                    .iter()
                    .map(|(k, v)| Some((key_text(k), ExprValue::from_cel(v)?)))
                    .collect::<Option<BTreeMap<_, _>>>()?,
            ),
            _ => return None,
        })
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            ExprValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Label/field rendering: strings raw, scalars as text, lists and maps as compact JSON.
    /// `None` for null, which reads as "not known" everywhere a value is rendered.
    pub fn into_string(self) -> Option<String> {
        match self {
            ExprValue::Null => None,
            ExprValue::String(s) => Some(s),
            ExprValue::Bool(b) => Some(if b { "true" } else { "false" }.to_owned()),
            ExprValue::Int(i) => Some(itoa::Buffer::new().format(i).to_owned()),
            ExprValue::UInt(u) => Some(itoa::Buffer::new().format(u).to_owned()),
            ExprValue::Float(f) => Some(f.to_string()),
            complex @ (ExprValue::List(_) | ExprValue::Map(_)) => {
                Some(complex.to_json().to_string())
            }
        }
    }

    /// The value as JSON; non-finite floats (which JSON cannot hold) become null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ExprValue::Null => serde_json::Value::Null,
            ExprValue::Bool(b) => (*b).into(),
            ExprValue::Int(i) => (*i).into(),
            ExprValue::UInt(u) => (*u).into(),
            ExprValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            ExprValue::String(s) => s.as_str().into(),
            ExprValue::List(items) => items.iter().map(ExprValue::to_json).collect(),
            ExprValue::Map(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
        }
    }
}

fn key_text(key: &cel::objects::Key) -> String {
    match key {
        cel::objects::Key::String(s) => s.as_ref().clone(),
        cel::objects::Key::Int(i) => i.to_string(),
        cel::objects::Key::Uint(u) => u.to_string(),
        cel::objects::Key::Bool(b) => b.to_string(),
    }
}
