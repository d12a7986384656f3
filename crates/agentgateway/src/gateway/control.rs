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
use crate::budget::{rfc3339, Window};
use crate::config::Config;
use crate::costing::Costing;
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
        costing: Arc<Costing>,
    ) -> Arc<Admin> {
        Arc::new(Admin {
            token: self.token.clone(),
            keys,
            usage: Arc::new(ControlUsage {
                limiter: limits.limiter().clone(),
                costing: costing.clone(),
            }),
            config_dump: self.config_dump.clone(),
            ledger: Some(costing.ledger.clone()),
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

/// A key's usage: its rate-limit buckets (the ones the request path fills), its spend this hour,
/// day and month (the ledger), and every budget that applies to it (its own, its user's, its
/// team's) with what is left in the current window.
struct ControlUsage {
    limiter: Arc<dyn RateLimiter>,
    costing: Arc<Costing>,
}

impl KeyUsage for ControlUsage {
    fn usage<'a>(&'a self, identity: &'a Identity) -> BoxFuture<'a, serde_json::Value> {
        Box::pin(async move {
            let mut usage = crate::limits::key_usage(self.limiter.as_ref(), identity).await;
            usage["spendUsd"] = self.spend(identity).await;
            usage["budgets"] = self.budgets(identity).await;
            usage
        })
    }
}

impl ControlUsage {
    async fn spend(&self, identity: &Identity) -> serde_json::Value {
        let now = self.costing.clock.unix_now();
        let scope = crate::spend::Scope::Key(identity.id.to_string());
        let mut spend = serde_json::Map::new();
        for window in [Window::Hour, Window::Day, Window::Month] {
            let total = self.costing.ledger.total(&scope, window.start(now)).await;
            let value = match total {
                Ok(total) => serde_json::Value::String(total.normalize().to_string()),
                Err(_) => serde_json::Value::Null,
            };
            spend.insert(window.as_str().to_owned(), value);
        }
        serde_json::Value::Object(spend)
    }

    async fn budgets(&self, identity: &Identity) -> serde_json::Value {
        let Ok(statuses) = self.costing.budgets.statuses(identity).await else {
            return serde_json::Value::Null;
        };
        let money = |d: rust_decimal::Decimal| d.normalize().to_string();
        statuses
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "scope": s.scope,
                    "name": s.name,
                    "window": s.window.as_str(),
                    "limitUsd": money(s.limit_usd),
                    "spentUsd": money(s.spent_usd),
                    "remainingUsd": money(s.remaining_usd),
                    "resetsAt": rfc3339(s.resets_at),
                    "soft": s.soft,
                })
            })
            .collect()
    }
}
