//! Listeners and connection lifecycles: the LLM port (HTTP/1.1 and h2c on the same port, optional
//! TLS with ALPN), the readiness and stats ports, and the graceful drain on shutdown.
//!
//! On the LLM port HTTP/1 is served by the gateway's own connection loop ([`h1`]), HTTP/2 by
//! hyper: TLS connections whose ALPN picked `h2` go to hyper at once, others are told apart by
//! their first bytes (the HTTP/2 preface, replayed to hyper through [`rewind::Rewind`]).
//!
//! Drain order matters for "nothing is lost": readiness turns 503 first (load balancers stop
//! sending), then the accept loop stops, then in-flight connections finish within the drain
//! timeout (streams included), and only after every connection task has ended — which finishes
//! every request record — is the access log flushed.

mod h1;
pub(crate) use h1::find_end as find_head_end;
mod rewind;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{header, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

/// A TLS client that has not finished its handshake by then is not coming.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What an HTTP/2 client with prior knowledge sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

use crate::exposition;
use crate::metrics::Metrics;
use crate::proxy::Proxy;

/// Serves the LLM API until `stop` flips, then drains. Returns once every connection has ended.
pub async fn serve_llm(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    mut stop: watch::Receiver<bool>,
    drain_timeout: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let conn = Connection {
                        peer,
                        proxy: proxy.clone(),
                        stop: stop.clone(),
                        h2: graceful.watcher(),
                    };
                    connections.spawn(conn.serve(stream, tls.clone()));
                }
                Err(error) => {
                    // Usually EMFILE: back off briefly instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    // HTTP/2 connections hear of the drain from `graceful`, HTTP/1 ones from `stop`.
    let drain = async {
        graceful.shutdown().await;
        while connections.join_next().await.is_some() {}
    };
    if tokio::time::timeout(drain_timeout, drain).await.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "drain timeout reached; closing remaining connections"
        );
        proxy.telemetry.mark_drain_aborted();
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
}

/// One accepted connection on the LLM port, before its protocol is known.
struct Connection {
    peer: SocketAddr,
    proxy: Arc<Proxy>,
    stop: watch::Receiver<bool>,
    h2: Watcher,
}

/// The protocol a connection's first bytes announce.
#[derive(Debug, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

impl Connection {
    async fn serve(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let _ = stream.set_nodelay(true);
        let Some(acceptor) = tls else {
            return self.serve_sniffed(stream).await;
        };
        let peer = self.peer;
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) if stream.get_ref().1.alpn_protocol() == Some(b"h2") => {
                self.serve_h2(stream).await
            }
            Ok(Ok(stream)) => self.serve_sniffed(stream).await,
            Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        }
    }

    /// Reads the first bytes (under the head timeout), then serves HTTP/2 prior knowledge with
    /// hyper or anything else with the gateway's HTTP/1 loop, starting from those bytes.
    async fn serve_sniffed<S>(self, mut stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let deadline = Instant::now() + h1::HEAD_TIMEOUT;
        let mut buf = BytesMut::with_capacity(h1::READ_SIZE);
        let peer = self.peer;
        match tokio::time::timeout_at(deadline, sniff(&mut stream, &mut buf)).await {
            Ok(Ok(Protocol::Http2)) => {
                self.serve_h2(rewind::Rewind::new(buf.freeze(), stream))
                    .await
            }
            Ok(Ok(Protocol::Http1)) => {
                // HTTP/1 hears of the drain from `stop`; the HTTP/2 watcher would only make the
                // graceful shutdown wait for this connection too.
                drop(self.h2);
                h1::serve(stream, buf, deadline, self.proxy, peer, self.stop).await
            }
            Ok(Err(error)) => tracing::debug!(%peer, %error, "connection ended before a request"),
            Err(_) => tracing::debug!(%peer, "no request within the head timeout"),
        }
    }

    async fn serve_h2<S>(self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (proxy, peer) = (self.proxy, self.peer);
        let service = service_fn(move |request| proxy.clone().handle(request, peer));
        let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(stream), service);
        if let Err(error) = self.h2.watch(conn).await {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}

/// Reads until the bytes are known to be, or not to be, the HTTP/2 preface.
async fn sniff<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> std::io::Result<Protocol> {
    loop {
        let seen = buf
            .get(..buf.len().min(H2_PREFACE.len()))
            .unwrap_or_default();
        if !H2_PREFACE.starts_with(seen) {
            return Ok(Protocol::Http1);
        }
        if seen.len() == H2_PREFACE.len() {
            return Ok(Protocol::Http2);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
}

/// hyper HTTP/1.1 + h2c connections (admin port, mock provider) whose clients must send their
/// headers within 30s (slowloris).
pub(crate) fn connection_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    builder
}

/// Resolves once `stop` is true (or its sender is gone). The borrow guard never crosses an await.
pub(crate) async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// A tiny HTTP/1.1 server for the side ports; `respond` maps a request to a response.
pub async fn serve_side<F>(listener: TcpListener, mut stop: watch::Receiver<bool>, respond: F)
where
    F: Fn(&http::Request<Incoming>) -> Response<Full<Bytes>> + Send + Sync + 'static,
{
    let respond = Arc::new(respond);
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Usually EMFILE: back off briefly instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let respond = respond.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let response = respond(&request);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
}

/// `/healthz/ready`: 200 while serving, 503 while starting or draining.
pub fn readiness(
    ready: Arc<AtomicBool>,
) -> impl Fn(&http::Request<Incoming>) -> Response<Full<Bytes>> {
    move |request| {
        if request.uri().path() != "/healthz/ready" {
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        if ready.load(Ordering::Acquire) {
            plain(StatusCode::OK, "ready\n")
        } else {
            plain(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
        }
    }
}

/// `/metrics` and `/stats/prometheus`, in the format the scraper asks for.
pub fn stats(
    metrics: Arc<dyn AsMetrics>,
) -> impl Fn(&http::Request<Incoming>) -> Response<Full<Bytes>> {
    move |request| match request.uri().path() {
        "/metrics" | "/stats/prometheus" => {
            let format = exposition::negotiate(request.headers().get(header::ACCEPT));
            let body = metrics.metrics().encode(format);
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static(exposition::content_type(format)),
            );
            response
        }
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Lets the stats server hold the telemetry without knowing its type.
pub trait AsMetrics: Send + Sync {
    fn metrics(&self) -> &Metrics;
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    response
}
