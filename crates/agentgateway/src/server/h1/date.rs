//! The `date` response header (IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`).
//!
//! Every response carries one and all responses of a second share it, so each thread keeps the
//! text of the last second it formatted and only formats again when the second changes.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Datelike, Timelike};

/// `Sun, 06 Nov 1994 08:49:37 GMT`
pub(super) const LEN: usize = 29;

thread_local! {
    static CACHE: Cell<(u64, [u8; LEN])> = const { Cell::new((u64::MAX, [0; LEN])) };
}

/// Appends the current date to `out`.
pub(super) fn write(out: &mut Vec<u8>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let text = CACHE.with(|cache| {
        let (second, text) = cache.get();
        if second == now {
            return text;
        }
        let text = format(now);
        cache.set((now, text));
        text
    });
    out.extend_from_slice(&text);
}

/// The IMF-fixdate of `secs` since the epoch.
pub(super) fn format(secs: u64) -> [u8; LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or_default();
    let weekday = t.weekday().num_days_from_monday() as usize;
    let month = t.month0() as usize;
    let mut out = [b' '; LEN];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        for (slot, byte) in out.iter_mut().skip(at).zip(bytes) {
            *slot = *byte;
        }
        at += bytes.len();
    };
    put(DAYS.get(weekday).map_or(b"???", |d| *d));
    put(b", ");
    put(&two(t.day()));
    put(b" ");
    put(MONTHS.get(month).map_or(b"???", |m| *m));
    put(b" ");
    let year = u32::try_from(t.year()).unwrap_or(0) % 10_000;
    put(&two(year / 100));
    put(&two(year % 100));
    put(b" ");
    put(&two(t.hour()));
    put(b":");
    put(&two(t.minute()));
    put(b":");
    put(&two(t.second()));
    put(b" GMT");
    out
}

fn two(n: u32) -> [u8; 2] {
    // Both digits fit a u8: n < 100 for every field here.
    [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8]
}
