//! The Anthropic content shapes a Messages request carries: a `content` (or `system`) that is
//! either a plain string or an array of typed blocks. One flat [`Block`] struct reads every
//! block type, so no block is buffered through serde's untagged/internally-tagged machinery
//! (which would copy every string and cannot hold a `&RawValue`). Fields whose shape differs
//! between block types (`source`, `input`, `content`) stay raw and are decoded only for the
//! block types that use them, so an unknown block never fails the request.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Separator for texts joined into one string (see the module documentation of the parent).
pub(super) const JOIN: &str = "\n\n";

/// A `content` / `system` value.
#[derive(Debug)]
pub(super) enum Content<'a> {
    Text(Cow<'a, str>),
    Blocks(Vec<Block<'a>>),
}

/// Any content block, typed only in the fields this translation reads.
#[derive(Debug, Deserialize)]
pub(super) struct Block<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub source: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub input: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub tool_use_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub content: Option<&'a RawValue>,
    /// A `tool_result` reporting a failed tool run.
    #[serde(default)]
    pub is_error: Option<bool>,
}

/// An image block's `source`.
#[derive(Debug, Deserialize)]
pub(super) struct ImageSource<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default, borrow)]
    pub media_type: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub data: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub url: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ContentVisitor(PhantomData))
    }
}

struct ContentVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ContentVisitor<'a> {
    type Value = Content<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or an array of content blocks")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Content::Text(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Content::Text(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Content::Text(Cow::Owned(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut blocks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(block) = seq.next_element::<Block<'a>>()? {
            blocks.push(block);
        }
        Ok(Content::Blocks(blocks))
    }
}

/// Joins texts with [`JOIN`], borrowing when there is only one.
pub(super) fn join<'a>(mut texts: Vec<Cow<'a, str>>) -> Cow<'a, str> {
    if texts.len() <= 1 {
        return texts.pop().unwrap_or_default();
    }
    let len = texts.iter().map(|t| t.len() + JOIN.len()).sum();
    let mut joined = String::with_capacity(len);
    for (i, text) in texts.iter().enumerate() {
        if i > 0 {
            joined.push_str(JOIN);
        }
        joined.push_str(text);
    }
    Cow::Owned(joined)
}

/// Records something the target API has no place for, once.
pub(super) fn note_dropped(dropped: &mut Vec<String>, what: String) {
    if !dropped.contains(&what) {
        dropped.push(what);
    }
}

/// A tool input as OpenAI wants it: a compact JSON string (Anthropic carries an object, which a
/// client may have pretty-printed). The raw value is valid JSON already, so dropping the
/// whitespace outside strings is all it takes; borrowed when there is none.
pub(super) fn compact_json(raw: &str) -> Cow<'_, str> {
    if !raw
        .bytes()
        .any(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in raw.chars() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_json_keeps_string_whitespace() {
        assert_eq!(compact_json(r#"{"a":1}"#), r#"{"a":1}"#);
        assert!(matches!(compact_json(r#"{"a":1}"#), Cow::Borrowed(_)));
        assert_eq!(
            compact_json("{ \"a b\" : [1, 2],\n \"c\\\" d\": \"x \\\\\" }"),
            "{\"a b\":[1,2],\"c\\\" d\":\"x \\\\\"}"
        );
    }

    #[test]
    fn join_borrows_a_single_text() {
        assert!(matches!(join(vec![Cow::Borrowed("a")]), Cow::Borrowed("a")));
        assert_eq!(join(vec![]), "");
        assert_eq!(join(vec!["a".into(), "b".into()]), "a\n\nb");
    }

    #[test]
    fn content_borrows_unescaped_strings() {
        let c: Content = serde_json::from_str(r#""plain""#).unwrap();
        assert!(matches!(c, Content::Text(Cow::Borrowed("plain"))));
        let c: Content = serde_json::from_str(r#""a\nb""#).unwrap();
        assert!(matches!(c, Content::Text(Cow::Owned(ref s)) if s == "a\nb"));
        let c: Content = serde_json::from_str(r#"[{"type":"text","text":"t"}]"#).unwrap();
        assert!(matches!(c, Content::Blocks(ref b) if b.len() == 1));
        assert!(serde_json::from_str::<Content>("3").is_err());
    }
}
