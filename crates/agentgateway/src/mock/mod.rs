//! `provider: mock`: a model endpoint built into the gateway, answering Chat Completions,
//! Responses, Embeddings and Anthropic Messages (and `count_tokens`) in each API's exact wire
//! format, streams included, with deterministic usage, a configurable pace and injected errors.
//!
//! It is a real HTTP server on `127.0.0.1:0` inside the gateway process, and each mock model's
//! route points its base URL at it (`http://127.0.0.1:PORT/{model index}/v1`). The gateway
//! therefore calls it exactly as it calls OpenAI — authentication, limits, the upstream client,
//! metering, the access log and cost all run for real — which is what makes it useful as a
//! quickstart, a CI target and a load-test backend. The listener is bound (synchronously) when
//! the gateway is built, so routes know its address, and served from `Gateway::start` until the
//! gateway's side ports stop, after the drain: in-flight calls to it finish.
//!
//! # Layout
//! - `reply`: [`Reply`](reply::Reply), one answer's model, token counts and pace, and its text.
//! - `openai`: Chat Completions, JSON and SSE; OpenAI error bodies; SSE framing.
//! - `responses`: the Responses API, JSON and SSE.
//! - `embeddings`: deterministic unit vectors, as floats or base64.
//! - `anthropic`: Messages JSON and SSE, `count_tokens`; Anthropic error bodies.
//! - `body`: [`Paced`](body::Paced), the response body that waits before each chunk.

mod anthropic;
mod body;
mod embeddings;
mod openai;
mod reply;
mod responses;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentgateway_wire::{scan_request, Operation};
use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{MockParams, ModelConfig, ProviderKind};
use crate::pricing::{Decimal, ModelPrice, PriceCatalog};
use body::{Chunks, Paced};
use reply::Reply;

/// The mock's `gen_ai_system` (and price catalog provider) name.
pub const SYSTEM: &str = "mock";

/// Largest request body the mock reads; the gateway's own limit is lower by default.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The in-process server: bound at build time, served from `Gateway::start`.
pub struct MockServer {
    listener: std::net::TcpListener,
    addr: SocketAddr,
    models: Arc<Models>,
}

/// The mock models by their index in `llm.models` (`None` for other providers).
struct Models {
    by_index: Vec<Option<MockModel>>,
    /// Numbers the answers, so their ids differ.
    seq: AtomicU64,
}

/// One mock model's settings, resolved, and its error dice.
pub struct MockModel {
    ttft: Duration,
    token_delay: Duration,
    output_tokens: u64,
    errors: Vec<(StatusCode, f64)>,
    rng: Mutex<StdRng>,
}

/// The base URL of the mock model at `index` of `llm.models`, on the server at `addr`.
pub fn base_url(addr: SocketAddr, index: usize) -> String {
    format!("http://{addr}/{index}/v1")
}

// === impl MockServer ===

impl MockServer {
    /// Binds `127.0.0.1:0` when some model is a mock; `None` when none is.
    pub fn bind(models: &[ModelConfig]) -> std::io::Result<Option<MockServer>> {
        if !models.iter().any(|m| m.provider == ProviderKind::Mock) {
            return Ok(None);
        }
        let defaults = MockParams::default();
        let by_index = models
            .iter()
            .map(|m| {
                (m.provider == ProviderKind::Mock)
                    .then(|| MockModel::new(m.params.mock.as_ref().unwrap_or(&defaults)))
            })
            .collect();
        let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let models = Arc::new(Models {
            by_index,
            seq: AtomicU64::new(1),
        });
        Ok(Some(MockServer {
            listener,
            addr,
            models,
        }))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `stop` is true. Must run inside the Tokio runtime.
    pub fn serve(self, stop: watch::Receiver<bool>) -> std::io::Result<JoinHandle<()>> {
        let listener = TcpListener::from_std(self.listener)?;
        Ok(tokio::spawn(accept_loop(listener, self.models, stop)))
    }
}

async fn accept_loop(listener: TcpListener, models: Arc<Models>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = crate::server::stopped(&mut stop) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Usually EMFILE: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let models = models.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let models = models.clone();
                        async move { Ok::<_, Infallible>(handle(&models, request).await) }
                    });
                    let builder = crate::server::connection_builder();
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
}

/// The mock models' configured prices, filed under the `mock` provider and the model name the
/// mock answers with (`params.model`, else the entry's name), where the cost lookup finds them.
pub fn prices(models: &[ModelConfig]) -> Result<PriceCatalog, String> {
    let mut catalog = PriceCatalog::default();
    let per_million = Decimal::from(1_000_000);
    for (i, model) in models.iter().enumerate() {
        let price = match &model.params.mock {
            Some(params) if model.provider == ProviderKind::Mock => params.price.as_ref(),
            _ => None,
        };
        let Some(price) = price else { continue };
        let per_token = |usd: Decimal| {
            usd.checked_div(per_million)
                .ok_or_else(|| format!("llm.models[{i}].params.mock.price: out of range"))
        };
        let price = ModelPrice {
            input: per_token(price.input)?,
            output: per_token(price.output)?,
            cache_read: None,
            cache_write: None,
            reasoning: None,
            tiers: Vec::new(),
        };
        let name = model.params.model.as_deref().unwrap_or(&model.name);
        catalog = catalog.with_price(SYSTEM, name, price)?;
    }
    Ok(catalog)
}

