use std::collections::BTreeMap;
use std::time::Duration;

use agentgateway_wire::{Operation, Usage};

use super::*;
use crate::exposition::parse::{self, Sample};
use crate::record::{ListenerInfo, RequestError, RouteInfo};

const TOKENS_SUM: &str = "agentgateway_gen_ai_client_token_usage_sum";
const TOKENS_COUNT: &str = "agentgateway_gen_ai_client_token_usage_count";
const DURATION_COUNT: &str = "agentgateway_gen_ai_server_request_duration_count";
const TTFT_SUM: &str = "agentgateway_gen_ai_server_time_to_first_token_sum";
const TPOT_SUM: &str = "agentgateway_gen_ai_server_time_per_output_token_sum";
const TPOT_COUNT: &str = "agentgateway_gen_ai_server_time_per_output_token_count";
pub(super) const REQUESTS: &str = "agentgateway_requests_total";

/// A request that arrived on the `llm` listener and finished with 200, no route yet.
pub(super) fn request(method: http::Method) -> RequestRecord {
    let listener = Arc::new(ListenerInfo {
        bind: "4000".into(),
        gateway: "bind/4000".into(),
        listener: "llm".into(),
    });
    let (parts, ()) = http::Request::builder()
        .method(method)
        .uri("/v1/chat/completions")
        .body(())
        .expect("test input")
        .into_parts();
    let mut rec = RequestRecord::new(
        listener,
        "127.0.0.1:5000".parse().expect("test input"),
        &parts,
    );
    rec.status = 200;
    rec.duration = Duration::from_millis(1500);
    rec
}

/// A chat completion routed to OpenAI, asked for `gpt-4o-mini`.
pub(super) fn chat() -> RequestRecord {
    let mut rec = request(http::Method::POST);
    rec.route = Some(Arc::new(RouteInfo {
        route: "llm/gpt-4o-mini".into(),
        system: "openai",
        endpoint: "api.openai.com:443".into(),
    }));
    rec.llm.operation = Some(Operation::ChatCompletions);
    rec.llm.request_model = Some("gpt-4o-mini".into());
    rec.llm.response_model = Some("gpt-4o-mini-2024-07-18".into());
    rec
}

