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

use agentgateway_wire::translate::RequestOptions;
use agentgateway_wire::{
    rewrite_request_parts, scan_request, summarize_json, Operation, RequestInfo, StreamMeter,
};
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use crate::auth::{AuthError, Authenticator, Identity};
use crate::errors::{ApiShape, GatewayError};
use crate::limits::RateLimits;
use crate::metered_body::{apply_summary, BoxError, Meter, MeteredBody};
use crate::record::{ListenerInfo, RequestError, RequestRecord};
use crate::routing::{Route, Router};
use crate::telemetry::{PendingRecord, Telemetry};
use crate::translation::{self, Plan, StreamTranslation};
use crate::upstream::{self, CallerCredential, HttpClient, RequestBody, UpstreamBody};

mod request;

use request::{classify, read_body, request_id};

const REQUEST_ID: http::HeaderName = upstream::X_REQUEST_ID;

/// What a non-streamed answer cost, in USD (`config.costHeader`).
const COST_HEADER: &str = "x-agw-cost-usd";

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
    /// `config.costHeader`: non-streamed answers carry `x-agw-cost-usd`.
    pub cost_header: bool,
}

/// What a path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Llm(Operation),
    ListModels,
}

/// Largest provider body the gateway reads whole to translate it (non-streaming responses and
/// error bodies of translated calls).
const MAX_TRANSLATED_BODY: usize = 64 << 20;

/// A successful upstream call, ready to become the client's response.
struct Forwarded {
    response: Response<UpstreamBody>,
    /// The operation the provider was called with (its meter reads the provider's format).
    upstream_op: Operation,
    plan: Plan,
    strip_usage: bool,
    /// The OpenAI caller asked for the usage chunk (for a translated stream).
    include_usage: bool,
    /// The gateway supplied the provider key (so account headers are not the caller's business).
    gateway_key: bool,
}

/// A provider body read whole, already in the caller's shape.
struct Translated {
    parts: http::response::Parts,
    body: Bytes,
    gateway_key: bool,
    /// The body was translated (so it is JSON whatever the provider sent).
    translated: bool,
}

enum Answer {
    Forwarded(Forwarded),
    Translated(Translated),
    Local(Bytes),
}

// === impl Proxy ===

