//! The HTTP client that calls providers, with its own connection pool over hyper's
//! connection-level API. hyper-util's general-purpose pooled client cost a spawned task per
//! HTTP/1 request (to wait for the connection to become idle again), a SipHash-keyed map probed
//! twice, and a checkout future raced against a connect; together a few percent of the gateway's
//! CPU per proxied request (perf, `bench/run.sh`). Here a connection goes back to its host's idle
//! list at the moment its response body ends, from inside the body, so nothing is spawned per
//! request and a checkout is one map lookup under a short lock.
//!
//! Kept from the client it replaces: one HTTP/2 connection per host when ALPN picks `h2`, a
//! `Host` header and origin-form target on HTTP/1, an idle timeout, and one more attempt on
//! another connection when a reused one turns out closed before the request was written (the
//! peer's keep-alive timer raced ours). A connection whose body was not read to the end is never
//! reused.

use std::collections::HashMap;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http::uri::{Authority, Parts, Scheme};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tower_service::Service;

use super::{RequestBody, TimeoutConnector};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Http1Sender = http1::SendRequest<RequestBody>;
type Http2Sender = http2::SendRequest<RequestBody>;

/// Idle HTTP/1 connections kept per host; more than this many at once were a burst.
const MAX_IDLE_PER_HOST: usize = 256;

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the upstream URL has no scheme or host: {0}")]
    NotAbsolute(Uri),
    #[error("connect error")]
    Connect(#[source] BoxError),
    #[error("connection error")]
    Send(#[source] hyper::Error),
}

/// A cheap-to-clone handle on the shared pool.
#[derive(Clone)]
pub struct HttpClient {
    shared: Arc<Shared>,
}

struct Shared {
    connector: TimeoutConnector,
    idle_timeout: Duration,
    hosts: Mutex<HashMap<Key, Host, foldhash::fast::RandomState>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    scheme: Scheme,
    authority: Authority,
}

struct Host {
    /// The `Host` header for HTTP/1 requests, built once.
    host_header: HeaderValue,
    /// Most recently used last, so the warmest connection is taken first.
    idle: Vec<Idle>,
    h2: Option<Http2Sender>,
}

struct Idle {
    sender: Http1Sender,
    since: Instant,
}

enum Sender {
    H1(Http1Sender, HeaderValue),
    H2(Http2Sender),
}

impl HttpClient {
    pub fn new(connector: TimeoutConnector, idle_timeout: Duration) -> HttpClient {
        HttpClient {
            shared: Arc::new(Shared {
                connector,
                idle_timeout,
                hosts: Mutex::new(HashMap::default()),
            }),
        }
    }

    /// Sends `request` (absolute URI) on a pooled or new connection.
    pub async fn request(
        &self,
        mut request: Request<RequestBody>,
    ) -> Result<Response<UpstreamBody>, ClientError> {
        let uri = request.uri().clone();
        let key = Key::of(&uri)?;
        loop {
            let (sender, reused) = self.checkout(&key, &uri).await?;
            let failed = match sender {
                Sender::H2(mut sender) => match sender.try_send_request(request).await {
                    Ok(response) => return Ok(response.map(|body| UpstreamBody::new(body, None))),
                    Err(failed) => {
                        if sender.is_closed() {
                            self.shared.forget_h2(&key);
                        }
                        failed
                    }
                },
                Sender::H1(mut sender, host) => {
                    request.headers_mut().entry(HOST).or_insert(host);
                    *request.uri_mut() = origin_form(&uri);
                    match sender.try_send_request(request).await {
                        Ok(response) => {
                            let giveback = GiveBack {
                                shared: self.shared.clone(),
                                key,
                                sender,
                            };
                            return Ok(response.map(|body| UpstreamBody::new(body, Some(giveback))));
                        }
                        Err(failed) => failed,
                    }
                }
            };
            request = retryable(failed, reused)?;
            *request.uri_mut() = uri.clone();
        }
    }

    /// An idle connection that is still open and ready, or a new one. The flag says reused.
    async fn checkout(&self, key: &Key, uri: &Uri) -> Result<(Sender, bool), ClientError> {
        loop {
            let idle = {
                let mut hosts = self.shared.lock();
                let Some(host) = hosts.get_mut(key) else {
                    break;
                };
                if let Some(h2) = &host.h2 {
                    if !h2.is_closed() {
                        return Ok((Sender::H2(h2.clone()), true));
                    }
                    host.h2 = None;
                }
                match host.idle.pop() {
                    Some(idle) => (idle, host.host_header.clone()),
                    None => break,
                }
            };
            let (Idle { mut sender, since }, host_header) = idle;
            if since.elapsed() >= self.shared.idle_timeout || sender.is_closed() {
                continue;
            }
            if sender.ready().await.is_ok() {
                return Ok((Sender::H1(sender, host_header), true));
            }
        }
        Ok((self.connect(key, uri).await?, false))
    }

    async fn connect(&self, key: &Key, uri: &Uri) -> Result<Sender, ClientError> {
        let mut connector = self.shared.connector.clone();
        poll_fn(|cx| connector.poll_ready(cx))
            .await
            .map_err(ClientError::Connect)?;
        let io = connector
            .call(uri.clone())
            .await
            .map_err(ClientError::Connect)?;
        if io.connected().is_negotiated_h2() {
            let (sender, connection) = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(io)
                .await
                .map_err(ClientError::Send)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
                }
            });
            self.shared
                .with_host(key, |host| host.h2 = Some(sender.clone()));
            return Ok(Sender::H2(sender));
        }
        let (sender, connection) = http1::handshake(io).await.map_err(ClientError::Send)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "upstream HTTP/1 connection ended");
            }
        });
        let host_header = self.shared.with_host(key, |host| host.host_header.clone());
        Ok(Sender::H1(sender, host_header))
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Host, foldhash::fast::RandomState>> {
        // A panic elsewhere while holding the lock leaves nothing half-written: a Vec push/pop.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the host entry for `key`, creating it on first use.
    fn with_host<R>(&self, key: &Key, f: impl FnOnce(&mut Host) -> R) -> R {
        let mut hosts = self.lock();
        f(hosts.entry(key.clone()).or_insert_with(|| Host::new(key)))
    }

    fn forget_h2(&self, key: &Key) {
        if let Some(host) = self.lock().get_mut(key) {
            host.h2 = None;
        }
    }

    /// A connection whose response ended cleanly goes back on top of its host's idle list;
    /// connections idle past the timeout are dropped (closed) on the way.
    fn give_back(&self, key: &Key, sender: Http1Sender) {
        let now = Instant::now();
        let mut hosts = self.lock();
        let Some(host) = hosts.get_mut(key) else {
            return;
        };
        // Pushed in time order and popped from the top, the list stays sorted by `since`: the
        // expired connections are a prefix. Closed ones are dropped when a checkout meets them.
        let timeout = self.idle_timeout;
        let expired = host
            .idle
            .partition_point(|idle| now.duration_since(idle.since) >= timeout);
        host.idle.drain(..expired);
        if host.idle.len() >= MAX_IDLE_PER_HOST {
            host.idle.remove(0);
        }
        host.idle.push(Idle { sender, since: now });
    }
}

