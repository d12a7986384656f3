//! The admin port (`config.adminAddr`): JSON over HTTP/1.1 for operators. It serves
//! `GET /config_dump` and, when a database is configured, the virtual-key API under `/v1/keys`.
//!
//! It can mint keys, so it is guarded twice: [`check_exposure`] refuses to start it on a
//! non-loopback address without a token, and with a token every request must present it
//! (`Authorization: Bearer`), compared in constant time over SHA-256 digests so neither the
//! token's bytes nor its length leak through timing. [`Admin::handle`] is the whole API as one
//! function, so it can be driven without a socket; [`serve_admin`] puts it on a listener.

mod error;
mod keys;
mod spend;

#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::{digest, presented_key};
use crate::identity::Identity;
use crate::keys::KeyService;
use error::{json_response, ApiError};

/// Largest accepted request body: a key's JSON is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How long a client may take to send its body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open admin connections may finish after `stop`.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a key has used of its limits, for `GET /v1/keys/{id}`. The gateway implements it with
/// its rate limiter; the admin API only passes the JSON through.
pub trait KeyUsage: Send + Sync {
    fn usage<'a>(&'a self, identity: &'a Identity) -> BoxFuture<'a, serde_json::Value>;
}

/// Everything the admin API serves.
pub struct Admin {
    /// The bearer token every request must present; `None`: open (loopback only).
    pub token: Option<String>,
    /// `None` when no database is configured: the key endpoints answer 501.
    pub keys: Option<Arc<KeyService>>,
    pub usage: Arc<dyn KeyUsage>,
    /// The spend ledger behind `GET /v1/spend`; `None`: cost tracking is off (404).
    pub ledger: Option<Arc<crate::spend::Ledger>>,
    /// The pre-rendered (secret-redacted) config, served as is.
    pub config_dump: Bytes,
}

/// Refuses an admin address reachable from other hosts unless a token guards it.
pub fn check_exposure(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    let has_token = token.is_some_and(|t| !t.trim().is_empty());
    if has_token || addr.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "config.adminAddr {addr} is not a loopback address and no admin token is set: \
         set config.adminToken (or AGW_ADMIN_TOKEN), or listen on 127.0.0.1"
    ))
}

/// Serves `admin` on `listener` until `stop` turns true, then lets open requests finish
/// (briefly) and returns.
pub async fn serve_admin(
    listener: TcpListener,
    admin: Arc<Admin>,
    mut stop: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let builder = crate::server::connection_builder();
    loop {
        tokio::select! {
            _ = crate::server::stopped(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let admin = admin.clone();
                    let service = service_fn(move |request| {
                        let admin = admin.clone();
                        async move { Ok::<_, Infallible>(admin.handle(request).await) }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    connections.spawn(graceful.watch(conn.into_owned()));
                }
                Err(error) => {
                    // Usually EMFILE: back off briefly instead of spinning.
                    tracing::warn!(%error, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        connections.abort_all();
    }
    while connections.join_next().await.is_some() {}
}

// === impl Admin ===

impl Admin {
    /// The whole admin API: authenticate, route, answer. Never fails; errors are responses.
    pub async fn handle<B>(&self, request: Request<B>) -> Response<Full<Bytes>>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.route(request)
            .await
            .unwrap_or_else(|error| error.response())
    }

    async fn route<B>(&self, request: Request<B>) -> Result<Response<Full<Bytes>>, ApiError>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if !self.authorized(request.headers()) {
            return Err(ApiError::unauthorized());
        }
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        match (path.as_str(), path.strip_prefix("/v1/keys/")) {
            ("/config_dump", _) => match method {
                Method::GET => Ok(json_response(StatusCode::OK, self.config_dump.clone())),
                _ => Err(ApiError::method_not_allowed("GET")),
            },
            ("/v1/keys", _) => match method {
                Method::GET => keys::list(self.keys()?).await,
                Method::POST => {
                    let keys = self.keys()?;
                    keys::create(keys, &read_body(request.into_body()).await?).await
                }
                _ => Err(ApiError::method_not_allowed("GET, POST")),
            },
            ("/v1/spend", _) => match method {
                Method::GET => spend::get(self.ledger.as_deref(), request.uri().query()).await,
                _ => Err(ApiError::method_not_allowed("GET")),
            },
            (_, Some(id)) if !id.is_empty() && !id.contains('/') => match method {
                Method::GET => keys::get(self.keys()?, self.usage.as_ref(), id).await,
                Method::PATCH => {
                    let keys = self.keys()?;
                    keys::update(keys, id, &read_body(request.into_body()).await?).await
                }
                Method::DELETE => keys::revoke(self.keys()?, id).await,
                _ => Err(ApiError::method_not_allowed("GET, PATCH, DELETE")),
            },
            _ => Err(ApiError::not_found(
                "no such admin endpoint; try /config_dump or /v1/keys",
            )),
        }
    }

    fn keys(&self) -> Result<&KeyService, ApiError> {
        self.keys.as_deref().ok_or_else(ApiError::keys_disabled)
    }

    /// Without a token the API is open (it is then on loopback, see [`check_exposure`]).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let Some(presented) = bearer(headers) else {
            return false;
        };
        // Digests have a fixed length, so the comparison time says nothing about the token.
        bool::from(digest(presented).ct_eq(&digest(token)))
    }
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("keys", &self.keys.is_some())
            .finish_non_exhaustive()
    }
}

/// The token of `Authorization: Bearer <token>`, if that is what the request sent. The LLM
/// port's parser also reads `x-api-key`; the admin port takes only `Authorization`.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .contains_key(header::AUTHORIZATION)
        .then(|| presented_key(headers))
        .flatten()
}

/// The whole body, at most [`MAX_BODY_BYTES`] (413 beyond) and within [`BODY_TIMEOUT`] (408).
async fn read_body<B>(body: B) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let collected =
        tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect())
            .await
            .map_err(|_| ApiError::timeout())?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(ApiError::too_large(MAX_BODY_BYTES)),
        Err(_) => Err(ApiError::invalid("the request body could not be read")),
    }
}
