//! What auth and rate limits cost on the request path, with warm state (issue 3's budget:
//! under 2 µs per request). Run: `cargo bench -p agentgateway --bench request_path`.
//!
//! - `auth/static_10k`: find the caller among 10,000 keys from `Authorization: Bearer`.
//! - `limits/admit_settle`: a per-user `localRateLimit` rule (CEL key) plus the key's own rpm and
//!   maxParallel, on a limiter already holding 10,000 users' buckets; admit, settle, release.
//! - `auth_and_limits`: both, as one request does them, round-robin over the 10,000 keys (each
//!   request's key and buckets are cold in the CPU cache); `/one_key`: the same key every time.
//! - `record/new`: the per-request record both benches create, to subtract.
//! - `tokens/estimate_1k`: the tiktoken estimate of a ~1 KB chat request, which only requests
//!   under a token limit pay.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use agentgateway::auth::Authenticator;
use agentgateway::config::{ApiKeyEntry, ApiKeyMode, ApiKeyPolicy, LocalRateLimit, RateLimitType};
use agentgateway::identity::KeyLimits;
use agentgateway::limits::RateLimits;
use agentgateway::ratelimit::local::{LocalLimiter, SystemClock};
use agentgateway::ratelimit::Actual;
use agentgateway::record::{ListenerInfo, RequestRecord};
use criterion::{criterion_group, criterion_main, Criterion};
use futures_util::FutureExt;

const KEYS: usize = 10_000;
/// Limits so large no bench request is refused. Buckets this size also never refill to full
/// between requests (at 1e12 per minute they would refill within nanoseconds, be swept as idle
/// and re-created: churn a real deployment does not see).
const NEVER_EMPTY: u64 = 1_000_000_000_000;

fn policy() -> ApiKeyPolicy {
    let keys = (0..KEYS)
        .map(|i| {
            let mut metadata = serde_json::Map::new();
            metadata.insert("user".into(), format!("user-{i}").into());
            ApiKeyEntry {
                key: Some(format!("sk-bench-{i:08}")),
                key_hash: None,
                name: None,
                metadata,
                allowed_models: None,
                limits: KeyLimits {
                    rpm: Some(NEVER_EMPTY),
                    max_parallel: Some(64),
                    ..KeyLimits::default()
                },
                budgets: Vec::new(),
            }
        })
        .collect();
    ApiKeyPolicy {
        mode: ApiKeyMode::Strict,
        keys,
    }
}

fn limits() -> RateLimits {
    let rule = LocalRateLimit {
        kind: RateLimitType::Requests,
        max_tokens: Some(NEVER_EMPTY),
        tokens_per_fill: Some(1),
        max_usd: None,
        usd_per_fill: None,
        fill_interval: Duration::from_secs(3600),
        key: Some("apiKey.user".into()),
    };
    let limiter = Arc::new(LocalLimiter::new(Arc::new(SystemClock::new())));
    RateLimits::new(&[rule], limiter).expect("valid rule")
}

fn record() -> RequestRecord {
    let (parts, ()) = http::Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .body(())
        .expect("static request")
        .into_parts();
    let listener = Arc::new(ListenerInfo {
        bind: "4000".into(),
        gateway: "bind/4000".into(),
        listener: "llm".into(),
    });
    RequestRecord::new(listener, "127.0.0.1:5000".parse().expect("addr"), &parts)
}

/// The `Authorization` value of key `i`.
fn bearer(i: usize) -> http::HeaderValue {
    format!("Bearer sk-bench-{i:08}").parse().expect("header")
}

/// One request's auth + limits; the admission is settled and released as `finish` would.
fn request(auth: &Authenticator, limits: &RateLimits, headers: &http::HeaderMap) {
    let mut rec = record();
    rec.identity = auth.authenticate(headers).expect("known key");
    limits
        .admit(&mut rec, b"{}", "gpt-4o-mini", None)
        .now_or_never()
        .expect("the local limiter never waits")
        .expect("limits are generous");
    if let Some(mut admission) = rec.admission.0.take() {
        admission.settle(Actual {
            tokens: Some(18),
            micro_usd: None,
        });
    }
    black_box(rec);
}

fn bench(c: &mut Criterion) {
    let auth = Authenticator::from_policy(&policy()).expect("valid policy");
    let limits = limits();
    let values: Vec<http::HeaderValue> = (0..KEYS).map(bearer).collect();
    // A request's header map was just parsed, so it is hot; only the key varies.
    let mut headers = http::HeaderMap::new();
    // Warm: every user's buckets exist, as on a gateway that has been serving a while.
    for value in &values {
        headers.insert(http::header::AUTHORIZATION, value.clone());
        request(&auth, &limits, &headers);
    }
    headers.insert(http::header::AUTHORIZATION, values[42].clone());
    let user_42 = auth.authenticate(&headers).expect("known key");

    let mut i = 0;
    c.bench_function("auth/static_10k", |b| {
        b.iter(|| {
            i = (i + 7919) % KEYS;
            headers.insert(http::header::AUTHORIZATION, values[i].clone());
            black_box(auth.authenticate(&headers).expect("known key"))
        })
    });
    c.bench_function("limits/admit_settle", |b| {
        b.iter(|| {
            let mut rec = record();
            rec.identity = user_42.clone();
            let admitted = limits
                .admit(&mut rec, b"{}", "gpt-4o-mini", None)
                .now_or_never();
            black_box(admitted);
            if let Some(mut admission) = rec.admission.0.take() {
                admission.settle(Actual {
                    tokens: Some(18),
                    micro_usd: None,
                });
            }
        })
    });
    c.bench_function("record/new", |b| b.iter(|| black_box(record())));
    c.bench_function("auth_and_limits/one_key", |b| {
        headers.insert(http::header::AUTHORIZATION, values[42].clone());
        b.iter(|| request(&auth, &limits, &headers))
    });
    c.bench_function("auth_and_limits", |b| {
        b.iter(|| {
            i = (i + 7919) % KEYS;
            headers.insert(http::header::AUTHORIZATION, values[i].clone());
            request(&auth, &limits, &headers)
        })
    });
    let chat = chat_1k();
    agentgateway::tokens::warm_up();
    c.bench_function("tokens/estimate_1k", |b| {
        b.iter(|| {
            black_box(agentgateway::tokens::estimate_request_tokens(
                &chat, "gpt-4o",
            ))
        })
    });
}

fn chat_1k() -> Vec<u8> {
    let sentence = "The quick brown fox jumps over the lazy dog while the gateway counts tokens. ";
    let content = sentence.repeat(12);
    serde_json::json!({
        "model": "gpt-4o",
        "max_tokens": 256,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": content},
        ]
    })
    .to_string()
    .into_bytes()
}

criterion_group!(benches, bench);
criterion_main!(benches);
