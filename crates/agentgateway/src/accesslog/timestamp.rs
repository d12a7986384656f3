//! The access log's timestamp: RFC 3339, UTC, microseconds (`2025-12-12T21:56:02.809082Z`).
//!
//! Converting a time to its calendar date and clock is most of the cost of a timestamp, and
//! lines logged in the same second share all of it but the microseconds. So each thread keeps
//! the text of the last second it wrote (up to and including the `.`) and only formats it again
//! when the second changes; the microseconds are written each time.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, Timelike, Utc};

thread_local! {
    static CACHE: RefCell<SecondCache> = RefCell::new(SecondCache::default());
}

/// Appends the timestamp of `at` to `buf`.
pub(super) fn write(buf: &mut String, at: SystemTime) {
    let cached = CACHE.with(|cache| match cache.try_borrow_mut() {
        Ok(mut cache) => cache.write(buf, at),
        Err(_) => false,
    });
    if !cached {
        write_uncached(buf, at);
    }
}

/// The text of one second, reused while lines keep falling in it.
#[derive(Debug, Default)]
pub(super) struct SecondCache {
    /// Seconds since the epoch that `prefix` shows; `None` before the first use.
    second: Option<u64>,
    /// `2025-12-12T21:56:02.`
    prefix: String,
}

impl SecondCache {
    /// Appends the timestamp of `at`; false (nothing written) for a time before 1970, which the
    /// caller formats uncached.
    pub(super) fn write(&mut self, buf: &mut String, at: SystemTime) -> bool {
        let Ok(since_epoch) = at.duration_since(UNIX_EPOCH) else {
            return false;
        };
        let second = since_epoch.as_secs();
        if self.second != Some(second) {
            self.prefix.clear();
            write_second(&mut self.prefix, &at.into());
            self.second = Some(second);
        }
        buf.push_str(&self.prefix);
        push_padded(buf, since_epoch.subsec_micros().into(), 6);
        buf.push('Z');
        true
    }
}

/// The whole timestamp, formatted from scratch.
pub(super) fn write_uncached(buf: &mut String, at: SystemTime) {
    let t: DateTime<Utc> = at.into();
    write_second(buf, &t);
    // A leap second shows as nanos >= 1e9; clamp rather than print 7 digits.
    push_padded(buf, t.timestamp_subsec_micros().min(999_999).into(), 6);
    buf.push('Z');
}

/// `2025-12-12T21:56:02.`: everything up to the fraction.
fn write_second(buf: &mut String, t: &DateTime<Utc>) {
    push_padded(buf, u64::try_from(t.year()).unwrap_or(0), 4);
    buf.push('-');
    push_padded(buf, t.month().into(), 2);
    buf.push('-');
    push_padded(buf, t.day().into(), 2);
    buf.push('T');
    push_padded(buf, t.hour().into(), 2);
    buf.push(':');
    push_padded(buf, t.minute().into(), 2);
    buf.push(':');
    push_padded(buf, t.second().into(), 2);
    buf.push('.');
}

fn push_padded(buf: &mut String, value: u64, width: usize) {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(value);
    for _ in text.len()..width {
        buf.push('0');
    }
    buf.push_str(text);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(rfc3339: &str) -> SystemTime {
        DateTime::parse_from_rfc3339(rfc3339)
            .expect("RFC 3339 timestamp")
            .into()
    }

    fn cached(cache: &mut SecondCache, t: SystemTime) -> String {
        let mut buf = String::from(">");
        assert!(cache.write(&mut buf, t));
        buf
    }

    #[test]
    fn the_cached_second_is_rewritten_when_the_second_changes() {
        let mut cache = SecondCache::default();
        let times = [
            "2025-12-12T21:56:02.809082Z",
            "2025-12-12T21:56:02.999999Z",
            "2025-12-12T21:56:03.000000Z",
            "2025-12-12T21:56:03.000001Z",
            // The clock stepped back: the earlier second again.
            "2025-12-12T21:56:02.500000Z",
            "2025-12-31T23:59:59.999999Z",
            "2026-01-01T00:00:00.000007Z",
        ];
        for text in times {
            assert_eq!(cached(&mut cache, at(text)), format!(">{text}"));
        }
    }

    #[test]
    fn cached_and_uncached_agree_across_many_seconds() {
        let mut cache = SecondCache::default();
        let start = at("2024-02-28T23:59:58.123456Z");
        for step in 0..5_000u64 {
            // 0.7 s steps: several lines in one second, then a change of second (and of day).
            let t = start + Duration::from_micros(step * 700_001);
            let mut want = String::from(">");
            write_uncached(&mut want, t);
            assert_eq!(cached(&mut cache, t), want, "step {step}");
        }
    }

    #[test]
    fn times_before_1970_are_left_to_the_uncached_writer() {
        let mut cache = SecondCache::default();
        let mut buf = String::new();
        let before = at("1969-07-20T20:17:40.000001Z");
        assert!(!cache.write(&mut buf, before));
        assert!(buf.is_empty());
        write(&mut buf, before);
        assert_eq!(buf, "1969-07-20T20:17:40.000001Z");
    }
}
