//! `$VAR` / `${VAR}` expansion of the raw config text, before YAML parsing.
//!
//! Expanding the text (rather than the parsed tree) keeps the parser's line numbers right, which is
//! what users need when an error points at their file. Comments are left alone so a commented-out
//! `$OLD_KEY` is not an error, and `$$` writes a literal `$`. An unset variable is a load error that
//! names the variable and its line: a silently empty credential would only fail later, upstream.
//! `${NAME:-default}` gives an explicit fallback for optional settings.

/// Expands every `$NAME` / `${NAME}` outside comments using `env`.
pub fn expand_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let (code, comment) = split_comment(line);
        expand_line(code, &mut out, env).map_err(|e| format!("line {}: {e}", index + 1))?;
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

fn expand_line(
    code: &str,
    out: &mut String,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), String> {
    let mut rest = code;
    while let Some(pos) = rest.find('$') {
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
        match (env(name), default) {
            (Some(value), _) => out.push_str(&value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => return Err(format!("environment variable ${name} is not set")),
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
        assert_eq!(out, "a: http://x/v1\nb: sk-123\n");
    }

    #[test]
    fn lone_dollar_is_kept() {
        assert_eq!(expand_env("a: 5 $ each\n", &env).unwrap(), "a: 5 $ each\n");
    }
}
