//! Checks a document against the generated JSON Schema and returns every violation, each at its
//! field path. Only the keywords the config's schema uses are implemented (`$ref` into `$defs`,
//! `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`, `anyOf` /
//! `oneOf`, `minimum` / `maximum`, `pattern`): a general validator would report the same
//! problems with messages written for schema authors ("is not valid under any of the given
//! schemas"), while these say what is accepted and suggest the closest field or value.
//!
//! `pattern` is read through the parsers it describes (durations, decimal amounts), whose
//! messages say what is wrong; the config's schema has no other pattern.

use std::str::FromStr;

use serde_json::{Map, Value};

use super::path::{FieldPath, Problem};
use super::suggest::closest;
use crate::config::schema::DURATION_PATTERN;

/// Every place where `instance` breaks `root` (a schema with its `$defs`).
pub fn check(root: &Value, instance: &Value) -> Vec<Problem> {
    let mut checker = Checker {
        root,
        problems: Vec::new(),
    };
    checker.node(root, instance, &FieldPath::root());
    checker.problems
}

struct Checker<'a> {
    root: &'a Value,
    problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    fn node(&mut self, schema: &'a Value, value: &Value, path: &FieldPath) {
        let Some(schema) = self.resolve(schema) else {
            return;
        };
        if let Some(choices) = schema.get("anyOf").or_else(|| schema.get("oneOf")) {
            self.choice(choices, value, path);
        }
        if let Some(expected) = schema.get("type") {
            if !type_matches(expected, value) {
                let message = format!("expected {}, found {}", describe(expected), found(value));
                self.problems.push(Problem::new(path.clone(), message));
                return;
            }
        }
        self.values(schema, value, path);
        match value {
            Value::Object(map) => self.object(schema, map, path),
            Value::Array(items) => {
                if let Some(item) = schema.get("items") {
                    for (i, element) in items.iter().enumerate() {
                        self.node(item, element, &path.index(i));
                    }
                }
            }
            _ => {}
        }
    }

    /// Follows `$ref`s to `#/$defs/...`; a schema without one is itself.
    fn resolve(&self, schema: &'a Value) -> Option<&'a Value> {
        let mut current = schema;
        for _ in 0..16 {
            let Some(target) = current.get("$ref").and_then(Value::as_str) else {
                return Some(current);
            };
            let name = target.strip_prefix("#/$defs/")?;
            current = self.root.get("$defs")?.get(name)?;
        }
        None
    }

    fn choice(&mut self, choices: &'a Value, value: &Value, path: &FieldPath) {
        let Some(choices) = choices.as_array() else {
            return;
        };
        let mut failures = Vec::new();
        for choice in choices {
            let problems = check_with(self.root, choice, value, path);
            if problems.is_empty() {
                return;
            }
            let is_null = choice.get("type").and_then(Value::as_str) == Some("null");
            if !is_null {
                failures.push(problems);
            }
        }
        // `anyOf: [X, null]` is how an optional X is written: report X's problems.
        match <[_; 1]>::try_from(failures) {
            Ok([only]) => self.problems.extend(only),
            Err(_) => self.problems.push(Problem::new(
                path.clone(),
                format!("{} does not match any accepted form", found(value)),
            )),
        }
    }

    fn values(&mut self, schema: &Value, value: &Value, path: &FieldPath) {
        if let Some(Value::Array(allowed)) = schema.get("enum") {
            if !allowed.contains(value) {
                self.problems
                    .push(Problem::new(path.clone(), not_one_of(value, allowed)));
            }
        }
        if let Some(constant) = schema.get("const") {
            if constant != value {
                let message = format!("expected {constant}, found {}", found(value));
                self.problems.push(Problem::new(path.clone(), message));
            }
        }
        if let Some(number) = value.as_f64() {
            let min = schema.get("minimum").and_then(Value::as_f64);
            let max = schema.get("maximum").and_then(Value::as_f64);
            if let Some(min) = min.filter(|min| number < *min) {
                let message = format!("must be at least {min} (found {value})");
                self.problems.push(Problem::new(path.clone(), message));
            }
            if let Some(max) = max.filter(|max| number > *max) {
                let message = format!("must be at most {max} (found {value})");
                self.problems.push(Problem::new(path.clone(), message));
            }
        }
        if let (Some(pattern), Some(text)) = (schema.get("pattern"), value.as_str()) {
            if let Err(message) = check_pattern(pattern.as_str().unwrap_or_default(), text) {
                self.problems.push(Problem::new(path.clone(), message));
            }
        }
    }

    fn object(&mut self, schema: &'a Value, map: &Map<String, Value>, path: &FieldPath) {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(name) {
                    let message = format!("missing required field `{name}`");
                    self.problems.push(Problem::new(path.key(name), message));
                }
            }
        }
        for (name, member) in map {
            let child = path.key(name);
            if let Some(field) = properties.and_then(|p| p.get(name)) {
                self.node(field, member, &child);
                continue;
            }
            match schema.get("additionalProperties") {
                Some(Value::Bool(false)) => {
                    let known: Vec<&str> = properties
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    self.problems.push(Problem {
                        path: child,
                        message: unknown_field(name, &known),
                        at_key: true,
                    });
                }
                Some(extra @ Value::Object(_)) => self.node(extra, member, &child),
                _ => {}
            }
        }
    }
}

