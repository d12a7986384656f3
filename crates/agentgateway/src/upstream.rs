//! Calling the provider: one pooled, keep-alive HTTP client for all upstreams (rustls for HTTPS,
//! HTTP/2 when the provider offers it via ALPN), the outbound request built from the caller's, and
//! the mapping of transport failures to 502/504.
//!
//! Header policy: the caller's headers pass through except hop-by-hop headers, the caller's own
//! credentials (replaced by the provider's), `host` and `content-length` (recomputed), and
//! `accept-encoding` — a compressed response could not be metered, and the gateway is usually next
//! to the client, so compression upstream buys little.

use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::errors::GatewayError;
use crate::routing::Upstream;

pub type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;
pub type HttpClient = Client<HttpsConnector, Full<Bytes>>;

/// Builds the shared client. Connections are reused across requests and routes.
pub fn build_client(connect_timeout: Duration) -> Result<HttpClient, String> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(https))
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
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// How the caller's credential is treated upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerCredential {
    /// The gateway authenticated the caller with a gateway key: never forward it.
    Strip,
    /// No gateway auth and no provider key: the caller brings its own provider key.
    PassThrough,
}

/// Builds the upstream request: same method, the provider's URL, filtered headers, new body.
pub fn build_request(
    upstream: &Upstream,
    operation_path: &str,
    query: Option<&str>,
    mut headers: HeaderMap,
    body: Bytes,
    credential: CallerCredential,
) -> Result<Request<Full<Bytes>>, GatewayError> {
    strip_hop_by_hop(&mut headers);
    headers.remove(header::HOST);
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::ACCEPT_ENCODING);
    if upstream.authorization.is_some() || credential == CallerCredential::Strip {
        headers.remove(header::AUTHORIZATION);
        headers.remove("x-api-key");
        headers.remove("api-key");
    }
    if let Some(auth) = &upstream.authorization {
        headers.insert(header::AUTHORIZATION, auth.clone());
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let uri = upstream_uri(upstream, operation_path, query)?;
    let mut request = Request::post(uri)
        .body(Full::new(body))
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    *request.headers_mut() = headers;
    Ok(request)
}

fn upstream_uri(
    upstream: &Upstream,
    operation_path: &str,
    query: Option<&str>,
) -> Result<Uri, GatewayError> {
    let mut path_and_query =
        String::with_capacity(upstream.base_path.len() + operation_path.len() + 32);
    path_and_query.push_str(&upstream.base_path);
    path_and_query.push_str(operation_path);
    if let Some(q) = query {
        path_and_query.push('?');
        path_and_query.push_str(q);
    }
    Uri::builder()
        .scheme(upstream.scheme.clone())
        .authority(upstream.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .map_err(|e| GatewayError::Internal(format!("upstream URL: {e}")))
}

/// Sends the request; the first-byte timeout bounds the wait for response headers.
pub async fn send(
    client: &HttpClient,
    request: Request<Full<Bytes>>,
    first_byte_timeout: Duration,
) -> Result<http::Response<Incoming>, GatewayError> {
    match tokio::time::timeout(first_byte_timeout, client.request(request)).await {
        Err(_) => Err(GatewayError::UpstreamTimeout(format!(
            "no response within {} ms",
            first_byte_timeout.as_millis()
        ))),
        Ok(Err(e)) => Err(classify(&e)),
        Ok(Ok(response)) => Ok(response),
    }
}

/// Connect timeouts are 504; every other transport failure is 502.
fn classify(error: &hyper_util::client::legacy::Error) -> GatewayError {
    let detail = error_chain(error);
    let timed_out = detail.contains("timed out") || detail.contains("timeout");
    if timed_out {
        GatewayError::UpstreamTimeout(detail)
    } else {
        GatewayError::UpstreamUnavailable(detail)
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
    use super::*;

    fn upstream(auth: Option<&str>) -> Upstream {
        Upstream {
            scheme: http::uri::Scheme::HTTPS,
            authority: "api.openai.com".parse().unwrap(),
            base_path: "/v1".into(),
            authorization: auth.map(|a| HeaderValue::from_str(a).unwrap()),
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
            "/chat/completions",
            Some("a=1"),
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

    #[test]
    fn caller_key_passes_through_only_without_gateway_auth_and_provider_key() {
        let up = upstream(None);
        let build = |cred| {
            build_request(
                &up,
                "/embeddings",
                None,
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
}
