//! `--validate-only`: every problem of a config file at once, each at `LINE:COLUMN` with its
//! field path, where loading stops at the first.
//!
//! serde cannot go on after an error, so the document is first checked against the generated
//! JSON Schema ([`schema_check`]), which finds every unknown field, wrong type and unknown enum
//! value in one pass; every CEL expression is compiled from the same document. Only a
//! structurally valid document is deserialized, for the semantic checks (`validate`), which
//! again collect all. Positions come from a
//! second, span-aware parse ([`positions`]) of the file as written, so columns are those the
//! user sees even where `$VAR` expansion changed a line's length; the expanded text is the
//! fallback when the raw one is not valid YAML.

mod path;
mod positions;
mod schema_check;
mod suggest;

use std::fmt;

use serde_json::Value;

pub use path::{FieldPath, Problem, Seg};
pub use positions::{Pos, Positions};

use super::{expand, Config};

/// One reported problem: where, which field, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub pos: Pos,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    /// `LINE:COLUMN: path: message` (the caller puts the file name in front).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Pos { line, column } = self.pos;
        write!(f, "{line}:{column}: {}: {}", self.path, self.message)
    }
}

/// The result of checking a file: its problems and, when it has none, the config.
pub struct Checked {
    pub diagnostics: Vec<Diagnostic>,
    pub config: Option<Config>,
    positions: Positions,
}

impl Checked {
    /// Places a message that starts with a field path (as `Gateway::build`'s do).
    pub fn diagnostic_for(&self, message: &str) -> Diagnostic {
        match FieldPath::parse_prefix(message) {
            Some((path, rest)) => Diagnostic {
                pos: self.positions.locate(&path, false),
                path: path.to_string(),
                message: rest.to_owned(),
            },
            None => Diagnostic {
                pos: Pos::START,
                path: FieldPath::root().to_string(),
                message: message.to_owned(),
            },
        }
    }
}

/// Checks config text; `env` resolves `$VAR`s as [`Config::from_yaml`] does.
pub fn check_text(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Checked {
    let (expanded, unset) = match expand_leniently(text, env) {
        Ok(done) => done,
        Err(message) => return failed(Positions::default(), line_error(&message)),
    };
    let raw = Positions::parse(text);
    let positions = if raw.complete() {
        raw
    } else {
        Positions::parse(&expanded)
    };
    let (unset, unset_lines) = unset_references(text, &unset, &positions);
    let mut checked = check_expanded(&expanded, positions);
    // A placeholder stands where an unset variable was: what it breaks is not news.
    checked
        .diagnostics
        .retain(|d| !unset_lines.contains(&d.pos.line));
    if !unset.is_empty() {
        checked.config = None;
    }
    checked.diagnostics.extend(unset);
    checked.diagnostics.sort_by_key(|d| d.pos);
    checked
}

/// Expands `$VAR`s; an unset one (without a default) is recorded and replaced by a placeholder,
/// so the rest of the file can still be checked.
fn expand_leniently(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<String>), String> {
    let mut unset: Vec<String> = Vec::new();
    loop {
        let known = |name: &str| {
            env(name).or_else(|| unset.iter().any(|n| n == name).then(|| "unset".to_owned()))
        };
        let message = match expand::expand_env(text, &known) {
            Ok(expanded) => return Ok((expanded, unset)),
            Err(message) => message,
        };
        let name = message
            .split_once(": environment variable $")
            .and_then(|(_, rest)| rest.strip_suffix(" is not set"))
            .filter(|name| !unset.iter().any(|n| n == name));
        match name {
            Some(name) => unset.push(name.to_owned()),
            None => return Err(message),
        }
    }
}

/// The document as the schema sees it: `$VAR`s expanded with `env`, the YAML read as JSON.
pub fn document(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
    let expanded = expand::expand_env(text, env)?;
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&expanded).map_err(|e| e.to_string())?;
    Ok(to_json(yaml))
}

fn check_expanded(expanded: &str, positions: Positions) -> Checked {
    let document: serde_yaml_ng::Value = match serde_yaml_ng::from_str(expanded) {
        Ok(document) => document,
        Err(e) => return failed(positions, yaml_error(&e)),
    };
    let document = to_json(document);
    let schema = super::schema::config_schema();
    let mut problems = schema_check::check(&schema, &document);
    let cel = cel_problems(&document);
    if !problems.is_empty() {
        problems.extend(cel);
        return placed(problems, positions, None);
    }
    let config: Config = match serde_yaml_ng::from_str(expanded) {
        Ok(config) => config,
        // The schema should have caught it; if not, serde's own error still has a line.
        Err(e) => return failed(positions, yaml_error(&e)),
    };
    let mut problems = super::validate::problems(&config);
    problems.extend(cel);
    let config = problems.is_empty().then_some(config);
    placed(problems, positions, config)
}

fn placed(problems: Vec<Problem>, positions: Positions, config: Option<Config>) -> Checked {
    let diagnostics = problems
        .into_iter()
        .map(|p| Diagnostic {
            pos: positions.locate(&p.path, p.at_key),
            path: p.path.to_string(),
            message: p.message,
        })
        .collect();
    Checked {
        diagnostics,
        config,
        positions,
    }
}

