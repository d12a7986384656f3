//! What the record step costs per request: metrics, the access-log line, and both together with
//! pricing, as `Telemetry::finish` does them (issue 6). Run:
//! `cargo bench -p agentgateway --bench telemetry`.
//!
//! Every bench uses the same finished chat request: a route, a key whose identity has a user,
//! usage with input, output and cached input, a priced cost, a duration, and one custom metric
//! label `user_id` = CEL `apiKey.user`, evaluated from the record as `Telemetry::finish` does.
//!
//! - `metrics/record_chat`: evaluate the label and `Metrics::record`, on a registry already
//!   holding the series of the 4 users it rotates over (the steady state).
//! - `metrics/record_chat_cold_10k_users`: the same for the first request of each of 10,000
//!   users, on a registry growing from empty to their 10,000 users' series (every request creates
//!   its series in each family). A fresh registry is built every 10,000 iterations, untimed.
//! - `metrics/encode_1k_series`: one `/metrics` scrape (text 0.0.4) of a registry holding about
//!   1,000 time series as Prometheus counts them (each histogram bucket is one; that is a few
//!   users' worth, since a chat request's label sets carry ~15-bucket histograms); bytes/s is of
//!   the scrape's text.
//! - `accesslog/format_text`, `accesslog/format_json`: `AccessLog::format` of the record, the
//!   default fields plus `fields.add` `user: apiKey.user` (no I/O; bytes/s is of the line).
//! - `telemetry/finish`: the whole `Telemetry::finish` with builtin prices, an in-memory ledger,
//!   no budgets and the in-memory log sink (emptied each iteration, so the line is freed as the
//!   stdout writer's copy would be): the per-request telemetry cost.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use agentgateway::accesslog::{AccessLog, LogSink};
use agentgateway::auth::Identity;
use agentgateway::budget::{Budgets, SystemWallClock};
use agentgateway::config::{LogFormat, LoggingConfig};
use agentgateway::costing::Costing;
use agentgateway::exposition::Format;
use agentgateway::expr::Expr;
use agentgateway::metrics::Metrics;
use agentgateway::pricing::{cost, CatalogHandle, PriceCatalog};
use agentgateway::record::{CostOutcome, ListenerInfo, LlmInfo, RequestRecord, RouteInfo};
use agentgateway::spend::Ledger;
use agentgateway::telemetry::Telemetry;
use agentgateway_wire::{Operation, Usage};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

const COLD_USERS: usize = 10_000;
const USER_ID: &str = "apiKey.user";

/// A finished, non-streaming chat request by `user-{i}`; `catalog` prices it (`None`: left for
/// `Telemetry::finish` to price).
fn chat_record(i: usize, catalog: Option<&PriceCatalog>) -> RequestRecord {
    let (parts, ()) = http::Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header(http::header::HOST, "localhost:4000")
        .body(())
        .expect("static request")
        .into_parts();
    let listener = Arc::new(ListenerInfo {
        bind: "4000".into(),
        gateway: "bind/4000".into(),
        listener: "llm".into(),
    });
    let mut rec = RequestRecord::new(listener, "127.0.0.1:5000".parse().expect("addr"), &parts);
    rec.request_id = format!("0b5e6a4c-{i:08}");
    rec.status = 200;
    rec.duration = Duration::from_millis(1234);
    rec.identity = Some(Arc::new(Identity {
        id: format!("static-{i:012x}").into(),
        name: Some(format!("key-{i}").into()),
        user: Some(format!("user-{i}").into()),
        ..Identity::default()
    }));
    rec.route = Some(Arc::new(RouteInfo {
        route: "llm/gpt-4o-mini".into(),
        system: "openai",
        endpoint: "api.openai.com:443".into(),
    }));
    let usage = Usage {
        input_tokens: Some(1200),
        output_tokens: Some(300),
        cache_read_input_tokens: Some(800),
        ..Usage::default()
    };
    let priced = catalog.map(|catalog| {
        let (_, price) = catalog
            .lookup(
                "openai",
                Some("gpt-4o-mini-2024-07-18"),
                Some("gpt-4o-mini"),
            )
            .expect("gpt-4o-mini is in the builtin catalog");
        CostOutcome::Priced(cost(price, &usage))
    });
    rec.llm = LlmInfo {
        operation: Some(Operation::ChatCompletions),
        request_model: Some("gpt-4o-mini".into()),
        response_model: Some("gpt-4o-mini-2024-07-18".into()),
        usage,
        streaming: false,
        cost: priced.unwrap_or_default(),
    };
    rec
}

/// The custom label values of `rec`, then the metrics, as `Telemetry::finish` does them.
fn record(metrics: &Metrics, user_id: &Expr, unknown: &Arc<str>, rec: &RequestRecord) {
    let value = user_id
        .eval_string(rec)
        .map_or_else(|| unknown.clone(), Arc::from);
    metrics.record(rec, &[value]);
}

