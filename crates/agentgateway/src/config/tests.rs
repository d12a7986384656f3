use super::*;

fn env(name: &str) -> Option<String> {
    (name == "OPENAI_API_KEY").then(|| "sk-provider".to_string())
}

const FULL: &str = r#"
config:
  statsAddr: 127.0.0.1:15020
  logging:
    format: json
    filter: 'response.code >= 400'
    fields:
      add: {user: 'apiKey.user', team: 'apiKey.team'}
      remove: [src.addr]
  metrics:
    fields:
      add: {user_id: 'apiKey.user'}
llm:
  port: 4000
  policies:
    apiKey:
      mode: strict
      keys:
      - key: sk-alice-123
        metadata: {user: alice, team: search}
  models:
  - name: gpt-4o-mini
    provider: openAI
    params:
      model: gpt-4o-mini
      apiKey: $OPENAI_API_KEY
      baseUrl: https://api.openai.com/v1
  - name: "*"
    provider: openAI
"#;

#[test]
fn parses_the_interface_example() {
    let config = Config::from_yaml(FULL, &env).unwrap();
    assert_eq!(config.llm.port, 4000);
    assert_eq!(config.config.logging.format, Some(LogFormat::Json));
    let add: Vec<_> = config.config.logging.fields.add.keys().collect();
    assert_eq!(add, ["user", "team"], "field order is kept");
    assert_eq!(
        config.llm.models[0].params.api_key.as_deref(),
        Some("sk-provider")
    );
    assert_eq!(config.llm.models[1].provider, ProviderKind::OpenAi);
    let policy = config.llm.policies.api_key.unwrap();
    assert_eq!(policy.mode, ApiKeyMode::Strict);
    assert_eq!(policy.keys[0].metadata["team"], "search");
}

#[test]
fn unknown_field_is_named_with_its_line() {
    let text = "llm:\n  models:\n  - name: a\n    provider: openAI\n    parms: {}\n";
    let err = Config::from_yaml(text, &env).unwrap_err().to_string();
    assert!(err.contains("parms"), "{err}");
    assert!(err.contains("line 5"), "{err}");
}

#[test]
fn bad_values_are_named() {
    let cases = [
        ("llm:\n  models:\n  - name: a\n    provider: claude\n", "claude"),
        ("llm:\n  port: 99999\n", "port"),
        (
            "llm:\n  models:\n  - name: a\n    provider: openAI\n    params: {baseUrl: 'ftp://x'}\n",
            "llm.models[0].params.baseUrl",
        ),
        (
            "llm:\n  models:\n  - {name: a, provider: openAI}\n  - {name: a, provider: openAI}\n",
            "llm.models[1].name: duplicate",
        ),
        (
            "llm:\n  policies:\n    apiKey:\n      keys:\n      - keyHash: md5:abc\n",
            "llm.policies.apiKey.keys[0].keyHash",
        ),
        ("config:\n  drainTimeout: 10\nllm: {}\n", "missing unit"),
        ("llm:\n  models:\n  - {name: 'a*b', provider: openAI}\n", "wildcard"),
        (
            "config:\n  metrics:\n    fields:\n      add: {route: 'apiKey.user'}\nllm: {}\n",
            "config.metrics.fields.add.route: clashes",
        ),
    ];
    for (text, needle) in cases {
        let err = Config::from_yaml(text, &env).unwrap_err().to_string();
        assert!(err.contains(needle), "expected {needle:?} in {err:?}");
    }
}

#[test]
fn unset_variable_is_a_load_error() {
    let text = "llm:\n  models:\n  - name: a\n    provider: openAI\n    params: {apiKey: $NOPE}\n";
    let err = Config::from_yaml(text, &env).unwrap_err().to_string();
    assert_eq!(err, "line 5: environment variable $NOPE is not set");
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let config = Config::from_yaml(FULL, &env).unwrap();
    let dump = format!("{config:?}");
    assert!(
        !dump.contains("sk-provider") && !dump.contains("sk-alice-123"),
        "{dump}"
    );
}

fn rate_limit(rule: &str) -> Result<Config, String> {
    let text = format!("llm:\n  policies:\n    localRateLimit:\n    - {rule}\n");
    Config::from_yaml(&text, &env).map_err(|e| e.to_string())
}

