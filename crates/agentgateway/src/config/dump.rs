//! `/config_dump`: the effective config (after `$VAR` expansion) rendered back as JSON in the
//! file's own camelCase shape, so an operator sees exactly what the gateway runs with.
//!
//! The dump is the config types' `Serialize` derives; this module holds the serializers those
//! derives point at. A dump is meant to be pasted into tickets and chats, so every secret (client
//! keys, provider keys, the admin token, credentials embedded in a URL) is written as
//! [`REDACTED`]; a key's `keyHash` stays because it cannot be turned back into the key. Durations
//! are written the way users write them (`1m30s`), so a dump parses back as the same config.

use std::borrow::Cow;
use std::time::Duration;

use serde::Serializer;
use serde_json::{json, Value};

use super::Config;

/// What a secret is replaced with in a dump.
pub const REDACTED: &str = "<redacted>";

/// The effective config as JSON, secrets redacted.
pub fn config_dump(config: &Config) -> Value {
    // Only a non-string map key or a failing serializer could make this fail, and the config
    // types have neither; the fallback still answers with JSON rather than a panic.
    serde_json::to_value(config)
        .unwrap_or_else(|e| json!({ "error": format!("cannot render the config: {e}") }))
}

/// `90s` -> `1m30s`, `250ms` -> `250ms`, zero -> `0s`: the inverse of
/// [`parse_duration`](super::parse_duration). Below a millisecond is dropped: the config cannot
/// express it.
pub fn format_duration(duration: Duration) -> String {
    let mut ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        let count = ms / size;
        if count > 0 {
            out.push_str(&format!("{count}{unit}"));
            ms %= size;
        }
    }
    out
}

/// Replaces `user:password@` in a URL with `redacted@`; the rest stays, since which host is called
/// is useful. Not [`REDACTED`]: `<` is not allowed in a URL, and the dump must stay a valid config.
fn redact_userinfo(url: &str) -> Cow<'_, str> {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return Cow::Borrowed(url);
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => Cow::Owned(format!("{}redacted{}", &url[..scheme_end], &rest[at..])),
        None => Cow::Borrowed(url),
    }
}

// === serde adapters named by the derives in `config/mod.rs` ===

pub(super) fn option_secret<S: Serializer>(
    value: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str(REDACTED),
        None => s.serialize_none(),
    }
}

