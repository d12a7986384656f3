//! What pricing costs per request, and what loading a catalog costs. Run:
//! `cargo bench -p agentgateway --bench pricing`.
//!
//! - `pricing/lookup_cost`: the request path's share: look the model up in the builtin catalog
//!   (response model dated, so the exact probe misses and the undated one hits) and price a
//!   usage with cached input and reasoning.
//! - `pricing/lookup_miss`: an unpriced model (both probes miss for both names).
//! - `pricing/reload_builtin_sized`: `PriceCatalog::load` of one user file as large as the
//!   builtin catalog (~900 models): what a reload costs, off the request path.
//! - `pricing/reload_litellm_full`: the same with LiteLLM's whole table (3 MB) as the user file,
//!   when `../shared/data/litellm-model-prices.json` is present.

use std::hint::black_box;

use agentgateway::pricing::{cost, PriceCatalog};
use agentgateway_wire::Usage;
use criterion::{criterion_group, criterion_main, Criterion};

fn bench(c: &mut Criterion) {
    let catalog = PriceCatalog::builtin();
    let usage = Usage {
        input_tokens: Some(12_345),
        output_tokens: Some(2_000),
        cache_read_input_tokens: Some(8_000),
        cache_write_input_tokens: None,
        reasoning_output_tokens: Some(1_500),
    };
    c.bench_function("pricing/lookup_cost", |b| {
        b.iter(|| {
            let found = catalog.lookup(
                black_box("openai"),
                black_box(Some("gpt-4o-mini-2099-01-31")),
                black_box(Some("gpt-4o-mini")),
            );
            found.map(|(_, price)| cost(price, black_box(&usage)).total)
        })
    });
    c.bench_function("pricing/lookup_miss", |b| {
        b.iter(|| {
            catalog
                .lookup(
                    black_box("openai"),
                    black_box(Some("my-model-20990131")),
                    black_box(Some("my-model")),
                )
                .is_none()
        })
    });
    let dir = std::env::temp_dir();
    let builtin_sized = dir.join(format!("agw-bench-prices-{}.json", std::process::id()));
    std::fs::write(&builtin_sized, include_str!("../data/prices.json")).unwrap();
    let files = [builtin_sized.clone()];
    c.bench_function("pricing/reload_builtin_sized", |b| {
        b.iter(|| PriceCatalog::load(black_box(&files)).map(|c| c.len()))
    });
    let _ = std::fs::remove_file(&builtin_sized);
    let litellm = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/litellm-model-prices.json");
    if litellm.exists() {
        let files = [litellm];
        c.bench_function("pricing/reload_litellm_full", |b| {
            b.iter(|| PriceCatalog::load(black_box(&files)).map(|c| c.len()))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
