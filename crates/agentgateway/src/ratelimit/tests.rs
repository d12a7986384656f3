//! Deterministic limiter tests: a [`ManualClock`] moves time, nothing sleeps.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;

use super::headers::{format_reset, insert_headers, retry_after_secs};
use super::local::{LocalLimiter, ManualClock};
use super::*;

fn setup() -> (Arc<ManualClock>, Arc<LocalLimiter>, Arc<dyn RateLimiter>) {
    let clock = Arc::new(ManualClock::default());
    let local = Arc::new(LocalLimiter::new(clock.clone()));
    let limiter: Arc<dyn RateLimiter> = local.clone();
    (clock, local, limiter)
}

fn spec(capacity: u64, refill: u64, secs: u64) -> BucketSpec {
    BucketSpec {
        capacity,
        refill,
        interval: Duration::from_secs(secs),
    }
}

fn demand(kind: LimitKind, key: &str, spec: BucketSpec, amount: u64) -> Demand {
    Demand {
        kind,
        key: key.into(),
        spec,
        amount,
    }
}

/// The limiter's futures are always ready.
fn acquire(limiter: &Arc<dyn RateLimiter>, demands: &[Demand]) -> Result<Admission, Limited> {
    Admission::acquire(limiter, demands)
        .now_or_never()
        .expect("local limiter is synchronous")
}

/// What a request that used `n` tokens and no known cost settles with.
fn tokens(n: u64) -> Actual {
    Actual {
        tokens: Some(n),
        micro_usd: None,
    }
}

fn remaining(limiter: &Arc<dyn RateLimiter>, d: &Demand) -> u64 {
    limiter
        .status(d.kind, &d.key, d.spec)
        .now_or_never()
        .unwrap()
        .remaining
}

#[test]
fn burst_up_to_capacity_then_refusal_with_the_time_to_refill() {
    let (clock, _, limiter) = setup();
    let rpm = demand(LimitKind::Requests, "u", spec(3, 3, 60), 1);
    for left in [2, 1, 0] {
        let admission = acquire(&limiter, std::slice::from_ref(&rpm)).unwrap();
        assert_eq!(admission.statuses()[0].remaining, left);
    }
    let refused = acquire(&limiter, std::slice::from_ref(&rpm)).err().unwrap();
    assert_eq!(refused.kind, LimitKind::Requests);
    assert_eq!(
        refused.retry_after,
        Duration::from_secs(20),
        "3 per minute: one every 20s"
    );
    assert_eq!(refused.statuses[0].remaining, 0);
    assert_eq!(refused.statuses[0].reset, Duration::from_secs(60));

    clock.advance(Duration::from_secs(19));
    assert!(acquire(&limiter, std::slice::from_ref(&rpm)).is_err());
    clock.advance(Duration::from_secs(1));
    assert!(acquire(&limiter, std::slice::from_ref(&rpm)).is_ok());
    clock.advance(Duration::from_secs(3600));
    assert_eq!(remaining(&limiter, &rpm), 3, "never above capacity");
}

#[test]
fn discrete_fill_settings_refill_continuously_at_the_same_rate() {
    let (clock, _, limiter) = setup();
    // agentgateway's shape: 10 tokens, 5 more every 10s -> 0.5 per second.
    let d = demand(LimitKind::Requests, "k", spec(10, 5, 10), 10);
    acquire(&limiter, std::slice::from_ref(&d)).unwrap();
    clock.advance(Duration::from_secs(4));
    assert_eq!(remaining(&limiter, &d), 2);
}

#[test]
fn all_or_nothing_gives_back_what_was_taken() {
    let (_, _, limiter) = setup();
    let requests = demand(LimitKind::Requests, "r", spec(5, 5, 60), 1);
    let tokens = demand(LimitKind::Tokens, "t", spec(100, 100, 60), 100);
    let slot = demand(LimitKind::Parallel, "p", spec(1, 0, 60), 1);
    let first = acquire(&limiter, &[requests.clone(), tokens.clone(), slot.clone()]).unwrap();
    let refused = acquire(&limiter, &[requests.clone(), slot.clone()])
        .err()
        .unwrap();
    assert_eq!(refused.kind, LimitKind::Parallel);
    assert_eq!(refused.retry_after, Duration::from_secs(1));
    assert_eq!(
        remaining(&limiter, &requests),
        4,
        "the refused request's take was undone"
    );
    let refused = acquire(&limiter, &[requests.clone(), tokens.clone()])
        .err()
        .unwrap();
    assert_eq!(refused.kind, LimitKind::Tokens);
    assert_eq!(remaining(&limiter, &requests), 4);
    drop(first);
    assert_eq!(remaining(&limiter, &slot), 1);
}

