//! Listeners and connection lifecycles: the LLM port (HTTP/1.1 and h2c on the same port, optional
//! TLS with ALPN), the readiness and stats ports, and the graceful drain on shutdown.
//!
//! Drain order matters for "nothing is lost": readiness turns 503 first (load balancers stop
//! sending), then the accept loop stops, then in-flight connections finish within the drain
//! timeout (streams included), and only after every connection task has ended — which finishes
//! every request record — is the access log flushed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// A TLS client that has not finished its handshake by then is not coming.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    let builder = connection_builder();
    loop {
        tokio::select! {
            _ = stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let conn = serve_connection(stream, peer, tls.clone(), proxy.clone(), builder.clone(), &graceful);
                    connections.spawn(conn);
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
    if tokio::time::timeout(drain_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            remaining = connections.len(),
            "drain timeout reached; closing remaining connections"
        );
        proxy.telemetry.mark_drain_aborted();
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
}

fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    proxy: Arc<Proxy>,
    builder: auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let watcher = graceful.watcher();
    async move {
        let _ = stream.set_nodelay(true);
        let service = service_fn(move |request| proxy.clone().handle(request, peer));
        let result = match tls {
            None => {
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                watcher.watch(conn.into_owned()).await
            }
            Some(acceptor) => {
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => {
                        let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%peer, %error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                }
            }
        };
        if let Err(error) = result {
            tracing::debug!(%peer, %error, "connection ended with an error");
        }
    }
}

/// HTTP/1.1 + h2c connections whose clients must send their headers within 30s (slowloris).
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
