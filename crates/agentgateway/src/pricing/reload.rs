//! [`CatalogHandle`]: the price catalog the request path reads, swapped whole when the user's
//! catalog files change. Reading is one atomic load (`ArcSwap`), so pricing never waits on a
//! reload. Files are polled (modification time and length) rather than watched: it needs no
//! platform notifier, works on network and container-mounted files, and a price change taking a
//! second to apply is harmless. A file that fails to load keeps the previous catalog in force and
//! logs a warning once per change, so a half-saved edit never drops prices.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, Guard};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::PriceCatalog;

/// Shortest poll period: `Duration::ZERO` from a config would otherwise spin (or panic in tokio).
const MIN_POLL: Duration = Duration::from_millis(10);

/// A shared, reloadable catalog. Cheap to clone: every clone sees the same current catalog.
#[derive(Debug, Clone)]
pub struct CatalogHandle {
    current: Arc<ArcSwap<PriceCatalog>>,
    /// Prices from the config itself (mock models'), set again over every reload.
    pinned: Arc<PriceCatalog>,
}

/// What a file looked like at the last poll; `None` when it could not be read.
type Fingerprint = Option<(SystemTime, u64)>;

impl CatalogHandle {
    pub fn new(catalog: PriceCatalog) -> Self {
        CatalogHandle {
            current: Arc::new(ArcSwap::from_pointee(catalog)),
            pinned: Arc::default(),
        }
    }

    /// `catalog` with `pinned` over it, now and after every reload of the files.
    pub fn with_pinned(catalog: PriceCatalog, pinned: PriceCatalog) -> Self {
        CatalogHandle {
            current: Arc::new(ArcSwap::from_pointee(catalog.overlaid(&pinned))),
            pinned: Arc::new(pinned),
        }
    }

    /// The catalog in force now.
    pub fn current(&self) -> Guard<Arc<PriceCatalog>> {
        self.current.load()
    }

    /// Polls `files` every `every` until `stop` completes; when any of them changed, loads the
    /// builtin catalog plus all of them again and swaps it in. The files' state is taken now,
    /// so they are assumed to be what the current catalog was loaded from.
    pub fn spawn_reload(
        &self,
        files: Vec<PathBuf>,
        every: Duration,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        let handle = self.clone();
        let files: Arc<[PathBuf]> = files.into();
        let mut seen: Vec<Fingerprint> = files.iter().map(|f| fingerprint_now(f)).collect();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every.max(MIN_POLL));
            ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => break,
                    _ = ticker.tick() => handle.poll(&files, &mut seen).await,
                }
            }
        })
    }

    /// Reloads when any file's fingerprint moved since the last poll.
    async fn poll(&self, files: &Arc<[PathBuf]>, seen: &mut Vec<Fingerprint>) {
        let mut now = Vec::with_capacity(files.len());
        for file in files.iter() {
            now.push(fingerprint(file).await);
        }
        if now == *seen {
            return;
        }
        *seen = now;
        let to_load = Arc::clone(files);
        let pinned = Arc::clone(&self.pinned);
        // Parsing a large LiteLLM table takes milliseconds: keep it off the async workers.
        let load = move || PriceCatalog::load(&to_load).map(|c| c.overlaid(&pinned));
        match tokio::task::spawn_blocking(load).await {
            Ok(Ok(catalog)) => {
                tracing::info!(models = catalog.len(), "price catalog reloaded");
                self.current.store(Arc::new(catalog));
            }
            Ok(Err(e)) => tracing::warn!("price catalog not reloaded, previous prices kept: {e}"),
            Err(e) => tracing::warn!("price catalog reload failed: {e}"),
        }
    }
}

async fn fingerprint(file: &Path) -> Fingerprint {
    let meta = tokio::fs::metadata(file).await.ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn fingerprint_now(file: &Path) -> Fingerprint {
    let meta = std::fs::metadata(file).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}
