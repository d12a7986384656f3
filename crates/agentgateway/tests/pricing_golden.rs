//! Golden costs: real models from the builtin catalog (generated from LiteLLM's table) and from
//! user files in both formats, priced for the usage shapes providers report. Every expected
//! amount is worked out by hand from the table's rates (USD per 1M tokens) in the comment above
//! it, and compared as an exact `Decimal`.

use std::path::PathBuf;

use agentgateway::pricing::{cost, Cost, Decimal, ModelPrice, PriceCatalog};
use agentgateway_wire::Usage;

fn d(text: &str) -> Decimal {
    Decimal::from_str_exact(text).unwrap()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pricing")
        .join(name)
}

fn usage(input: u64, cache_read: u64, cache_write: u64, output: u64, reasoning: u64) -> Usage {
    let some = |n: u64| (n > 0).then_some(n);
    Usage {
        input_tokens: Some(input),
        output_tokens: some(output),
        cache_read_input_tokens: some(cache_read),
        cache_write_input_tokens: some(cache_write),
        reasoning_output_tokens: some(reasoning),
    }
}

/// The price `catalog` has for `provider`/`model`, asserting the name it matched.
fn price<'a>(catalog: &'a PriceCatalog, provider: &str, model: &str) -> &'a ModelPrice {
    let (matched, price) = catalog
        .lookup(provider, Some(model), None)
        .unwrap_or_else(|| panic!("{provider}/{model} is not priced"));
    assert_eq!(matched, model);
    price
}

/// Asserts each part and that the parts add up to the total.
fn assert_cost(cost: Cost, parts: &[(&str, &str)], total: &str) {
    let got: Vec<(&str, Decimal)> = cost.parts().collect();
    let want: Vec<(&str, Decimal)> = parts.iter().map(|(label, v)| (*label, d(v))).collect();
    assert_eq!(got, want);
    assert_eq!(cost.total, d(total));
    let sum: Decimal = cost.parts().map(|(_, v)| v).sum();
    assert_eq!(sum, cost.total);
}

#[test]
fn openai_plain() {
    let catalog = PriceCatalog::builtin();
    let p = price(&catalog, "openai", "gpt-4o-mini");
    // gpt-4o-mini: input 0.15, output 0.6.
    // 1000 * 0.15/1M = 0.00015; 500 * 0.6/1M = 0.0003.
    assert_cost(
        cost(p, &usage(1000, 0, 0, 500, 0)),
        &[("input", "0.00015"), ("output", "0.0003")],
        "0.00045",
    );
}

#[test]
fn openai_cached_input() {
    let catalog = PriceCatalog::builtin();
    let p = price(&catalog, "openai", "gpt-4o-mini");
    // gpt-4o-mini: input 0.15, cacheRead 0.075, output 0.6; 2000 input of which 1500 cached.
    // 500 * 0.15/1M = 0.000075; 1500 * 0.075/1M = 0.0001125; 100 * 0.6/1M = 0.00006.
    assert_cost(
        cost(p, &usage(2000, 1500, 0, 100, 0)),
        &[
            ("input", "0.000075"),
            ("input_cache_read", "0.0001125"),
            ("output", "0.00006"),
        ],
        "0.0002475",
    );
}

#[test]
fn anthropic_cache_read_and_write() {
    let catalog = PriceCatalog::builtin();
    let p = price(&catalog, "anthropic", "claude-sonnet-4-5-20250929");
    // claude-sonnet-4-5: input 3, cacheRead 0.3, cacheWrite 3.75, output 15. Anthropic reported
    // input 100 + cache read 3000 + cache creation 1000 -> normalised input 4100.
    // 100 * 3/1M = 0.0003; 3000 * 0.3/1M = 0.0009; 1000 * 3.75/1M = 0.00375;
    // 200 * 15/1M = 0.003.
    assert_cost(
        cost(p, &usage(4100, 3000, 1000, 200, 0)),
        &[
            ("input", "0.0003"),
            ("input_cache_read", "0.0009"),
            ("input_cache_write", "0.00375"),
            ("output", "0.003"),
        ],
        "0.00795",
    );
}

