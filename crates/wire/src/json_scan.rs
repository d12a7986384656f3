//! Byte-level JSON structure scanning, shared by the response meters. It finds where values begin
//! and end (tracking nesting and string/escape state, resumable across chunk boundaries) without
//! decoding them, so the meters can locate the few top-level members they need and hand only
//! those small slices to serde_json. It never validates: on malformed input it stops early or
//! reports odd spans, and callers treat every span as untrusted.
//!
//! It also holds [`Strict`], a reader for the narrow, common shape of `usage` objects, so the
//! meters can skip serde for them; it gives up (and serde decides) on anything else.

use std::ops::Range;

mod words;
pub(crate) use words::find_quote_or_backslash;
use words::{bytes_below, find_in_words, find_structural, quote_or_backslash, HIGH_BITS};

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
        if self.scalar {
            let rest = buf.get(from..)?;
            let end = rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'));
            return end.map(|k| from + k);
        }
        let mut i = from;
        if self.in_str {
            i = self.resume_string(buf, i)?;
            if self.nest == 0 {
                return Some(i);
            }
        }
        // The state lives in locals while the bytes last and is stored only when they run out.
        let mut nest = self.nest;
        loop {
            let rest = buf.get(i..).unwrap_or_default();
            let Some(k) = find_structural(rest) else {
                self.nest = nest;
                return None;
            };
            i += k + 1;
            match rest.get(k) {
                Some(b'"') => match string_end(buf, i) {
                    Ok(end) if nest == 0 => return Some(end),
                    Ok(end) => i = end,
                    Err(esc) => {
                        (self.nest, self.in_str, self.esc) = (nest, true, esc);
                        return None;
                    }
                },
                Some(b'{' | b'[') => nest = nest.saturating_add(1),
                _ => {
                    nest = nest.saturating_sub(1);
                    if nest == 0 {
                        self.nest = 0;
                        return Some(i);
                    }
                }
            }
        }
    }

    /// Continues a string an earlier piece cut: returns the index past its closing quote, or
    /// `None` at the end of `buf` with the escape state saved.
    fn resume_string(&mut self, buf: &[u8], mut i: usize) -> Option<usize> {
        if self.esc {
            if i >= buf.len() {
                return None;
            }
            i += 1;
        }
        match string_end(buf, i) {
            Ok(end) => {
                (self.in_str, self.esc) = (false, false);
                Some(end)
            }
            Err(esc) => {
                self.esc = esc;
                None
            }
        }
    }
}

#[inline]
/// Inside a string at `buf[i..]`: the index past its closing quote, or, when `buf` ends first,
/// whether it ended right after a backslash (so the next piece starts with an escaped byte).
fn string_end(buf: &[u8], mut i: usize) -> Result<usize, bool> {
    loop {
        let rest = buf.get(i..).unwrap_or_default();
        let Some(k) = find_quote_or_backslash(rest) else {
            return Err(false);
        };
        i += k + 1;
        if rest.get(k) == Some(&b'"') {
            return Ok(i);
        }
        if i >= buf.len() {
            return Err(true);
        }
        i += 1;
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

/// Deepest nesting a [`Strict`] reader follows; usage objects are two levels deep.
const STRICT_DEPTH: u32 = 16;

/// A value as a counted field sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item {
    /// A plain non-negative integer that fits `u64`.
    Count(u64),
    /// `null`, `true`, `false`, a plain string, or an object or array of such values.
    Other,
}

impl Item {
    pub(crate) fn count(self) -> Option<u64> {
        match self {
            Item::Count(n) => Some(n),
            Item::Other => None,
        }
    }
}

/// A reader of complete, small JSON values that accepts only the narrow subset providers
/// actually send in `usage` objects: printable ASCII strings without escapes, non-negative integers
/// without fraction or exponent, literals, and shallow containers of those. Every method returns
/// `None` as soon as the input leaves that subset (or is not JSON), and the caller then decodes
/// the value the general way; so a value this reader accepts is one serde_json reads the same.
pub(crate) struct Strict<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: u32,
}

