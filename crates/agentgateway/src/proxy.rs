//! The request path, written once as a short list of named stages:
//! classify (which API) -> authenticate (who) -> read (bounded body) -> parse (model, stream) ->
//! allow (the key's model allow-list) -> route (which provider) -> limit (rate limits) ->
//! forward (upstream call) -> respond (metered body).
//!
//! Each stage either fills in the request's [`RequestRecord`] or fails with a [`GatewayError`];
//! both paths end in a response whose body owns the record, so the record is finished (metrics +
//! log line) exactly once, when the client has the whole response or went away.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agentgateway_wire::{rewrite_request, scan_request, Operation, RequestInfo};
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::auth::{AuthError, Authenticator, Identity};
use crate::errors::{ApiShape, GatewayError};
use crate::limits::RateLimits;
use crate::metered_body::{Meter, MeteredBody};
use crate::record::{ListenerInfo, RequestError, RequestRecord};
use crate::routing::{Route, Router};
use crate::telemetry::{PendingRecord, Telemetry};
use crate::upstream::{self, CallerCredential, HttpClient};

const REQUEST_ID: &str = "x-request-id";

/// Everything the request path reads, built once at startup and shared by all connections.
pub struct Proxy {
    pub router: Router,
    pub auth: Option<Authenticator>,
    pub limits: RateLimits,
    pub client: HttpClient,
    pub telemetry: Arc<Telemetry>,
    pub listener: Arc<ListenerInfo>,
    pub max_body_bytes: usize,
    pub first_byte_timeout: Duration,
    /// Longest silence allowed between upstream body frames.
    pub idle_timeout: Duration,
    /// How long a client may take to send its request body.
    pub body_timeout: Duration,
}

/// What a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Llm(Operation),
    ListModels,
}

/// A successful upstream call, ready to become the client's response.
struct Forwarded {
    response: Response<Incoming>,
    operation: Operation,
    strip_usage: bool,
    /// The gateway supplied the provider key (so account headers are not the caller's business).
    gateway_key: bool,
}

enum Answer {
    Forwarded(Forwarded),
    Local(Bytes),
}

// === impl Proxy ===

