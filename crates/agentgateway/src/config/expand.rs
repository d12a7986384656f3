//! `$VAR` / `${VAR}` expansion of the raw config text, before YAML parsing.
//!
//! Expanding the text (rather than the parsed tree) keeps the parser's line numbers right, which is
//! what users need when an error points at their file. Comments are left alone so a commented-out
//! `$OLD_KEY` is not an error, and `$$` writes a literal `$`. An unset variable is a load error that
//! names the variable and its line: a silently empty credential would only fail later, upstream.
//! `${NAME:-default}` gives an explicit fallback for optional settings.
//!
//! Because the value lands in YAML text, a secret with YAML syntax in it (` #`, `: `, a leading
//! `*` or `&`) could change the document. When a reference is a whole unquoted value
//! (`apiKey: $KEY`, `- $KEY`) and its value holds anything beyond plain characters, it is inserted
//! as a double-quoted string, so it always stays one string. Plain values (numbers, simple names)
//! are inserted as they are, so `port: $PORT` is still a number.

/// Expands every `$NAME` / `${NAME}` outside comments using `env`.
pub fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let (code, comment) = split_comment(line);
        let whole = whole_value_reference(code);
        expand_line(code, whole, &mut out, env).map_err(|e| format!("line {}: {e}", index + 1))?;
        out.push_str(comment);
    }
    Ok(out)
}

/// Splits a line at the start of a YAML comment: `#` at line start or after whitespace, outside quotes.
fn split_comment(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut quote: Option<u8> = None;
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (Some(b'"'), b'\\') => {} // the escaped char cannot be a closing quote we care about here
            (None, b'#') if i == 0 || bytes[i - 1].is_ascii_whitespace() => {
                return line.split_at(i);
            }
            _ => {}
        }
    }
    (line, "")
}

/// The byte offset of a `$` reference that is the whole unquoted value of a `key:` or `- ` line.
fn whole_value_reference(code: &str) -> Option<usize> {
    let text = code.trim_end();
    let start = text.rfind('$')?;
    let (before, reference) = text.split_at(start);
    let single = match reference[1..].strip_prefix('{') {
        Some(braced) => braced.find('}') == Some(braced.len() - 1),
        None => reference[1..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
    };
    let head = before.trim_end();
    let is_value = (head.ends_with(':') || head.trim_start() == "-") && before.ends_with(' ');
    let unquoted = !before.contains(['"', '\'', '{', '[']);
    (single && is_value && unquoted && !before[..before.len() - 1].ends_with('$')).then_some(start)
}

/// Plain YAML scalars that read back as the same text (or the same number).
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'/' | b'-'))
}

/// `value` as a YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

fn expand_line(
    code: &str,
    whole: Option<usize>,
    out: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let mut rest = code;
    while let Some(pos) = rest.find('$') {
        let is_whole = whole == Some(code.len() - rest.len() + pos);
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (name, default, tail) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| "unterminated ${...} reference".to_string())?;
            let (name, default) = match braced[..end].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&braced[..end], None),
            };
            (name, default, &braced[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], None, &after[end..])
        };
        if !is_var_name(name) {
            // A lone `$` (e.g. in a CEL string or a price) is not a reference.
            out.push('$');
            rest = after;
            continue;
        }
        let value = match (env(name), default) {
            (Some(value), _) => value,
            (None, Some(default)) => default.to_owned(),
            (None, None) => return Err(format!("environment variable ${name} is not set")),
        };
        if is_whole && !is_plain(&value) {
            out.push_str(&quoted(&value));
        } else {
            out.push_str(&value);
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(())
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-123".into()),
            "HOST" => Some("example.com".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_both_forms() {
        let out = expand_env("a: $KEY\nb: http://${HOST}/v1\n", &env).unwrap();
        assert_eq!(out, "a: sk-123\nb: http://example.com/v1\n");
    }

    #[test]
    fn unset_variable_names_it_and_its_line() {
        let err = expand_env("a: 1\nb: $MISSING\n", &env).unwrap_err();
        assert_eq!(err, "line 2: environment variable $MISSING is not set");
    }

    #[test]
    fn comments_and_escapes_are_left_alone() {
        let out = expand_env("a: $$5 # was $OLD\n# $GONE\nc: 'x # $KEY'\n", &env).unwrap();
        assert_eq!(out, "a: $5 # was $OLD\n# $GONE\nc: 'x # sk-123'\n");
    }

    #[test]
    fn default_applies_only_when_unset() {
        let out = expand_env("a: ${MISSING:-http://x/v1}\nb: ${KEY:-no}\n", &env).unwrap();
        // A whole value with `:` is quoted: YAML reads it back as the same string.
        assert_eq!(out, "a: \"http://x/v1\"\nb: sk-123\n");
    }

    #[test]
    fn a_whole_value_with_yaml_syntax_stays_one_string() {
        let env = |name: &str| match name {
            "SECRET" => Some("a #b: *c".to_string()),
            "PORT" => Some("4000".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let out = expand_env("k: $SECRET\n- ${SECRET}\np: $PORT\ne: $EMPTY\n", &env).unwrap();
        assert_eq!(out, "k: \"a #b: *c\"\n- \"a #b: *c\"\np: 4000\ne: \"\"\n");
        // Inside a larger value or quotes, the text is spliced as written.
        let out = expand_env("u: http://$PORT/v1\nq: '$PORT'\n", &env).unwrap();
        assert_eq!(out, "u: http://4000/v1\nq: '4000'\n");
        let value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&expand_env("k: $SECRET\n", &env).unwrap()).unwrap();
        assert_eq!(value["k"], "a #b: *c");
    }

    #[test]
    fn lone_dollar_is_kept() {
        assert_eq!(expand_env("a: 5 $ each\n", &env).unwrap(), "a: 5 $ each\n");
    }
}
