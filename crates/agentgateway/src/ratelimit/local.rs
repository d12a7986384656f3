//! SKELETON (being written)
use super::Clock;
use std::sync::Arc;
pub struct LocalLimiter;
impl LocalLimiter {
    pub fn new(clock: Arc<dyn Clock>) -> LocalLimiter {
        let _ = clock;
        todo!()
    }
}
pub struct SystemClock;
impl SystemClock {
    pub fn new() -> SystemClock {
        SystemClock
    }
}
impl Clock for SystemClock {
    fn now(&self) -> std::time::Duration {
        todo!()
    }
}
impl super::RateLimiter for LocalLimiter {
    fn acquire<'a>(
        &'a self,
        demands: &'a [super::Demand],
    ) -> futures_util::future::BoxFuture<'a, Result<Vec<super::LimitStatus>, super::Limited>> {
        let _ = demands;
        todo!()
    }
    fn adjust(&self, key: &super::BucketKey, spec: super::BucketSpec, delta: i64) {
        let _ = (key, spec, delta);
    }
    fn release(&self, key: &super::BucketKey) {
        let _ = key;
    }
    fn status<'a>(
        &'a self,
        kind: super::LimitKind,
        key: &'a super::BucketKey,
        spec: super::BucketSpec,
    ) -> futures_util::future::BoxFuture<'a, super::LimitStatus> {
        let _ = (kind, key, spec);
        todo!()
    }
}
