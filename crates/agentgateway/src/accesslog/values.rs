//! How each kind of access-log value is written: strings (quoted and escaped only when they
//! must be, checked with one table lookup per byte), exact decimals and socket addresses, all
//! straight into the line's buffer without `fmt` (whose machinery costs several times more on a
//! path that runs per request).

use std::fmt::Write as _;
use std::net::SocketAddr;

use rust_decimal::Decimal;

/// An exact decimal as `Display` writes it (`0.0003`, `-12.5`, `0`), from its digits.
pub(super) fn push_decimal(buf: &mut String, value: Decimal) {
    if value.is_sign_negative() {
        buf.push('-');
    }
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(value.mantissa().unsigned_abs());
    let scale = value.scale() as usize;
    let whole = digits.len().saturating_sub(scale);
    match digits.get(..whole) {
        Some(integer) if !integer.is_empty() => buf.push_str(integer),
        _ => buf.push('0'),
    }
    if scale > 0 {
        buf.push('.');
        for _ in digits.len()..scale {
            buf.push('0');
        }
        buf.push_str(digits.get(whole..).unwrap_or_default());
    }
}

/// `ip:port`. IPv4 (nearly every client) is written digit by digit: `Display` costs several
/// times more on a path that runs per request.
pub(super) fn push_addr(buf: &mut String, addr: SocketAddr) {
    let SocketAddr::V4(v4) = addr else {
        // Writing into a String cannot fail.
        let _ = write!(buf, "{addr}");
        return;
    };
    let mut digits = itoa::Buffer::new();
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            buf.push('.');
        }
        buf.push_str(digits.format(octet));
    }
    buf.push(':');
    buf.push_str(digits.format(v4.port()));
}

/// What a byte means to the writers: most bytes are [`PLAIN`], so one table lookup per byte
/// decides whether a value can be copied as is (the common case).
const PLAIN: u8 = 0;
/// Forces quotes in text (space, `=`) but needs no escape.
const QUOTE: u8 = 1;
/// Must be escaped: `"`, `\`, C0 controls, DEL.
const ESCAPE: u8 = 2;
/// First byte of U+0080..U+00BF; escaped only for U+0080..U+009F (C1 controls).
const C2: u8 = 3;

static BYTE_CLASS: [u8; 256] = {
    let mut table = [PLAIN; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = ESCAPE;
        b += 1;
    }
    table[0x7f] = ESCAPE;
    table[b'"' as usize] = ESCAPE;
    table[b'\\' as usize] = ESCAPE;
    table[b' ' as usize] = QUOTE;
    table[b'=' as usize] = QUOTE;
    table[0xc2] = C2;
    table
};

/// 1 for bytes after which a text value needs a closer look: all but [`PLAIN`] and `\\`.
static TEXT_SUSPECT: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (BYTE_CLASS[b] != PLAIN && b != b'\\' as usize) as u8;
        b += 1;
    }
    table
};

/// 1 for bytes after which a JSON string needs a closer look: [`ESCAPE`] and [`C2`].
static JSON_SUSPECT: [u8; 256] = {
    let mut table = [0; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (BYTE_CLASS[b] >= ESCAPE) as u8;
        b += 1;
    }
    table
};

/// Whether no byte of `bytes` is marked in `table`. ORs every byte's mark rather than stopping
/// at the first: no branch per byte, and values are short.
fn none_marked(table: &[u8; 256], bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(0, |marks, &b| marks | table[usize::from(b)])
        == 0
}

/// A text value, double-quoted (and escaped) only when it is empty or contains a space, `"`,
/// `=` or a control character, so ordinary values stay easy to grep.
pub(super) fn push_text_value(buf: &mut String, value: &str) {
    let bytes = value.as_bytes();
    // Nearly every value is plain: one table lookup per byte, then one copy.
    if !bytes.is_empty() && none_marked(&TEXT_SUSPECT, bytes) {
        buf.push_str(value);
    } else {
        push_text_value_checked(buf, value);
    }
}

/// [`push_text_value`] for a value that may need quotes: decides character by character.
fn push_text_value_checked(buf: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let needs_quotes = value.is_empty()
        || bytes
            .iter()
            .enumerate()
            .any(|(i, &b)| match BYTE_CLASS[usize::from(b)] {
                PLAIN => false,
                // A lone backslash is unambiguous unquoted (`c:\dir`); only quoted values escape it.
                ESCAPE => b != b'\\',
                _ => b != 0xc2 || escape_len(bytes, i).is_some(),
            });
    if needs_quotes {
        buf.push('"');
        push_escaped(buf, value);
        buf.push('"');
    } else {
        buf.push_str(value);
    }
}

pub(super) fn push_json_string(buf: &mut String, value: &str) {
    buf.push('"');
    push_escaped(buf, value);
    buf.push('"');
}

/// When the byte at `i` starts a character that must be escaped (`"`, `\`, or a control
/// character: C0, DEL or C1), the length of that character in bytes.
fn escape_len(bytes: &[u8], i: usize) -> Option<usize> {
    let b = *bytes.get(i)?;
    match BYTE_CLASS[usize::from(b)] {
        ESCAPE => Some(1),
        C2 if matches!(bytes.get(i + 1), Some(0x80..=0x9f)) => Some(2),
        _ => None,
    }
}

/// Escapes `"`, `\` and control characters (`\n`, `\t`, `\r`, else `\u00XX`): valid JSON
/// string content, and unambiguous inside a quoted text value. Runs of other characters are
/// copied in one go; escapes only ever split the string at character boundaries.
fn push_escaped(buf: &mut String, value: &str) {
    if none_marked(&JSON_SUSPECT, value.as_bytes()) {
        buf.push_str(value);
    } else {
        push_escaped_checked(buf, value);
    }
}

/// [`push_escaped`] for a value that may hold characters to escape.
fn push_escaped_checked(buf: &mut String, value: &str) {
    let bytes = value.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let Some(len) = escape_len(bytes, i) else {
            i += 1;
            continue;
        };
        buf.push_str(value.get(start..i).unwrap_or_default());
        match bytes[i] {
            b'"' => buf.push_str("\\\""),
            b'\\' => buf.push_str("\\\\"),
            b'\n' => buf.push_str("\\n"),
            b'\t' => buf.push_str("\\t"),
            b'\r' => buf.push_str("\\r"),
            _ => {
                let code = value.get(i..i + len).and_then(|c| c.chars().next());
                let _ = write!(buf, "\\u{:04x}", code.map_or(0, u32::from));
            }
        }
        i += len;
        start = i;
    }
    buf.push_str(value.get(start..).unwrap_or_default());
}

#[cfg(test)]
mod tests;