fn check_with(root: &Value, schema: &Value, value: &Value, path: &FieldPath) -> Vec<Problem> {
    let mut checker = Checker {
        root,
        problems: Vec::new(),
    };
    checker.node(schema, value, path);
    checker.problems
}

fn type_matches(expected: &Value, value: &Value) -> bool {
    match expected {
        Value::String(name) => is_type(name, value),
        Value::Array(names) => names
            .iter()
            .filter_map(Value::as_str)
            .any(|name| is_type(name, value)),
        _ => true,
    }
}

fn is_type(name: &str, value: &Value) -> bool {
    match (name, value) {
        ("null", Value::Null)
        | ("boolean", Value::Bool(_))
        | ("string", Value::String(_))
        | ("array", Value::Array(_))
        | ("object", Value::Object(_))
        | ("number", Value::Number(_)) => true,
        ("integer", Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    }
}

/// `["integer", "null"]` -> "an integer"; null is what leaving a field out means, not worth saying.
fn describe(expected: &Value) -> String {
    let names: Vec<&str> = match expected {
        Value::String(name) => vec![name.as_str()],
        Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let shown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| *name != "null" || names.len() == 1)
        .map(article)
        .collect();
    shown.join(" or ")
}

fn article(name: &str) -> &'static str {
    match name {
        "integer" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "boolean" => "true or false",
        "array" => "a list",
        "object" => "a mapping",
        _ => "null",
    }
}

/// The value's kind, with the value itself when it is short enough to quote.
fn found(value: &Value) -> String {
    match value {
        Value::Null => "nothing (null)".to_owned(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() <= 40 => format!("the string {s:?}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "a list".to_owned(),
        Value::Object(_) => "a mapping".to_owned(),
    }
}

fn not_one_of(value: &Value, allowed: &[Value]) -> String {
    let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
    let list = names.join(", ");
    let hint = value
        .as_str()
        .and_then(|text| closest(text, &names))
        .map(|best| format!("; did you mean `{best}`?"))
        .unwrap_or_default();
    format!("unknown value {value}: expected one of {list}{hint}")
}

fn unknown_field(name: &str, known: &[&str]) -> String {
    match closest(name, known) {
        Some(best) => format!("unknown field `{name}`; did you mean `{best}`?"),
        None if known.is_empty() => format!("unknown field `{name}`"),
        None => format!(
            "unknown field `{name}`; expected one of {}",
            known.join(", ")
        ),
    }
}

fn check_pattern(pattern: &str, text: &str) -> Result<(), String> {
    if pattern == DURATION_PATTERN {
        return crate::config::parse_duration(text).map(|_| ());
    }
    if pattern.starts_with("^-?\\d+") {
        return rust_decimal::Decimal::from_str(text)
            .or_else(|_| rust_decimal::Decimal::from_scientific(text))
            .map(|_| ())
            .map_err(|_| format!("{text:?} is not a decimal number"));
    }
    Ok(())
}