pub(super) fn option_url<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(url) => s.serialize_str(&redact_userinfo(url)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_duration;
    use proptest::prelude::*;

    const CLIENT_KEY: &str = "sk-alice-123";
    const PROVIDER_KEY: &str = "sk-provider-secret";
    const ADMIN_TOKEN: &str = "admin-token-xyz";
    const URL_PASSWORD: &str = "hunter2";
    const KEY_HASH: &str =
        "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    fn env(name: &str) -> Option<String> {
        match name {
            "OPENAI_API_KEY" => Some(PROVIDER_KEY.into()),
            "ADMIN_TOKEN" => Some(ADMIN_TOKEN.into()),
            "PROXY_PASSWORD" => Some(URL_PASSWORD.into()),
            _ => None,
        }
    }

    /// `config/tests.rs`'s FULL plus every field that holds a secret or a duration.
    fn full() -> String {
        format!(
            r#"
config:
  statsAddr: 127.0.0.1:15020
  adminAddr: 127.0.0.1:15000
  adminToken: $ADMIN_TOKEN
  database: /var/lib/agw/keys.db
  drainTimeout: 45s
  logging:
    format: json
    filter: 'response.code >= 400'
    fields:
      add: {{user: 'apiKey.user', team: 'apiKey.team'}}
      remove: [src.addr]
  metrics:
    fields:
      add: {{user_id: 'apiKey.user'}}
    maxLabelValues: 100
llm:
  port: 4000
  timeouts: {{connect: 250ms, firstByte: 2m, idle: 1m30s, requestBody: 10s}}
  policies:
    apiKey:
      mode: strict
      keys:
      - key: {CLIENT_KEY}
        metadata: {{user: alice, team: search}}
        allowedModels: ['gpt-4o*']
        limits: {{rpm: 60, tpm: 100000}}
      - keyHash: {KEY_HASH}
        name: bob
    localRateLimit:
    - type: tokens
      maxTokens: 1000
      fillInterval: 1h1m1s
      key: apiKey.user
  models:
  - name: gpt-4o-mini
    provider: openAI
    params:
      model: gpt-4o-mini
      apiKey: $OPENAI_API_KEY
      baseUrl: https://gw:$PROXY_PASSWORD@proxy.internal:8443/v1
  - name: "*"
    provider: openAI
"#
        )
    }

    fn load(yaml: &str) -> Config {
        Config::from_yaml(yaml, &env).unwrap()
    }

    #[test]
    fn no_secret_reaches_the_dump() {
        let config = load(&full());
        assert_eq!(
            config.llm.models[0].params.api_key.as_deref(),
            Some(PROVIDER_KEY)
        );
        let dump = config_dump(&config);
        let text = dump.to_string();
        for secret in [CLIENT_KEY, PROVIDER_KEY, ADMIN_TOKEN, URL_PASSWORD] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert_eq!(dump["config"]["adminToken"], REDACTED);
        assert_eq!(
            dump["llm"]["policies"]["apiKey"]["keys"][0]["key"],
            REDACTED
        );
        assert_eq!(dump["llm"]["models"][0]["params"]["apiKey"], REDACTED);
        assert_eq!(
            dump["llm"]["models"][0]["params"]["baseUrl"],
            "https://redacted@proxy.internal:8443/v1"
        );
    }

    #[test]
    fn the_dump_keeps_the_file_shape_and_the_key_hash() {
        let dump = config_dump(&load(&full()));
        let keys = &dump["llm"]["policies"]["apiKey"]["keys"];
        assert_eq!(keys[1]["keyHash"], KEY_HASH);
        assert!(keys[1].get("key").is_none(), "unset fields are left out");
        assert_eq!(keys[0]["allowedModels"], json!(["gpt-4o*"]));
        assert_eq!(keys[0]["limits"], json!({"rpm": 60, "tpm": 100000}));
        assert_eq!(keys[0]["metadata"]["team"], "search");
        assert_eq!(dump["llm"]["models"][1]["provider"], "openAI");
        assert_eq!(dump["config"]["statsAddr"], "127.0.0.1:15020");
        assert_eq!(dump["config"]["logging"]["format"], "json");
        assert_eq!(dump["config"]["metrics"]["maxLabelValues"], 100);
        let limit = &dump["llm"]["policies"]["localRateLimit"][0];
        assert_eq!(limit["type"], "tokens");
        assert_eq!(limit["maxTokens"], 1000);
    }

    #[test]
    fn durations_are_written_as_users_write_them() {
        let dump = config_dump(&load(&full()));
        assert_eq!(
            dump["llm"]["timeouts"],
            json!({"connect": "250ms", "firstByte": "2m", "idle": "1m30s", "requestBody": "10s"})
        );
        assert_eq!(dump["config"]["drainTimeout"], "45s");
        assert_eq!(
            dump["llm"]["policies"]["localRateLimit"][0]["fillInterval"],
            "1h1m1s"
        );
    }

    #[test]
    fn a_dump_parses_back_as_the_same_config() {
        let original = load(&full());
        let dump = config_dump(&original);
        // JSON is YAML, so the dump is itself a config file (secrets now read `<redacted>`).
        let reloaded = load(&dump.to_string());
        assert_eq!(reloaded.llm.timeouts.idle, original.llm.timeouts.idle);
        assert_eq!(reloaded.config.drain_timeout, original.config.drain_timeout);
        assert_eq!(
            reloaded.llm.policies.local_rate_limit[0].fill_interval,
            Duration::from_secs(3661)
        );
        assert_eq!(config_dump(&reloaded), dump);
    }

    #[test]
    fn a_minimal_config_dumps_only_what_is_set_or_defaulted() {
        let dump = config_dump(&load("llm: {}\n"));
        assert_eq!(
            dump,
            json!({
                "config": {
                    "logging": {"fields": {"add": {}, "remove": []}},
                    "metrics": {"fields": {"add": {}}}
                },
                "llm": {
                    "port": 4000,
                    "policies": {"localRateLimit": []},
                    "models": [],
                    "timeouts": {}
                }
            })
        );
    }

    #[test]
    fn formats_durations() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1s500ms"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_secs(3600), "1h"),
            (Duration::from_secs(7322), "2h2m2s"),
        ];
        for (duration, text) in cases {
            assert_eq!(format_duration(duration), text);
        }
    }

    #[test]
    fn redacts_only_the_userinfo_of_a_url() {
        assert_eq!(
            redact_userinfo("http://u:p@h:1/p?q=a@b"),
            "http://redacted@h:1/p?q=a@b"
        );
        assert_eq!(redact_userinfo("https://h/x@y"), "https://h/x@y");
        assert_eq!(redact_userinfo("not a url"), "not a url");
    }

    proptest! {
        #[test]
        fn format_and_parse_round_trip(ms in 0u64..1_000_000_000_000) {
            let duration = Duration::from_millis(ms);
            prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
        }
    }
}
