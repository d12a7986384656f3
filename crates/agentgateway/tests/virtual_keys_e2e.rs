//! Dynamic virtual keys end to end: created through the admin API of a running gateway (real
//! sockets, a real SQLite file), used at once on the LLM port, revoked, shared by a second
//! gateway on the same database, kept across a restart, and driven by the `agentgateway keys` CLI.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::fake_openai::FakeOpenAi;
use support::gateway::{config_with_upstream, TestGateway};

const TOKEN: &str = "admin-secret-token-1234";

fn yaml(db: &Path) -> String {
    format!(
        r#"
config:
  adminToken: {TOKEN}
  database: '{}'
  metrics:
    fields:
      add: {{user_id: 'apiKey.user', team: 'apiKey.team'}}
llm:
  policies:
    apiKey:
      keys:
      - key: sk-static-provider-looking
        metadata: {{user: ops}}
  models:
  - name: gpt-4o-mini
    provider: openAI
    params: {{baseUrl: '{{upstream}}', apiKey: sk-provider-secret}}
  - name: o3
    provider: openAI
    params: {{baseUrl: '{{upstream}}', apiKey: sk-provider-secret}}
"#,
        db.display()
    )
}

/// A fresh database path under the system temp dir.
fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "agw-vk-{name}-{}-{}",
        std::process::id(),
        uuid_like()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("keys.db")
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

