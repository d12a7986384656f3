//! Unit tests: exact number parsing, both file formats (and their errors), the dated-suffix rule,
//! the builtin catalog, and live reloading of a catalog file.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use super::catalog::{parse, undated};
use super::number::exact_decimal;
use super::{CatalogHandle, ModelPrice, PriceCatalog};

/// `mantissa * 10^-scale`, the exact value a test expects.
fn dec(mantissa: i64, scale: u32) -> Decimal {
    Decimal::new(mantissa, scale)
}

/// The single entry of a one-model catalog text.
fn only_price(text: &str) -> ModelPrice {
    let mut entries = parse(text).unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.pop().unwrap().price
}

#[test]
fn numbers_parse_exactly() {
    assert_eq!(exact_decimal("0.075").unwrap(), dec(75, 3));
    assert_eq!(exact_decimal("1.5e-07").unwrap(), dec(15, 8));
    assert_eq!(exact_decimal("3.75").unwrap(), dec(375, 2));
    assert_eq!(exact_decimal("2.5E-06").unwrap(), dec(25, 7));
    assert_eq!(exact_decimal("1e+06").unwrap(), dec(1_000_000, 0));
    assert_eq!(exact_decimal("0.0").unwrap(), Decimal::ZERO);
    assert_eq!(exact_decimal("12").unwrap(), dec(12, 0));
    // What an f64 detour would get wrong: 0.3 is 0.299999999999999988897769753748... as f64.
    assert_eq!(exact_decimal("0.3").unwrap().to_string(), "0.3");
    assert_eq!(
        exact_decimal("0.000000000000000000000000001").unwrap(),
        dec(1, 27)
    );
    for bad in [
        "", "abc", "-1", "1e-40", "1e", "NaN", ".inf", "0x10", "1.2.3",
    ] {
        assert!(exact_decimal(bad).is_err(), "{bad:?} parsed");
    }
}

#[test]
fn yaml_catalog_is_per_million_and_exact() {
    let price =
        only_price("openai:\n  gpt-4o-mini: {input: 0.15, output: 0.6, cacheRead: 0.075}\n");
    // 0.15 / 1M, 0.6 / 1M, 0.075 / 1M, exactly.
    assert_eq!(price.input, dec(15, 8));
    assert_eq!(price.output, dec(6, 7));
    assert_eq!(price.cache_read, Some(dec(75, 9)));
    assert_eq!(price.cache_write, None);
    assert_eq!(price.reasoning, None);
    assert!(price.tiers.is_empty());
}

#[test]
fn json_catalog_is_per_million_and_exact() {
    let price = only_price(
        r#"{"anthropic": {"claude-sonnet-4-5": {"input": 3, "output": 15, "cacheRead": 0.3,
            "cacheWrite": 3.75, "reasoning": "1.5e1",
            "tiers": [{"above": 200000, "input": 6, "output": 22.5, "cacheWrite": 7.5}]}}}"#,
    );
    assert_eq!(price.input, dec(3, 6));
    assert_eq!(price.output, dec(15, 6));
    assert_eq!(price.cache_read, Some(dec(3, 7)));
    assert_eq!(price.cache_write, Some(dec(375, 8)));
    assert_eq!(price.reasoning, Some(dec(15, 6)));
    let tier = &price.tiers[0];
    assert_eq!(tier.above_input_tokens, 200_000);
    assert_eq!(
        (tier.input, tier.output, tier.cache_read, tier.cache_write),
        (dec(6, 6), dec(225, 7), None, Some(dec(75, 7)))
    );
}

#[test]
fn tiers_sort_and_fall_back_to_base_rates() {
    let price = only_price(
        "x_ai:\n  m:\n    input: 1\n    output: 2\n    tiers:\n    - {above: 500000, input: 4}\n    - {above: 100, output: 3}\n",
    );
    let thresholds: Vec<u64> = price.tiers.iter().map(|t| t.above_input_tokens).collect();
    assert_eq!(thresholds, [100, 500_000]);
    // An absent tier rate is the base rate.
    assert_eq!(
        (price.tiers[0].input, price.tiers[0].output),
        (dec(1, 6), dec(3, 6))
    );
    assert_eq!(
        (price.tiers[1].input, price.tiers[1].output),
        (dec(4, 6), dec(2, 6))
    );
}

#[test]
fn litellm_numbers_are_per_token_and_exact() {
    let price = only_price(
        r#"{"gpt-4o-mini": {"litellm_provider": "openai", "mode": "chat",
            "input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07,
            "cache_read_input_token_cost": 7.5e-08, "supports_vision": true}}"#,
    );
    assert_eq!(price.input, dec(15, 8));
    assert_eq!(price.output, dec(6, 7));
    assert_eq!(price.cache_read, Some(dec(75, 9)));
}

