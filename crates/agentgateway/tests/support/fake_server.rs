//! The HTTP side every fake provider shares: a real listener on `127.0.0.1:0` serving HTTP/1.1 and
//! h2c, a log of every request as it arrived (tests assert on what the gateway sent), and a
//! per-fake `respond` function that decides the answer. Dropping the server closes its listener
//! and its open connections, so a test can make an upstream vanish mid-stream.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

pub type Body = BoxBody<Bytes, io::Error>;
type Log = Arc<Mutex<Vec<RecordedRequest>>>;

/// One request as the fake saw it, recorded before it was answered.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: Method,
    /// Path and query, e.g. `/v1/chat/completions?x=1`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body parsed as JSON; panics if it is not JSON, since every provider request body is.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("recorded request body is JSON")
    }

    /// A header's value as text, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The path without its query: what a fake routes on.
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or_default()
    }
}

/// A running fake; the server stops (and drops its open connections) when this is dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    log: Log,
    server: JoinHandle<()>,
}

impl FakeServer {
    /// Binds 127.0.0.1:0 and answers every request with `respond` in a spawned task.
    pub async fn start<F, Fut>(respond: F) -> FakeServer
    where
        F: Fn(RecordedRequest) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake provider listener");
        let addr = listener.local_addr().expect("fake provider local addr");
        let log = Log::default();
        let server = tokio::spawn(accept_loop(listener, log.clone(), respond));
        FakeServer { addr, log, server }
    }

    /// Every request received so far, in order (refused ones included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn request_count(&self) -> usize {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn accept_loop<F, Fut>(listener: TcpListener, log: Log, respond: F)
where
    F: Fn(RecordedRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    // Connections live in this set so that aborting the server task also closes them; a test
    // that drops the fake mid-stream then sees the upstream go away.
    let mut connections = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        while connections.try_join_next().is_some() {}
        connections.spawn(serve_connection(stream, log.clone(), respond.clone()));
    }
}

async fn serve_connection<F, Fut>(stream: TcpStream, log: Log, respond: F)
where
    F: Fn(RecordedRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    // Streaming tests check that each event reaches the client promptly; Nagle would batch them.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| handle(req, log.clone(), respond.clone()));
    // Errors here are client disconnects or a deliberate `cut-stream` abort: nothing to report.
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle<F, Fut>(
    req: Request<Incoming>,
    log: Log,
    respond: F,
) -> Result<Response<Body>, Infallible>
where
    F: Fn(RecordedRequest) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let recorded = RecordedRequest {
        method: parts.method,
        path,
        headers: parts.headers,
        body,
    };
    log.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(recorded.clone());
    Ok(respond(recorded).await)
}