#[test]
fn a_cost_limit_reads_dollars_exactly() {
    let config = rate_limit(
        "{type: cost, maxUsd: 0.10, usdPerFill: 0.000005, fillInterval: 1h, key: 'apiKey.user'}",
    )
    .unwrap();
    let rule = &config.llm.policies.local_rate_limit[0];
    assert_eq!(rule.kind, RateLimitType::Cost);
    let max_usd = rule.max_usd.unwrap();
    assert_eq!(max_usd, rust_decimal::Decimal::new(10, 2));
    assert_eq!(
        max_usd.to_string(),
        "0.10",
        "the text as written, not a float"
    );
    assert_eq!(rule.usd_per_fill, Some(rust_decimal::Decimal::new(5, 6)));
    assert_eq!(rule.max_tokens, None);

    let quoted = rate_limit("{type: cost, maxUsd: '25', fillInterval: 24h}").unwrap();
    assert_eq!(
        quoted.llm.policies.local_rate_limit[0].max_usd,
        Some(rust_decimal::Decimal::new(25, 0))
    );
}

#[test]
fn rate_limit_sizes_are_checked_per_type() {
    let cases = [
        (
            "{type: cost, fillInterval: 1h}",
            "[0].maxUsd: required for type cost",
        ),
        (
            "{type: cost, maxUsd: 0, fillInterval: 1h}",
            "[0].maxUsd: must be greater than 0",
        ),
        (
            "{type: cost, maxUsd: -1, fillInterval: 1h}",
            "[0].maxUsd: must be greater than 0",
        ),
        (
            "{type: cost, maxUsd: 0.0000001, fillInterval: 1h}",
            "[0].maxUsd: 0.0000001 has more than 6 decimal places",
        ),
        (
            "{type: cost, maxUsd: 1, usdPerFill: 0, fillInterval: 1h}",
            "[0].usdPerFill: must be greater than 0",
        ),
        (
            "{type: cost, maxUsd: 1, maxTokens: 5, fillInterval: 1h}",
            "[0].maxTokens: does not apply to type cost",
        ),
        (
            "{type: cost, maxUsd: 1, tokensPerFill: 5, fillInterval: 1h}",
            "[0].tokensPerFill: does not apply to type cost",
        ),
        (
            "{type: tokens, fillInterval: 1m}",
            "[0].maxTokens: required for type tokens",
        ),
        (
            "{fillInterval: 1m}",
            "[0].maxTokens: required for type requests",
        ),
        (
            "{maxTokens: 0, fillInterval: 1m}",
            "[0].maxTokens: must be greater than 0",
        ),
        (
            "{type: tokens, maxTokens: 5, maxUsd: 1, fillInterval: 1m}",
            "[0].maxUsd: only applies to type cost, not tokens",
        ),
        (
            "{type: requests, maxTokens: 5, usdPerFill: 1, fillInterval: 1m}",
            "[0].usdPerFill: only applies to type cost, not requests",
        ),
        ("{type: cost, maxUsd: ten, fillInterval: 1h}", "maxUsd"),
        ("{type: dollars, maxUsd: 1, fillInterval: 1h}", "dollars"),
    ];
    for (rule, needle) in cases {
        let err = rate_limit(rule).unwrap_err();
        assert!(
            err.contains(needle),
            "{rule}: expected {needle:?} in {err:?}"
        );
    }
}

#[test]
fn a_cost_limit_dumps_its_dollars_as_written_and_reloads() {
    let config = rate_limit("{type: cost, maxUsd: 0.10, fillInterval: 1h}").unwrap();
    let dump = config_dump(&config);
    let rule = &dump["llm"]["policies"]["localRateLimit"][0];
    assert_eq!(rule["type"], "cost");
    assert_eq!(rule["maxUsd"], "0.10", "a string: JSON numbers are floats");
    assert!(rule.get("maxTokens").is_none(), "{rule}");
    let reloaded = Config::from_yaml(&dump.to_string(), &env).unwrap();
    assert_eq!(
        reloaded.llm.policies.local_rate_limit[0].max_usd,
        config.llm.policies.local_rate_limit[0].max_usd
    );
}

#[test]
fn budgets_must_be_positive_and_distinct() {
    let with = |budgets: &str| {
        let yaml = format!(
            "llm:\n  policies:\n    budgets:\n      users:\n        alice: {budgets}\n  models: []\n"
        );
        Config::from_yaml(&yaml, &|_| None)
    };
    assert!(with("[{usd: 1, window: 1d}, {usd: 10, window: month}]").is_ok());
    let zero = with("[{usd: 0, window: 1d}]").unwrap_err().to_string();
    assert!(
        zero.contains("llm.policies.budgets.users.alice[0].usd"),
        "{zero}"
    );
    let twice = with("[{usd: 1, window: 1d}, {usd: 2, window: 1d}]")
        .unwrap_err()
        .to_string();
    assert!(twice.contains("alice[1].window"), "{twice}");
}