impl Host {
    fn new(key: &Key) -> Host {
        let default_port = match key.scheme.as_str() {
            "https" => 443,
            _ => 80,
        };
        let host = key.authority.host();
        let text = match key.authority.port_u16() {
            Some(port) if port != default_port => key.authority.as_str(),
            _ => host,
        };
        Host {
            // An `Authority` holds only bytes valid in a header value.
            host_header: HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static("")),
            idle: Vec::new(),
            h2: None,
        }
    }
}

impl Key {
    fn of(uri: &Uri) -> Result<Key, ClientError> {
        match (uri.scheme(), uri.authority()) {
            (Some(scheme), Some(authority)) => Ok(Key {
                scheme: scheme.clone(),
                authority: authority.clone(),
            }),
            _ => Err(ClientError::NotAbsolute(uri.clone())),
        }
    }
}

/// The request back when it was never written on a reused connection the peer had closed (its
/// keep-alive timer raced ours), so it can go on another; otherwise the failure.
fn retryable(
    mut failed: hyper::client::conn::TrySendError<Request<RequestBody>>,
    reused: bool,
) -> Result<Request<RequestBody>, ClientError> {
    match failed.take_message() {
        Some(unsent) if reused => Ok(unsent),
        _ => Err(ClientError::Send(failed.into_error())),
    }
}

/// `/path?query` of an absolute URI: what an HTTP/1 request line carries to an origin server.
fn origin_form(uri: &Uri) -> Uri {
    let mut parts = Parts::default();
    parts.path_and_query = uri.path_and_query().cloned();
    Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"))
}

/// What returns an HTTP/1 connection to the pool once its response has been read.
struct GiveBack {
    shared: Arc<Shared>,
    key: Key,
    sender: Http1Sender,
}

/// A provider's response body. When it ends cleanly its connection becomes idle in the pool;
/// when it fails or is dropped early, the connection is closed with it.
pub struct UpstreamBody {
    inner: Incoming,
    giveback: Option<GiveBack>,
}

impl UpstreamBody {
    fn new(inner: Incoming, giveback: Option<GiveBack>) -> UpstreamBody {
        let mut body = UpstreamBody { inner, giveback };
        if body.inner.is_end_stream() {
            body.give_back();
        }
        body
    }

    fn give_back(&mut self) {
        if let Some(GiveBack {
            shared,
            key,
            sender,
        }) = self.giveback.take()
        {
            shared.give_back(&key, sender);
        }
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("inner", &self.inner)
            .field("pooled", &self.giveback.is_some())
            .finish()
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => this.give_back(),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.give_back(),
            Poll::Ready(Some(Err(_))) => this.giveback = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
