//! Field paths (`llm.models[0].params.baseUrl`) as segments rather than text, so a map key that
//! holds a dot (a budget for user `a.b`) still finds its place in the file, and problems found by
//! the schema check, the semantic checks and the gateway build all name a field the same way.

use std::fmt;

/// One step into the document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root; empty is the root itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(Vec<Seg>);

impl FieldPath {
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// `a.b.c` (keys only): for the fixed paths the checks start from.
    pub fn of(dotted: &str) -> FieldPath {
        FieldPath(dotted.split('.').map(|k| Seg::Key(k.to_owned())).collect())
    }

    pub fn key(&self, name: &str) -> FieldPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(name.to_owned()));
        FieldPath(segs)
    }

    pub fn index(&self, i: usize) -> FieldPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(i));
        FieldPath(segs)
    }

    /// This path followed by `tail`.
    pub fn join(&self, tail: &FieldPath) -> FieldPath {
        let mut segs = self.0.clone();
        segs.extend(tail.0.iter().cloned());
        FieldPath(segs)
    }

    pub fn segments(&self) -> &[Seg] {
        &self.0
    }

    pub fn parent(&self) -> Option<FieldPath> {
        let (_, init) = self.0.split_last()?;
        Some(FieldPath(init.to_vec()))
    }

    /// Reads a path as the gateway's messages write it (`a.b[2].c`), at the start of `text`.
    /// Returns the path and the rest of the text after a `: ` separator; `None` when `text` does
    /// not start with a path followed by `: `.
    pub fn parse_prefix(text: &str) -> Option<(FieldPath, &str)> {
        let (head, rest) = text.split_once(": ")?;
        if head.is_empty() || head.contains(char::is_whitespace) {
            return None;
        }
        let mut segs = Vec::new();
        for part in head.split('.') {
            let (name, mut indexes) = part.split_once('[').map_or((part, ""), |(n, i)| (n, i));
            if name.is_empty() {
                return None;
            }
            segs.push(Seg::Key(name.to_owned()));
            while !indexes.is_empty() {
                let (number, tail) = indexes.split_once(']')?;
                segs.push(Seg::Index(number.parse().ok()?));
                indexes = tail.strip_prefix('[').unwrap_or(tail);
            }
        }
        Some((FieldPath(segs), rest))
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(root)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(name) if i == 0 => f.write_str(name)?,
                Seg::Key(name) => write!(f, ".{name}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// One thing wrong with a config, at a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: FieldPath,
    pub message: String,
    /// Whether the problem is the key itself (an unknown field) rather than its value.
    pub at_key: bool,
}

impl Problem {
    pub fn new(path: FieldPath, message: impl Into<String>) -> Problem {
        Problem {
            path,
            message: message.into(),
            at_key: false,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_and_parses_back() {
        let path = FieldPath::of("llm.models")
            .index(0)
            .key("params")
            .key("baseUrl");
        assert_eq!(path.to_string(), "llm.models[0].params.baseUrl");
        let (parsed, rest) =
            FieldPath::parse_prefix("llm.models[0].params.baseUrl: bad url").unwrap();
        assert_eq!(parsed, path);
        assert_eq!(rest, "bad url");
        let (nested, _) = FieldPath::parse_prefix("a[1][2].b: x").unwrap();
        assert_eq!(nested, FieldPath::of("a").index(1).index(2).key("b"));
        assert!(FieldPath::parse_prefix("cannot read \"x\": gone").is_none());
        assert!(FieldPath::parse_prefix("no separator").is_none());
        assert_eq!(FieldPath::root().to_string(), "(root)");
    }
}
