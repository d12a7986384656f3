//! Calling the provider: one pooled, keep-alive HTTP client for all upstreams ([`client`]: rustls
//! for HTTPS, HTTP/2 when the provider offers it via ALPN), the outbound request built from the
//! caller's, and the mapping of transport failures to 502/504.
//!
//! Header policy: the caller's headers pass through except hop-by-hop headers, the caller's own
//! credentials (replaced by the provider's), `host` and `content-length` (recomputed), and
//! `accept-encoding` — a compressed response could not be metered, and the gateway is usually next
//! to the client, so compression upstream buys little. On the way back, headers that describe the
//! operator's provider account are dropped when the gateway supplied the provider key.
//!
//! The connect timeout covers the whole connection setup (DNS, TCP and the TLS handshake), so a
//! stalled peer answers 504 in seconds rather than after the first-byte timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::auth::presented_key;
use crate::config::ProviderApi;
use crate::errors::GatewayError;
use crate::routing::{self, Upstream};

mod body;
mod client;
mod h1;
pub use body::RequestBody;
pub use client::{ClientError, HttpClient, UpstreamBody};

pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Builds the shared client. Connections are reused across requests and routes.
pub fn build_client(connect_timeout: Duration) -> HttpClient {
    HttpClient::new(connector(connect_timeout), Duration::from_secs(90))
}

/// HTTP or HTTPS (rustls, webpki roots, ALPN `h2` and `http/1.1`), bounded by `connect_timeout`.
fn connector(connect_timeout: Duration) -> TimeoutConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    TimeoutConnector {
        inner: https,
        timeout: connect_timeout,
    }
}

/// Bounds the whole connection setup (DNS + TCP + TLS) of the HTTPS connector.
#[derive(Clone)]
pub struct TimeoutConnector {
    inner: HttpsConnector,
    timeout: Duration,
}

impl tower_service::Service<Uri> for TimeoutConnector {
    type Response = <HttpsConnector as tower_service::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let limit = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(limit, connecting).await {
                Ok(result) => result,
                Err(_) => Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connecting took longer than {} ms", limit.as_millis()),
                )) as BoxError),
            }
        })
    }
}

/// Headers never forwarded in either direction (RFC 9110 §7.6.1), plus proxy-only ones.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

/// Removes hop-by-hop headers, including any the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    strip(headers, |_| false);
}

/// Removes hop-by-hop headers and those `also` picks, in one pass over the map. Most messages
/// carry none of them, and a pass over their few headers costs far less than one hashed lookup
/// per name (callgrind: ~3k instructions per request went to those lookups).
fn strip(headers: &mut HeaderMap, also: impl Fn(&HeaderName) -> bool) {
    let mut doomed: Vec<HeaderName> = Vec::new();
    for (name, value) in headers.iter() {
        if name == header::CONNECTION {
            let listed = value.to_str().ok().into_iter().flat_map(|v| v.split(','));
            doomed.extend(listed.filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok()));
        }
        if HOP_BY_HOP.contains(name) || name == header::UPGRADE || also(name) {
            doomed.push(name.clone());
        }
    }
    for name in &doomed {
        headers.remove(name);
    }
}

/// How the caller's credential is treated upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerCredential {
    /// The gateway authenticated the caller with a gateway key: never forward it.
    Strip,
    /// No gateway auth and no provider key: the caller brings its own provider key.
    PassThrough,
}

/// The Anthropic API version sent when the caller names none.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";
const ANTHROPIC_VERSION: HeaderName = HeaderName::from_static("anthropic-version");
const ANTHROPIC_BETA: HeaderName = HeaderName::from_static("anthropic-beta");
const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");
const API_KEY: HeaderName = HeaderName::from_static("api-key");

