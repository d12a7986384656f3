//! Dynamic virtual keys: created, changed and revoked at run time through the admin API, stored
//! in SQLite ([`store::KeyStore`]) and served to the request path from memory
//! ([`cache::KeyCache`], a [`crate::auth::KeyLookup`]).
//!
//! [`KeyService`] ties the two together and owns the one consistency rule: the cache reflects
//! the database. A write made through it reloads the cache before it returns (so a revocation
//! here is effective at once); writes from another gateway process sharing the file are found by
//! [`KeyService::spawn_sync`], which polls the store's generation counter. Reload failures keep
//! the last good cache and are retried: a database hiccup never logs everyone out.

pub mod cache;
pub mod record;
pub mod store;
pub mod validate;

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Mutex};
use tokio::task::JoinHandle;

pub use cache::KeyCache;
pub use record::{CreatedKey, KeyPatch, KeyRecord, KeySecret, LimitsPatch, NewKey};
pub use store::{KeyStore, StoreError};

/// How often [`KeyService::spawn_sync`] looks for other processes' writes by default.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(250);

/// The store plus its in-memory cache.
pub struct KeyService {
    store: KeyStore,
    cache: Arc<KeyCache>,
    /// The generation the cache reflects (`None` before the first load). Writes and reloads both
    /// hold this lock, so the cache always ends up showing the newest committed write.
    loaded: Mutex<Option<i64>>,
}

// === impl KeyService ===

impl KeyService {
    /// Opens the database (see [`KeyStore::open`]) and loads the cache.
    pub async fn open(db: &str) -> Result<Arc<KeyService>, StoreError> {
        let service = KeyService {
            store: KeyStore::open(db).await?,
            cache: Arc::new(KeyCache::new()),
            loaded: Mutex::new(None),
        };
        service.refresh().await?;
        Ok(Arc::new(service))
    }

    /// The lookup to hand to `auth::Authenticator::with_dynamic`.
    pub fn cache(&self) -> Arc<KeyCache> {
        self.cache.clone()
    }

    pub fn store(&self) -> &KeyStore {
        &self.store
    }

    pub async fn create(&self, new: &NewKey) -> Result<CreatedKey, StoreError> {
        let mut loaded = self.loaded.lock().await;
        let created = self.store.create(new).await?;
        self.after_write(&mut loaded, &created.record).await;
        Ok(created)
    }

    pub async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        self.store.list().await
    }

    pub async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        self.store.get(id).await
    }

    pub async fn update(&self, id: &str, patch: &KeyPatch) -> Result<KeyRecord, StoreError> {
        let mut loaded = self.loaded.lock().await;
        let record = self.store.update(id, patch).await?;
        self.after_write(&mut loaded, &record).await;
        Ok(record)
    }

    pub async fn revoke(&self, id: &str) -> Result<KeyRecord, StoreError> {
        let mut loaded = self.loaded.lock().await;
        let record = self.store.revoke(id).await?;
        self.after_write(&mut loaded, &record).await;
        Ok(record)
    }

    /// Reloads the cache if the database changed since the last load; returns whether it did.
    pub async fn refresh(&self) -> Result<bool, StoreError> {
        let mut loaded = self.loaded.lock().await;
        self.reload(&mut loaded).await
    }

    /// Polls the generation every `every` (see [`DEFAULT_SYNC_INTERVAL`]) and reloads on change,
    /// until `stop` turns true. Failures are logged once per outage and retried on the next tick.
    pub fn spawn_sync(
        self: &Arc<Self>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> JoinHandle<()> {
        let service = self.clone();
        // `interval` panics on zero; a zero from config means "as often as is sane".
        let every = every.max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = crate::server::stopped(&mut stop) => break,
                    _ = ticks.tick() => {}
                }
                match service.refresh().await {
                    Ok(_) if failing => {
                        failing = false;
                        tracing::info!("key cache sync recovered");
                    }
                    Ok(_) => {}
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "key cache sync failed; keeping the last keys and retrying");
                    }
                    Err(error) => tracing::debug!(%error, "key cache sync still failing"),
                }
            }
        })
    }

    /// Closes the database.
    pub async fn close(&self) {
        self.store.close().await;
    }

    async fn reload(&self, loaded: &mut Option<i64>) -> Result<bool, StoreError> {
        // Generation first, rows second: the rows are then at least that new, so a write racing
        // this load is at worst loaded twice, never missed.
        let generation = self.store.generation().await?;
        if *loaded == Some(generation) {
            return Ok(false);
        }
        let records = self.store.load_active().await?;
        self.cache.replace(&records);
        *loaded = Some(generation);
        Ok(true)
    }

    /// After a committed write: reload, or at least apply this record so the change (above all a
    /// revocation) is effective now; the sync loop completes the reload later.
    async fn after_write(&self, loaded: &mut Option<i64>, record: &KeyRecord) {
        if let Err(error) = self.reload(loaded).await {
            tracing::warn!(%error, key = %record.id, "key cache reload after a write failed; applied the change alone");
            self.cache.apply(record);
        }
    }
}
