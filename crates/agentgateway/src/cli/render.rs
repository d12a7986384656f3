//! Turns the admin API's key objects into text for a terminal: the `list` table, the `get`
//! details (with the usage object, whatever its shape), and the one-time `create` notice.
//!
//! Everything shown comes from the server, so text is cleaned of control characters: a key
//! named with an escape sequence must not be able to rewrite the operator's terminal.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Longest cell in the table; longer values (a long model list) end in `…`.
const MAX_CELL: usize = 40;
const HEADERS: [&str; COLUMNS] = [
    "ID", "NAME", "USER", "TEAM", "MODELS", "LIMITS", "BUDGETS", "EXPIRES", "STATUS",
];
const COLUMNS: usize = 9;

/// The `keys list` table, columns aligned, one key per line.
pub fn key_table(keys: &[Value], now: DateTime<Utc>) -> String {
    if keys.is_empty() {
        return "no keys\n".to_owned();
    }
    let rows: Vec<[String; COLUMNS]> = keys
        .iter()
        .map(|key| {
            [
                text(&key["id"]),
                text(&key["name"]),
                text(&key["user"]),
                text(&key["team"]),
                models(&key["allowedModels"]),
                limits(&key["limits"]),
                budgets(&key["budgets"]),
                expires(&key["expiresAt"]),
                status(key, now).to_owned(),
            ]
            .map(|cell| truncate(&cell))
        })
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    push_row(&mut out, &HEADERS.map(str::to_owned), &widths);
    for row in &rows {
        push_row(&mut out, row, &widths);
    }
    out
}

fn push_row(out: &mut String, cells: &[String; COLUMNS], widths: &[usize; COLUMNS]) {
    let line: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(cell, width)| format!("{cell:<width$}"))
        .collect();
    out.push_str(line.join("  ").trim_end());
    out.push('\n');
}

/// `keys get` / `update` / `revoke`: one `label: value` line per field, then the usage, if any.
pub fn key_details(key: &Value, now: DateTime<Utc>) -> String {
    let fields = [
        ("id", text(&key["id"])),
        ("name", text(&key["name"])),
        ("user", text(&key["user"])),
        ("team", text(&key["team"])),
        ("models", models(&key["allowedModels"])),
        ("limits", limits(&key["limits"])),
        ("budgets", budgets(&key["budgets"])),
        ("metadata", metadata(&key["metadata"])),
        ("expires", expires(&key["expiresAt"])),
        ("status", status(key, now).to_owned()),
        ("key hint", text(&key["keyHint"])),
        ("created", text(&key["createdAt"])),
        ("updated", text(&key["updatedAt"])),
    ];
    let mut out = String::new();
    for (label, value) in fields {
        let _ = writeln!(out, "{:<10}{value}", format!("{label}:"));
    }
    if let Some(usage) = key.get("usage").filter(|u| !u.is_null()) {
        out.push_str("usage:");
        push_value(&mut out, usage, 1);
    }
    out
}

/// After `keys create`: the id and the secret, with the warning that this is the only chance.
pub fn created(key: &Value, secret: &str) -> String {
    format!(
        "Created key {id} ({name}).\n\n  id:     {id}\n  secret: {secret}\n\n\
         Store the secret now: it is shown only this once and cannot be retrieved later.\n",
        id = text(&key["id"]),
        name = text(&key["name"]),
        secret = clean(secret),
    )
}

/// An arbitrary JSON value as indented `key: value` lines, starting after a label already written.
fn push_value(out: &mut String, value: &Value, depth: usize) {
    let pad = "  ".repeat(depth);
    match value {
        Value::Object(map) if map.is_empty() => out.push_str(" -\n"),
        Value::Object(map) => {
            out.push('\n');
            for (key, value) in map {
                let _ = write!(out, "{pad}{}:", clean(key));
                push_value(out, value, depth + 1);
            }
        }
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => {
            let items: Vec<String> = items.iter().map(text).collect();
            let _ = writeln!(out, " {}", items.join(", "));
        }
        Value::Array(items) => {
            out.push('\n');
            for item in items {
                let _ = write!(out, "{pad}-");
                push_value(out, item, depth + 1);
            }
        }
        scalar => {
            let _ = writeln!(out, " {}", text(scalar));
        }
    }
}

/// `active`, `revoked`, or `expired` (by the key's `expiresAt` against `now`).
pub fn status(key: &Value, now: DateTime<Utc>) -> &'static str {
    let expired = key["expiresAt"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .is_some_and(|at| at <= now);
    match (key["revoked"].as_bool(), expired) {
        (Some(true), _) => "revoked",
        (_, true) => "expired",
        _ => "active",
    }
}

/// `60rpm 100000tpm 1000000tpd 4parallel`, or `-` for none.
pub fn limits(limits: &Value) -> String {
    let parts: Vec<String> = [
        ("rpm", "rpm"),
        ("tpm", "tpm"),
        ("tpd", "tpd"),
        ("maxParallel", "parallel"),
    ]
    .iter()
    .filter_map(|(field, unit)| Some(format!("{}{unit}", limits.get(*field)?.as_u64()?)))
    .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" ")
    }
}

/// `$10/1d $5/month/soft` (the `--budget` syntax, which also takes the `$`), or `-` for none.
pub fn budgets(list: &Value) -> String {
    let parts: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|budget| {
            let soft = if budget["soft"] == true { "/soft" } else { "" };
            let (usd, window) = (text(&budget["usd"]), text(&budget["window"]));
            format!("${usd}/{window}{soft}")
        })
        .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" ")
    }
}

/// The allow-list, or `all` when the key may use every model.
fn models(list: &Value) -> String {
    match list.as_array() {
        Some(list) => list.iter().map(text).collect::<Vec<_>>().join(","),
        None => "all".to_owned(),
    }
}

fn metadata(map: &Value) -> String {
    match map.as_object() {
        Some(map) if !map.is_empty() => map
            .iter()
            .map(|(k, v)| format!("{}={}", clean(k), text(v)))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "-".to_owned(),
    }
}

/// `2030-01-31 00:00Z`, or `never`.
fn expires(at: &Value) -> String {
    match at.as_str() {
        Some(at) => match DateTime::parse_from_rfc3339(at) {
            Ok(at) => at.with_timezone(&Utc).format("%Y-%m-%d %H:%MZ").to_string(),
            Err(_) => clean(at),
        },
        None => "never".to_owned(),
    }
}

/// A scalar for display: strings without quotes, absent values as `-`.
fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => clean(s),
        other => clean(&other.to_string()),
    }
}

fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn truncate(cell: &str) -> String {
    match cell.char_indices().nth(MAX_CELL - 1) {
        Some((cut, _)) if cell.chars().count() > MAX_CELL => format!("{}…", &cell[..cut]),
        _ => cell.to_owned(),
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
