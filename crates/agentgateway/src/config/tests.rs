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
