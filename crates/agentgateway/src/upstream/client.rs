//! The HTTP client that calls providers, with its own connection pool. HTTP/1.1 connections
//! are spoken by the request's own task ([`super::h1`]); an HTTP/2 connection (when ALPN picks
//! `h2`) is hyper's, one per host, shared. hyper-util's general-purpose pooled client cost a
//! spawned task per HTTP/1 request (to wait for the connection to become idle again), a
//! SipHash-keyed map probed twice, and a checkout future raced against a connect. Here a
//! connection goes back to its host's idle list at the moment its response body ends, from
//! inside the body, so nothing is spawned per request and a checkout is one map lookup under a
//! short lock.
//!
//! A reused connection is looked at before it is used (without a system call when nothing
//! arrived on it), and when the peer closed it anyway in the moment it took to send the request
//! (its keep-alive timer raced ours) the request goes once more on another connection: the
//! provider had closed without reading it, so it was not answered twice. A connection whose
//! body was not read to the end is never reused.

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::HeaderValue;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::client::conn::http2;
use hyper_util::client::legacy::connect::Connection;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tower_service::Service;

use super::h1::{Conn, Polled, Reading};
use super::{RequestBody, TimeoutConnector};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
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
    #[error("connection error")]
    Exchange(#[source] io::Error),
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
    conn: Conn,
    since: Instant,
}

enum Sender {
    H1(Conn, HeaderValue),
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
        let key = Key::of(request.uri())?;
        loop {
            let (sender, reused) = self.checkout(&key, request.uri()).await?;
            match sender {
                Sender::H2(mut sender) => match sender.try_send_request(request).await {
                    Ok(response) => return Ok(response.map(UpstreamBody::h2)),
                    Err(failed) => {
                        if sender.is_closed() {
                            self.shared.forget_h2(&key);
                        }
                        request = retryable(failed, reused)?;
                    }
                },
                Sender::H1(mut conn, host) => match conn.exchange(&request, &host).await {
                    Ok(mut head) => {
                        let body = match Reading::new(conn, &mut head) {
                            Ok(reading) => UpstreamBody::h1(reading, self.shared.clone(), key),
                            Err(reusable) => {
                                if let Some(conn) = reusable {
                                    self.shared.give_back(&key, conn);
                                }
                                UpstreamBody::empty()
                            }
                        };
                        return Ok(Response::from_parts(head.parts, body));
                    }
                    Err(failed) if reused && failed.unanswered && closed(&failed.source) => {}
                    Err(failed) => return Err(ClientError::Exchange(failed.source)),
                },
            }
        }
    }

    /// An idle connection that is still open, or a new one. The flag says reused.
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
            let (Idle { mut conn, since }, host_header) = idle;
            if since.elapsed() < self.shared.idle_timeout && conn.is_reusable() {
                return Ok((Sender::H1(conn, host_header), true));
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
        let host_header = self.shared.with_host(key, |host| host.host_header.clone());
        Ok(Sender::H1(Conn::new(TokioIo::new(io)), host_header))
    }
}

/// The failures that mean the peer had closed the connection.
fn closed(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
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
    fn give_back(&self, key: &Key, conn: Conn) {
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
        host.idle.push(Idle { conn, since: now });
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

/// The request back when it was never written on a reused HTTP/2 connection the peer had
/// closed, so it can go on another; otherwise the failure.
fn retryable(
    mut failed: hyper::client::conn::TrySendError<Request<RequestBody>>,
    reused: bool,
) -> Result<Request<RequestBody>, ClientError> {
    match failed.take_message() {
        Some(unsent) if reused => Ok(unsent),
        _ => Err(ClientError::Send(failed.into_error())),
    }
}

/// A provider's response body. When an HTTP/1 body ends cleanly its connection becomes idle in
/// the pool; when it fails or is dropped early, the connection is closed with it.
pub struct UpstreamBody {
    inner: Inner,
}

enum Inner {
    H1 {
        reading: Reading,
        shared: Arc<Shared>,
        key: Key,
    },
    H2(Incoming),
    Ended,
}

impl UpstreamBody {
    fn h1(reading: Reading, shared: Arc<Shared>, key: Key) -> UpstreamBody {
        UpstreamBody {
            inner: Inner::H1 {
                reading,
                shared,
                key,
            },
        }
    }

    fn h2(body: Incoming) -> UpstreamBody {
        UpstreamBody {
            inner: Inner::H2(body),
        }
    }

    fn empty() -> UpstreamBody {
        UpstreamBody {
            inner: Inner::Ended,
        }
    }

    /// Ends an HTTP/1 body, giving its connection back when the response left it reusable.
    fn end(&mut self, conn: Option<Conn>) {
        if let Inner::H1 { shared, key, .. } = std::mem::replace(&mut self.inner, Inner::Ended) {
            if let Some(conn) = conn {
                shared.give_back(&key, conn);
            }
        }
    }
}

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.inner {
            Inner::H1 { .. } => "http/1.1",
            Inner::H2(_) => "h2",
            Inner::Ended => "ended",
        };
        f.debug_struct("UpstreamBody").field("kind", &kind).finish()
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = match &mut this.inner {
            Inner::Ended => return Poll::Ready(None),
            Inner::H2(body) => {
                return Pin::new(body)
                    .poll_frame(cx)
                    .map_err(|e| Box::new(e) as BoxError)
            }
            Inner::H1 { reading, .. } => std::task::ready!(reading.poll_data(cx)),
        };
        Poll::Ready(match polled {
            Ok(Polled::Data(data, last, conn)) => {
                if last {
                    this.end(conn);
                }
                Some(Ok(Frame::data(data)))
            }
            Ok(Polled::End(conn)) => {
                this.end(conn);
                None
            }
            Err(error) => {
                this.end(None);
                Some(Err(Box::new(error) as BoxError))
            }
        })
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Ended => true,
            Inner::H2(body) => body.is_end_stream(),
            Inner::H1 { .. } => false,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Ended => SizeHint::with_exact(0),
            Inner::H2(body) => body.size_hint(),
            Inner::H1 { reading, .. } => reading
                .remaining()
                .map_or_else(SizeHint::default, SizeHint::with_exact),
        }
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
