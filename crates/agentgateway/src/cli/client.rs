//! The admin API as the CLI sees it: one JSON request, one JSON answer, and every way that can go
//! wrong turned into a [`CliError`] a person can act on (the API's own message, or "is the gateway
//! running?" when nothing listens).
//!
//! It reuses the gateway's pooled client ([`crate::upstream::build_client`]), which speaks plain
//! HTTP (the admin port's default) and HTTPS (an admin API behind a TLS proxy) alike.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

use super::CliError;
use crate::config::Secret;
use crate::upstream::{build_client, HttpClient, RequestBody};

/// Where the admin API listens unless `--admin-url` / `$AGW_ADMIN_URL` say otherwise.
pub const DEFAULT_ADMIN_URL: &str = "http://127.0.0.1:15000";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole call, so a wedged server cannot hang a script.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Key lists are small; anything far larger is not the admin API.
const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

pub struct AdminClient {
    /// Without a trailing `/`, so paths join cleanly.
    base: String,
    authorization: Option<HeaderValue>,
    has_token: bool,
    http: HttpClient,
}

impl AdminClient {
    pub fn new(base_url: &str, token: Option<&Secret>) -> Result<AdminClient, CliError> {
        crate::config::check_base_url(base_url)
            .map_err(|e| CliError::Usage(format!("--admin-url: {e}")))?;
        let authorization = token
            .map(|token| {
                // The error must not echo the token, so it says only what is wrong with it.
                let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    .map_err(|_| {
                        CliError::Usage(
                            "the admin token holds characters not allowed in an HTTP header".into(),
                        )
                    })?;
                value.set_sensitive(true);
                Ok::<_, CliError>(value)
            })
            .transpose()?;
        let http = build_client(CONNECT_TIMEOUT);
        Ok(AdminClient {
            base: base_url.trim_end_matches('/').to_owned(),
            has_token: authorization.is_some(),
            authorization,
            http,
        })
    }

    /// Sends one request and returns the JSON answer of a 2xx response.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let request = self.request(method, path, body)?;
        let sent = tokio::time::timeout(REQUEST_TIMEOUT, async {
            let response = self.http.request(request).await?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((status, body.to_bytes()))
        })
        .await;
        match sent {
            Err(_) => Err(CliError::Unreachable {
                url: self.base.clone(),
                reason: format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()),
            }),
            Ok(Err(e)) => Err(self.transport_error(e.as_ref())),
            Ok(Ok((status, bytes))) => self.answer(status, &bytes),
        }
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Request<RequestBody>, CliError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(ACCEPT, "application/json")
            .header(
                USER_AGENT,
                concat!("agentgateway-cli/", env!("CARGO_PKG_VERSION")),
            );
        if let Some(value) = &self.authorization {
            builder = builder.header(AUTHORIZATION, value.clone());
        }
        let bytes = match body {
            Some(body) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                Bytes::from(body.to_string())
            }
            None => Bytes::new(),
        };
        builder
            .body(RequestBody::from(bytes))
            .map_err(|e| CliError::Usage(format!("cannot build the request: {e}")))
    }

    fn answer(&self, status: StatusCode, bytes: &[u8]) -> Result<Value, CliError> {
        let json: Option<Value> = serde_json::from_slice(bytes).ok();
        if status.is_success() {
            return match json {
                Some(value) => Ok(value),
                None if bytes.is_empty() => Ok(Value::Null),
                None => Err(CliError::Protocol(format!(
                    "the admin API at {} answered {status} with a body that is not JSON",
                    self.base
                ))),
            };
        }
        let message = json
            .as_ref()
            .and_then(|v| v["error"]["message"].as_str())
            .map(str::to_owned);
        match message {
            Some(message) => Err(CliError::Api {
                status: status.as_u16(),
                message,
                had_token: self.has_token,
            }),
            None => Err(CliError::Protocol(format!(
                "the admin API at {} answered {status}: {}",
                self.base,
                snippet(bytes)
            ))),
        }
    }

    fn transport_error(&self, error: &(dyn std::error::Error + 'static)) -> CliError {
        let io = source_chain(error).find_map(|e| e.downcast_ref::<std::io::Error>());
        let reason = match io.map(std::io::Error::kind) {
            Some(std::io::ErrorKind::ConnectionRefused) => "connection refused".to_owned(),
            Some(std::io::ErrorKind::TimedOut) => "timed out connecting".to_owned(),
            _ => source_chain(error)
                .last()
                .map_or_else(|| error.to_string(), ToString::to_string),
        };
        CliError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }
}

fn source_chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| e.source())
}

/// The start of a non-JSON error body (a proxy's HTML page, say), on one line.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None if line.is_empty() => "(empty body)".to_owned(),
        None => line,
    }
}

/// A key id as one path segment: anything but unreserved characters is percent-encoded, so an
/// id can never reach another path.
pub fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_stay_one_path_segment() {
        assert_eq!(path_segment("key_3f9a-b.c~"), "key_3f9a-b.c~");
        assert_eq!(path_segment("../admin"), "..%2Fadmin");
        assert_eq!(path_segment("a b?c"), "a%20b%3Fc");
    }

    #[test]
    fn bad_urls_and_tokens_are_refused_without_echoing_the_token() {
        let err = AdminClient::new("ftp://x", None).err().unwrap().to_string();
        assert!(err.starts_with("--admin-url:"), "{err}");
        let token = Secret("line\nbreak-secret".into());
        let err = AdminClient::new(DEFAULT_ADMIN_URL, Some(&token))
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains("break-secret"), "{err}");
    }

    #[test]
    fn error_bodies_become_messages() {
        let client = AdminClient::new("http://127.0.0.1:9/", None).unwrap();
        let body = br#"{"error":{"message":"key not found","type":"not_found"}}"#;
        match client.answer(StatusCode::NOT_FOUND, body) {
            Err(CliError::Api {
                status, message, ..
            }) => assert_eq!((status, message.as_str()), (404, "key not found")),
            other => panic!("{:?}", other.map_err(|e| e.to_string())),
        }
        let err = client
            .answer(StatusCode::BAD_GATEWAY, b"<html>\n  bad   gateway</html>")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "the admin API at http://127.0.0.1:9 answered 502 Bad Gateway: <html> bad gateway</html>"
        );
        assert_eq!(client.answer(StatusCode::OK, b"").unwrap(), Value::Null);
    }
}
