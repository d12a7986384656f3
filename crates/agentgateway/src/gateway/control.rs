//! TEMPORARY stub while the admin API lands.
use crate::config::Config;
use crate::limits::RateLimits;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
pub(super) struct ControlPlane;
pub(super) struct KeyService;
impl ControlPlane {
    pub(super) fn from_config(_config: &Config) -> Result<ControlPlane, String> {
        Ok(ControlPlane)
    }
    pub(super) async fn open_keys(
        &self,
        _stop: watch::Receiver<bool>,
    ) -> std::io::Result<Option<Arc<KeyService>>> {
        Ok(None)
    }
    pub(super) fn admin(&self, _keys: Option<Arc<KeyService>>, _limits: &RateLimits) -> Arc<()> {
        Arc::new(())
    }
}
pub(super) fn admin_addr(config: &Config) -> SocketAddr {
    config
        .config
        .admin_addr
        .unwrap_or_else(|| super::parse(super::DEFAULT_ADMIN_ADDR))
}
pub(super) fn key_lookup(_keys: &Arc<KeyService>) -> Arc<dyn crate::auth::KeyLookup> {
    unreachable!()
}
pub(super) async fn serve(_listener: TcpListener, _admin: Arc<()>, _stop: watch::Receiver<bool>) {}