// === impl MockModel ===

impl MockModel {
    fn new(params: &MockParams) -> MockModel {
        let errors = params
            .errors
            .iter()
            .filter_map(|(status, rate)| Some((StatusCode::from_u16(*status).ok()?, *rate)))
            .collect();
        let rng = match params.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        MockModel {
            ttft: params.ttft(),
            token_delay: params.token_delay(),
            output_tokens: params.output_tokens(),
            errors,
            rng: Mutex::new(rng),
        }
    }

    #[cfg(test)]
    fn for_tests() -> MockModel {
        MockModel::new(&MockParams::default())
    }

    /// The injected error this request gets, if any: one draw against the cumulative rates.
    fn draw_error(&self) -> Option<StatusCode> {
        if self.errors.is_empty() {
            return None;
        }
        let roll: f64 = match self.rng.lock() {
            Ok(mut rng) => rng.random(),
            Err(poisoned) => poisoned.into_inner().random(),
        };
        let mut bound = 0.0;
        for (status, rate) in &self.errors {
            bound += rate;
            // `<` so that a rate of 0 never fires, and `rate == 1` always does (roll < 1).
            if roll < bound {
                return Some(*status);
            }
        }
        None
    }
}

// === request handling ===

/// The operation of a mock path `/{index}/v1/{operation}`.
fn parse_path(path: &str) -> Option<(usize, Operation)> {
    let (index, rest) = path.strip_prefix('/')?.split_once('/')?;
    let op = match rest.strip_prefix("v1")? {
        "/chat/completions" => Operation::ChatCompletions,
        "/responses" => Operation::Responses,
        "/embeddings" => Operation::Embeddings,
        "/messages" => Operation::Messages,
        "/messages/count_tokens" => Operation::CountTokens,
        "/completions" => Operation::Completions,
        _ => return None,
    };
    Some((index.parse().ok()?, op))
}

async fn handle(models: &Models, request: http::Request<Incoming>) -> Response<Paced> {
    let path = request.uri().path().to_owned();
    let Some((index, op)) = parse_path(&path) else {
        return openai::error(StatusCode::NOT_FOUND, &format!("no mock API at {path}"));
    };
    let Some(model) = models.by_index.get(index).and_then(Option::as_ref) else {
        return openai::error(StatusCode::NOT_FOUND, &format!("no mock model {index}"));
    };
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return error(op, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if let Some(status) = model.draw_error() {
        let message = format!("injected by the mock model's params.mock.errors ({status})");
        return error(op, status, &message);
    }
    let info = match scan_request(&body) {
        Ok(info) => info,
        Err(e) => return error(op, StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let seq = models.seq.fetch_add(1, Ordering::Relaxed);
    let reply = Reply::new(&body, &info, model, seq);
    let stream = info.stream() && op.can_stream();
    match (op, stream) {
        (Operation::ChatCompletions, true) => sse(openai::chat_stream(reply)),
        (Operation::ChatCompletions, false) => json(reply.json_wait(), openai::chat(&reply)).await,
        (Operation::Responses, true) => sse(responses::stream(reply)),
        (Operation::Responses, false) => json(reply.json_wait(), responses::json(&reply)).await,
        (Operation::Embeddings, _) => json(reply.ttft, embeddings::respond(&body, &reply)).await,
        (Operation::Messages, true) => sse(anthropic::messages_stream(reply)),
        (Operation::Messages, false) => json(reply.json_wait(), anthropic::messages(&reply)).await,
        (Operation::CountTokens, _) => json(Duration::ZERO, anthropic::count_tokens(&reply)).await,
        (Operation::Completions, _) => error(
            op,
            StatusCode::NOT_FOUND,
            "the mock does not serve the legacy /v1/completions API",
        ),
    }
}

/// An error in the shape of `op`'s API.
fn error(op: Operation, status: StatusCode, message: &str) -> Response<Paced> {
    if op.is_anthropic() {
        anthropic::error(status, message)
    } else {
        openai::error(status, message)
    }
}

/// A JSON answer, sent after `wait` (a model produces its whole answer before a JSON reply).
async fn json(wait: Duration, body: Bytes) -> Response<Paced> {
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    respond(StatusCode::OK, "application/json", Paced::full(body))
}

fn sse(chunks: Chunks) -> Response<Paced> {
    let mut response = respond(StatusCode::OK, "text/event-stream", Paced::new(chunks));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn respond(status: StatusCode, content_type: &'static str, body: Paced) -> Response<Paced> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `value` as JSON bytes. Serializing the mock's own structs cannot fail; were it ever to,
/// an empty object is still JSON.
fn to_json(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests;
