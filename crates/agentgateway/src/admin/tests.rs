//! Admin API unit tests through [`Admin::handle`] (no socket): exposure check, token check,
//! routing errors and body limits. The end-to-end tests over a real socket are in
//! `tests/admin_api.rs`.

use super::*;
use serde_json::{json, Value};

struct NoUsage;

impl KeyUsage for NoUsage {
    fn usage<'a>(&'a self, _: &'a Identity) -> BoxFuture<'a, serde_json::Value> {
        Box::pin(async { Value::Null })
    }
}

fn admin(token: Option<&str>) -> Admin {
    Admin {
        token: token.map(str::to_owned),
        keys: None,
        usage: Arc::new(NoUsage),
        config_dump: Bytes::from_static(b"{\"config\":{}}"),
        ledger: None,
    }
}

fn request(method: Method, path: &str, auth: Option<&str>, body: Bytes) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(auth) = auth {
        builder = builder.header(header::AUTHORIZATION, auth);
    }
    builder.body(Full::new(body)).unwrap()
}

async fn call(admin: &Admin, request: Request<Full<Bytes>>) -> (StatusCode, HeaderMap, Value) {
    let response = admin.handle(request).await;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap(),
    )
}

#[test]
fn exposure_needs_loopback_or_a_token() {
    let public: SocketAddr = "0.0.0.0:15000".parse().unwrap();
    let err = check_exposure(public, None).unwrap_err();
    assert!(err.contains("config.adminAddr"), "{err}");
    assert!(
        err.contains("config.adminToken") && err.contains("AGW_ADMIN_TOKEN"),
        "{err}"
    );
    assert!(
        check_exposure(public, Some("  ")).is_err(),
        "a blank token is no token"
    );
    assert!(check_exposure(public, Some("s3cret")).is_ok());
    assert!(check_exposure("127.0.0.1:15000".parse().unwrap(), None).is_ok());
    assert!(check_exposure("[::1]:15000".parse().unwrap(), None).is_ok());
    assert!(check_exposure("[::ffff:127.0.0.1]:1".parse().unwrap(), None).is_ok());
    assert!(check_exposure("[::]:15000".parse().unwrap(), None).is_err());
    assert!(check_exposure("10.1.2.3:15000".parse().unwrap(), None).is_err());
}

#[tokio::test]
async fn a_token_is_required_when_set() {
    let admin = admin(Some("s3cret"));
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Basic s3cret"),
        Some("Bearer "),
    ] {
        let (status, headers, body) = call(
            &admin,
            request(Method::GET, "/config_dump", auth, Bytes::new()),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert_eq!(body["error"]["type"], "authentication_error");
        assert!(!body.to_string().contains("s3cret"));
    }
    let (status, _, body) = call(
        &admin,
        request(
            Method::GET,
            "/config_dump",
            Some("bearer s3cret"),
            Bytes::new(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"config": {}}));
}

#[tokio::test]
async fn unknown_paths_methods_and_disabled_keys() {
    let admin = admin(None);
    let get = |path: &str| request(Method::GET, path, None, Bytes::new());
    let (status, _, body) = call(&admin, get("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["type"], "not_found_error");
    assert_eq!(
        call(&admin, get("/v1/keys/a/b")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&admin, get("/v1/keys/")).await.0,
        StatusCode::NOT_FOUND
    );

    let put = request(Method::PUT, "/v1/keys", None, Bytes::new());
    let (status, headers, _) = call(&admin, put).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::ALLOW], "GET, POST");
    let post = request(Method::POST, "/config_dump", None, Bytes::new());
    assert_eq!(call(&admin, post).await.0, StatusCode::METHOD_NOT_ALLOWED);

    for request in [get("/v1/keys"), get("/v1/keys/key_0123456789abcdef")] {
        let (status, _, body) = call(&admin, request).await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(
            body["error"]["message"],
            "dynamic keys are disabled: set config.database"
        );
    }
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused() {
    let dir = std::env::temp_dir().join(format!("agw-admin-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut admin = admin(None);
    admin.keys = Some(
        KeyService::open(dir.join("keys.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let big = json!({"name": "big", "metadata": {"pad": "x".repeat(MAX_BODY_BYTES)}});
    let post = request(Method::POST, "/v1/keys", None, big.to_string().into());
    let (status, _, body) = call(&admin, post).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let small = json!({"name": "small", "metadata": {"pad": "x".repeat(60 * 1024)}});
    let post = request(Method::POST, "/v1/keys", None, small.to_string().into());
    assert_eq!(call(&admin, post).await.0, StatusCode::CREATED);
    let _ = std::fs::remove_dir_all(&dir);
}