fn new_metrics() -> Metrics {
    Metrics::new(vec!["user_id".into()])
}

/// Time series in a registry as Prometheus counts them: one per sample line (a histogram is its
/// buckets, `_sum` and `_count`).
fn series(metrics: &Metrics) -> usize {
    metrics
        .encode(Format::Text004)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

fn bench_metrics(c: &mut Criterion, catalog: &PriceCatalog) {
    let user_id = Expr::compile(USER_ID).expect("valid CEL");
    let unknown: Arc<str> = Arc::from("unknown");
    let warm: Vec<RequestRecord> = (0..4).map(|i| chat_record(i, Some(catalog))).collect();
    let cold: Vec<RequestRecord> = (0..COLD_USERS)
        .map(|i| chat_record(i, Some(catalog)))
        .collect();
    let metrics = new_metrics();
    for rec in &warm {
        record(&metrics, &user_id, &unknown, rec);
    }

    let mut group = c.benchmark_group("metrics");
    let mut i = 0;
    group.bench_function("record_chat", |b| {
        b.iter(|| {
            i = (i + 1) % warm.len();
            record(&metrics, &user_id, &unknown, &warm[i]);
        })
    });
    group.bench_function("record_chat_cold_10k_users", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let n = left.min(COLD_USERS as u64);
                let metrics = new_metrics();
                let start = Instant::now();
                for rec in cold.iter().take(n as usize) {
                    record(&metrics, &user_id, &unknown, black_box(rec));
                }
                timed += start.elapsed();
                left -= n;
            }
            timed
        })
    });

    // Enough users for ~1,000 series, measured rather than assumed from the family list.
    let one = new_metrics();
    record(&one, &user_id, &unknown, &cold[0]);
    let per_user = series(&one).max(1);
    let scraped = new_metrics();
    for rec in cold.iter().take(1000_usize.div_ceil(per_user)) {
        record(&scraped, &user_id, &unknown, rec);
    }
    let text = scraped.encode(Format::Text004);
    eprintln!(
        "metrics/encode_1k_series: {} series ({per_user} per user), {} bytes per scrape",
        series(&scraped),
        text.len()
    );
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("encode_1k_series", |b| {
        b.iter(|| black_box(scraped.encode(Format::Text004)))
    });
    group.finish();
}

fn logging(format: LogFormat) -> LoggingConfig {
    let mut cfg = LoggingConfig {
        format: Some(format),
        ..LoggingConfig::default()
    };
    cfg.fields.add.insert("user".into(), USER_ID.into());
    cfg
}

fn bench_accesslog(c: &mut Criterion, catalog: &PriceCatalog) {
    let rec = chat_record(42, Some(catalog));
    let mut group = c.benchmark_group("accesslog");
    for (name, format) in [
        ("format_text", LogFormat::Text),
        ("format_json", LogFormat::Json),
    ] {
        let sink = LogSink::Memory(Arc::default());
        let log = AccessLog::new(&logging(format), None, sink).expect("valid logging config");
        let line = log.format(&rec).expect("no filter");
        eprintln!("accesslog/{name}: {} bytes: {line}", line.len());
        group.throughput(Throughput::Bytes(line.len() as u64));
        group.bench_function(name, |b| b.iter(|| black_box(log.format(black_box(&rec)))));
    }
    group.finish();
}

fn bench_finish(c: &mut Criterion) {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = AccessLog::new(
        &logging(LogFormat::Text),
        None,
        LogSink::Memory(lines.clone()),
    )
    .expect("valid logging config");
    let user_id = Expr::compile(USER_ID).expect("valid CEL");
    let telemetry = Telemetry::new(new_metrics(), log, vec![user_id], None);
    let ledger = Ledger::in_memory();
    let clock = Arc::new(SystemWallClock);
    let budgets = Budgets::new(
        HashMap::new(),
        HashMap::new(),
        ledger.clone(),
        clock.clone(),
    );
    telemetry.set_costing(Arc::new(Costing::new(
        CatalogHandle::new(PriceCatalog::builtin()),
        ledger,
        Arc::new(budgets),
        clock,
    )));
    // Unpriced records: `finish` prices them, as it does every request without the cost header.
    let records: Vec<RequestRecord> = (0..4).map(|i| chat_record(i, None)).collect();
    for rec in &records {
        telemetry.finish(rec.clone());
    }
    let mut i = 0;
    c.bench_function("telemetry/finish", |b| {
        b.iter_batched(
            || {
                i = (i + 1) % records.len();
                records[i].clone()
            },
            |rec| {
                telemetry.finish(rec);
                lines.lock().unwrap_or_else(PoisonError::into_inner).clear();
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench(c: &mut Criterion) {
    let catalog = PriceCatalog::builtin();
    bench_metrics(c, &catalog);
    bench_accesslog(c, &catalog);
    bench_finish(c);
}

criterion_group!(benches, bench);
criterion_main!(benches);