#[test]
fn reasoning_at_its_own_rate() {
    let catalog = PriceCatalog::builtin();
    let p = price(&catalog, "perplexity", "sonar-deep-research");
    // sonar-deep-research: input 2, output 8, reasoning 3; 5000 output of which 4000 reasoning.
    // 1000 * 2/1M = 0.002; (5000 - 4000) * 8/1M = 0.008; 4000 * 3/1M = 0.012.
    assert_cost(
        cost(p, &usage(1000, 0, 0, 5000, 4000)),
        &[
            ("input", "0.002"),
            ("output", "0.008"),
            ("output_reasoning", "0.012"),
        ],
        "0.022",
    );
}

#[test]
fn reasoning_without_its_own_rate_is_output() {
    let catalog = PriceCatalog::builtin();
    let p = price(&catalog, "openai", "o3");
    assert_eq!(p.reasoning, None);
    // o3: input 2, output 8, no reasoning rate: all 3000 output tokens (2500 reasoning) at 8.
    // 1000 * 2/1M = 0.002; 3000 * 8/1M = 0.024.
    let c = cost(p, &usage(1000, 0, 0, 3000, 2500));
    assert_eq!(c.output_reasoning, Decimal::ZERO);
    assert_cost(c, &[("input", "0.002"), ("output", "0.024")], "0.026");
}

#[test]
fn tier_applies_only_above_its_threshold() {
    let catalog = PriceCatalog::builtin();
    let p = price(&catalog, "x_ai", "grok-4.20");
    // grok-4.20: input 1.25, cacheRead 0.2, output 2.5; above 200k: 2.5 / 0.4 / 5.
    // At exactly 200000 input (not above): 150000 * 1.25/1M = 0.1875;
    // 50000 * 0.2/1M = 0.01; 1000 * 2.5/1M = 0.0025.
    assert_cost(
        cost(p, &usage(200_000, 50_000, 0, 1000, 0)),
        &[
            ("input", "0.1875"),
            ("input_cache_read", "0.01"),
            ("output", "0.0025"),
        ],
        "0.2",
    );
    // One token more: every token at the tier's rates.
    // 150001 * 2.5/1M = 0.3750025; 50000 * 0.4/1M = 0.02; 1000 * 5/1M = 0.005.
    assert_cost(
        cost(p, &usage(200_001, 50_000, 0, 1000, 0)),
        &[
            ("input", "0.3750025"),
            ("input_cache_read", "0.02"),
            ("output", "0.005"),
        ],
        "0.4000025",
    );
}

#[test]
fn openai_long_context_tier() {
    let catalog = PriceCatalog::builtin();
    let p = price(&catalog, "openai", "gpt-5.4");
    // gpt-5.4 above 272k: input 5, cacheRead 0.5, output 22.5; 300000 input, 100000 cached.
    // 200000 * 5/1M = 1; 100000 * 0.5/1M = 0.05; 2000 * 22.5/1M = 0.045.
    assert_cost(
        cost(p, &usage(300_000, 100_000, 0, 2000, 0)),
        &[
            ("input", "1"),
            ("input_cache_read", "0.05"),
            ("output", "0.045"),
        ],
        "1.095",
    );
}

#[test]
fn embeddings_price_input_only() {
    let catalog = PriceCatalog::builtin();
    let p = price(&catalog, "openai", "text-embedding-3-small");
    // text-embedding-3-small: input 0.02. 5000 * 0.02/1M = 0.0001.
    let c = cost(
        p,
        &Usage {
            input_tokens: Some(5000),
            ..Usage::default()
        },
    );
    assert_cost(c, &[("input", "0.0001")], "0.0001");
}

