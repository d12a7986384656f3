//! The request's own side of the proxy: which API a path asks for, reading the body under the
//! size limit, and the request id. Plain functions of the incoming request, kept apart from the
//! stages that decide and forward.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::Method;
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use super::{Endpoint, REQUEST_ID};
use crate::errors::GatewayError;
use crate::metered_body::BoxError;
use agentgateway_wire::Operation;

/// Maps a path (with or without `/v1`) and method to what it asks for.
pub(super) fn classify(method: &Method, path: &str) -> Result<Endpoint, GatewayError> {
    let trimmed = path
        .strip_prefix("/v1")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(path);
    let (endpoint, allowed) = match trimmed.trim_end_matches('/') {
        "/chat/completions" => (Endpoint::Llm(Operation::ChatCompletions), Method::POST),
        "/responses" => (Endpoint::Llm(Operation::Responses), Method::POST),
        "/completions" => (Endpoint::Llm(Operation::Completions), Method::POST),
        "/embeddings" => (Endpoint::Llm(Operation::Embeddings), Method::POST),
        "/messages" => (Endpoint::Llm(Operation::Messages), Method::POST),
        "/messages/count_tokens" => (Endpoint::Llm(Operation::CountTokens), Method::POST),
        "/models" => (Endpoint::ListModels, Method::GET),
        _ => return Err(GatewayError::PathNotFound(path.to_owned())),
    };
    if *method != allowed {
        return Err(GatewayError::MethodNotAllowed(method.clone()));
    }
    Ok(endpoint)
}

/// Reads the whole request body (the model is inside it), refusing more than `limit` bytes.
pub(super) async fn read_body<B>(
    headers: &http::HeaderMap,
    body: B,
    limit: usize,
) -> Result<Bytes, GatewayError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(GatewayError::BodyTooLarge { limit })
        }
        Err(e) => Err(GatewayError::InvalidRequest(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// The caller's request id when it is a sane one, else a fresh UUID.
pub(super) fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    let callers = headers.get(REQUEST_ID).filter(|v| {
        let id = v.as_bytes();
        !id.is_empty() && id.len() <= 128 && id.iter().all(u8::is_ascii_graphic)
    });
    match callers {
        Some(id) => id.clone(),
        None => {
            // A v4 UUID from the thread's CSPRNG (seeded once from the OS): `Uuid::new_v4`
            // would make a getrandom system call per request.
            let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
            let mut buffer = uuid::Uuid::encode_buffer();
            let text = uuid.hyphenated().encode_lower(&mut buffer);
            HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("unknown"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_the_callers_when_sane_else_fresh_v4_uuids() {
        let mut headers = http::HeaderMap::new();
        let first = request_id(&headers);
        let second = request_id(&headers);
        assert_ne!(first, second);
        let parsed = uuid::Uuid::parse_str(first.to_str().unwrap()).unwrap();
        assert_eq!(parsed.get_version(), Some(uuid::Version::Random));
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
        headers.insert(REQUEST_ID, HeaderValue::from_static("trace-abc-123"));
        assert_eq!(request_id(&headers), "trace-abc-123");
        headers.insert(REQUEST_ID, HeaderValue::from_static("has space"));
        assert_ne!(request_id(&headers), "has space");
    }

    #[test]
    fn paths_with_and_without_v1() {
        let post = Method::POST;
        assert_eq!(
            classify(&post, "/v1/chat/completions"),
            Ok(Endpoint::Llm(Operation::ChatCompletions))
        );
        assert_eq!(
            classify(&post, "/chat/completions"),
            Ok(Endpoint::Llm(Operation::ChatCompletions))
        );
        assert_eq!(
            classify(&post, "/v1/embeddings"),
            Ok(Endpoint::Llm(Operation::Embeddings))
        );
        assert_eq!(classify(&Method::GET, "/models"), Ok(Endpoint::ListModels));
        assert_eq!(
            classify(&post, "/v1/messages"),
            Ok(Endpoint::Llm(Operation::Messages))
        );
        assert_eq!(
            classify(&post, "/messages/count_tokens"),
            Ok(Endpoint::Llm(Operation::CountTokens))
        );
        assert_eq!(
            classify(&post, "/v1/nope"),
            Err(GatewayError::PathNotFound("/v1/nope".into()))
        );
        assert_eq!(
            classify(&Method::GET, "/v1/chat/completions"),
            Err(GatewayError::MethodNotAllowed(Method::GET))
        );
        assert!(classify(&post, "/v1x/chat/completions").is_err());
    }
}