impl Proxy {
    /// The hyper service entry point: never fails; every failure is an error response.
    pub async fn handle(
        self: Arc<Self>,
        request: http::Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<MeteredBody>, Infallible> {
        let (parts, body) = request.into_parts();
        let mut record = RequestRecord::new(self.listener.clone(), peer, &parts);
        let id = request_id(&parts.headers);
        record.request_id = id.to_str().unwrap_or_default().to_owned();
        if self.telemetry.keep_headers() {
            record.headers = Some(parts.headers.clone());
        }
        let shape = ApiShape::OpenAi;
        let mut pending = PendingRecord::new(record, &self.telemetry);
        let result = self.serve(parts, body, &id, pending.get_mut()).await;
        let record = pending.into_inner();
        let mut response = match result {
            Ok(Answer::Forwarded(forwarded)) => self.respond_upstream(forwarded, record),
            Ok(Answer::Local(json)) => self.respond_local(StatusCode::OK, json, record),
            Err(error) => self.respond_error(error, shape, record),
        };
        response.headers_mut().insert(REQUEST_ID, id);
        Ok(response)
    }

    async fn serve(
        &self,
        parts: http::request::Parts,
        body: Incoming,
        id: &HeaderValue,
        record: &mut RequestRecord,
    ) -> Result<Answer, GatewayError> {
        let endpoint = classify(&parts.method, parts.uri.path())?;
        record.identity = self.authenticate(&parts.headers)?;
        let operation = match endpoint {
            Endpoint::ListModels => return Ok(Answer::Local(self.models_for(record))),
            Endpoint::Llm(operation) => operation,
        };
        record.llm.operation = Some(operation);
        let reading = read_body(&parts.headers, body, self.max_body_bytes);
        let body = tokio::time::timeout(self.body_timeout, reading)
            .await
            .map_err(|_| GatewayError::RequestTimeout)??;
        let info = scan_request(&body).map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
        record.llm.request_model = Some(info.model().into());
        record.llm.streaming = info.stream();
        if let Some(identity) = &record.identity {
            if !identity.allows_model(info.model()) {
                return Err(GatewayError::ModelNotAllowed(info.model().to_owned()));
            }
        }
        let route = self
            .router
            .select(info.model())
            .ok_or_else(|| GatewayError::ModelNotFound(info.model().to_owned()))?;
        record.route = Some(route.info.clone());
        self.limits.admit(record, &body, info.model()).await?;
        self.forward(parts, body, &info, route, operation, id).await
    }

    /// `/v1/models`: what this caller may use.
    fn models_for(&self, record: &RequestRecord) -> Bytes {
        match record.identity.as_deref() {
            Some(identity) if identity.allowed_models.is_some() => self
                .router
                .models_json_where(|name| identity.allows_model(name)),
            _ => self.router.models_json(),
        }
    }

    fn authenticate(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Option<Arc<Identity>>, GatewayError> {
        match &self.auth {
            None => Ok(None),
            Some(auth) => auth.authenticate(headers).map_err(|e| match e {
                AuthError::Missing => GatewayError::MissingApiKey,
                AuthError::Invalid => GatewayError::InvalidApiKey,
            }),
        }
    }

    async fn forward(
        &self,
        parts: http::request::Parts,
        body: Bytes,
        info: &RequestInfo,
        route: &Route,
        operation: Operation,
        id: &HeaderValue,
    ) -> Result<Answer, GatewayError> {
        // Meter streams the caller did not ask usage for, without showing it the extra chunk.
        let strip_usage = matches!(
            operation,
            Operation::ChatCompletions | Operation::Completions
        ) && info.stream()
            && info.include_usage() != Some(true);
        let body = rewrite_request(&body, info, route.target_model.as_deref(), strip_usage);
        let credential = if self.auth.is_some() {
            CallerCredential::Strip
        } else {
            CallerCredential::PassThrough
        };
        let mut headers = parts.headers;
        headers.insert(REQUEST_ID, id.clone());
        let request = upstream::build_request(
            &route.upstream,
            operation.upstream_path(),
            parts.uri.query(),
            headers,
            body,
            credential,
        )?;
        let response = upstream::send(&self.client, request, self.first_byte_timeout).await?;
        Ok(Answer::Forwarded(Forwarded {
            response,
            operation,
            strip_usage,
            gateway_key: route.upstream.authorization.is_some(),
        }))
    }

    fn respond_upstream(
        &self,
        forwarded: Forwarded,
        mut record: RequestRecord,
    ) -> Response<MeteredBody> {
        let (mut parts, body) = forwarded.response.into_parts();
        record.status = parts.status.as_u16();
        if parts.status.is_client_error() || parts.status.is_server_error() {
            record.reason = Some("upstream_error");
            record.error = Some(RequestError::with_message(
                parts.status.as_str().to_owned(),
                format!("upstream returned {}", parts.status),
            ));
        }
        upstream::response_headers(&mut parts.headers, forwarded.gateway_key);
        if let Some(admission) = &record.admission.0 {
            crate::ratelimit::headers::insert_headers(&mut parts.headers, admission.statuses());
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes);
        let meter = Meter::for_response(forwarded.operation, content_type, forwarded.strip_usage);
        let rewrites = forwarded.strip_usage && matches!(meter, Meter::Stream(_));
        if rewrites {
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        let body = MeteredBody::upstream(body, meter, rewrites, record, self.telemetry.clone())
            .with_idle_timeout(self.idle_timeout);
        Response::from_parts(parts, body)
    }

    fn respond_local(
        &self,
        status: StatusCode,
        json: Bytes,
        mut record: RequestRecord,
    ) -> Response<MeteredBody> {
        record.status = status.as_u16();
        let mut response = Response::new(MeteredBody::full(json, record, self.telemetry.clone()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }

    fn respond_error(
        &self,
        error: GatewayError,
        shape: ApiShape,
        mut record: RequestRecord,
    ) -> Response<MeteredBody> {
        record.reason = Some(error.label());
        record.error = Some(RequestError::with_message(error.label(), error.message()));
        let mut response = self.respond_local(error.status(), error.body(shape), record);
        match error {
            GatewayError::MethodNotAllowed(_) => {
                response
                    .headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
            }
            GatewayError::RateLimited { headers, .. } => response.headers_mut().extend(headers),
            _ => {}
        }
        response
    }
}

/// Maps a path (with or without `/v1`) and method to what it asks for.
fn classify(method: &Method, path: &str) -> Result<Endpoint, GatewayError> {
    let trimmed = path
        .strip_prefix("/v1")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(path);
    let (endpoint, allowed) = match trimmed.trim_end_matches('/') {
        "/chat/completions" => (Endpoint::Llm(Operation::ChatCompletions), Method::POST),
        "/responses" => (Endpoint::Llm(Operation::Responses), Method::POST),
        "/completions" => (Endpoint::Llm(Operation::Completions), Method::POST),
        "/embeddings" => (Endpoint::Llm(Operation::Embeddings), Method::POST),
        "/models" => (Endpoint::ListModels, Method::GET),
        _ => return Err(GatewayError::PathNotFound(path.to_owned())),
    };
    if *method != allowed {
        return Err(GatewayError::MethodNotAllowed(method.clone()));
    }
    Ok(endpoint)
}

/// Reads the whole request body (the model is inside it), refusing more than `limit` bytes.
async fn read_body(
    headers: &http::HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, GatewayError> {
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
fn request_id(headers: &http::HeaderMap) -> HeaderValue {
    let callers = headers.get(REQUEST_ID).filter(|v| {
        let id = v.as_bytes();
        !id.is_empty() && id.len() <= 128 && id.iter().all(u8::is_ascii_graphic)
    });
    match callers {
        Some(id) => id.clone(),
        None => {
            let mut buffer = uuid::Uuid::encode_buffer();
            let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
            HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("unknown"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
