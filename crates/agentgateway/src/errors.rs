//! The gateway's own errors on the request path, and their single mapping to what the caller sees
//! (status + a body in the caller's API shape) and what the metrics see (a bounded label).
//!
//! Every refusal the gateway makes goes through [`GatewayError`], so a new case cannot forget its
//! status, its OpenAI/Anthropic body, or its `reason` label. Provider errors are not here: those
//! pass through to the caller unchanged (translated to the caller's shape when the call was).

use bytes::Bytes;
use http::StatusCode;

use crate::ratelimit::LimitKind;

/// The error body convention of the API the caller is speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiShape {
    OpenAi,
    Anthropic,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    MissingApiKey,
    InvalidApiKey,
    /// The key's `allowedModels` excludes the requested model.
    ModelNotAllowed(String),
    /// A rate limit refused the request; `headers` are its `retry-after` and `x-ratelimit-*`.
    RateLimited {
        limit: LimitKind,
        retry_after_secs: u64,
        headers: http::HeaderMap,
    },
    /// A hard USD budget of the caller (its key, user or team) is spent for the window.
    BudgetExceeded {
        budget: Box<crate::budget::BudgetStatus>,
        retry_after_secs: u64,
    },
    ModelNotFound(String),
    /// Malformed JSON, missing model and similar: the message says what is wrong.
    InvalidRequest(String),
    BodyTooLarge {
        limit: usize,
    },
    /// The client did not finish sending its body in time.
    RequestTimeout,
    PathNotFound(String),
    MethodNotAllowed(http::Method),
    UpstreamUnavailable(String),
    UpstreamTimeout(String),
    /// The provider answered something the gateway could not translate for the caller.
    BadUpstreamResponse(String),
    Internal(String),
}

impl GatewayError {
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::MissingApiKey | GatewayError::InvalidApiKey => StatusCode::UNAUTHORIZED,
            GatewayError::ModelNotAllowed(_) => StatusCode::FORBIDDEN,
            GatewayError::RateLimited { .. } | GatewayError::BudgetExceeded { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            GatewayError::ModelNotFound(_) | GatewayError::PathNotFound(_) => StatusCode::NOT_FOUND,
            GatewayError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            GatewayError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            GatewayError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            GatewayError::UpstreamUnavailable(_) | GatewayError::BadUpstreamResponse(_) => {
                StatusCode::BAD_GATEWAY
            }
            GatewayError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The bounded `reason` / `error_type` label.
    pub fn label(&self) -> &'static str {
        match self {
            GatewayError::MissingApiKey | GatewayError::InvalidApiKey => "unauthorized",
            GatewayError::ModelNotAllowed(_) => "model_not_allowed",
            GatewayError::RateLimited { .. } => "rate_limited",
            GatewayError::BudgetExceeded { .. } => "budget_exceeded",
            GatewayError::ModelNotFound(_) => "model_not_found",
            GatewayError::InvalidRequest(_) => "invalid_request",
            GatewayError::BodyTooLarge { .. } => "request_too_large",
            GatewayError::RequestTimeout => "request_timeout",
            GatewayError::PathNotFound(_) => "not_found",
            GatewayError::MethodNotAllowed(_) => "method_not_allowed",
            GatewayError::UpstreamUnavailable(_) => "upstream_unavailable",
            GatewayError::UpstreamTimeout(_) => "upstream_timeout",
            GatewayError::BadUpstreamResponse(_) => "bad_upstream_response",
            GatewayError::Internal(_) => "internal_error",
        }
    }

