//! The members of a request body's top-level object, found without parsing their values.
//!
//! The gateway reads three top-level members; everything else (the messages, often most of a
//! 200 KB body) only has to be stepped over. serde_json, even ignoring a value, checks every byte
//! of it (~2.4 instructions per byte under callgrind, 60% of the gateway's work on a 200 KB
//! prompt). Here a string is skipped with `memchr` to its closing quote, and an array or
//! object by counting its own kind of bracket outside strings, so skipping runs at memchr speed.
//! The price: the inside of a value the gateway does not read is not validated. The top level is
//! (keys, colons, commas, the closing brace, nothing after it), the members the gateway reads are
//! parsed strictly by the caller, and the provider validates the rest and answers in its own
//! words.

use std::ops::Range;

use memchr::{memchr, memchr3};

/// One top-level member: its key as written (between the quotes, escapes not undone) and where
/// its value sits in the body.
pub(super) struct Member<'a> {
    pub key: &'a [u8],
    pub value: Range<usize>,
}

/// Calls `each` for every member of the top-level object, in order. `body` must start (after
/// whitespace) with `{`. Errors say what was expected, at which line and column.
pub(super) fn members<'a>(
    body: &'a [u8],
    mut each: impl FnMut(Member<'a>) -> Result<(), String>,
) -> Result<(), String> {
    let mut at = skip_ws(body, 0);
    expect(body, at, b'{')?;
    at = skip_ws(body, at + 1);
    if body.get(at) == Some(&b'}') {
        return end(body, at + 1);
    }
    loop {
        expect(body, at, b'"')?;
        let key_end = skip_string(body, at).ok_or_else(|| error(body, at, "unterminated key"))?;
        let key = body.get(at + 1..key_end - 1).unwrap_or_default();
        at = skip_ws(body, key_end);
        expect(body, at, b':')?;
        let start = skip_ws(body, at + 1);
        let stop = skip_value(body, start)?;
        each(Member {
            key,
            value: start..stop,
        })
        .map_err(|message| error(body, start, &message))?;
        at = skip_ws(body, stop);
        match body.get(at) {
            Some(b',') => at = skip_ws(body, at + 1),
            Some(b'}') => return end(body, at + 1),
            _ => return Err(error(body, at, "expected `,` or `}`")),
        }
    }
}

/// Only whitespace may follow the top-level object.
fn end(body: &[u8], at: usize) -> Result<(), String> {
    let at = skip_ws(body, at);
    match at < body.len() {
        true => Err(error(body, at, "trailing characters")),
        false => Ok(()),
    }
}

fn expect(body: &[u8], at: usize, want: u8) -> Result<(), String> {
    match body.get(at) {
        Some(&b) if b == want => Ok(()),
        Some(_) => Err(error(body, at, &format!("expected `{}`", want as char))),
        None => Err(error(body, at, "unexpected end of the body")),
    }
}

fn skip_ws(body: &[u8], mut at: usize) -> usize {
    while body
        .get(at)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        at += 1;
    }
    at
}

/// The end (exclusive) of the value starting at `at`.
fn skip_value(body: &[u8], at: usize) -> Result<usize, String> {
    let skipped = match body.get(at) {
        None => return Err(error(body, at, "expected a value")),
        Some(b'"') => skip_string(body, at),
        Some(b'{') => skip_nested(body, at, b'{', b'}'),
        Some(b'[') => skip_nested(body, at, b'[', b']'),
        Some(_) => {
            // A number or a literal: up to the next delimiter. An empty one is no value at all.
            let len = body
                .get(at..)
                .unwrap_or_default()
                .iter()
                .take_while(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .count();
            if len == 0 {
                return Err(error(body, at, "expected a value"));
            }
            Some(at + len)
        }
    };
    skipped.ok_or_else(|| error(body, at, "unterminated value"))
}

/// The end (exclusive, past the closing quote) of the string whose `"` is at `at`. Only quotes
/// are searched for: a quote after an odd run of backslashes is escaped. Searching for
/// backslashes too would stop at every `\n` of a pasted document.
fn skip_string(body: &[u8], at: usize) -> Option<usize> {
    let mut at = at + 1;
    loop {
        let found = at + memchr(b'"', body.get(at..)?)?;
        // The run cannot reach past the opening quote, which is not a backslash.
        let escapes = body.get(..found)?;
        let run = escapes.iter().rev().take_while(|b| **b == b'\\').count();
        if run % 2 == 0 {
            return Some(found + 1);
        }
        at = found + 1;
    }
}

/// The end (exclusive) of the array or object opening at `at`: its own brackets are counted
/// outside strings. The other kind is balanced inside a well-formed value, so it is not tracked.
fn skip_nested(body: &[u8], at: usize, open: u8, close: u8) -> Option<usize> {
    let mut depth = 0usize;
    let mut at = at;
    loop {
        let found = at + memchr3(b'"', open, close, body.get(at..)?)?;
        match body.get(found) {
            Some(b'"') => {
                at = skip_string(body, found)?;
                continue;
            }
            Some(&b) if b == open => depth += 1,
            _ => depth = depth.checked_sub(1)?,
        }
        at = found + 1;
        if depth == 0 {
            return Some(at);
        }
    }
}

/// `message at line L column C`, counted like serde_json (1-based; columns in bytes).
fn error(body: &[u8], at: usize, message: &str) -> String {
    let before = body.get(..at).unwrap_or(body);
    let line = 1 + memchr::memchr_iter(b'\n', before).count();
    let column = 1 + before.iter().rev().take_while(|b| **b != b'\n').count();
    format!("{message} at line {line} column {column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(body: &str) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        members(body.as_bytes(), |m| {
            let key = String::from_utf8_lossy(m.key).into_owned();
            out.push((key, body[m.value].to_owned()));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn finds_each_member_and_steps_over_nested_values() {
        let body =
            r#" { "a" : [1,{"x":"]}"},[]] , "b":{"c":"\"}"} ,"d":-1.5e3,"e":null,"f":"q\\"}"#;
        let found = spans(body).unwrap();
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "d", "e", "f"]);
        assert_eq!(found[0].1, r#"[1,{"x":"]}"},[]]"#);
        assert_eq!(found[1].1, r#"{"c":"\"}"}"#);
        assert_eq!(found[2].1, "-1.5e3");
        assert_eq!(found[4].1, r#""q\\""#);
        assert_eq!(spans("{}").unwrap(), []);
    }

    #[test]
    fn structural_errors_name_line_and_column() {
        for (body, want) in [
            (
                "{\n  \"model\": \"m\",\n  oops\n}",
                "expected `\"` at line 3 column 3",
            ),
            (r#"{"a":1} x"#, "trailing characters at line 1 column 9"),
            (r#"{"a":[1,2"#, "unterminated value at line 1 column 6"),
            (r#"{"a":"x"#, "unterminated value at line 1 column 6"),
            (r#"{"a" 1}"#, "expected `:` at line 1 column 6"),
            (r#"{"a":1 "b":2}"#, "expected `,` or `}` at line 1 column 8"),
            (r#"{"a":}"#, "expected a value at line 1 column 6"),
            (r#"{"a":1,}"#, "expected `\"` at line 1 column 8"),
            ("{", "unexpected end of the body at line 1 column 2"),
        ] {
            assert_eq!(spans(body).unwrap_err(), want, "{body}");
        }
    }
}