#[test]
fn unknown_models_are_unpriced() {
    let catalog = PriceCatalog::builtin();
    assert!(catalog
        .lookup("openai", Some("gpt-nonexistent"), Some("also-unknown"))
        .is_none());
    assert!(catalog.lookup("openai", None, None).is_none());
    // A known model under another provider is not borrowed.
    assert!(catalog
        .lookup("vllm", Some("gpt-4o-mini"), Some("gpt-4o-mini"))
        .is_none());
    assert!(catalog
        .lookup("no-such-provider", Some("gpt-4o-mini"), None)
        .is_none());
    // Image models are billed per image, so they carry no token price.
    assert!(catalog.lookup("openai", Some("dall-e-3"), None).is_none());
}

#[test]
fn dated_suffix_falls_back_to_the_undated_model() {
    let catalog = PriceCatalog::builtin();
    let lookup = |provider, model| catalog.lookup(provider, Some(model), None).map(|(m, _)| m);
    // Listed with its date: matched as is.
    assert_eq!(
        lookup("openai", "gpt-4o-mini-2024-07-18"),
        Some("gpt-4o-mini-2024-07-18")
    );
    // Not listed with this date: the undated entry.
    assert_eq!(
        lookup("openai", "gpt-4o-mini-2099-01-31"),
        Some("gpt-4o-mini")
    );
    assert_eq!(
        lookup("anthropic", "claude-sonnet-4-6-20260217"),
        Some("claude-sonnet-4-6")
    );
    assert_eq!(
        lookup("anthropic", "claude-sonnet-4-6@20260217"),
        Some("claude-sonnet-4-6")
    );
    // Other suffixes are different models.
    assert_eq!(lookup("openai", "gpt-4o-mini-fast"), None);
}

#[test]
fn response_model_is_preferred_over_request_model() {
    let catalog = PriceCatalog::builtin();
    let matched = |response, request| catalog.lookup("openai", response, request).map(|(m, _)| m);
    assert_eq!(
        matched(Some("gpt-4o-2024-08-06"), Some("gpt-4o-mini")),
        Some("gpt-4o-2024-08-06")
    );
    // An unlisted response model falls back to the request model (exact, then undated).
    assert_eq!(
        matched(Some("ft:my-org:custom"), Some("gpt-4o-mini")),
        Some("gpt-4o-mini")
    );
    assert_eq!(
        matched(Some("ft:my-org:custom"), Some("gpt-4o-mini-2099-01-31")),
        Some("gpt-4o-mini")
    );
    assert_eq!(matched(None, Some("o3")), Some("o3"));
}

#[test]
fn user_yaml_overrides_builtin() {
    let catalog = PriceCatalog::load(&[fixture("override.yaml")]).unwrap();
    assert!(catalog.len() > PriceCatalog::builtin().len());
    let p = price(&catalog, "openai", "gpt-4o-mini");
    // Override: input 0.1, cacheRead 0.05, output 0.4 (builtin: 0.15 / 0.075 / 0.6).
    // 500 * 0.1/1M = 0.00005; 1500 * 0.05/1M = 0.000075; 100 * 0.4/1M = 0.00004.
    assert_cost(
        cost(p, &usage(2000, 1500, 0, 100, 0)),
        &[
            ("input", "0.00005"),
            ("input_cache_read", "0.000075"),
            ("output", "0.00004"),
        ],
        "0.000165",
    );
    // The rest of the builtin catalog is still there.
    assert_eq!(price(&catalog, "openai", "o3").input, d("0.000002"));
}

#[test]
fn missing_cache_rate_is_the_input_rate() {
    let catalog = PriceCatalog::load(&[fixture("override.yaml")]).unwrap();
    let p = price(&catalog, "openai", "gpt-4o");
    assert_eq!(p.cache_read, None);
    // gpt-4o (override.yaml): input 2, output 8, no cacheRead: cached tokens at the input rate.
    // 600 * 2/1M = 0.0012; 400 * 2/1M = 0.0008; 50 * 8/1M = 0.0004.
    assert_cost(
        cost(p, &usage(1000, 400, 0, 50, 0)),
        &[
            ("input", "0.0012"),
            ("input_cache_read", "0.0008"),
            ("output", "0.0004"),
        ],
        "0.0024",
    );
}

