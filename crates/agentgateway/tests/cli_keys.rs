//! `agentgateway keys ...` as a user runs it: the built binary against a fake admin API on
//! `127.0.0.1:0` that records every request and answers with canned JSON. Checks what goes over
//! the wire (method, path, auth header, body) and what the user sees (stdout, stderr, exit code).

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_agentgateway");
const ADMIN_TOKEN: &str = "admin-token-never-printed";

/// One request as the fake admin API received it.
#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Value,
}

type Handler = dyn Fn(&Recorded) -> (u16, Value) + Send + Sync;

/// The fake admin API: serves on its own thread until the test process ends.
struct FakeAdmin {
    url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl FakeAdmin {
    fn start(handler: impl Fn(&Recorded) -> (u16, Value) + Send + Sync + 'static) -> FakeAdmin {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let handler: Arc<Handler> = Arc::new(handler);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(listener, handler, recorded));
        });
        FakeAdmin { url, requests }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(
    listener: std::net::TcpListener,
    handler: Arc<Handler>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let (handler, recorded) = (handler.clone(), recorded.clone());
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            let (handler, recorded) = (handler.clone(), recorded.clone());
            async move {
                let request = record(request).await;
                let (status, body) = handler(&request);
                recorded.lock().unwrap().push(request);
                Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body.to_string())))
            }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn record(request: Request<hyper::body::Incoming>) -> Recorded {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (authorization, content_type) = (header("authorization"), header("content-type"));
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let bytes = request.into_body().collect().await.unwrap().to_bytes();
    let body = match bytes.is_empty() {
        true => Value::Null,
        false => serde_json::from_slice(&bytes).unwrap(),
    };
    Recorded {
        method,
        path,
        authorization,
        content_type,
        body,
    }
}

fn key_object(id: &str, name: &str) -> Value {
    json!({
        "id": id, "name": name, "user": "alice", "team": "search", "metadata": {},
        "allowedModels": ["gpt-4o*"], "limits": {"rpm": 60, "tpm": 100000},
        "budgets": [{"usd": "10", "window": "1d", "soft": false}], "expiresAt": null, "revoked": false, "createdAt": "2030-01-01T00:00:00Z",
        "updatedAt": "2030-01-01T00:00:00Z", "keyHint": "sk-...wxyz"
    })
}