impl Proxy {
    /// The entry point of every request, from hyper (HTTP/2) or the gateway's own HTTP/1 loop,
    /// whose body reads straight from the connection: never fails; every failure is an error
    /// response.
    pub async fn handle<B>(
        self: Arc<Self>,
        request: http::Request<B>,
        peer: SocketAddr,
    ) -> Result<Response<MeteredBody>, Infallible>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        let mut record = RequestRecord::new(self.listener.clone(), peer, &parts);
        let id = request_id(&parts.headers);
        record.request_id = id.to_str().unwrap_or_default().to_owned();
        if self.telemetry.keep_headers() {
            record.headers = Some(parts.headers.clone());
        }
        let endpoint = classify(&parts.method, parts.uri.path());
        let shape = match endpoint {
            Ok(Endpoint::Llm(op)) if op.is_anthropic() => ApiShape::Anthropic,
            _ => ApiShape::OpenAi,
        };
        let mut pending = PendingRecord::new(record, &self.telemetry);
        let result = match endpoint {
            Ok(endpoint) => {
                self.serve(endpoint, parts, body, &id, pending.get_mut())
                    .await
            }
            Err(error) => Err(error),
        };
        let record = pending.into_inner();
        let mut response = match result {
            Ok(Answer::Forwarded(forwarded)) => self.respond_upstream(forwarded, record),
            Ok(Answer::Translated(translated)) => self.respond_translated(translated, record),
            Ok(Answer::Local(json)) => self.respond_local(StatusCode::OK, json, record),
            Err(error) => self.respond_error(error, shape, record),
        };
        response.headers_mut().insert(REQUEST_ID, id);
        Ok(response)
    }

    async fn serve<B>(
        &self,
        endpoint: Endpoint,
        parts: http::request::Parts,
        body: B,
        id: &HeaderValue,
        record: &mut RequestRecord,
    ) -> Result<Answer, GatewayError>
    where
        B: Body<Data = Bytes> + Send,
        B::Error: Into<BoxError>,
    {
        record.identity = self.authenticate(&parts.headers)?;
        let operation = match endpoint {
            Endpoint::ListModels => return Ok(Answer::Local(self.models_for(record))),
            Endpoint::Llm(operation) => operation,
        };
        record.llm.operation = Some(operation);
        let (body, info) = self.read_request(&parts.headers, body, record).await?;
        let route = self.route(&info, record)?;
        record.route = Some(route.info.clone());
        let plan = Plan::choose(operation, route.upstream.api, route.info.system)?;
        if plan == Plan::LocalCountTokens {
            return Ok(Answer::Local(translation::local_count_tokens(
                &body,
                info.model(),
            )));
        }
        self.check_budgets(record).await?;
        // Cost limits price their estimate; an owned catalog, since the admission may wait.
        let catalog = self
            .telemetry
            .costing()
            .filter(|_| self.limits.has_cost_rules())
            .map(|c| arc_swap::Guard::into_inner(c.catalog.current()));
        self.limits
            .admit(record, &body, info.model(), catalog.as_deref())
            .await?;
        let forwarded = self
            .forward(
                parts,
                body,
                Call {
                    info: &info,
                    route,
                    operation,
                    plan,
                },
                id,
            )
            .await?;
        let event_stream = is_event_stream(&forwarded.response);
        let streamed = event_stream && forwarded.response.status().is_success();
        let priced_header = self.cost_header && !event_stream;
        if !(plan.translates() || priced_header) || streamed {
            return Ok(Answer::Forwarded(forwarded));
        }
        self.read_translated(forwarded, record)
            .await
            .map(Answer::Translated)
    }

    /// Reads the body (bounded in size and time) and finds its model and stream flags.
    async fn read_request<B>(
        &self,
        headers: &http::HeaderMap,
        body: B,
        record: &mut RequestRecord,
    ) -> Result<(Bytes, RequestInfo), GatewayError>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        let reading = read_body(headers, body, self.max_body_bytes);
        let body = tokio::time::timeout(self.body_timeout, reading)
            .await
            .map_err(|_| GatewayError::RequestTimeout)??;
        let info = scan_request(&body).map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
        record.llm.request_model = Some(info.model().into());
        record.llm.streaming = info.stream();
        Ok((body, info))
    }

    /// The caller's allow-list, then the route serving the model.
    fn route(
        &self,
        info: &RequestInfo,
        record: &RequestRecord,
    ) -> Result<&Arc<Route>, GatewayError> {
        if let Some(identity) = &record.identity {
            if !identity.allows_model(info.model()) {
                return Err(GatewayError::ModelNotAllowed(info.model().to_owned()));
            }
        }
        self.router
            .select(info.model())
            .ok_or_else(|| GatewayError::ModelNotFound(info.model().to_owned()))
    }

    /// The caller's USD budgets, before anything is spent on the request: a spent hard budget
    /// refuses it (429 with the reset time); spent soft ones are only reported.
    async fn check_budgets(&self, record: &RequestRecord) -> Result<(), GatewayError> {
        let (Some(costing), Some(identity)) =
            (self.telemetry.costing(), record.identity.as_deref())
        else {
            return Ok(());
        };
        let verdict = match costing.budgets.check(identity).await {
            Ok(verdict) => verdict,
            Err(error) => {
                // Availability first: a ledger that cannot be read does not stop all traffic.
                tracing::error!(%error, "budget check failed; request allowed");
                return Ok(());
            }
        };
        costing.report(&verdict.soft_exceeded, &self.telemetry.metrics);
        match verdict.refused {
            None => Ok(()),
            Some(budget) => {
                let wait = budget.resets_at - costing.clock.unix_now();
                Err(GatewayError::BudgetExceeded {
                    budget: Box::new(budget),
                    retry_after_secs: u64::try_from(wait).unwrap_or(0).max(1),
                })
            }
        }
    }

    /// Reads a provider body whole — a translated call's JSON answer or error (then put in the
    /// caller's shape), or any non-streamed answer when `x-agw-cost-usd` needs its cost before
    /// the headers go out — and meters it as the provider's.
    async fn read_translated(
        &self,
        forwarded: Forwarded,
        record: &mut RequestRecord,
    ) -> Result<Translated, GatewayError> {
        let (parts, body) = forwarded.response.into_parts();
        let reading = Limited::new(body, MAX_TRANSLATED_BODY).collect();
        let bytes = match tokio::time::timeout(self.idle_timeout, reading).await {
            Err(_) => {
                return Err(GatewayError::UpstreamTimeout(
                    "the provider's body did not arrive in time".into(),
                ))
            }
            Ok(Err(e)) => return Err(GatewayError::UpstreamUnavailable(e.to_string())),
            Ok(Ok(collected)) => collected.to_bytes(),
        };
        let status = parts.status.as_u16();
        note_upstream_status(record, parts.status);
        apply_summary(record, summarize_json(forwarded.upstream_op, &bytes));
        if let Some(costing) = self.telemetry.costing() {
            costing.price(record);
        }
        let created = crate::auth::unix_now().max(0) as u64;
        let body = translation::translate_body(forwarded.plan, status, &bytes, created)
            .map_err(|e| GatewayError::BadUpstreamResponse(e.to_string()))?;
        Ok(Translated {
            parts,
            body,
            gateway_key: forwarded.gateway_key,
            translated: forwarded.plan.translates(),
        })
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
        call: Call<'_>,
        id: &HeaderValue,
    ) -> Result<Forwarded, GatewayError> {
        let upstream_op = call.plan.upstream_op(call.operation);
        let model = call.upstream_model();
        let strip_usage = call.strip_usage();
        let body = call.upstream_body(&body, strip_usage)?;
        let route = call.route;
        let credential = if self.auth.is_some() {
            CallerCredential::Strip
        } else {
            CallerCredential::PassThrough
        };
        let path = route
            .upstream
            .path_and_query(upstream_op, model, parts.uri.query())
            .ok_or_else(|| {
                GatewayError::InvalidRequest(format!(
                    "the model '{model}' cannot be used as an Azure deployment name"
                ))
            })?;
        let mut headers = parts.headers;
        headers.insert(REQUEST_ID, id.clone());
        let request = upstream::build_request(&route.upstream, path, headers, body, credential)?;
        let response = upstream::send(&self.client, request, self.first_byte_timeout).await?;
        Ok(Forwarded {
            response,
            upstream_op,
            strip_usage,
            plan: call.plan,
            include_usage: call.info.include_usage() == Some(true),
            gateway_key: route.upstream.credential.is_some(),
        })
    }

    fn respond_upstream(
        &self,
        forwarded: Forwarded,
        mut record: RequestRecord,
    ) -> Response<MeteredBody> {
        let (mut parts, body) = forwarded.response.into_parts();
        note_upstream_status(&mut record, parts.status);
        self.response_headers(&mut parts.headers, forwarded.gateway_key, &record);
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(HeaderValue::as_bytes);
        let mut meter =
            Meter::for_response(forwarded.upstream_op, content_type, forwarded.strip_usage);
        let created = crate::auth::unix_now().max(0) as u64;
        let translation = StreamTranslation::new(forwarded.plan, forwarded.include_usage, created);
        if let (Meter::Stream(stream), Some(translation)) = (&mut meter, translation) {
            let stream = std::mem::replace(stream, StreamMeter::new(forwarded.upstream_op, false));
            meter = Meter::Translated(stream, Box::new(translation));
        }
        let rewrites = matches!(meter, Meter::Translated(..))
            || (forwarded.strip_usage && matches!(meter, Meter::Stream(_)));
        if rewrites {
            parts.headers.remove(header::CONTENT_LENGTH);
        }
        let body = MeteredBody::upstream(body, meter, rewrites, record, self.telemetry.clone())
            .with_idle_timeout(self.idle_timeout);
        Response::from_parts(parts, body)
    }

    /// A translated provider body: the provider's status and headers, the caller's body shape.
    fn respond_translated(
        &self,
        translated: Translated,
        record: RequestRecord,
    ) -> Response<MeteredBody> {
        let Translated {
            mut parts,
            body,
            gateway_key,
            translated,
        } = translated;
        self.response_headers(&mut parts.headers, gateway_key, &record);
        parts.headers.remove(header::CONTENT_LENGTH);
        if translated {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        if self.cost_header {
            if let Some(value) = crate::costing::Costing::header_value(&record) {
                parts.headers.insert(COST_HEADER, value);
            }
        }
        let body = MeteredBody::full(body, record, self.telemetry.clone());
        Response::from_parts(parts, body)
    }

    /// The provider's response headers as the caller sees them, with our rate-limit headers.
    fn response_headers(
        &self,
        headers: &mut http::HeaderMap,
        gateway_key: bool,
        record: &RequestRecord,
    ) {
        upstream::response_headers(headers, gateway_key);
        if let Some(admission) = &record.admission.0 {
            crate::ratelimit::headers::insert_headers(headers, admission.statuses());
        }
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
            GatewayError::BudgetExceeded {
                retry_after_secs, ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// What the earlier stages decided about one call, for the forward stage.
struct Call<'a> {
    info: &'a RequestInfo,
    route: &'a Route,
    /// The caller's operation.
    operation: Operation,
    plan: Plan,
}

impl Call<'_> {
    /// What goes upstream as `model` (and as an Azure deployment name).
    fn upstream_model(&self) -> &str {
        self.route
            .target_model
            .as_deref()
            .unwrap_or(self.info.model())
    }

    /// Meter streams the caller did not ask usage for, without showing it the extra chunk.
    fn strip_usage(&self) -> bool {
        self.plan == Plan::Native
            && matches!(
                self.operation,
                Operation::ChatCompletions | Operation::Completions
            )
            && self.route.upstream.stream_options
            && self.info.stream()
            && self.info.include_usage() != Some(true)
    }

    /// The provider's request body: the caller's with splices, or a translation.
    fn upstream_body(&self, body: &Bytes, strip_usage: bool) -> Result<RequestBody, GatewayError> {
        if !self.plan.translates() {
            let target = self.route.target_model.as_deref();
            return Ok(rewrite_request_parts(body, self.info, target, strip_usage).into());
        }
        let opts = RequestOptions {
            model: self.upstream_model(),
            default_max_tokens: self.route.default_max_tokens,
            max_completion_tokens: self.route.upstream.max_completion_tokens,
            stream_options: self.route.upstream.stream_options,
        };
        self.plan
            .translate_request(body, &opts)
            .map(RequestBody::from)
    }
}

/// The provider's status into the record; an error status is an `upstream_error`.
fn note_upstream_status(record: &mut RequestRecord, status: StatusCode) {
    record.status = status.as_u16();
    if status.is_client_error() || status.is_server_error() {
        record.reason = Some("upstream_error");
        record.error = Some(RequestError::with_message(
            status.as_str().to_owned(),
            format!("upstream returned {status}"),
        ));
    }
}

fn is_event_stream(response: &Response<UpstreamBody>) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| {
            let ct = ct.as_bytes();
            ct.len() >= 17 && ct[..17].eq_ignore_ascii_case(b"text/event-stream")
        })
}