pub(super) fn scrape(metrics: &Metrics) -> Vec<Sample> {
    parse::samples(&metrics.encode(Format::Text004))
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// G for [`chat`], plus `extra`.
fn g(extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut g = labels(&[
        ("gen_ai_operation_name", "chat"),
        ("gen_ai_system", "openai"),
        ("gen_ai_request_model", "gpt-4o-mini"),
        ("gen_ai_response_model", "gpt-4o-mini-2024-07-18"),
        ("bind", "4000"),
        ("gateway", "bind/4000"),
        ("listener", "llm"),
        ("route", "llm/gpt-4o-mini"),
        ("route_rule", "unknown"),
    ]);
    g.extend(labels(extra));
    g
}

fn value_with(all: &[Sample], name: &str, want: &BTreeMap<String, String>) -> f64 {
    let hits: Vec<_> = all
        .iter()
        .filter(|s| s.name == name && s.labels == *want)
        .collect();
    assert_eq!(hits.len(), 1, "{name} {want:?} in {all:#?}");
    hits[0].value
}

#[test]
fn tokens_are_observed_per_reported_type_only() {
    let metrics = Metrics::new(vec![]);
    let mut rec = chat();
    rec.llm.usage = Usage {
        input_tokens: Some(100),
        output_tokens: Some(20),
        cache_read_input_tokens: Some(30),
        cache_write_input_tokens: None,
        reasoning_output_tokens: Some(5),
    };
    metrics.record(&rec, &[]);
    rec.llm.usage.input_tokens = Some(50);
    metrics.record(&rec, &[]);
    let all = scrape(&metrics);
    for (token_type, sum) in [
        ("input", 150.0),
        ("output", 40.0),
        ("input_cache_read", 60.0),
        ("output_reasoning", 10.0),
    ] {
        let want = g(&[("gen_ai_token_type", token_type)]);
        assert_eq!(value_with(&all, TOKENS_SUM, &want), sum, "{token_type}");
        assert_eq!(value_with(&all, TOKENS_COUNT, &want), 2.0, "{token_type}");
    }
    let cache_write = [("gen_ai_token_type", "input_cache_write")];
    assert!(parse::find(&all, TOKENS_COUNT, &cache_write).is_empty());
    // Buckets are cumulative: 20 and 20 output tokens both fall in le=64, not in le=16.
    let bucket = "agentgateway_gen_ai_client_token_usage_bucket";
    let output = |le| g(&[("gen_ai_token_type", "output"), ("le", le)]);
    assert_eq!(value_with(&all, bucket, &output("16")), 0.0);
    assert_eq!(value_with(&all, bucket, &output("64")), 2.0);
    assert_eq!(value_with(&all, bucket, &output("1.048576e+06")), 2.0);
}

#[test]
fn no_reported_usage_means_no_token_series() {
    let metrics = Metrics::new(vec![]);
    metrics.record(&chat(), &[]);
    let all = scrape(&metrics);
    assert!(parse::find(&all, TOKENS_COUNT, &[]).is_empty());
    assert_eq!(value_with(&all, DURATION_COUNT, &g(&[])), 1.0);
}

#[test]
fn error_type_only_on_errors_and_ttft_only_on_success() {
    let metrics = Metrics::new(vec![]);
    let mut ok = chat();
    ok.ttft = Some(Duration::from_millis(200));
    metrics.record(&ok, &[]);
    let mut failed = chat();
    failed.ttft = Some(Duration::from_millis(300));
    failed.status = 504;
    failed.error = Some(RequestError::new("upstream_timeout"));
    failed.reason = Some("upstream_error");
    metrics.record(&failed, &[]);
    let all = scrape(&metrics);
    assert_eq!(value_with(&all, DURATION_COUNT, &g(&[])), 1.0);
    let errored = g(&[("error_type", "upstream_timeout")]);
    assert_eq!(value_with(&all, DURATION_COUNT, &errored), 1.0);
    assert_eq!(parse::find(&all, DURATION_COUNT, &[]).len(), 2);
    assert_eq!(value_with(&all, TTFT_SUM, &g(&[])), 0.2);
    assert_eq!(parse::find(&all, TTFT_SUM, &[]).len(), 1);
}

#[test]
fn time_per_output_token_is_the_time_after_the_first_per_remaining_token() {
    let metrics = Metrics::new(vec![]);
    let mut rec = chat();
    rec.llm.streaming = true;
    rec.ttft = Some(Duration::from_millis(200));
    rec.duration = Duration::from_millis(1200);
    rec.llm.usage.output_tokens = Some(11);
    metrics.record(&rec, &[]);
    // Not streamed, or a single token: no per-token time.
    let mut unary = rec.clone();
    unary.llm.streaming = false;
    metrics.record(&unary, &[]);
    let mut one_token = rec.clone();
    one_token.llm.usage.output_tokens = Some(1);
    metrics.record(&one_token, &[]);
    let all = scrape(&metrics);
    let tpot = value_with(&all, TPOT_SUM, &g(&[]));
    assert!((tpot - 0.1).abs() < 1e-12, "{tpot}");
    assert_eq!(value_with(&all, TPOT_COUNT, &g(&[])), 1.0);
    let ttft = value_with(&all, TTFT_SUM, &g(&[]));
    assert!((ttft - 0.6).abs() < 1e-12, "{ttft}");
}

#[test]
fn gateway_answered_requests_count_with_unknown_labels() {
    let metrics = Metrics::new(vec!["user_id".into()]);
    let mut rec = request(http::Method::POST);
    rec.status = 401;
    rec.reason = Some("unauthorized");
    rec.duration = Duration::from_millis(2);
    metrics.record(&rec, &[]);
    metrics.record(&rec, &[]);
    let all = scrape(&metrics);
    let want = labels(&[
        ("backend", "unknown"),
        ("protocol", "http"),
        ("method", "POST"),
        ("status", "401"),
        ("reason", "unauthorized"),
        ("bind", "4000"),
        ("gateway", "bind/4000"),
        ("listener", "llm"),
        ("route", "unknown"),
        ("route_rule", "unknown"),
        ("user_id", "unknown"),
    ]);
    assert_eq!(value_with(&all, REQUESTS, &want), 2.0);
    let count = "agentgateway_request_duration_seconds_count";
    assert_eq!(value_with(&all, count, &want), 2.0);
    let sum = value_with(&all, "agentgateway_request_duration_seconds_sum", &want);
    assert!((sum - 0.004).abs() < 1e-12, "{sum}");
    assert!(all.iter().all(|s| !s.name.contains("gen_ai")), "{all:#?}");
}

#[test]
fn llm_requests_carry_custom_labels_everywhere() {
    let metrics = Metrics::new(vec!["user_id".into(), "team".into()]);
    let mut rec = chat();
    rec.llm.usage.input_tokens = Some(7);
    let custom: [Arc<str>; 2] = ["alice".into(), "search".into()];
    metrics.record(&rec, &custom);
    let all = scrape(&metrics);
    let want = g(&[
        ("gen_ai_token_type", "input"),
        ("user_id", "alice"),
        ("team", "search"),
    ]);
    assert_eq!(value_with(&all, TOKENS_SUM, &want), 7.0);
    let http = labels(&[
        ("backend", "api.openai.com:443"),
        ("protocol", "llm"),
        ("method", "POST"),
        ("status", "200"),
        ("reason", "ok"),
        ("bind", "4000"),
        ("gateway", "bind/4000"),
        ("listener", "llm"),
        ("route", "llm/gpt-4o-mini"),
        ("route_rule", "unknown"),
        ("user_id", "alice"),
        ("team", "search"),
    ]);
    assert_eq!(value_with(&all, REQUESTS, &http), 1.0);
}

#[test]
fn unknown_models_methods_and_statuses_stay_bounded() {
    let metrics = Metrics::new(vec![]);
    let mut rec = chat();
    rec.llm.request_model = None;
    rec.llm.response_model = None;
    rec.method = http::Method::from_bytes(b"BREW").expect("test input");
    rec.status = 0;
    metrics.record(&rec, &[]);
    let all = scrape(&metrics);
    let models = [
        ("gen_ai_request_model", "unknown"),
        ("gen_ai_response_model", "unknown"),
    ];
    assert_eq!(parse::find(&all, DURATION_COUNT, &models).len(), 1);
    let http = [("method", "_OTHER"), ("status", "0")];
    assert_eq!(parse::find(&all, REQUESTS, &http).len(), 1);
}

#[test]
fn custom_label_names_cannot_break_the_exposition() {
    let names = ["user-id", "route", "9lives", "__x", "ok"]
        .map(String::from)
        .to_vec();
    let exposed: Vec<String> = sanitize_custom_labels(names)
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(
        exposed,
        [
            "user_id",
            "custom_route",
            "custom_9lives",
            "custom___x",
            "ok"
        ]
    );
}

#[test]
fn both_formats_carry_the_same_samples() {
    let metrics = Metrics::new(vec!["user_id".into()]);
    let mut rec = chat();
    rec.llm.usage.input_tokens = Some(12);
    metrics.record(&rec, &["bob".into()]);
    let text = metrics.encode(Format::Text004);
    let om = metrics.encode(Format::OpenMetrics);
    assert!(om.ends_with("# EOF\n"));
    let sorted = |all: Vec<Sample>| -> Vec<Sample> {
        let mut all = all;
        all.sort_by(|a, b| (&a.name, &a.labels).cmp(&(&b.name, &b.labels)));
        all
    };
    // OpenMetrics itself differs only in how bucket bounds are spelled (`1.0` vs `1`).
    let strip = |all: Vec<Sample>| {
        sorted(
            all.into_iter()
                .filter(|s| !s.labels.contains_key("le"))
                .collect(),
        )
    };
    assert_eq!(strip(parse::samples(&text)), strip(parse::samples(&om)));
}

#[test]
fn rate_limit_decisions_carry_the_limit_kind_and_custom_labels() {
    use crate::ratelimit::LimitKind;
    let metrics = Metrics::new(vec!["user_id".into()]);
    let mut allowed = chat();
    allowed.limits.allow(LimitKind::Requests);
    allowed.limits.allow(LimitKind::Tokens);
    metrics.record(&allowed, &[Arc::from("alice")]);
    let mut limited = chat();
    limited.limits.allow(LimitKind::Requests);
    limited.limits.limited = Some(LimitKind::Tokens);
    metrics.record(&limited, &[Arc::from("alice")]);
    let mut over_budget = chat();
    over_budget.limits.allow(LimitKind::Requests);
    over_budget.limits.limited = Some(LimitKind::Cost);
    metrics.record(&over_budget, &[Arc::from("alice")]);
    let mut within_budget = chat();
    within_budget.limits.allow(LimitKind::Cost);
    metrics.record(&within_budget, &[Arc::from("alice")]);
    metrics.record(&chat(), &[Arc::from("bob")]);

    let all = scrape(&metrics);
    let decisions = "agentgateway_ratelimit_decisions_total";
    let with = |decision: &str, limit: &str| {
        labels(&[
            ("decision", decision),
            ("limit", limit),
            ("user_id", "alice"),
        ])
    };
    assert_eq!(
        value_with(&all, decisions, &with("allowed", "requests")),
        3.0
    );
    assert_eq!(value_with(&all, decisions, &with("allowed", "tokens")), 1.0);
    assert_eq!(value_with(&all, decisions, &with("limited", "tokens")), 1.0);
    assert_eq!(value_with(&all, decisions, &with("allowed", "cost")), 1.0);
    assert_eq!(value_with(&all, decisions, &with("limited", "cost")), 1.0);
    let for_bob = parse::find(&all, decisions, &[("user_id", "bob")]);
    assert!(
        for_bob.is_empty(),
        "no limit checked, no decision: {for_bob:?}"
    );
}