impl<'a> Strict<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Strict {
            buf,
            pos: 0,
            depth: 0,
        }
    }

    /// The next byte after whitespace, not consumed.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.pos = skip_ws(self.buf, self.pos);
        self.buf.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    /// How many bytes have been read.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// True when only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// Reads an object, calling `member` with each key; `member` must read the value.
    pub(crate) fn object(
        &mut self,
        mut member: impl FnMut(&'a [u8], &mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            member(key, self)?;
            match self.peek()? {
                b',' => self.pos += 1,
                b'}' => break,
                _ => return None,
            }
        }
        self.pos += 1;
        Some(())
    }

    /// A string's contents.
    fn string(&mut self) -> Option<&'a [u8]> {
        self.eat(b'"')?;
        let rest = self.buf.get(self.pos..)?;
        let len = find_in_words(rest, |w| {
            quote_or_backslash(w) | bytes_below(w, 0x20) | (w & HIGH_BITS)
        })?;
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.pos += len + 1;
        rest.get(..len)
    }

    /// Reads any value as a count.
    pub(crate) fn item(&mut self) -> Option<Item> {
        if !self.peek()?.is_ascii_digit() {
            return self.skip().map(|()| Item::Other);
        }
        let rest = self.buf.get(self.pos..)?;
        let (mut n, mut len) = (0u64, 0);
        while let Some(d) = rest
            .get(len)
            .and_then(|b| b.is_ascii_digit().then(|| b - b'0'))
        {
            // Past u64: serde reads it as a float; the general decoder decides.
            n = n.checked_mul(10)?.checked_add(u64::from(d))?;
            len += 1;
        }
        // A leading zero, a fraction or an exponent: the general decoder decides too.
        let leading_zero = len > 1 && rest.first() == Some(&b'0');
        if leading_zero || matches!(rest.get(len), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.pos += len;
        Some(Item::Count(n))
    }

    /// Steps over one value.
    pub(crate) fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.nested(|r| r.object(|_, r| r.skip())),
            b'[' => self.nested(Self::array),
            b'0'..=b'9' => self.item().map(drop),
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            _ => None,
        }
    }

    fn nested(&mut self, read: impl FnOnce(&mut Self) -> Option<()>) -> Option<()> {
        if self.depth >= STRICT_DEPTH {
            return None;
        }
        self.depth += 1;
        let done = read(self);
        self.depth -= 1;
        done
    }

    fn array(&mut self) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.skip()?;
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => break,
                _ => return None,
            }
        }
        self.pos += 1;
        Some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let rest = self.buf.get(self.pos..)?;
        rest.starts_with(word).then(|| self.pos += word.len())
    }
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
    fn word_search_matches_a_byte_loop() {
        // Neighbours of the searched bytes, with and without the high bit, at every position
        // and length around the word and head boundaries.
        let alphabet = [
            b'"', b'\\', 0xa2, 0xdc, b'!', b'#', b'[', b']', 0, 0x1f, 0x7f, 0xff, b'a',
        ];
        let mut seed = 0x2545_f491_u32;
        for len in 0..48 {
            for _ in 0..200 {
                let buf: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        let pick = (seed >> 16) as usize % (alphabet.len() * 3);
                        alphabet.get(pick).copied().unwrap_or(b'x')
                    })
                    .collect();
                let naive = buf.iter().position(|&b| b == b'"' || b == b'\\');
                assert_eq!(find_quote_or_backslash(&buf), naive, "{buf:?}");
                // The strict reader stops at the first byte serde might read differently.
                let stop = buf
                    .iter()
                    .position(|&b| !(0x20..0x80).contains(&b) || b == b'"' || b == b'\\');
                let mut quoted = vec![b'"'];
                quoted.extend_from_slice(&buf);
                let read = Strict::new(&quoted).string().map(<[u8]>::len);
                let want = stop.filter(|&k| buf.get(k) == Some(&b'"'));
                assert_eq!(read, want, "{buf:?}");
            }
        }
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