async fn admin(
    gw: &TestGateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = gw
        .client
        .request(method, format!("{}{path}", gw.admin_url))
        .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("admin API answers");
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn create(gw: &TestGateway, body: Value) -> (String, String) {
    let (status, key) = admin(gw, reqwest::Method::POST, "/v1/keys", Some(body)).await;
    assert_eq!(status, 201, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("sk-agw-") && secret.len() >= 7 + 32,
        "{secret}"
    );
    (key["id"].as_str().unwrap().to_owned(), secret)
}

async fn chat_status(gw: &TestGateway, key: &str, model: &str) -> u16 {
    gw.post("/v1/chat/completions", Some(key), &chat(model))
        .await
        .status()
        .as_u16()
}

/// Polls until `key` gets `want` on `gw`, for at most `within`.
async fn wait_for_status(gw: &TestGateway, key: &str, want: u16, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let status = chat_status(gw, key, "gpt-4o-mini").await;
        if status == want {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "still {status} after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_created_key_works_at_once_and_stops_when_revoked() {
    let fake = FakeOpenAi::start().await;
    let db = temp_db("revoke");
    let gw = TestGateway::start(&config_with_upstream(&yaml(&db), &fake.base_url())).await;
    let (id, secret) = create(
        &gw,
        json!({"name": "ci-bot", "user": "alice", "team": "search", "metadata": {"env": "ci"}}),
    )
    .await;
    assert_eq!(chat_status(&gw, &secret, "gpt-4o-mini").await, 200);
    let upstream = &fake.requests()[0];
    assert_eq!(
        upstream.header("authorization"),
        Some("Bearer sk-provider-secret")
    );

    let (status, listed) = admin(&gw, reqwest::Method::GET, "/v1/keys", None).await;
    assert_eq!(status, 200);
    assert!(
        !listed.to_string().contains(&secret),
        "the secret is shown once"
    );
    let (status, one) = admin(&gw, reqwest::Method::GET, &format!("/v1/keys/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(one["user"], "alice");

    let (status, revoked) = admin(
        &gw,
        reqwest::Method::DELETE,
        &format!("/v1/keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(revoked["revoked"], true);
    let took = wait_for_status(&gw, &secret, 401, Duration::from_secs(1)).await;
    assert!(took < Duration::from_secs(1));

    let lines = gw.wait_for_log_lines(2).await;
    assert!(lines[0].contains("user=alice"), "{}", lines[0]);
    assert!(lines[0].contains("api_key.name=ci-bot"), "{}", lines[0]);
    assert!(!lines.iter().any(|l| l.contains(&secret)));
    let m = gw.metrics().await;
    let alice = m.sum(
        "agentgateway_gen_ai_client_token_usage_sum",
        &[
            ("user_id", "alice"),
            ("team", "search"),
            ("gen_ai_token_type", "input"),
        ],
    );
    assert_eq!(alice, 11.0);
    gw.shutdown().await;
}

#[tokio::test]
async fn key_limits_and_allow_lists_apply_and_usage_is_reported() {
    let fake = FakeOpenAi::start().await;
    let db = temp_db("limits");
    let gw = TestGateway::start(&config_with_upstream(&yaml(&db), &fake.base_url())).await;
    let (id, secret) = create(
        &gw,
        json!({"name": "narrow", "user": "bob", "allowedModels": ["gpt-4o*"],
               "limits": {"rpm": 2, "tpm": 100000}}),
    )
    .await;
    assert_eq!(chat_status(&gw, &secret, "o3").await, 403);
    assert_eq!(chat_status(&gw, &secret, "gpt-4o-mini").await, 200);
    let (status, one) = admin(&gw, reqwest::Method::GET, &format!("/v1/keys/{id}"), None).await;
    assert_eq!(status, 200);
    let usage = one["usage"].to_string();
    assert!(usage.contains("rpm") && usage.contains("tpm"), "{usage}");
    assert_eq!(one["usage"]["rpm"]["limit"], 2);
    assert_eq!(one["usage"]["rpm"]["remaining"], 1);
    assert_eq!(chat_status(&gw, &secret, "gpt-4o-mini").await, 200);
    assert_eq!(chat_status(&gw, &secret, "gpt-4o-mini").await, 429);

    // Widening the allow-list takes effect at once.
    let (status, patched) = admin(
        &gw,
        reqwest::Method::PATCH,
        &format!("/v1/keys/{id}"),
        Some(json!({"allowedModels": null, "limits": {"rpm": null}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(chat_status(&gw, &secret, "o3").await, 200);
    gw.shutdown().await;
}

#[tokio::test]
async fn keys_survive_a_restart_and_a_second_gateway_sees_changes_within_a_second() {
    let fake = FakeOpenAi::start().await;
    let db = temp_db("shared");
    let config = config_with_upstream(&yaml(&db), &fake.base_url());
    let first = TestGateway::start(&config).await;
    let second = TestGateway::start(&config).await;
    let (id, secret) = create(&first, json!({"name": "shared", "user": "carol"})).await;
    let (_, revoked_secret) = create(&first, json!({"name": "old", "user": "dave"})).await;
    wait_for_status(&second, &secret, 200, Duration::from_secs(1)).await;

    let (_, old) = admin(&first, reqwest::Method::GET, "/v1/keys", None).await;
    let old_id = old["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "old")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    admin(
        &first,
        reqwest::Method::DELETE,
        &format!("/v1/keys/{old_id}"),
        None,
    )
    .await;
    wait_for_status(&second, &revoked_secret, 401, Duration::from_secs(1)).await;
    first.shutdown().await;
    second.shutdown().await;

    let restarted = TestGateway::start(&config).await;
    assert_eq!(chat_status(&restarted, &secret, "gpt-4o-mini").await, 200);
    assert_eq!(
        chat_status(&restarted, &revoked_secret, "gpt-4o-mini").await,
        401
    );
    let (status, one) = admin(
        &restarted,
        reqwest::Method::GET,
        &format!("/v1/keys/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["user"], "carol");
    restarted.shutdown().await;
}

#[tokio::test]
async fn the_admin_api_needs_the_token_and_names_bad_fields() {
    let fake = FakeOpenAi::start().await;
    let db = temp_db("auth");
    let gw = TestGateway::start(&config_with_upstream(&yaml(&db), &fake.base_url())).await;
    let url = format!("{}/v1/keys", gw.admin_url);
    let none = gw.client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let wrong = gw
        .client
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let malformed = gw
        .client
        .post(&url)
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let (status, bad) = admin(
        &gw,
        reqwest::Method::POST,
        "/v1/keys",
        Some(json!({"name": "x", "limits": {"rpm": -1}})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(bad.to_string().contains("rpm"), "{bad}");

    let dump = gw
        .client
        .get(format!("{}/config_dump", gw.admin_url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(dump.status(), 200);
    let text = dump.text().await.unwrap();
    assert!(text.contains("gpt-4o-mini"), "{text}");
    for secret in [TOKEN, "sk-provider-secret", "sk-static-provider-looking"] {
        assert!(!text.contains(secret), "{secret} leaked in {text}");
    }
    gw.shutdown().await;
}

#[test]
fn an_exposed_admin_api_without_a_token_refuses_to_start() {
    let yaml = r#"
config:
  adminAddr: 0.0.0.0:15000
llm:
  models:
  - name: gpt-4o-mini
    provider: openAI
"#;
    let config = agentgateway::config::Config::from_yaml(yaml, &|_| None).unwrap();
    let err = agentgateway::Gateway::build(&config, agentgateway::Options::default())
        .err()
        .expect("must refuse");
    assert!(
        err.contains("config.adminAddr") && err.contains("adminToken"),
        "{err}"
    );
    let loopback = yaml.replace("0.0.0.0", "127.0.0.1");
    let config = agentgateway::config::Config::from_yaml(&loopback, &|_| None).unwrap();
    assert!(agentgateway::Gateway::build(&config, agentgateway::Options::default()).is_ok());
}