#[test]
fn litellm_tiers_skip_other_service_levels() {
    let price = only_price(
        r#"{"xai/grok-4.20": {"litellm_provider": "xai", "mode": "chat",
            "input_cost_per_token": 1.25e-06, "output_cost_per_token": 2.5e-06,
            "input_cost_per_token_above_200k_tokens": 2.5e-06,
            "output_cost_per_token_above_200k_tokens": 5e-06,
            "input_cost_per_token_above_200k_tokens_priority": 9e-06,
            "cache_creation_input_token_cost_above_1hr": 6e-06,
            "cache_creation_input_token_cost_above_1hr_above_200k_tokens": 1.2e-05,
            "cache_read_input_token_cost_above_128k_tokens": 1e-07}}"#,
    );
    let tiers: Vec<_> = price
        .tiers
        .iter()
        .map(|t| {
            (
                t.above_input_tokens,
                t.input,
                t.output,
                t.cache_read,
                t.cache_write,
            )
        })
        .collect();
    assert_eq!(
        tiers,
        [
            // A tier with only a cache rate keeps the base input and output rates.
            (128_000, dec(125, 8), dec(25, 7), Some(dec(1, 7)), None),
            (200_000, dec(25, 7), dec(5, 6), None, None),
        ]
    );
}

const PREFIXED_TABLE: &str = r#"{
    "deepseek-chat": {"litellm_provider": "deepseek", "mode": "chat",
      "input_cost_per_token": 2.8e-07, "output_cost_per_token": 4.2e-07},
    "deepseek/deepseek-chat": {"litellm_provider": "deepseek", "mode": "chat",
      "input_cost_per_token": 9e-07, "output_cost_per_token": 9e-07},
    "fireworks_ai/accounts/fireworks/models/x": {"litellm_provider": "fireworks_ai",
      "mode": "chat", "input_cost_per_token": 1e-07, "output_cost_per_token": 1e-07},
    "text-embedding-3-small": {"litellm_provider": "openai", "mode": "embedding",
      "input_cost_per_token": 2e-08},
    "tts-1": {"litellm_provider": "openai", "mode": "audio_speech",
      "input_cost_per_character": 1.5e-05},
    "no-output-rate": {"litellm_provider": "openai", "mode": "chat",
      "input_cost_per_token": 1e-06}}"#;

#[test]
fn litellm_keys_lose_their_provider_prefix_and_bare_keys_win() {
    let entries = parse(PREFIXED_TABLE).unwrap();
    let names: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.provider, e.model.as_str()))
        .collect();
    // Prefixed keys first, so the bare `deepseek-chat` (applied later) wins.
    assert_eq!(
        names,
        [
            ("deepseek", "deepseek-chat"),
            ("fireworks_ai", "accounts/fireworks/models/x"),
            ("deepseek", "deepseek-chat"),
            ("openai", "text-embedding-3-small"),
        ]
    );
    let catalog = PriceCatalog::default().with_text(PREFIXED_TABLE).unwrap();
    let (_, price) = catalog
        .lookup("deepseek", Some("deepseek-chat"), None)
        .unwrap();
    assert_eq!(price.input, dec(28, 8));
    // An embedding without an output rate produces no output to price.
    assert_eq!(entries[3].price.output, Decimal::ZERO);
}

#[test]
fn unknown_fields_are_errors_that_name_them() {
    let yaml =
        parse("openai:\n  gpt-4o-mini: {input: 0.15, output: 0.6, cachRead: 0.075}\n").unwrap_err();
    assert!(
        yaml.contains("cachRead") && yaml.contains("gpt-4o-mini"),
        "{yaml}"
    );
    let json = parse(r#"{"openai": {"gpt-4o": {"input": 2.5, "outptu": 10}}}"#).unwrap_err();
    assert!(
        json.contains("outptu") && json.contains("openai/gpt-4o"),
        "{json}"
    );
    let tier = parse(
        r#"{"openai": {"gpt-4o": {"input": 1, "output": 1, "tiers": [{"above": 1, "inptu": 2}]}}}"#,
    )
    .unwrap_err();
    assert!(tier.contains("inptu"), "{tier}");
    let wrapper = parse(r#"{"prices": {}, "sorce": "x"}"#).unwrap_err();
    assert!(wrapper.contains("sorce"), "{wrapper}");
    let provider = parse("opneai:\n  gpt-4o: {input: 1, output: 1}\n").unwrap_err();
    assert!(provider.contains("opneai"), "{provider}");
}

#[test]
fn bad_values_are_errors_that_name_the_entry() {
    let cases = [
        ("openai:\n  gpt-4o: {input: 1}\n", "output"),
        ("openai:\n  gpt-4o: {input: -1, output: 1}\n", "negative"),
        ("openai:\n  gpt-4o: {input: cheap, output: 1}\n", "cheap"),
        (
            r#"{"openai": {"gpt-4o": {"input": true, "output": 1}}}"#,
            "openai/gpt-4o",
        ),
        (
            r#"{"m": {"litellm_provider": "openai", "mode": "chat",
                "input_cost_per_token": "free", "output_cost_per_token": 1e-06}}"#,
            "m: input_cost_per_token",
        ),
        ("", "empty"),
        ("  \n", "empty"),
        ("{not json", "key must be a string"),
    ];
    for (text, expected) in cases {
        let err = parse(text).unwrap_err();
        assert!(err.contains(expected), "{text:?}: {err}");
    }
}

