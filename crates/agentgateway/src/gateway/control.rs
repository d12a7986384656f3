//! The gateway's control plane: the dynamic key database (opened at start, kept in sync with
//! other replicas sharing it) and the admin API in front of it (keys, usage, `/config_dump`).
//!
//! Kept apart from the request path's assembly because it is the only part that does I/O before
//! serving (opening SQLite) and the only part with its own security rule: an admin API reachable
//! from other hosts must have a token.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::{self, Admin, KeyUsage};
use crate::auth::KeyLookup;
use crate::config::Config;
use crate::identity::Identity;
use crate::keys::{KeyService, DEFAULT_SYNC_INTERVAL};
use crate::limits::RateLimits;
use crate::ratelimit::RateLimiter;

/// What `start` needs to open the key store and serve the admin API.
pub(super) struct ControlPlane {
    database: Option<String>,
    token: Option<String>,
    config_dump: Bytes,
}

impl ControlPlane {
    pub(super) fn from_config(config: &Config) -> Result<ControlPlane, String> {
        let token = config
            .config
            .admin_token
            .as_ref()
            .map(|t| t.expose().to_owned());
        admin::check_exposure(admin_addr(config), token.as_deref())?;
        let dump = crate::config::config_dump(config);
        Ok(ControlPlane {
            database: config.config.database.clone(),
            token,
            config_dump: Bytes::from(dump.to_string()),
        })
    }

    /// Opens (creating on first start) the key database and starts its sync task.
    pub(super) async fn open_keys(
        &self,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<Option<Arc<KeyService>>> {
        let Some(database) = &self.database else {
            return Ok(None);
        };
        let keys = KeyService::open(database)
            .await
            .map_err(|e| std::io::Error::other(format!("config.database {database:?}: {e}")))?;
        keys.spawn_sync(DEFAULT_SYNC_INTERVAL, stop);
        Ok(Some(keys))
    }

    pub(super) fn admin(
        &self,
        keys: Option<Arc<KeyService>>,
        limits: &RateLimits,
        ledger: Option<Arc<crate::spend::Ledger>>,
    ) -> Arc<Admin> {
        Arc::new(Admin {
            token: self.token.clone(),
            keys,
            usage: Arc::new(LimiterUsage(limits.limiter().clone())),
            config_dump: self.config_dump.clone(),
            ledger,
        })
    }
}

/// `config.adminAddr`, or the loopback default.
pub(super) fn admin_addr(config: &Config) -> SocketAddr {
    config
        .config
        .admin_addr
        .unwrap_or_else(|| super::parse(super::DEFAULT_ADMIN_ADDR))
}

/// The dynamic keys as the authenticator sees them.
pub(super) fn key_lookup(keys: &Arc<KeyService>) -> Arc<dyn KeyLookup> {
    keys.cache()
}

pub(super) async fn serve(listener: TcpListener, admin: Arc<Admin>, stop: watch::Receiver<bool>) {
    admin::serve_admin(listener, admin, stop).await;
}

/// A key's usage, read from the same buckets the request path fills.
struct LimiterUsage(Arc<dyn RateLimiter>);

impl KeyUsage for LimiterUsage {
    fn usage<'a>(&'a self, identity: &'a Identity) -> BoxFuture<'a, serde_json::Value> {
        Box::pin(crate::limits::key_usage(self.0.as_ref(), identity))
    }
}
