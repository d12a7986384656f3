//! The admin API's errors and their one rendering: `{"error": {"message", "type"}}` with the
//! status that goes with it. Messages are written for the operator and never carry a secret.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use crate::keys::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// The methods a path supports, for a 405's `Allow` header.
    pub allow: Option<&'static str>,
}

// === impl ApiError ===

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            allow: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    pub fn unauthorized() -> ApiError {
        let message = "missing or invalid admin token (send Authorization: Bearer <token>)";
        ApiError::new(StatusCode::UNAUTHORIZED, "authentication_error", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found_error", message)
    }

    pub fn method_not_allowed(allow: &'static str) -> ApiError {
        let message = format!("method not allowed here; use {allow}");
        ApiError {
            allow: Some(allow),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                message,
            )
        }
    }

    pub fn too_large(limit: usize) -> ApiError {
        let message = format!("request body over {limit} bytes");
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            message,
        )
    }

    pub fn timeout() -> ApiError {
        let message = "the request body did not arrive in time";
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            message,
        )
    }

    pub fn keys_disabled() -> ApiError {
        let message = "dynamic keys are disabled: set config.database";
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented_error",
            message,
        )
    }

    pub fn response(&self) -> Response<Full<Bytes>> {
        let body = json!({"error": {"message": self.message, "type": self.kind}});
        let mut response = json_response(self.status, body.to_string().into());
        let headers = response.headers_mut();
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        match error {
            StoreError::NotFound => ApiError::not_found("no key with this id"),
            StoreError::Revoked => ApiError::new(
                StatusCode::CONFLICT,
                "conflict_error",
                "the key is revoked; a revoked key cannot be changed",
            ),
            error => {
                // The detail goes to the operator's log; the caller gets the short reason.
                tracing::error!(%error, "admin API: key store failure");
                let reason = match error {
                    StoreError::Corrupt { .. } => "a stored key is unreadable",
                    _ => "the key database is unavailable",
                };
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "api_error", reason)
            }
        }
    }
}

/// A JSON response; nothing the admin API returns may be cached (it may hold a fresh secret).
pub(crate) fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