#[test]
fn wrapper_is_accepted_in_both_syntaxes() {
    let json = only_price(
        r#"{"source": "s", "sourceDate": "2026-01-01", "generated": "2026-01-02",
            "prices": {"groq": {"llama-3.3-70b-versatile": {"input": 0.59, "output": 0.79}}}}"#,
    );
    let yaml = only_price(
        "source: s\nprices:\n  groq:\n    llama-3.3-70b-versatile: {input: 0.59, output: 0.79}\n",
    );
    assert_eq!(json, yaml);
    assert_eq!(json.input, dec(59, 8));
}

#[test]
fn dated_suffixes() {
    assert_eq!(undated("gpt-4o-mini-2024-07-18"), Some("gpt-4o-mini"));
    assert_eq!(
        undated("claude-sonnet-4-5-20250929"),
        Some("claude-sonnet-4-5")
    );
    assert_eq!(
        undated("claude-3-5-sonnet@20240620"),
        Some("claude-3-5-sonnet")
    );
    for plain in [
        "gpt-4o-mini",
        "gpt-3.5-turbo-0125",
        "o3",
        "-20250929",
        "@20240620",
        "model-2024-7-18",
        "grok-4.20-0309",
        "x-12345678",
        "ü-2024-07-1ü",
    ] {
        assert_eq!(undated(plain), None, "{plain}");
    }
}

#[test]
fn builtin_catalog_parses_and_prices_the_main_providers() {
    let catalog = PriceCatalog::builtin();
    assert!(catalog.len() > 500, "{}", catalog.len());
    for (provider, model) in [
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-sonnet-4-5"),
        ("azure.ai.openai", "gpt-4o"),
        ("mistral_ai", "mistral-large-latest"),
        ("deepseek", "deepseek-chat"),
        ("x_ai", "grok-4.20"),
        ("perplexity", "sonar-deep-research"),
        ("openai", "text-embedding-3-small"),
    ] {
        let found = catalog.lookup(provider, Some(model), None);
        assert_eq!(
            found.map(|(name, _)| name),
            Some(model),
            "{provider}/{model}"
        );
    }
}

/// A temp file that is removed when the test ends.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("agw-pricing-{}-{name}", std::process::id()));
        TempFile(path)
    }

    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Waits (real time, the poller reads real files) until the catalog prices `model` at `input`
/// per token, or panics after a few seconds.
async fn wait_for_input_rate(handle: &CatalogHandle, model: &str, input: Option<Decimal>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = handle
            .current()
            .lookup("vllm", Some(model), None)
            .map(|(_, p)| p.input);
        if now == input {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{model}: still {now:?}, want {input:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_follows_the_file_and_keeps_prices_when_it_breaks() {
    let file = TempFile::new("reload.yaml");
    file.write("vllm:\n  local: {input: 1, output: 2}\n");
    let files = vec![file.0.clone()];
    let handle = CatalogHandle::new(PriceCatalog::load(&files).unwrap());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = handle.spawn_reload(files, Duration::from_millis(50), async {
        let _ = stop_rx.await;
    });
    wait_for_input_rate(&handle, "local", Some(dec(1, 6))).await;

    file.write("vllm:\n  local: {input: 1.25, output: 2}\n");
    wait_for_input_rate(&handle, "local", Some(dec(125, 8))).await;

    // A broken edit (a typo, then a half-written file) keeps the last good prices.
    file.write("vllm:\n  local: {inptu: 9, output: 2}\n");
    tokio::time::sleep(Duration::from_millis(400)).await;
    wait_for_input_rate(&handle, "local", Some(dec(125, 8))).await;
    file.write("");
    tokio::time::sleep(Duration::from_millis(400)).await;
    wait_for_input_rate(&handle, "local", Some(dec(125, 8))).await;

    // Fixed again: the poller is still alive and picks it up; builtin prices stay underneath.
    file.write("vllm:\n  local: {input: 3, output: 2}\n  other: {input: 1, output: 1}\n");
    wait_for_input_rate(&handle, "local", Some(dec(3, 6))).await;
    assert!(handle
        .current()
        .lookup("openai", Some("gpt-4o-mini"), None)
        .is_some());

    // A clone shares the same catalog.
    let clone = handle.clone();
    wait_for_input_rate(&clone, "other", Some(dec(1, 6))).await;

    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(2), task)
        .await
        .expect("reload task stops")
        .unwrap();
}