/// Runs the binary with a clean environment for the admin settings, plus `env`.
fn agw(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("AGW_ADMIN_URL")
        .env_remove("AGW_ADMIN_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run the agentgateway binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_no_token(out: &Output) {
    assert!(
        !stdout(out).contains(ADMIN_TOKEN) && !stderr(out).contains(ADMIN_TOKEN),
        "the admin token was printed: {out:?}"
    );
}

#[test]
fn create_sends_the_flags_as_json_with_the_token_and_shows_the_secret_once() {
    let admin = FakeAdmin::start(|_| {
        let mut key = key_object("key_new1", "ci-bot");
        key["key"] = json!("sk-agw-the-new-secret");
        (201, key)
    });
    let out = agw(
        &[
            "keys",
            "create",
            "--name",
            "ci-bot",
            "--user",
            "alice",
            "--team",
            "search",
            "--rpm",
            "60",
            "--tpm",
            "100000",
            "--models",
            "gpt-4o*,o3-mini",
            "--metadata",
            "env=ci",
            "--expires-at",
            "2031-01-01T00:00:00Z",
            "--admin-url",
            &admin.url,
        ],
        &[("AGW_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let requests = admin.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/v1/keys")
    );
    assert_eq!(
        request.authorization.as_deref(),
        Some(&*format!("Bearer {ADMIN_TOKEN}"))
    );
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        request.body,
        json!({
            "name": "ci-bot", "user": "alice", "team": "search", "metadata": {"env": "ci"},
            "allowedModels": ["gpt-4o*", "o3-mini"], "limits": {"rpm": 60, "tpm": 100000},
            "expiresAt": "2031-01-01T00:00:00Z"
        })
    );
    let text = stdout(&out);
    assert!(text.contains("secret: sk-agw-the-new-secret"), "{text}");
    assert!(text.contains("id:     key_new1"), "{text}");
    assert!(text.contains("shown only this once"), "{text}");
    assert_no_token(&out);
}

#[test]
fn create_json_prints_the_raw_answer() {
    let admin = FakeAdmin::start(|_| (201, json!({"id": "key_j", "key": "sk-agw-j"})));
    let out = agw(
        &[
            "keys",
            "--admin-url",
            &admin.url,
            "create",
            "--name",
            "j",
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed, json!({"id": "key_j", "key": "sk-agw-j"}));
    assert_eq!(
        admin.requests()[0].authorization,
        None,
        "no token, no header"
    );
}

#[test]
fn list_renders_a_table() {
    let admin = FakeAdmin::start(|_| {
        let mut revoked = key_object("key_b", "old-bot");
        revoked["revoked"] = json!(true);
        revoked["allowedModels"] = Value::Null;
        revoked["limits"] = json!({});
        revoked["budgets"] = json!([]);
        (
            200,
            json!({"data": [key_object("key_a", "ci-bot"), revoked]}),
        )
    });
    let out = agw(&["keys", "list"], &[("AGW_ADMIN_URL", &admin.url)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let request = &admin.requests()[0];
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("GET", "/v1/keys")
    );
    let words: Vec<Vec<String>> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect();
    assert_eq!(
        words,
        [
            vec!["ID", "NAME", "USER", "TEAM", "MODELS", "LIMITS", "BUDGETS", "EXPIRES", "STATUS"],
            vec![
                "key_a",
                "ci-bot",
                "alice",
                "search",
                "gpt-4o*",
                "60rpm",
                "100000tpm",
                "$10/1d",
                "never",
                "active"
            ],
            vec!["key_b", "old-bot", "alice", "search", "all", "-", "-", "never", "revoked"],
        ]
    );
    let text = stdout(&out);
    let column = |line: &str, word: &str| line.find(word).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(column(lines[0], "STATUS"), column(lines[1], "active"));
    assert_eq!(column(lines[0], "STATUS"), column(lines[2], "revoked"));
    assert_eq!(column(lines[0], "BUDGETS"), column(lines[1], "$10/1d"));
}

#[test]
fn get_shows_details_and_usage() {
    let admin = FakeAdmin::start(|_| {
        let mut key = key_object("key_a", "ci-bot");
        key["usage"] = json!({"requests": 42, "tokens": {"input": 1000, "output": 200}});
        (200, key)
    });
    let out = agw(&["keys", "get", "key_a", "--admin-url", &admin.url], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(admin.requests()[0].path, "/v1/keys/key_a");
    let text = stdout(&out);
    for line in [
        "name:     ci-bot",
        "limits:   60rpm 100000tpm",
        "budgets:  $10/1d",
        "usage:",
        "  requests: 42",
        "    output: 200",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
}

#[test]
fn update_merges_limits_then_patches_and_revoke_deletes() {
    let admin = FakeAdmin::start(|request| match request.method.as_str() {
        "DELETE" => {
            let mut key = key_object("key_a", "ci-bot");
            key["revoked"] = json!(true);
            (200, key)
        }
        _ => (200, key_object("key_a", "ci-bot")),
    });
    let url = admin.url.as_str();
    let out = agw(
        &[
            "keys",
            "update",
            "key_a",
            "--tpd",
            "500",
            "--clear",
            "rpm",
            "--admin-url",
            url,
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("Updated."), "{}", stdout(&out));
    let out = agw(&["keys", "revoke", "key_a", "--admin-url", url], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("status:   revoked"),
        "{}",
        stdout(&out)
    );
    let calls: Vec<(String, String, Value)> = admin
        .requests()
        .into_iter()
        .map(|r| (r.method, r.path, r.body))
        .collect();
    let limits = json!({"limits": {"rpm": null, "tpm": 100000, "tpd": 500, "maxParallel": null}});
    assert_eq!(
        calls,
        [
            ("GET".into(), "/v1/keys/key_a".into(), Value::Null),
            ("PATCH".into(), "/v1/keys/key_a".into(), limits),
            ("DELETE".into(), "/v1/keys/key_a".into(), Value::Null),
        ]
    );
}

#[test]
fn an_api_error_prints_its_message_and_exits_1() {
    let admin = FakeAdmin::start(|_| {
        (
            404,
            json!({"error": {"message": "no key with id key_zz", "type": "not_found"}}),
        )
    });
    let out = agw(
        &[
            "keys",
            "get",
            "key_zz",
            "--admin-url",
            &admin.url,
            "--admin-token",
            ADMIN_TOKEN,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "error: no key with id key_zz\n");
    assert!(stdout(&out).is_empty());
    assert_no_token(&out);
}

#[test]
fn unauthorized_without_a_token_hints_at_one() {
    let admin = FakeAdmin::start(|_| {
        (
            401,
            json!({"error": {"message": "missing admin token", "type": "unauthorized"}}),
        )
    });
    let out = agw(&["keys", "list", "--admin-url", &admin.url], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("error: missing admin token\nhint: "),
        "{err}"
    );
    assert!(err.contains("AGW_ADMIN_TOKEN"), "{err}");
}

#[test]
fn connection_refused_names_the_url_and_what_to_check() {
    // A port that was just free: nothing listens there now.
    let addr: SocketAddr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{addr}");
    let out = agw(
        &["keys", "list"],
        &[("AGW_ADMIN_URL", &url), ("AGW_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "error: cannot reach the admin API at {url}: connection refused\n"
        )),
        "{err}"
    );
    assert!(err.contains("is the gateway running"), "{err}");
    assert!(err.contains("--admin-url"), "{err}");
    assert_no_token(&out);
}

#[test]
fn serving_flags_and_keys_do_not_mix_and_file_is_still_required() {
    let out = agw(&[], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--file"), "{}", stderr(&out));
    let out = agw(&["-f", "x.yaml", "keys", "list"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = agw(&["keys", "--help"], &[]);
    assert!(out.status.success());
    for word in ["create", "list", "get", "revoke", "update", "--admin-url"] {
        assert!(stdout(&out).contains(word), "{word}: {}", stdout(&out));
    }
}

#[test]
fn budget_flags_are_sent_as_exact_amounts_and_none_clears_them() {
    let admin = FakeAdmin::start(|request| match request.method.as_str() {
        "POST" => {
            let mut key = key_object("key_new2", "capped");
            key["key"] = json!("sk-agw-capped");
            (201, key)
        }
        _ => (200, key_object("key_new2", "capped")),
    });
    let url = admin.url.as_str();
    let create = [
        "keys",
        "create",
        "--name",
        "capped",
        "--budget",
        "10/1d",
        "--budget",
        "2.50/month/soft",
        "--admin-url",
        url,
    ];
    let out = agw(&create, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    for clear in [&["--budget", "none"][..], &["--budget", "0.5/7d"]] {
        let update = [
            &["keys", "update", "key_new2", "--admin-url", url][..],
            clear,
        ]
        .concat();
        let out = agw(&update, &[]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(
            stdout(&out).lines().any(|l| l == "budgets:  $10/1d"),
            "{}",
            stdout(&out)
        );
    }
    let calls: Vec<(String, Value)> = admin
        .requests()
        .into_iter()
        .map(|r| (r.method, r.body))
        .collect();
    assert_eq!(
        calls,
        [
            (
                "POST".into(),
                json!({"name": "capped", "budgets": [
                    {"usd": "10", "window": "1d", "soft": false},
                    {"usd": "2.50", "window": "month", "soft": true},
                ]})
            ),
            ("PATCH".into(), json!({"budgets": []})),
            (
                "PATCH".into(),
                json!({"budgets": [{"usd": "0.5", "window": "7d", "soft": false}]})
            ),
        ],
        "update sends the list alone, without reading the key first"
    );

    let out = agw(
        &[
            "keys",
            "create",
            "--name",
            "x",
            "--budget",
            "5/fortnight",
            "--admin-url",
            url,
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "a usage error: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("1h, 1d, 7d, 30d, month"),
        "{}",
        stderr(&out)
    );
    assert_eq!(admin.requests().len(), 3, "nothing sent for a bad flag");
}