#[test]
fn user_file_tier_and_own_provider() {
    let catalog = PriceCatalog::load(&[fixture("override.yaml")]).unwrap();
    let p = price(&catalog, "anthropic", "claude-sonnet-4-5");
    // override.yaml's tier above 200k: input 6, cacheRead 0.6, cacheWrite 7.5, output 22.5.
    // 250000 input = 180000 uncached + 50000 read + 20000 write.
    // 180000 * 6/1M = 1.08; 50000 * 0.6/1M = 0.03; 20000 * 7.5/1M = 0.15;
    // 1000 * 22.5/1M = 0.0225.
    assert_cost(
        cost(p, &usage(250_000, 50_000, 20_000, 1000, 0)),
        &[
            ("input", "1.08"),
            ("input_cache_read", "0.03"),
            ("input_cache_write", "0.15"),
            ("output", "0.0225"),
        ],
        "1.2825",
    );
    // A self-hosted model only the user prices: input 0.075, output 0.3, reasoning 0.15.
    // 1000 * 0.075/1M = 0.000075; 300 * 0.3/1M = 0.00009; 700 * 0.15/1M = 0.000105.
    let p = price(&catalog, "vllm", "acme-llama-70b");
    assert_cost(
        cost(p, &usage(1000, 0, 0, 1000, 700)),
        &[
            ("input", "0.000075"),
            ("output", "0.00009"),
            ("output_reasoning", "0.000105"),
        ],
        "0.00027",
    );
}

#[test]
fn later_files_override_earlier_ones() {
    let yaml_then_json =
        PriceCatalog::load(&[fixture("override.yaml"), fixture("override.json")]).unwrap();
    let json_then_yaml =
        PriceCatalog::load(&[fixture("override.json"), fixture("override.yaml")]).unwrap();
    // gpt-4o: override.yaml says 2 / 8, override.json says 1.5 / 6.25 (builtin 2.5 / 10).
    let p = price(&yaml_then_json, "openai", "gpt-4o");
    assert_eq!((p.input, p.output), (d("0.0000015"), d("0.00000625")));
    let p = price(&json_then_yaml, "openai", "gpt-4o");
    assert_eq!((p.input, p.output), (d("0.000002"), d("0.000008")));
    // override.json writes 3e-1, 1.2E0 and "0.15": 1000 * 0.3/1M + 1000 * 1.2/1M = 0.0015.
    let p = price(&yaml_then_json, "openai", "my-finetune");
    assert_eq!(p.cache_read, Some(d("0.00000015")));
    assert_cost(
        cost(p, &usage(1000, 0, 0, 1000, 0)),
        &[("input", "0.0003"), ("output", "0.0012")],
        "0.0015",
    );
}

#[test]
fn wrapped_catalog_file() {
    let catalog = PriceCatalog::load(&[fixture("wrapped.json")]).unwrap();
    let p = price(&catalog, "groq", "llama-3.3-70b-versatile");
    // 0.59 / 0.79 per 1M: 10000 * 0.59/1M = 0.0059; 1000 * 0.79/1M = 0.00079.
    assert_cost(
        cost(p, &usage(10_000, 0, 0, 1000, 0)),
        &[("input", "0.0059"), ("output", "0.00079")],
        "0.00669",
    );
}

