//! Budget windows and wall-clock time. A budget resets at fixed UTC boundaries (the top of the
//! hour, midnight, every 7 or 30 days counted from the Unix epoch, the first of the month), so the
//! reset time a refused caller is told is exact, every replica computes the same window, and a
//! window always starts on an hour boundary — the spend ledger's granularity — so a window's
//! spend can be read back from hourly rows exactly.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

/// How long a budget's spend accumulates before it starts again from zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, schemars::JsonSchema)]
pub enum Window {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "1d")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Days30,
    /// The calendar month, UTC.
    #[serde(rename = "month")]
    Month,
}

impl Window {
    /// The label and config spelling: `1h`, `1d`, `7d`, `30d`, `month`.
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Hour => "1h",
            Window::Day => "1d",
            Window::Week => "7d",
            Window::Days30 => "30d",
            Window::Month => "month",
        }
    }

    /// Start of the window holding `now` (Unix seconds).
    pub fn start(self, now: i64) -> i64 {
        match self.fixed_len() {
            Some(len) => now - now.rem_euclid(len),
            None => {
                let (year, month, _) = civil_from_days(now.div_euclid(DAY));
                days_from_civil(year, month, 1) * DAY
            }
        }
    }

    /// When the window holding `now` ends and the next starts.
    pub fn reset_at(self, now: i64) -> i64 {
        match self.fixed_len() {
            Some(len) => self.start(now) + len,
            None => {
                let (year, month, _) = civil_from_days(now.div_euclid(DAY));
                let (year, month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                days_from_civil(year, month, 1) * DAY
            }
        }
    }

    fn fixed_len(self) -> Option<i64> {
        match self {
            Window::Hour => Some(HOUR),
            Window::Day => Some(DAY),
            Window::Week => Some(7 * DAY),
            Window::Days30 => Some(30 * DAY),
            Window::Month => None,
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-12-01T00:00:00Z`, for messages and the admin API.
pub fn rfc3339(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(DAY));
    let secs = unix.rem_euclid(DAY);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / HOUR,
        secs % HOUR / 60,
        secs % 60
    )
}

/// Wall-clock time in Unix seconds. Budgets and the spend ledger read it through this trait so
/// tests can move time (a window reset) without waiting.
pub trait WallClock: Send + Sync {
    fn unix_now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemWallClock;

impl WallClock for SystemWallClock {
    fn unix_now(&self) -> i64 {
        crate::auth::unix_now()
    }
}

/// A clock tests set by hand.
#[derive(Debug)]
pub struct ManualWallClock(AtomicI64);

impl ManualWallClock {
    pub fn new(unix: i64) -> ManualWallClock {
        ManualWallClock(AtomicI64::new(unix))
    }

    pub fn set(&self, unix: i64) {
        self.0.store(unix, Ordering::Release);
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::AcqRel);
    }
}

impl WallClock for ManualWallClock {
    fn unix_now(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-29T17:35:23Z
    const NOW: i64 = 1_795_973_723;

    #[test]
    fn fixed_windows_align_to_utc_boundaries() {
        assert_eq!(Window::Hour.start(NOW), 1_795_971_600); // 17:00
        assert_eq!(Window::Hour.reset_at(NOW), 1_795_975_200); // 18:00
        assert_eq!(Window::Day.start(NOW), 1_795_910_400); // 2026-11-29T00:00Z
        assert_eq!(Window::Day.reset_at(NOW), 1_795_996_800);
        let week = Window::Week.start(NOW);
        assert!(week <= NOW && NOW < Window::Week.reset_at(NOW));
        assert_eq!(week % (7 * DAY), 0);
        assert_eq!(
            Window::Days30.reset_at(NOW) - Window::Days30.start(NOW),
            30 * DAY
        );
    }

    #[test]
    fn month_is_the_calendar_month() {
        assert_eq!(Window::Month.start(NOW), 1_793_491_200); // 2026-11-01T00:00Z
        assert_eq!(Window::Month.reset_at(NOW), 1_796_083_200); // 2026-12-01T00:00Z
                                                                // December rolls into January of the next year.
        let december = 1_796_083_200 + 5 * DAY;
        assert_eq!(Window::Month.reset_at(december), 1_798_761_600); // 2027-01-01
                                                                     // A leap February.
        let feb_2028 = days_from_civil(2028, 2, 10) * DAY;
        assert_eq!(
            Window::Month.reset_at(feb_2028) - Window::Month.start(feb_2028),
            29 * DAY
        );
    }

    #[test]
    fn civil_round_trips() {
        for days in [-1000, -1, 0, 1, 10_957, 20_786, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn windows_parse_from_config_spelling() {
        for window in [
            Window::Hour,
            Window::Day,
            Window::Week,
            Window::Days30,
            Window::Month,
        ] {
            let parsed: Window = serde_json::from_value(window.as_str().into()).unwrap();
            assert_eq!(parsed, window);
        }
        assert!(serde_json::from_str::<Window>("\"2d\"").is_err());
    }

    #[test]
    fn rfc3339_text() {
        assert_eq!(rfc3339(NOW), "2026-11-29T17:35:23Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn manual_clock_moves() {
        let clock = ManualWallClock::new(100);
        clock.advance(3600);
        assert_eq!(clock.unix_now(), 3700);
        clock.set(5);
        assert_eq!(clock.unix_now(), 5);
    }
}
