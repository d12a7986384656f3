//! The rate-limit headers clients already understand: `retry-after` (whole seconds) and OpenAI's
//! `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, with resets written the way OpenAI
//! writes them (`1s`, `6m0s`, `20ms`, `1h2m3s`) so SDKs that parse them keep working.

use std::fmt::Write as _;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use super::{LimitKind, LimitStatus};

/// The three header names of each kind, built once.
const REQUESTS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-requests"),
    HeaderName::from_static("x-ratelimit-remaining-requests"),
    HeaderName::from_static("x-ratelimit-reset-requests"),
];
const TOKENS: [HeaderName; 3] = [
    HeaderName::from_static("x-ratelimit-limit-tokens"),
    HeaderName::from_static("x-ratelimit-remaining-tokens"),
    HeaderName::from_static("x-ratelimit-reset-tokens"),
];

/// For each of requests and tokens, the most restrictive bucket (fewest units left; on a tie the
/// longest reset) becomes the three headers. Parallel limits have no OpenAI header.
pub fn insert_headers(headers: &mut HeaderMap, statuses: &[LimitStatus]) {
    for (kind, [limit, remaining, reset]) in
        [(LimitKind::Requests, REQUESTS), (LimitKind::Tokens, TOKENS)]
    {
        let tightest = statuses
            .iter()
            .filter(|s| s.kind == kind)
            .min_by(|a, b| a.remaining.cmp(&b.remaining).then(b.reset.cmp(&a.reset)));
        let Some(status) = tightest else {
            continue;
        };
        headers.insert(limit, HeaderValue::from(status.limit));
        headers.insert(remaining, HeaderValue::from(status.remaining));
        headers.insert(reset, reset_value(status.reset));
    }
}

fn reset_value(reset: Duration) -> HeaderValue {
    HeaderValue::from_str(&format_reset(reset)).unwrap_or(HeaderValue::from_static("0s"))
}

/// `retry-after` seconds: rounded up, at least 1 (0 would invite an immediate retry).
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// OpenAI's duration format: `20ms` under a second, `1.5s` under a minute, `6m0s`, `1h2m3s`.
pub fn format_reset(d: Duration) -> String {
    let millis = d.as_millis();
    if millis < 1000 {
        // Round sub-millisecond waits up: "0ms" would tell a client it may retry at once.
        let ms = millis + u128::from(!d.subsec_nanos().is_multiple_of(1_000_000));
        return format!("{ms}ms");
    }
    let total_secs = d.as_secs();
    let (hours, minutes) = (total_secs / 3600, (total_secs % 3600) / 60);
    let mut out = String::new();
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if hours > 0 || minutes > 0 {
        let _ = write!(out, "{minutes}m");
    }
    let secs = total_secs % 60;
    let frac_ms = d.subsec_millis();
    if frac_ms == 0 {
        let _ = write!(out, "{secs}s");
    } else {
        let frac = format!("{frac_ms:03}");
        let _ = write!(out, "{secs}.{}s", frac.trim_end_matches('0'));
    }
    out
}