#[test]
fn litellm_user_file() {
    let catalog = PriceCatalog::load(&[fixture("litellm-excerpt.json")]).unwrap();
    // gpt-4o-mini overridden at 1.2e-07 / 4.8e-07 per token.
    // 1000 * 0.00000012 = 0.00012; 1000 * 0.00000048 = 0.00048.
    let p = price(&catalog, "openai", "gpt-4o-mini");
    assert_cost(
        cost(p, &usage(1000, 0, 0, 1000, 0)),
        &[("input", "0.00012"), ("output", "0.00048")],
        "0.0006",
    );
    // gemini/gemini-2.5-flash -> gcp.gemini: input 3e-07, cache read 3e-08, output 2.5e-06,
    // reasoning 2.5e-06. 10000 input (4000 cached), 3000 output (2000 reasoning):
    // 6000 * 3e-07 = 0.0018; 4000 * 3e-08 = 0.00012; 1000 * 2.5e-06 = 0.0025;
    // 2000 * 2.5e-06 = 0.005.
    let p = price(&catalog, "gcp.gemini", "gemini-2.5-flash");
    assert_cost(
        cost(p, &usage(10_000, 4000, 0, 3000, 2000)),
        &[
            ("input", "0.0018"),
            ("input_cache_read", "0.00012"),
            ("output", "0.0025"),
            ("output_reasoning", "0.005"),
        ],
        "0.00942",
    );
    // groq/openai/gpt-oss-120b -> groq, `openai/gpt-oss-120b`: 1.5e-07 / 6e-07.
    let p = price(&catalog, "groq", "openai/gpt-oss-120b");
    assert_eq!((p.input, p.output), (d("0.00000015"), d("0.0000006")));
    // Image generation, unmapped providers (cohere) and `sample_spec` are skipped: the file adds
    // exactly its Gemini and Vertex models to the builtin catalog, the rest replace entries.
    assert!(catalog.lookup("openai", Some("dall-e-3"), None).is_none());
    assert_eq!(catalog.len(), PriceCatalog::builtin().len() + 2);
}

#[test]
fn litellm_vertex_tier_with_cache_write() {
    let catalog = PriceCatalog::load(&[fixture("litellm-excerpt.json")]).unwrap();
    let p = price(&catalog, "gcp.vertex_ai", "claude-sonnet-4-5@20250929");
    // Above 200k: input 6e-06, cache read 6e-07, cache creation 7.5e-06, output 2.25e-05 (the
    // 1-hour cache variant and batch rates are ignored). 300000 input = 150000 uncached +
    // 100000 read + 50000 write; 2000 output.
    // 150000 * 6e-06 = 0.9; 100000 * 6e-07 = 0.06; 50000 * 7.5e-06 = 0.375;
    // 2000 * 2.25e-05 = 0.045.
    assert_cost(
        cost(p, &usage(300_000, 100_000, 50_000, 2000, 0)),
        &[
            ("input", "0.9"),
            ("input_cache_read", "0.06"),
            ("input_cache_write", "0.375"),
            ("output", "0.045"),
        ],
        "1.38",
    );
    // Below the tier: 3e-06 / 3e-07 / 3.75e-06 / 1.5e-05.
    // 100 * 3e-06 = 0.0003; 1000 * 3e-07 = 0.0003; 1000 * 3.75e-06 = 0.00375;
    // 10 * 1.5e-05 = 0.00015.
    assert_cost(
        cost(p, &usage(2100, 1000, 1000, 10, 0)),
        &[
            ("input", "0.0003"),
            ("input_cache_read", "0.0003"),
            ("input_cache_write", "0.00375"),
            ("output", "0.00015"),
        ],
        "0.0045",
    );
}

#[test]
fn load_errors_name_the_file_and_the_entry() {
    let err = PriceCatalog::load(&[fixture("override.yaml"), fixture("typo.yaml")]).unwrap_err();
    assert!(
        err.contains("typo.yaml") && err.contains("cachRead") && err.contains("gpt-4o"),
        "{err}"
    );
    let err = PriceCatalog::load(&[fixture("missing.yaml")]).unwrap_err();
    assert!(err.contains("missing.yaml"), "{err}");
}

#[test]
fn no_usage_costs_nothing_and_has_no_parts() {
    let catalog = PriceCatalog::builtin();
    let p = price(&catalog, "openai", "gpt-4o-mini");
    let c = cost(p, &Usage::default());
    assert_eq!(c, Cost::default());
    assert_eq!(c.parts().count(), 0);
}