    /// OpenAI's `error.type` and `error.code` for this case (interface.md's table).
    fn openai_type_code(&self) -> (&'static str, Option<&'static str>) {
        match self {
            GatewayError::MissingApiKey | GatewayError::InvalidApiKey => {
                ("authentication_error", Some("invalid_api_key"))
            }
            GatewayError::ModelNotAllowed(_) => ("permission_error", Some("model_not_allowed")),
            // OpenAI's own 429s say which limit in `type` (`requests` or `tokens`); a cost
            // limit says `cost` the same way (a budget, not a rate, is `insufficient_quota`).
            GatewayError::RateLimited { limit, .. } => match limit {
                LimitKind::Tokens => ("tokens", Some("rate_limit_exceeded")),
                LimitKind::Cost => ("cost", Some("rate_limit_exceeded")),
                LimitKind::Requests | LimitKind::Parallel => {
                    ("requests", Some("rate_limit_exceeded"))
                }
            },
            GatewayError::BudgetExceeded { .. } => {
                ("insufficient_quota", Some("insufficient_quota"))
            }
            GatewayError::ModelNotFound(_) => ("invalid_request_error", Some("model_not_found")),
            GatewayError::InvalidRequest(_) => ("invalid_request_error", None),
            GatewayError::BodyTooLarge { .. } => {
                ("invalid_request_error", Some("request_too_large"))
            }
            GatewayError::RequestTimeout => ("invalid_request_error", Some("request_timeout")),
            GatewayError::PathNotFound(_) => ("invalid_request_error", Some("unknown_url")),
            GatewayError::MethodNotAllowed(_) => {
                ("invalid_request_error", Some("method_not_allowed"))
            }
            GatewayError::UpstreamUnavailable(_) => ("api_error", Some("upstream_unavailable")),
            GatewayError::UpstreamTimeout(_) => ("api_error", Some("upstream_timeout")),
            GatewayError::BadUpstreamResponse(_) => ("api_error", Some("bad_upstream_response")),
            GatewayError::Internal(_) => ("api_error", Some("internal_error")),
        }
    }

    /// Anthropic's `error.type` for the same case.
    fn anthropic_type(&self) -> &'static str {
        match self.status().as_u16() {
            400 | 405 | 408 => "invalid_request_error",
            401 => "authentication_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            _ => "api_error",
        }
    }

    /// The human-readable message. Never includes a key or other secret.
    pub fn message(&self) -> String {
        match self {
            GatewayError::MissingApiKey => {
                "Missing API key. Pass it as 'Authorization: Bearer <key>' or 'x-api-key: <key>'."
                    .into()
            }
            GatewayError::InvalidApiKey => "Incorrect API key provided.".into(),
            GatewayError::ModelNotAllowed(model) => {
                format!("This API key is not allowed to use the model '{model}'.")
            }
            GatewayError::RateLimited {
                limit,
                retry_after_secs,
                ..
            } => {
                let what = match limit {
                    LimitKind::Requests => "requests per time window",
                    LimitKind::Tokens => "tokens per time window",
                    LimitKind::Parallel => "requests in flight at once",
                    LimitKind::Cost => "US dollars per time window",
                };
                format!("Rate limit reached on {what}. Please try again in {retry_after_secs}s.")
            }
            GatewayError::BudgetExceeded { budget, .. } => format!(
                "The budget of {} '{}' (${} per {}) is spent; it resets at {}.",
                budget.scope,
                budget.name,
                budget.limit_usd.normalize(),
                budget.window,
                crate::budget::rfc3339(budget.resets_at)
            ),
            GatewayError::ModelNotFound(model) => {
                format!("The model '{model}' does not exist or is not served by this gateway.")
            }
            GatewayError::InvalidRequest(message) => message.clone(),
            GatewayError::BodyTooLarge { limit } => {
                format!("Request body is larger than the limit of {limit} bytes.")
            }
            GatewayError::RequestTimeout => "The request body was not received in time.".into(),
            GatewayError::PathNotFound(path) => format!("Unknown request URL: {path}."),
            GatewayError::MethodNotAllowed(method) => {
                format!("Method {method} is not allowed on this path.")
            }
            GatewayError::UpstreamUnavailable(detail) => {
                format!("The upstream provider could not be reached: {detail}")
            }
            GatewayError::UpstreamTimeout(detail) => {
                format!("The upstream provider timed out: {detail}")
            }
            GatewayError::BadUpstreamResponse(detail) => {
                format!("The upstream provider's response could not be translated: {detail}")
            }
            GatewayError::Internal(detail) => format!("Internal gateway error: {detail}"),
        }
    }

    /// What the caller is told. Transport and internal details (resolver output, certificate
    /// names, internal hosts) stay in the access log's `error` field, never in the response.
    pub fn public_message(&self) -> String {
        match self {
            GatewayError::UpstreamUnavailable(_) => {
                "The upstream provider could not be reached.".into()
            }
            GatewayError::UpstreamTimeout(_) => "The upstream provider timed out.".into(),
            GatewayError::BadUpstreamResponse(_) => {
                "The upstream provider's response could not be translated.".into()
            }
            GatewayError::Internal(_) => "Internal gateway error.".into(),
            other => other.message(),
        }
    }

    /// The error body in the caller's API shape.
    pub fn body(&self, shape: ApiShape) -> Bytes {
        let message = self.public_message();
        let value = match shape {
            ApiShape::OpenAi => {
                let (kind, code) = self.openai_type_code();
                serde_json::json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
            }
            ApiShape::Anthropic => serde_json::json!({
                "type": "error",
                "error": {"type": self.anthropic_type(), "message": message}
            }),
        };
        Bytes::from(value.to_string())
    }
}

