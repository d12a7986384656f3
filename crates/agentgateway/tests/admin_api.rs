//! The admin API over a real socket: `serve_admin` on 127.0.0.1:0 with a SQLite key store in a
//! temp directory, driven by reqwest. Covers the token check, the key lifecycle (the secret is
//! shown once; a revocation stops the key authenticating at once), the field-naming validation
//! errors, 404/409/501, per-key budgets (set, shown exactly, replaced, cleared), and
//! `/config_dump`.

use std::path::PathBuf;
use std::sync::Arc;

use agentgateway::admin::{serve_admin, Admin, KeyUsage};
use agentgateway::auth::{AuthError, Authenticator, Identity};
use agentgateway::budget::{BudgetSpec, Window};
use agentgateway::config::{ApiKeyMode, ApiKeyPolicy};
use agentgateway::keys::KeyService;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::watch;

const TOKEN: &str = "admin-s3cret-token";
const CONFIG_DUMP: &str = r#"{"config":{"adminAddr":"127.0.0.1:0"},"llm":{"models":[]}}"#;

/// Echoes facts from the identity it is given, so tests see that the right key was passed.
struct EchoUsage;

impl KeyUsage for EchoUsage {
    fn usage<'a>(&'a self, identity: &'a Identity) -> BoxFuture<'a, Value> {
        Box::pin(
            async move { json!({"keyId": identity.id.as_ref(), "rpmLimit": identity.limits.rpm}) },
        )
    }
}

struct TestAdmin {
    base: String,
    token: Option<&'static str>,
    client: reqwest::Client,
    keys: Option<Arc<KeyService>>,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    dir: PathBuf,
}

