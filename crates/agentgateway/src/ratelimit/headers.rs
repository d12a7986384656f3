//! SKELETON (being written)
use super::LimitStatus;
pub fn insert_headers(headers: &mut http::HeaderMap, statuses: &[LimitStatus]) {
    let _ = (headers, statuses);
}
pub fn retry_after_secs(d: std::time::Duration) -> u64 {
    d.as_secs().max(1)
}