#[test]
fn settle_refunds_unused_tokens_and_charges_debt_for_more() {
    let (clock, _, limiter) = setup();
    let tpm = demand(LimitKind::Tokens, "t", spec(100, 100, 60), 50);
    let mut admission = acquire(&limiter, std::slice::from_ref(&tpm)).unwrap();
    assert_eq!(remaining(&limiter, &tpm), 50);
    admission.settle(tokens(20));
    assert_eq!(
        remaining(&limiter, &tpm),
        80,
        "30 of the estimate came back"
    );
    admission.settle(tokens(0));
    assert_eq!(
        remaining(&limiter, &tpm),
        80,
        "only the first settle counts"
    );

    let mut big = acquire(&limiter, std::slice::from_ref(&tpm)).unwrap();
    big.settle(tokens(200));
    assert_eq!(remaining(&limiter, &tpm), 0, "in debt: 80 - 200 = -120");
    let refused = acquire(&limiter, std::slice::from_ref(&tpm)).err().unwrap();
    // From -120 to the 50 demanded is 170 tokens at 100/min.
    assert_eq!(refused.retry_after, Duration::from_millis(102_000));
    clock.advance(Duration::from_secs(102));
    assert!(acquire(&limiter, std::slice::from_ref(&tpm)).is_ok());
}

#[test]
fn settle_without_usage_keeps_the_reservation() {
    let (_, _, limiter) = setup();
    let tpm = demand(LimitKind::Tokens, "t", spec(100, 100, 60), 30);
    let mut admission = acquire(&limiter, std::slice::from_ref(&tpm)).unwrap();
    admission.settle(Actual::default());
    assert_eq!(remaining(&limiter, &tpm), 70);
}

#[test]
fn cost_reservations_settle_with_the_real_cost_and_token_ones_with_the_tokens() {
    let (_, _, limiter) = setup();
    let tpm = demand(LimitKind::Tokens, "t", spec(1000, 1000, 60), 300);
    // $0.00005 a minute, in micro-dollars; the request was estimated at $0.00004.
    let usd = demand(LimitKind::Cost, "c", spec(50, 50, 60), 40);
    let both = [tpm.clone(), usd.clone()];
    let mut admission = acquire(&limiter, &both).unwrap();
    assert_eq!(remaining(&limiter, &usd), 10);
    admission.settle(Actual {
        tokens: Some(18),
        micro_usd: Some(6),
    });
    assert_eq!(remaining(&limiter, &tpm), 982);
    assert_eq!(
        remaining(&limiter, &usd),
        44,
        "34 of the 40 estimated came back"
    );

    let mut unknown_cost = acquire(&limiter, std::slice::from_ref(&usd)).unwrap();
    unknown_cost.settle(tokens(18));
    assert_eq!(
        remaining(&limiter, &usd),
        4,
        "no real cost: the estimate stays"
    );

    let refused = acquire(&limiter, std::slice::from_ref(&usd)).err().unwrap();
    assert_eq!(refused.kind, LimitKind::Cost);
    assert_eq!(
        refused.retry_after,
        Duration::from_millis(43_200),
        "36 micro-dollars at 50 a minute"
    );
}

#[test]
fn parallel_slots_are_released_on_drop_even_unsettled() {
    let (_, local, limiter) = setup();
    let slot = demand(LimitKind::Parallel, "p", spec(2, 0, 60), 1);
    let a = acquire(&limiter, std::slice::from_ref(&slot)).unwrap();
    let mut b = acquire(&limiter, std::slice::from_ref(&slot)).unwrap();
    assert!(acquire(&limiter, std::slice::from_ref(&slot)).is_err());
    drop(a); // the client-disconnect path: no settle at all
    let c = acquire(&limiter, std::slice::from_ref(&slot)).unwrap();
    b.settle(tokens(10));
    drop(b);
    drop(c);
    assert_eq!(remaining(&limiter, &slot), 2);
    assert!(
        local.is_empty(),
        "a key with nothing in flight is forgotten"
    );
}

