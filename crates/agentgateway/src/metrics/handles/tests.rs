//! Tests of the handle cache: a request seen before hits, any label difference misses, a full
//! cache still counts every request, a hash collision is told apart by the labels, and series
//! are created on first use only.

use std::hash::BuildHasher;
use std::time::Duration;

use super::*;
use crate::exposition::parse;
use crate::exposition::Format;
use crate::metrics::tests::{chat, request, scrape, REQUESTS};
use crate::record::RequestError;

fn user(name: &str) -> Vec<Arc<str>> {
    vec![Arc::from(name)]
}

fn metrics() -> Metrics {
    Metrics::new(vec!["user_id".into()])
}

/// The exposition's lines, sorted: series order within a family follows a `HashMap`.
fn sorted_lines(metrics: &Metrics) -> Vec<String> {
    let mut lines: Vec<String> = metrics
        .encode(Format::Text004)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

/// The cached entry for `rec` with `custom`, if any.
fn cached(metrics: &Metrics, rec: &RequestRecord, custom: &[Arc<str>]) -> Option<Arc<Handles>> {
    let view = metrics.view(
        rec,
        CustomView {
            values: custom,
            len: metrics.custom_names.len(),
        },
    );
    metrics.handles.get(metrics.hasher.hash_one(&view), &view)
}

#[test]
fn a_request_with_labels_seen_before_uses_the_same_entry() {
    let metrics = metrics();
    let rec = chat();
    metrics.record(&rec, &user("alice"));
    let first = cached(&metrics, &rec, &user("alice")).expect("cached after the first request");
    // A fresh Arc with the same text: values are compared by content.
    metrics.record(&rec, &user("alice"));
    let second = cached(&metrics, &rec, &user("alice")).expect("still cached");
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(metrics.handles.len(), 1);
    let all = scrape(&metrics);
    let hits = parse::find(&all, REQUESTS, &[("user_id", "alice")]);
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].value, 2.0);
}

#[test]
fn any_label_difference_gets_its_own_entry() {
    let metrics = metrics();
    let base = chat();
    let mut variants = vec![base.clone()];
    let mut failed = base.clone();
    failed.status = 502;
    variants.push(failed.clone());
    failed.error = Some(RequestError::new("upstream_error"));
    variants.push(failed.clone());
    failed.reason = Some("upstream_error");
    variants.push(failed);
    let mut other_model = base.clone();
    other_model.llm.response_model = Some("gpt-4o-mini-2024-09-01".into());
    variants.push(other_model);
    let mut no_route = base.clone();
    no_route.route = None;
    variants.push(no_route);
    variants.push(request(http::Method::GET));
    variants.push(request(
        http::Method::from_bytes(b"BREW").expect("valid method"),
    ));
    for (i, rec) in variants.iter().enumerate() {
        metrics.record(rec, &user("alice"));
        assert_eq!(metrics.handles.len(), i + 1, "variant {i} is new");
    }
    metrics.record(&base, &user("bob"));
    assert_eq!(
        metrics.handles.len(),
        variants.len() + 1,
        "custom value differs"
    );
    // Every variant again: all hits, nothing added.
    for rec in &variants {
        metrics.record(rec, &user("alice"));
    }
    assert_eq!(metrics.handles.len(), variants.len() + 1);
    let all = scrape(&metrics);
    let alice = parse::find(&all, REQUESTS, &[("user_id", "alice")]);
    assert_eq!(alice.iter().map(|s| s.value).sum::<f64>(), 16.0);
}

#[test]
fn a_full_cache_still_counts_every_request_exactly_as_an_empty_one() {
    let capped = metrics();
    let capped = Metrics {
        handles: HandleCache::new(2),
        ..capped
    };
    let uncapped = metrics();
    let mut rec = chat();
    rec.llm.usage.input_tokens = Some(10);
    rec.ttft = Some(Duration::from_millis(100));
    for round in 0..3 {
        for name in ["alice", "bob", "carol", "dave"] {
            capped.record(&rec, &user(name));
            uncapped.record(&rec, &user(name));
        }
        assert_eq!(capped.handles.len(), 2, "round {round}: never past the cap");
    }
    assert_eq!(uncapped.handles.len(), 4);
    assert_eq!(sorted_lines(&capped), sorted_lines(&uncapped));
    let all = scrape(&capped);
    for name in ["alice", "bob", "carol", "dave"] {
        let hits = parse::find(&all, REQUESTS, &[("user_id", name)]);
        assert_eq!(hits[0].value, 3.0, "{name}");
    }
}

#[test]
fn entries_under_the_same_hash_are_told_apart_by_their_labels() {
    let metrics = metrics();
    let cache = HandleCache::new(8);
    let rec = chat();
    let (alice, bob) = (user("alice"), user("bob"));
    let view = |custom| {
        let len = metrics.custom_names.len();
        metrics.view(
            &rec,
            CustomView {
                values: custom,
                len,
            },
        )
    };
    let resolved = metrics.resolve(&rec, &alice);
    let kept = cache.insert(7, &view(&alice), resolved);
    assert!(
        cache.get(7, &view(&bob)).is_none(),
        "same hash, other labels"
    );
    let found = cache.get(7, &view(&alice)).expect("same hash, same labels");
    assert!(Arc::ptr_eq(&kept, &found));
    // Inserting the same labels again keeps the first entry.
    let again = cache.insert(7, &view(&alice), metrics.resolve(&rec, &alice));
    assert!(Arc::ptr_eq(&kept, &again));
    cache.insert(7, &view(&bob), metrics.resolve(&rec, &bob));
    assert_eq!(cache.len(), 2);
    assert!(cache.get(7, &view(&bob)).is_some());
}

#[test]
fn series_are_created_when_a_request_first_needs_them() {
    let metrics = metrics();
    let mut rec = chat();
    metrics.record(&rec, &user("alice"));
    let tokens = "agentgateway_gen_ai_client_token_usage_count";
    let ttft = "agentgateway_gen_ai_server_time_to_first_token_count";
    let all = scrape(&metrics);
    assert!(
        parse::find(&all, tokens, &[]).is_empty(),
        "no usage, no token series"
    );
    assert!(parse::find(&all, ttft, &[]).is_empty());

    // Same labels (a cache hit), now with usage and a first token.
    rec.llm.usage.output_tokens = Some(7);
    rec.ttft = Some(Duration::from_millis(50));
    metrics.record(&rec, &user("alice"));
    assert_eq!(metrics.handles.len(), 1);
    let all = scrape(&metrics);
    let output = parse::find(&all, tokens, &[("gen_ai_token_type", "output")]);
    assert_eq!(output.len(), 1);
    assert_eq!(output[0].value, 1.0);
    assert!(parse::find(&all, tokens, &[("gen_ai_token_type", "input")]).is_empty());
    assert_eq!(parse::find(&all, ttft, &[])[0].value, 1.0);
}
