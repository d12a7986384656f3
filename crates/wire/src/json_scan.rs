//! Byte-level JSON structure scanning, shared by the response meters. It finds where values begin
//! and end (tracking nesting and string/escape state, resumable across chunk boundaries) without
//! decoding them, so the meters can locate the few top-level members they need and hand only
//! those small slices to serde_json. It never validates: on malformed input it stops early or
//! reports odd spans, and callers treat every span as untrusted.

use memchr::memchr2;
use std::ops::Range;

/// Bytes that change nesting or start a string; everything else inside a container is skipped.
const STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'}' as usize] = true;
    table[b'[' as usize] = true;
    table[b']' as usize] = true;
    table
};

/// Skips one JSON value, resumably: feed it the bytes of the value in as many pieces as they
/// arrive. It understands just enough JSON to find the end of the value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ValueScan {
    nest: u32,
    in_str: bool,
    esc: bool,
    scalar: bool,
}

impl ValueScan {
    /// Starts a scan whose first (non-whitespace) byte is `first`; that byte must then be fed
    /// too, as the first byte given to [`ValueScan::advance`].
    pub(crate) fn new(first: u8) -> Self {
        ValueScan {
            scalar: !matches!(first, b'"' | b'{' | b'['),
            ..ValueScan::default()
        }
    }

    /// Scans `buf[from..]`. Returns the index just past the value when it ends inside `buf`
    /// (for a number or literal: the index of the byte that ends it, which is not part of it),
    /// or `None` when the value continues past the end of `buf`.
    pub(crate) fn advance(&mut self, buf: &[u8], from: usize) -> Option<usize> {
        let mut i = from;
        while i < buf.len() {
            if self.in_str {
                i = self.skip_string(buf, i)?;
                if self.nest == 0 {
                    return Some(i);
                }
                continue;
            }
            let b = buf[i];
            if self.scalar {
                if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    return Some(i);
                }
                i += 1;
                continue;
            }
            if !STRUCTURAL[usize::from(b)] {
                // Numbers, literals, commas and whitespace inside a container: skip the run.
                i += buf[i..]
                    .iter()
                    .position(|&c| STRUCTURAL[usize::from(c)])
                    .unwrap_or(buf.len() - i);
                continue;
            }
            i += 1;
            match b {
                b'"' => self.in_str = true,
                b'{' | b'[' => self.nest = self.nest.saturating_add(1),
                b'}' | b']' => {
                    self.nest = self.nest.saturating_sub(1);
                    if self.nest == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Inside a string: jumps to its closing quote (returns the index past it, leaving the
    /// string) or returns `None` at the end of `buf` with the escape state saved.
    fn skip_string(&mut self, buf: &[u8], mut i: usize) -> Option<usize> {
        loop {
            if self.esc {
                if i >= buf.len() {
                    return None;
                }
                self.esc = false;
                i += 1;
            }
            let rest = buf.get(i..).filter(|r| !r.is_empty())?;
            let k = memchr2(b'"', b'\\', rest)?;
            i += k + 1;
            if rest[k] == b'\\' {
                self.esc = true;
            } else {
                self.in_str = false;
                return Some(i);
            }
        }
    }
}

/// One member of a JSON object found by [`Members`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member<'a> {
    /// The key exactly as written between its quotes (escapes are not decoded, so a key spelled
    /// with escapes never matches a plain name; providers do not do that).
    pub key: &'a [u8],
    /// Index of the key's opening quote.
    pub key_start: usize,
    /// Span of the value.
    pub value: Range<usize>,
    /// End of the previous member's value, if there is a previous member.
    pub prev_value_end: Option<usize>,
}

/// Iterates over the top-level members of a complete JSON object held in one slice. Stops at the
/// closing brace or at the first byte that does not fit the grammar.
pub(crate) struct Members<'a> {
    json: &'a [u8],
    pos: usize,
    prev_value_end: Option<usize>,
    done: bool,
}

impl<'a> Members<'a> {
    pub(crate) fn new(json: &'a [u8]) -> Self {
        let start = skip_ws(json, 0);
        let is_object = json.get(start) == Some(&b'{');
        Members {
            json,
            pos: start + 1,
            prev_value_end: None,
            done: !is_object,
        }
    }

    fn member(&mut self) -> Option<Member<'a>> {
        let json = self.json;
        let mut i = skip_ws(json, self.pos);
        if self.prev_value_end.is_some() {
            if json.get(i) != Some(&b',') {
                return None;
            }
            i = skip_ws(json, i + 1);
        }
        if json.get(i) != Some(&b'"') {
            return None;
        }
        let key_start = i;
        let key_end = ValueScan::new(b'"').advance(json, i)?;
        let key = json.get(key_start + 1..key_end - 1)?;
        i = skip_ws(json, key_end);
        if json.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(json, i + 1);
        let first = *json.get(i)?;
        if matches!(first, b',' | b'}' | b']' | b':') {
            return None;
        }
        let end = ValueScan::new(first).advance(json, i)?;
        let prev_value_end = self.prev_value_end.replace(end);
        self.pos = end;
        Some(Member {
            key,
            key_start,
            value: i..end,
            prev_value_end,
        })
    }
}

impl<'a> Iterator for Members<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        if self.done {
            return None;
        }
        let found = self.member();
        self.done = found.is_none();
        found
    }
}

