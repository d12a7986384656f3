//! Searches a 64-bit word at a time for the bytes the scanners stop at (string ends, brackets,
//! control bytes). Most strings and gaps in a response are a few bytes long, where setting up a
//! vector search costs more than it saves; plain integer arithmetic on eight bytes at once does
//! the job with no `unsafe` and no platform code.

use memchr::memchr2;

/// Most strings in a response are short (keys, ids, enum values), where setting up a vector
/// search costs more than it saves, so their first bytes are searched a word at a time.
const SHORT_STRING: usize = 16;

const ONES: u64 = u64::from_le_bytes([1; 8]);
pub(super) const HIGH_BITS: u64 = ONES * 0x80;

/// The high bit of each byte of `word` equal to `b`. Exact up to the first such byte (a borrow
/// may flag later ones too), which is all the searches below read.
fn bytes_equal(word: u64, b: u8) -> u64 {
    let x = word ^ (ONES * u64::from(b));
    x.wrapping_sub(ONES) & !x & HIGH_BITS
}

/// The high bit of each byte of `word` below `n` (`n` at most 0x80), exact as in [`bytes_equal`].
pub(super) fn bytes_below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH_BITS
}

pub(super) fn quote_or_backslash(word: u64) -> u64 {
    bytes_equal(word, b'"') | bytes_equal(word, b'\\')
}

/// Bytes that change nesting or start a string (everything else inside a container is skipped):
/// `"`, and brackets of both kinds; setting bit 5 folds `[`/`]` onto `{`/`}` and nothing else.
fn structural(word: u64) -> u64 {
    let folded = word | (ONES * 0x20);
    bytes_equal(word, b'"') | bytes_equal(folded, b'{') | bytes_equal(folded, b'}')
}

/// Inside a compact container the next structural byte is usually one to three bytes on
/// (`":"`, `","`, `":0,"`), so those are looked at one by one before searching by words.
#[inline]
pub(super) fn find_structural(bytes: &[u8]) -> Option<usize> {
    const NEAR: usize = 4;
    let mut near = bytes.iter().take(NEAR);
    if let Some(k) = near.position(|b| matches!(b, b'"' | b'{' | b'}' | b'[' | b']')) {
        return Some(k);
    }
    find_in_words(bytes.get(NEAR..)?, structural).map(|k| k + NEAR)
}

/// Index of the first byte that `hits` flags, eight bytes per step.
#[inline]
pub(super) fn find_in_words(bytes: &[u8], hits: impl Fn(u64) -> u64) -> Option<usize> {
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let found = hits(u64::from_le_bytes(word.try_into().ok()?));
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let tail = words.remainder();
    if tail.is_empty() {
        return None;
    }
    let found = match bytes.len().checked_sub(8) {
        // The last eight bytes, overlapping ones already searched: those held no hit (and so
        // no false one either), and are shifted out.
        Some(last) => {
            let word = u64::from_le_bytes(bytes.get(last..)?.try_into().ok()?);
            hits(word) >> (8 * (8 - tail.len()))
        }
        // Fewer than eight bytes in all: padded with zero bytes; a hit there is no hit.
        None => {
            let mut padded = [0u8; 8];
            padded.get_mut(..tail.len())?.copy_from_slice(tail);
            hits(u64::from_le_bytes(padded))
        }
    };
    let k = at + found.trailing_zeros() as usize / 8;
    (found != 0 && k < bytes.len()).then_some(k)
}

/// Where a string's contents end: the first `"` or `\\`. Most strings end within their
/// first eight bytes, so that word is tested inline before any loop is set up.
#[inline]
pub(crate) fn find_quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    let Some(first) = bytes.get(..8).and_then(|w| <[u8; 8]>::try_from(w).ok()) else {
        return find_in_words(bytes, quote_or_backslash);
    };
    let found = quote_or_backslash(u64::from_le_bytes(first));
    if found != 0 {
        return Some(found.trailing_zeros() as usize / 8);
    }
    let rest = bytes.get(8..)?;
    let head = rest.get(..SHORT_STRING - 8).unwrap_or(rest);
    let k = match find_in_words(head, quote_or_backslash) {
        Some(k) => k,
        None if head.len() == rest.len() => return None,
        None => head.len() + memchr2(b'"', b'\\', rest.get(head.len()..)?)?,
    };
    Some(8 + k)
}