#[test]
fn a_demand_larger_than_the_bucket_passes_only_when_it_is_full() {
    let (clock, _, limiter) = setup();
    let huge = demand(LimitKind::Tokens, "t", spec(100, 100, 60), 1_000);
    acquire(&limiter, std::slice::from_ref(&huge)).unwrap();
    assert_eq!(remaining(&limiter, &huge), 0);
    let refused = acquire(&limiter, std::slice::from_ref(&huge))
        .err()
        .unwrap();
    assert_eq!(refused.retry_after, Duration::from_secs(60));
    clock.advance(Duration::from_secs(60));
    assert!(acquire(&limiter, std::slice::from_ref(&huge)).is_ok());
}

#[test]
fn a_changed_spec_applies_to_the_existing_bucket() {
    let (_, _, limiter) = setup();
    let small = demand(LimitKind::Requests, "k", spec(10, 10, 60), 1);
    for _ in 0..10 {
        acquire(&limiter, std::slice::from_ref(&small)).unwrap();
    }
    let lowered = demand(LimitKind::Requests, "k", spec(2, 2, 60), 1);
    assert!(acquire(&limiter, std::slice::from_ref(&lowered)).is_err());
    assert_eq!(remaining(&limiter, &lowered), 0);
}

#[test]
fn full_idle_buckets_are_evicted() {
    let (clock, local, limiter) = setup();
    for i in 0..10_000 {
        let d = demand(LimitKind::Requests, &format!("user-{i}"), spec(5, 5, 1), 1);
        acquire(&limiter, &[d]).unwrap();
    }
    assert!(
        local.len() > 5_000,
        "fresh buckets are kept: {}",
        local.len()
    );
    clock.advance(Duration::from_secs(2));
    for i in 0..10_000 {
        let d = demand(LimitKind::Requests, &format!("other-{i}"), spec(5, 5, 1), 1);
        acquire(&limiter, &[d]).unwrap();
    }
    assert!(
        local.len() < 15_000,
        "refilled buckets were swept: {}",
        local.len()
    );
}

#[test]
fn concurrent_acquire_and_release_keep_counts_exact() {
    let (_, _, limiter) = setup();
    let slot = demand(LimitKind::Parallel, "p", spec(4, 0, 60), 1);
    let requests = demand(LimitKind::Requests, "r", spec(1_000_000, 1, 3600), 1);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let limiter = limiter.clone();
            let (slot, requests) = (slot.clone(), requests.clone());
            std::thread::spawn(move || {
                let mut admitted = 0;
                for _ in 0..2_000 {
                    if let Ok(a) = acquire(&limiter, &[requests.clone(), slot.clone()]) {
                        admitted += 1;
                        drop(a);
                    }
                }
                admitted
            })
        })
        .collect();
    let admitted: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(remaining(&limiter, &slot), 4, "every slot came back");
    assert_eq!(
        remaining(&limiter, &requests),
        1_000_000 - admitted,
        "refused requests were given back"
    );
}

#[test]
fn headers_use_the_tightest_bucket_and_openai_reset_format() {
    let status = |kind, limit, remaining, secs| LimitStatus {
        kind,
        limit,
        remaining,
        reset: Duration::from_secs(secs),
    };
    let mut headers = http::HeaderMap::new();
    insert_headers(
        &mut headers,
        &[
            status(LimitKind::Requests, 600, 500, 10),
            status(LimitKind::Requests, 60, 3, 57),
            status(LimitKind::Tokens, 100_000, 99_000, 1),
            status(LimitKind::Parallel, 2, 0, 0),
        ],
    );
    let get = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(get("x-ratelimit-limit-requests"), "60");
    assert_eq!(get("x-ratelimit-remaining-requests"), "3");
    assert_eq!(get("x-ratelimit-reset-requests"), "57s");
    assert_eq!(get("x-ratelimit-remaining-tokens"), "99000");
    assert_eq!(headers.len(), 6, "no header for parallel slots");
}

#[test]
fn reset_and_retry_after_formats() {
    assert_eq!(format_reset(Duration::from_millis(20)), "20ms");
    assert_eq!(format_reset(Duration::from_micros(1)), "1ms");
    assert_eq!(format_reset(Duration::from_secs(1)), "1s");
    assert_eq!(format_reset(Duration::from_millis(1500)), "1.5s");
    assert_eq!(format_reset(Duration::from_secs(360)), "6m0s");
    assert_eq!(format_reset(Duration::from_secs(3723)), "1h2m3s");
    assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
    assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    assert_eq!(retry_after_secs(Duration::ZERO), 1);
}