/// Span of the value of the top-level member `key` (the last one if repeated).
pub(crate) fn find_member(json: &[u8], key: &[u8]) -> Option<Range<usize>> {
    Members::new(json)
        .filter(|m| m.key == key)
        .last()
        .map(|m| m.value)
}

/// The bytes to delete to remove the first top-level member `key` together with one adjoining
/// comma, so the object stays valid and every other byte is kept.
pub(crate) fn member_removal(json: &[u8], key: &[u8]) -> Option<Range<usize>> {
    let mut members = Members::new(json);
    let m = members.find(|m| m.key == key)?;
    Some(match (m.prev_value_end, members.next()) {
        (Some(prev_end), _) => prev_end..m.value.end,
        (None, Some(next)) => m.key_start..next.key_start,
        (None, None) => m.key_start..m.value.end,
    })
}

fn skip_ws(json: &[u8], mut i: usize) -> usize {
    while matches!(json.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(json: &str) -> Vec<(String, String)> {
        Members::new(json.as_bytes())
            .map(|m| {
                (
                    String::from_utf8_lossy(m.key).into_owned(),
                    json[m.value].to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn top_level_members_only() {
        let json =
            r#" { "a" : {"model":"x","b":[1,{"c":"}"}]}, "model":"m\"}" ,"n":-1.5e3,"t":true}"#;
        assert_eq!(
            keys(json),
            vec![
                ("a".into(), r#"{"model":"x","b":[1,{"c":"}"}]}"#.into()),
                ("model".into(), r#""m\"}""#.into()),
                ("n".into(), "-1.5e3".into()),
                ("t".into(), "true".into()),
            ]
        );
    }

    #[test]
    fn stops_on_garbage() {
        assert!(keys("[1,2]").is_empty());
        assert_eq!(keys(r#"{"a":1 "b":2}"#).len(), 1);
        assert!(keys(r#"{"a":}"#).is_empty());
        assert!(keys(r#"{"a":"unterminated"#).is_empty());
        assert!(keys("").is_empty());
    }

    #[test]
    fn removal_keeps_json_valid() {
        let cases = [
            (r#"{"a":1,"usage":null}"#, r#"{"a":1}"#),
            (r#"{"usage":null,"a":1}"#, r#"{"a":1}"#),
            (r#"{"a":1, "usage" : null ,"b":2}"#, r#"{"a":1 ,"b":2}"#),
            (r#"{"usage":null}"#, r#"{}"#),
        ];
        for (input, want) in cases {
            let r = member_removal(input.as_bytes(), b"usage").expect("member present");
            let out = format!("{}{}", &input[..r.start], &input[r.end..]);
            assert_eq!(out, want);
        }
        assert_eq!(member_removal(br#"{"a":{"usage":null}}"#, b"usage"), None);
    }

    #[test]
    fn resumable_across_pieces() {
        let json = br#"{"s":"a\\\"b","x":[1,2]} tail"#;
        for cut in 0..json.len() {
            let mut scan = ValueScan::new(b'{');
            let end = match scan.advance(&json[..cut], 0) {
                Some(end) => end,
                None => cut + scan.advance(&json[cut..], 0).expect("ends in second piece"),
            };
            assert_eq!(end, 24, "cut at {cut}");
        }
    }
}