impl TestAdmin {
    async fn start(token: Option<&'static str>, with_store: bool) -> TestAdmin {
        let dir = std::env::temp_dir().join(format!("agw-admin-api-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = match with_store {
            true => Some(
                KeyService::open(dir.join("keys.db").to_str().unwrap())
                    .await
                    .unwrap(),
            ),
            false => None,
        };
        let admin = Arc::new(Admin {
            token: token.map(str::to_owned),
            keys: keys.clone(),
            usage: Arc::new(EchoUsage),
            config_dump: Bytes::from_static(CONFIG_DUMP.as_bytes()),
            ledger: None,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = watch::channel(false);
        let server = tokio::spawn(serve_admin(listener, admin, stopped));
        TestAdmin {
            base,
            token,
            client: reqwest::Client::new(),
            keys,
            stop,
            server,
            dir,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create(&self, body: Value) -> Value {
        let (status, key) = self
            .call(Method::POST, "/v1/keys", Some(&body.to_string()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{key}");
        key
    }

    /// An authenticator that knows only the dynamic keys, as the gateway wires it.
    fn authenticator(&self) -> Authenticator {
        let policy = ApiKeyPolicy {
            mode: ApiKeyMode::Strict,
            keys: Vec::new(),
        };
        let cache = self.keys.as_ref().unwrap().cache();
        Authenticator::from_policy(&policy)
            .unwrap()
            .with_dynamic(cache)
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), self.server)
            .await
            .expect("serve_admin returns after stop")
            .unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bearer(secret: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {secret}").parse().unwrap(),
    );
    headers
}

fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn every_request_needs_the_token_when_one_is_set() {
    let admin = TestAdmin::start(Some(TOKEN), true).await;
    let url = format!("{}/v1/keys", admin.base);
    let none = admin.client.get(&url).send().await.unwrap();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let wrong = admin
        .client
        .get(&url)
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    let prefix = &TOKEN[..TOKEN.len() - 1];
    let almost = admin
        .client
        .get(&url)
        .bearer_auth(prefix)
        .send()
        .await
        .unwrap();
    assert_eq!(almost.status(), StatusCode::UNAUTHORIZED);
    let post = admin
        .client
        .post(&url)
        .body(r#"{"name":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);
    assert!(admin
        .keys
        .as_ref()
        .unwrap()
        .list()
        .await
        .unwrap()
        .is_empty());

    let (status, body) = admin.call(Method::GET, "/v1/keys", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"data": []}));
    admin.stop().await;
}

#[tokio::test]
async fn without_a_token_the_api_is_open() {
    let admin = TestAdmin::start(None, true).await;
    let (status, _) = admin.call(Method::GET, "/v1/keys", None).await;
    assert_eq!(status, StatusCode::OK);
    admin.stop().await;
}

#[tokio::test]
async fn create_shows_the_secret_once_and_the_key_authenticates() {
    let admin = TestAdmin::start(Some(TOKEN), true).await;
    let created = admin
        .create(json!({
            "name": "ci-bot", "user": "alice", "team": "search", "metadata": {"env": "ci"},
            "allowedModels": ["gpt-4o*"], "limits": {"rpm": 60, "maxParallel": 2},
            "expiresAt": "2099-01-01T00:00:00Z",
        }))
        .await;
    let secret = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("sk-agw-") && secret.len() == 47,
        "{secret}"
    );
    assert!(id.starts_with("key_"));
    assert_eq!(created["keyHint"], format!("sk-agw-…{}", &secret[43..]));
    assert_eq!(created["user"], "alice");
    assert_eq!(created["allowedModels"], json!(["gpt-4o*"]));
    let limits = json!({"rpm": 60, "tpm": null, "tpd": null, "maxParallel": 2});
    assert_eq!(created["limits"], limits);
    assert_eq!(created["expiresAt"], "2099-01-01T00:00:00Z");
    assert_eq!(created["revoked"], false);
    assert!(created["createdAt"].as_str().unwrap().ends_with('Z'));

    let identity = admin.authenticator().authenticate(&bearer(&secret));
    let identity = identity.unwrap().unwrap();
    assert_eq!(identity.id.as_ref(), id);
    assert_eq!(identity.user.as_deref(), Some("alice"));
    assert!(identity.allows_model("gpt-4o-mini") && !identity.allows_model("o3"));

    let (_, list) = admin.call(Method::GET, "/v1/keys", None).await;
    let (status, one) = admin
        .call(Method::GET, &format!("/v1/keys/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    for shown in [&list, &one] {
        assert!(!shown.to_string().contains(&secret), "{shown}");
    }
    assert!(list["data"][0].get("key").is_none());
    assert!(one.get("key").is_none());
    assert_eq!(one["name"], "ci-bot");
    assert_eq!(one["usage"], json!({"keyId": id, "rpmLimit": 60}));
    admin.stop().await;
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let admin = TestAdmin::start(None, true).await;
    let cases = [
        (json!({}), "name: required"),
        (json!({"name": ""}), "name: "),
        (
            json!({"name": "a", "limits": {"rpm": 0}}),
            "limits.rpm: must be a positive integer",
        ),
        (
            json!({"name": "a", "limits": {"tpm": "5"}}),
            "limits.tpm: must be a positive integer",
        ),
        (
            json!({"name": "a", "allowedModels": ["ok", "a*b*"]}),
            "allowedModels[1]: ",
        ),
        (
            json!({"name": "a", "expiresAt": "2001-01-01T00:00:00Z"}),
            "expiresAt: must be in the future",
        ),
        (json!({"name": "a", "owner": "bob"}), "owner: unknown field"),
    ];
    for (body, expected) in cases {
        let (status, error) = admin
            .call(Method::POST, "/v1/keys", Some(&body.to_string()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert!(
            error_message(&error).starts_with(expected),
            "{body} -> {error}"
        );
    }
    let (status, error) = admin
        .call(Method::POST, "/v1/keys", Some("{\"name\":"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&error).starts_with("malformed JSON"),
        "{error}"
    );
    let (_, list) = admin.call(Method::GET, "/v1/keys", None).await;
    assert_eq!(list, json!({"data": []}), "nothing invalid was stored");
    admin.stop().await;
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let admin = TestAdmin::start(None, true).await;
    let path = "/v1/keys/key_0000000000000000";
    for method in [Method::GET, Method::DELETE] {
        let (status, error) = admin.call(method, path, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(error["error"]["type"], "not_found_error");
    }
    let (status, _) = admin.call(Method::PATCH, path, Some("{}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    admin.stop().await;
}

#[tokio::test]
async fn patch_merges_and_null_clears() {
    let admin = TestAdmin::start(None, true).await;
    let created = admin
        .create(json!({"name": "a", "user": "alice", "team": "t",
            "allowedModels": ["x"], "limits": {"rpm": 1, "tpm": 2}, "expiresAt": "2099-01-01T00:00:00Z"}))
        .await;
    let path = format!("/v1/keys/{}", created["id"].as_str().unwrap());
    let patch = json!({"name": "b", "user": null, "allowedModels": null, "expiresAt": null,
        "limits": {"rpm": null, "tpd": 3}});
    let (status, patched) = admin
        .call(Method::PATCH, &path, Some(&patch.to_string()))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "b");
    assert_eq!(patched["user"], Value::Null);
    assert_eq!(patched["team"], "t", "absent fields stay");
    assert_eq!(patched["allowedModels"], Value::Null);
    assert_eq!(patched["expiresAt"], Value::Null);
    let limits = json!({"rpm": null, "tpm": 2, "tpd": 3, "maxParallel": null});
    assert_eq!(patched["limits"], limits);
    let (_, fetched) = admin.call(Method::GET, &path, None).await;
    assert_eq!(fetched["limits"], limits, "the change is stored");
    let (status, error) = admin
        .call(Method::PATCH, &path, Some(r#"{"limits": {"rpm": -5}}"#))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error_message(&error),
        "limits.rpm: must be a positive integer"
    );
    admin.stop().await;
}

#[tokio::test]
async fn delete_revokes_at_once_and_revoked_keys_cannot_change() {
    let admin = TestAdmin::start(Some(TOKEN), true).await;
    let created = admin.create(json!({"name": "doomed"})).await;
    let secret = created["key"].as_str().unwrap();
    let path = format!("/v1/keys/{}", created["id"].as_str().unwrap());
    let auth = admin.authenticator();
    assert!(auth.authenticate(&bearer(secret)).unwrap().is_some());

    let (status, revoked) = admin.call(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(revoked["revoked"], true);
    assert_eq!(auth.authenticate(&bearer(secret)), Err(AuthError::Invalid));

    let (status, error) = admin
        .call(Method::PATCH, &path, Some(r#"{"name": "back"}"#))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    let (_, list) = admin.call(Method::GET, "/v1/keys", None).await;
    assert_eq!(list["data"][0]["revoked"], true, "revoked keys stay listed");
    assert_eq!(list["data"][0]["name"], "doomed");
    admin.stop().await;
}

#[tokio::test]
async fn without_a_store_the_key_api_is_501_and_config_dump_still_works() {
    let admin = TestAdmin::start(Some(TOKEN), false).await;
    for (method, path) in [(Method::GET, "/v1/keys"), (Method::POST, "/v1/keys")] {
        let (status, error) = admin.call(method, path, Some(r#"{"name":"x"}"#)).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(
            error_message(&error),
            "dynamic keys are disabled: set config.database"
        );
    }
    let response = admin
        .client
        .get(format!("{}/config_dump", admin.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.text().await.unwrap(), CONFIG_DUMP);
    admin.stop().await;
}

fn spec(usd: &str, window: Window, soft: bool) -> BudgetSpec {
    BudgetSpec {
        usd: usd.parse().unwrap(),
        window,
        soft,
    }
}

#[tokio::test]
async fn budgets_are_set_shown_exactly_replaced_and_cleared() {
    let admin = TestAdmin::start(Some(TOKEN), true).await;
    let created = admin
        .create(json!({"name": "capped", "budgets": [
            {"usd": "10.50", "window": "1d"},
            {"usd": 2.5, "window": "month", "soft": true},
        ]}))
        .await;
    let shown = json!([
        {"usd": "10.50", "window": "1d", "soft": false},
        {"usd": "2.5", "window": "month", "soft": true},
    ]);
    assert_eq!(created["budgets"], shown);
    let secret = created["key"].as_str().unwrap().to_owned();
    let path = format!("/v1/keys/{}", created["id"].as_str().unwrap());
    let identity = admin.authenticator().authenticate(&bearer(&secret));
    assert_eq!(
        identity.unwrap().unwrap().budgets,
        [
            spec("10.50", Window::Day, false),
            spec("2.5", Window::Month, true)
        ],
        "the request path's identity carries them"
    );
    let (_, one) = admin.call(Method::GET, &path, None).await;
    let (_, list) = admin.call(Method::GET, "/v1/keys", None).await;
    assert_eq!(one["budgets"], shown);
    assert_eq!(list["data"][0]["budgets"], shown);

    let (status, renamed) = admin
        .call(Method::PATCH, &path, Some(r#"{"name": "still-capped"}"#))
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["budgets"], shown, "absent: left alone");
    let replace = r#"{"budgets": [{"usd": "0.10", "window": "1h", "soft": false}]}"#;
    let (status, replaced) = admin.call(Method::PATCH, &path, Some(replace)).await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    let one_budget = json!([{"usd": "0.10", "window": "1h", "soft": false}]);
    assert_eq!(
        replaced["budgets"], one_budget,
        "the whole list is replaced"
    );
    let identity = admin.authenticator().authenticate(&bearer(&secret));
    assert_eq!(
        identity.unwrap().unwrap().budgets,
        [spec("0.10", Window::Hour, false)]
    );
    let (_, fetched) = admin.call(Method::GET, &path, None).await;
    assert_eq!(fetched["budgets"], one_budget, "the change is stored");

    let (status, cleared) = admin
        .call(Method::PATCH, &path, Some(r#"{"budgets": []}"#))
        .await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    assert_eq!(cleared["budgets"], json!([]));
    let identity = admin.authenticator().authenticate(&bearer(&secret));
    assert!(identity.unwrap().unwrap().budgets.is_empty());
    let plain = admin.create(json!({"name": "uncapped"})).await;
    assert_eq!(
        plain["budgets"],
        json!([]),
        "always present, empty for none"
    );
    admin.stop().await;
}

#[tokio::test]
async fn budget_errors_name_the_field_and_store_nothing() {
    let admin = TestAdmin::start(None, true).await;
    let cases = [
        (
            json!([{"usd": "10", "window": "2d"}]),
            "budgets[0].window: must be one of 1h, 1d, 7d, 30d, month",
        ),
        (
            json!([{"usd": "0", "window": "1d"}]),
            "budgets[0].usd: must be a positive amount",
        ),
        (
            json!([{"usd": "1", "window": "1d"}, {"usd": -1, "window": "1d"}]),
            "budgets[1].usd: must be a positive amount",
        ),
        (
            json!([{"usd": "1", "window": "1d", "hard": true}]),
            "budgets[0].hard: unknown field",
        ),
        (json!([{"window": "1d"}]), "budgets[0].usd: required"),
        (json!("10/1d"), "budgets: must be an array"),
    ];
    for (budgets, expected) in cases {
        let body = json!({"name": "a", "budgets": budgets}).to_string();
        let (status, error) = admin.call(Method::POST, "/v1/keys", Some(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert!(
            error_message(&error).starts_with(expected),
            "{body} -> {error}"
        );
    }
    let (_, list) = admin.call(Method::GET, "/v1/keys", None).await;
    assert_eq!(list, json!({"data": []}), "nothing invalid was stored");
    let created = admin
        .create(json!({"name": "b", "budgets": [{"usd": "5", "window": "7d"}]}))
        .await;
    let path = format!("/v1/keys/{}", created["id"].as_str().unwrap());
    let bad = r#"{"budgets": [{"usd": "5", "window": "week"}]}"#;
    let (status, error) = admin.call(Method::PATCH, &path, Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error_message(&error).starts_with("budgets[0].window: "),
        "{error}"
    );
    let (_, fetched) = admin.call(Method::GET, &path, None).await;
    let kept = json!([{"usd": "5", "window": "7d", "soft": false}]);
    assert_eq!(fetched["budgets"], kept, "a refused patch changes nothing");
    admin.stop().await;
}