/// Builds the upstream request: same method, the provider's URL, filtered headers, new body.
/// `path_and_query` comes from [`Upstream::path_and_query`].
pub fn build_request(
    upstream: &Upstream,
    path_and_query: String,
    mut headers: HeaderMap,
    body: impl Into<RequestBody>,
    credential: CallerCredential,
) -> Result<Request<RequestBody>, GatewayError> {
    let body = body.into();
    // The caller's own provider key (bring-your-own-key) goes in the header the provider
    // reads, which differs from the caller's when the call is translated (x-api-key <-> Bearer).
    let callers_key = match (&upstream.credential, credential) {
        (None, CallerCredential::PassThrough) => presented_key(&headers)
            .and_then(|key| routing::credential_header(upstream.credential_header, key)),
        _ => None,
    };
    let strip_credentials = upstream.credential.is_some()
        || credential == CallerCredential::Strip
        || callers_key.is_some();
    // An Anthropic client translated to an OpenAI-style provider: its version headers mean
    // nothing there. Anthropic itself gets the caller's version and betas.
    let openai = upstream.api == ProviderApi::OpenAi;
    strip(&mut headers, |name| {
        name == header::HOST
            || name == header::CONTENT_LENGTH
            || name == header::ACCEPT_ENCODING
            || (strip_credentials
                && (name == header::AUTHORIZATION || name == X_API_KEY || name == API_KEY))
            || (openai && (name == ANTHROPIC_VERSION || name == ANTHROPIC_BETA))
    });
    if let Some((name, value)) = upstream.credential.as_ref().or(callers_key.as_ref()) {
        headers.insert(name.clone(), value.clone());
    }
    // Anthropic refuses a request without a version.
    if upstream.api == ProviderApi::Anthropic && !headers.contains_key(ANTHROPIC_VERSION) {
        headers.insert(
            ANTHROPIC_VERSION,
            HeaderValue::from_static(DEFAULT_ANTHROPIC_VERSION),
        );
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let uri = Uri::builder()
        .scheme(upstream.scheme.clone())
        .authority(upstream.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| GatewayError::Internal(format!("upstream URL: {e}")))?;
    let mut request = Request::post(uri)
        .body(body)
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    *request.headers_mut() = headers;
    Ok(request)
}

/// Sends the request; the first-byte timeout bounds the wait for response headers.
pub async fn send(
    client: &HttpClient,
    request: Request<RequestBody>,
    first_byte_timeout: Duration,
) -> Result<http::Response<UpstreamBody>, GatewayError> {
    match tokio::time::timeout(first_byte_timeout, client.request(request)).await {
        Err(_) => Err(GatewayError::UpstreamTimeout(format!(
            "no response within {} ms",
            first_byte_timeout.as_millis()
        ))),
        Ok(Err(e)) => Err(classify(&e)),
        Ok(Ok(response)) => Ok(response),
    }
}

/// Timeouts (connect included) are 504; every other transport failure is 502.
fn classify(error: &ClientError) -> GatewayError {
    let detail = error_chain(error);
    if is_timeout(error) {
        GatewayError::UpstreamTimeout(detail)
    } else {
        GatewayError::UpstreamUnavailable(detail)
    }
}

/// True when any error in the chain is a timeout (decided by type, not by message text).
fn is_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        let io_timeout = e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        if io_timeout || e.is::<tokio::time::error::Elapsed>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Response headers that describe the operator's provider account rather than the caller's
/// request: not shown to callers when the gateway supplied the provider key.
const ACCOUNT_HEADERS: [HeaderName; 4] = [
    HeaderName::from_static("openai-organization"),
    HeaderName::from_static("openai-project"),
    HeaderName::from_static("anthropic-organization-id"),
    header::SET_COOKIE,
];

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

/// The provider's own request id, kept for the caller under this name: `x-request-id` carries
/// the gateway's id (the one in the access log).
pub const UPSTREAM_REQUEST_ID: HeaderName = HeaderName::from_static("x-upstream-request-id");

/// Prepares the provider's response headers for the caller.
pub fn response_headers(headers: &mut HeaderMap, gateway_key: bool) {
    strip(headers, |name| {
        gateway_key && ACCOUNT_HEADERS.contains(name)
    });
    if let Some(id) = headers.remove(X_REQUEST_ID) {
        headers.insert(UPSTREAM_REQUEST_ID, id);
    } else if let Some(id) = headers.get(REQUEST_ID) {
        // Anthropic's name for it; the SDKs read `request-id`, so it stays too.
        let id = id.clone();
        headers.insert(UPSTREAM_REQUEST_ID, id);
    }
}

/// `outer: inner: root` — hyper's top-level messages alone ("client error (Connect)") say little.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn upstream(auth: Option<&str>) -> Upstream {
        Upstream {
            scheme: http::uri::Scheme::HTTPS,
            authority: "api.openai.com".parse().unwrap(),
            base_path: "/v1".into(),
            credential: auth.map(|a| (header::AUTHORIZATION, HeaderValue::from_str(a).unwrap())),
            credential_header: crate::config::CredentialHeader::Bearer,
            api: ProviderApi::OpenAi,
            azure_api_version: None,
            azure_v1: false,
            stream_options: true,
            max_completion_tokens: true,
        }
    }

    fn caller_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer sk-gateway-key".parse().unwrap());
        h.insert("x-api-key", "sk-gateway-key".parse().unwrap());
        h.insert("connection", "keep-alive, x-drop-me".parse().unwrap());
        h.insert("x-drop-me", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("host", "localhost:4000".parse().unwrap());
        h.insert("accept-encoding", "gzip".parse().unwrap());
        h.insert("openai-organization", "org-1".parse().unwrap());
        h.insert("x-request-id", "abc".parse().unwrap());
        h
    }

    #[test]
    fn provider_key_replaces_the_callers_and_hop_by_hop_is_stripped() {
        let up = upstream(Some("Bearer sk-provider"));
        let req = build_request(
            &up,
            "/v1/chat/completions?a=1".into(),
            caller_headers(),
            Bytes::from_static(b"{}"),
            CallerCredential::Strip,
        )
        .unwrap();
        assert_eq!(req.uri(), "https://api.openai.com/v1/chat/completions?a=1");
        let h = req.headers();
        assert_eq!(h["authorization"], "Bearer sk-provider");
        for gone in [
            "x-api-key",
            "connection",
            "x-drop-me",
            "keep-alive",
            "host",
            "accept-encoding",
        ] {
            assert!(h.get(gone).is_none(), "{gone} must not be forwarded");
        }
        assert_eq!(h["openai-organization"], "org-1");
        assert_eq!(h["x-request-id"], "abc");
        assert_eq!(h["content-length"], "2");
    }

    #[derive(Debug)]
    struct Wrapper(std::io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }
    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn timeouts_are_recognised_by_kind_anywhere_in_the_chain() {
        let timed_out = Wrapper(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "deadline has elapsed",
        ));
        assert!(is_timeout(&timed_out));
        let refused = Wrapper(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "timeout-ish text",
        ));
        assert!(!is_timeout(&refused), "the message text must not decide");
    }

    #[test]
    fn account_headers_hidden_only_when_the_gateway_key_was_used() {
        let upstream = || {
            let mut h = HeaderMap::new();
            h.insert("openai-organization", "org-operator".parse().unwrap());
            h.insert("set-cookie", "__cf_bm=x".parse().unwrap());
            h.insert("x-request-id", "req_upstream".parse().unwrap());
            h.insert("x-ratelimit-remaining-tokens", "100".parse().unwrap());
            h.insert("transfer-encoding", "chunked".parse().unwrap());
            h
        };
        let mut ours = upstream();
        response_headers(&mut ours, true);
        assert!(ours.get("openai-organization").is_none() && ours.get("set-cookie").is_none());
        assert!(ours.get("transfer-encoding").is_none());
        assert_eq!(ours["x-ratelimit-remaining-tokens"], "100");
        assert_eq!(ours[UPSTREAM_REQUEST_ID], "req_upstream");
        assert!(ours.get("x-request-id").is_none());
        let mut theirs = upstream();
        response_headers(&mut theirs, false);
        assert_eq!(theirs["openai-organization"], "org-operator");
    }

    #[test]
    fn caller_key_passes_through_only_without_gateway_auth_and_provider_key() {
        let up = upstream(None);
        let build = |cred| {
            build_request(
                &up,
                "/v1/embeddings".into(),
                caller_headers(),
                Bytes::new(),
                cred,
            )
            .unwrap()
        };
        assert_eq!(
            build(CallerCredential::PassThrough).headers()["authorization"],
            "Bearer sk-gateway-key"
        );
        assert!(build(CallerCredential::Strip)
            .headers()
            .get("authorization")
            .is_none());
    }

    #[test]
    fn anthropic_gets_its_key_header_and_a_default_version() {
        let mut up = upstream(None);
        up.api = ProviderApi::Anthropic;
        up.credential = Some((
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static("sk-ant-provider"),
        ));
        let path = || "/v1/messages".to_string();
        let req = build_request(
            &up,
            path(),
            caller_headers(),
            Bytes::new(),
            CallerCredential::Strip,
        )
        .unwrap();
        assert_eq!(req.headers()["x-api-key"], "sk-ant-provider");
        assert!(req.headers().get("authorization").is_none());
        assert_eq!(
            req.headers()["anthropic-version"],
            DEFAULT_ANTHROPIC_VERSION
        );
        let mut theirs = caller_headers();
        theirs.insert("anthropic-version", "2024-01-01".parse().unwrap());
        theirs.insert(
            "anthropic-beta",
            "prompt-caching-2024-07-31".parse().unwrap(),
        );
        let req = build_request(
            &up,
            path(),
            theirs.clone(),
            Bytes::new(),
            CallerCredential::Strip,
        )
        .unwrap();
        assert_eq!(req.headers()["anthropic-version"], "2024-01-01");
        assert_eq!(req.headers()["anthropic-beta"], "prompt-caching-2024-07-31");
        // Towards an OpenAI-style provider the Anthropic headers are dropped.
        let req = build_request(
            &upstream(None),
            path(),
            theirs,
            Bytes::new(),
            CallerCredential::Strip,
        )
        .unwrap();
        assert!(req.headers().get("anthropic-version").is_none());
        assert!(req.headers().get("anthropic-beta").is_none());
    }

    #[test]
    fn azure_paths_dated_and_v1() {
        let mut up = upstream(None);
        up.base_path = "/openai".into();
        up.azure_api_version = Some("2024-10-21".into());
        let op = agentgateway_wire::Operation::ChatCompletions;
        assert_eq!(
            up.path_and_query(op, "gpt-4o-prod", Some("x=1")).as_deref(),
            Some("/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21")
        );
        assert_eq!(up.path_and_query(op, "../admin", None), None);
        up.azure_api_version = None;
        up.azure_v1 = true;
        assert_eq!(
            up.path_and_query(op, "gpt-4o-prod", None).as_deref(),
            Some("/openai/v1/chat/completions")
        );
    }

    #[test]
    fn a_callers_own_key_goes_in_the_providers_header() {
        let mut up = upstream(None);
        up.api = ProviderApi::Anthropic;
        up.credential_header = crate::config::CredentialHeader::XApiKey;
        let mut openai_sdk = HeaderMap::new();
        openai_sdk.insert("authorization", "Bearer sk-ant-own".parse().unwrap());
        let req = build_request(
            &up,
            "/v1/messages".into(),
            openai_sdk,
            Bytes::new(),
            CallerCredential::PassThrough,
        )
        .unwrap();
        assert_eq!(req.headers()["x-api-key"], "sk-ant-own");
        assert!(req.headers().get("authorization").is_none());
        let mut claude_code = HeaderMap::new();
        claude_code.insert("x-api-key", "sk-openai-own".parse().unwrap());
        let req = build_request(
            &upstream(None),
            "/v1/chat/completions".into(),
            claude_code,
            Bytes::new(),
            CallerCredential::PassThrough,
        )
        .unwrap();
        assert_eq!(req.headers()["authorization"], "Bearer sk-openai-own");
        assert!(req.headers().get("x-api-key").is_none());
    }
}