fn failed(positions: Positions, diagnostic: Diagnostic) -> Checked {
    Checked {
        diagnostics: vec![diagnostic],
        config: None,
        positions,
    }
}

/// Every CEL expression in the document, compiled as the gateway will compile it. Read from
/// the document rather than the typed config, so they are checked even when a structural
/// problem elsewhere keeps serde from building one.
fn cel_problems(document: &Value) -> Vec<Problem> {
    let mut sources: Vec<(FieldPath, &str)> = Vec::new();
    for map in ["config.metrics.fields.add", "config.logging.fields.add"] {
        let path = FieldPath::of(map);
        if let Some(Value::Object(fields)) = lookup(document, &path) {
            for (name, source) in fields {
                if let Some(source) = source.as_str() {
                    sources.push((path.key(name), source));
                }
            }
        }
    }
    let filter = FieldPath::of("config.logging.filter");
    if let Some(Value::String(source)) = lookup(document, &filter) {
        sources.push((filter, source));
    }
    let limits = FieldPath::of("llm.policies.localRateLimit");
    if let Some(Value::Array(rules)) = lookup(document, &limits) {
        for (i, rule) in rules.iter().enumerate() {
            if let Some(Value::String(source)) = rule.get("key") {
                sources.push((limits.index(i).key("key"), source));
            }
        }
    }
    sources
        .into_iter()
        .filter_map(|(path, source)| {
            let error = crate::expr::Expr::compile(source).err()?;
            // The parser draws a caret under the error on further lines; one line each here.
            let first = error.lines().next().unwrap_or_default();
            Some(Problem::new(path, first))
        })
        .collect()
}

fn lookup<'a>(document: &'a Value, path: &FieldPath) -> Option<&'a Value> {
    path.segments()
        .iter()
        .try_fold(document, |node, seg| match seg {
            Seg::Key(name) => node.get(name),
            Seg::Index(i) => node.get(i),
        })
}

/// The expander's `line N: message`.
fn line_error(message: &str) -> Diagnostic {
    let (line, rest) = message
        .strip_prefix("line ")
        .and_then(|m| m.split_once(": "))
        .and_then(|(n, rest)| Some((n.parse().ok()?, rest)))
        .unwrap_or((1, message));
    Diagnostic {
        pos: Pos { line, column: 1 },
        path: FieldPath::root().to_string(),
        message: rest.to_owned(),
    }
}

fn yaml_error(error: &serde_yaml_ng::Error) -> Diagnostic {
    let pos = error.location().map_or(Pos::START, |l| Pos {
        line: l.line(),
        column: l.column(),
    });
    // serde's message repeats the position; the diagnostic already carries it.
    let text = error.to_string();
    let message = text
        .split_once(" at line ")
        .map_or(text.as_str(), |(head, _)| head);
    Diagnostic {
        pos,
        path: FieldPath::root().to_string(),
        message: message.to_owned(),
    }
}

/// A diagnostic for each unset variable, at its first reference, and every line that uses one.
fn unset_references(
    text: &str,
    names: &[String],
    positions: &Positions,
) -> (Vec<Diagnostic>, Vec<usize>) {
    let mut diagnostics = Vec::new();
    let mut lines = Vec::new();
    for name in names {
        let uses = references(text, name);
        let pos = uses.first().copied().unwrap_or(Pos::START);
        let path = positions.path_at_line(pos.line).unwrap_or_default();
        diagnostics.push(Diagnostic {
            pos,
            path: path.to_string(),
            message: format!("environment variable ${name} is not set (and has no `:-default`)"),
        });
        lines.extend(uses.iter().map(|p| p.line));
    }
    (diagnostics, lines)
}

/// Where `$NAME` / `${NAME` is written outside comments, one position per line at most.
fn references(text: &str, name: &str) -> Vec<Pos> {
    let braced = format!("${{{name}");
    let bare = format!("${name}");
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        let hit = code.find(&braced).or_else(|| {
            code.match_indices(&bare)
                .find(|(at, _)| {
                    let next = code.get(at + bare.len()..).and_then(|t| t.chars().next());
                    !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                .map(|(at, _)| at)
        });
        if let Some(at) = hit {
            let column = code.get(..at).map_or(0, |t| t.chars().count()) + 1;
            found.push(Pos {
                line: index + 1,
                column,
            });
        }
    }
    found
}

/// YAML -> JSON for the schema check: non-string keys become their text, tags are dropped.
fn to_json(value: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Yaml;
    match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => number(&n),
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Yaml::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (key_text(k), to_json(v)))
                .collect(),
        ),
        Yaml::Tagged(tagged) => to_json(tagged.value),
    }
}

fn number(n: &serde_yaml_ng::Number) -> Value {
    if let Some(u) = n.as_u64() {
        Value::from(u)
    } else if let Some(i) = n.as_i64() {
        Value::from(i)
    } else {
        n.as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number)
    }
}

fn key_text(key: serde_yaml_ng::Value) -> String {
    match key {
        serde_yaml_ng::Value::String(s) => s,
        other => serde_yaml_ng::to_string(&other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests;