impl std::fmt::Display for GatewayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for GatewayError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(bytes: Bytes) -> serde_json::Value {
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn openai_shape_follows_the_contract_table() {
        let cases = [
            (
                GatewayError::MissingApiKey,
                401,
                "authentication_error",
                Some("invalid_api_key"),
            ),
            (
                GatewayError::ModelNotAllowed("x".into()),
                403,
                "permission_error",
                Some("model_not_allowed"),
            ),
            (
                GatewayError::RateLimited {
                    limit: LimitKind::Requests,
                    retry_after_secs: 2,
                    headers: http::HeaderMap::new(),
                },
                429,
                "requests",
                Some("rate_limit_exceeded"),
            ),
            (
                GatewayError::ModelNotFound("x".into()),
                404,
                "invalid_request_error",
                Some("model_not_found"),
            ),
            (
                GatewayError::InvalidRequest("missing model".into()),
                400,
                "invalid_request_error",
                None,
            ),
            (
                GatewayError::BodyTooLarge { limit: 1 },
                413,
                "invalid_request_error",
                Some("request_too_large"),
            ),
            (
                GatewayError::UpstreamUnavailable("x".into()),
                502,
                "api_error",
                Some("upstream_unavailable"),
            ),
            (
                GatewayError::UpstreamTimeout("x".into()),
                504,
                "api_error",
                Some("upstream_timeout"),
            ),
        ];
        for (err, status, kind, code) in cases {
            assert_eq!(err.status().as_u16(), status);
            let body = json(err.body(ApiShape::OpenAi));
            assert_eq!(body["error"]["type"], kind);
            assert_eq!(body["error"]["code"], serde_json::json!(code));
            assert!(body["error"]["param"].is_null());
            assert!(body["error"]["message"].as_str().unwrap().len() > 5);
        }
    }

    #[test]
    fn a_cost_limit_says_cost_and_dollars() {
        let err = GatewayError::RateLimited {
            limit: LimitKind::Cost,
            retry_after_secs: 7,
            headers: http::HeaderMap::new(),
        };
        assert_eq!(err.status().as_u16(), 429);
        let body = json(err.body(ApiShape::OpenAi));
        assert_eq!(body["error"]["type"], "cost");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        assert_eq!(
            body["error"]["message"],
            "Rate limit reached on US dollars per time window. Please try again in 7s."
        );
        let anthropic = json(err.body(ApiShape::Anthropic));
        assert_eq!(anthropic["error"]["type"], "rate_limit_error");
    }

    #[test]
    fn transport_details_stay_out_of_the_body() {
        let err = GatewayError::UpstreamUnavailable("dns error: internal-host.corp".into());
        let body = String::from_utf8(err.body(ApiShape::OpenAi).to_vec()).unwrap();
        assert!(!body.contains("internal-host"), "{body}");
        assert!(
            err.message().contains("internal-host"),
            "the log keeps the detail"
        );
    }

    #[test]
    fn anthropic_shape() {
        let body = json(GatewayError::InvalidApiKey.body(ApiShape::Anthropic));
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "authentication_error");
    }
}
