//! Cost tracking's assembly: the price catalog (loaded at build, so `--validate-only` checks
//! the price files), then at start the spend ledger (in the key database when there is one, in
//! memory otherwise), the budgets reading it, and the background tasks (ledger flush every
//! second, catalog reload when its files change).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::budget::{BudgetSpec, Budgets, SystemWallClock, WallClock};
use crate::config::Config;
use crate::costing::Costing;
use crate::keys::KeyService;
use crate::pricing::{CatalogHandle, PriceCatalog};
use crate::server;
use crate::spend::Ledger;

/// How often pending spend is written: a crash loses at most this much.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// How often the price files are checked for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

type BudgetMap = std::collections::HashMap<Arc<str>, Vec<BudgetSpec>>;

pub(super) struct CostPlan {
    catalog: CatalogHandle,
    files: Vec<PathBuf>,
    users: BudgetMap,
    teams: BudgetMap,
    clock: Arc<dyn WallClock>,
}

impl CostPlan {
    pub(super) fn from_config(
        config: &Config,
        clock: Option<Arc<dyn WallClock>>,
    ) -> Result<CostPlan, String> {
        let files: Vec<PathBuf> = config
            .config
            .model_catalog
            .iter()
            .map(PathBuf::from)
            .collect();
        let catalog =
            PriceCatalog::load(&files).map_err(|e| format!("config.modelCatalog: {e}"))?;
        let budgets = &config.llm.policies.budgets;
        let map = |specs: &indexmap::IndexMap<String, Vec<BudgetSpec>>| -> BudgetMap {
            specs
                .iter()
                .map(|(name, list)| (Arc::from(name.as_str()), list.clone()))
                .collect()
        };
        Ok(CostPlan {
            catalog: CatalogHandle::with_pinned(catalog, crate::mock::prices(&config.llm.models)?),
            files,
            users: map(&budgets.users),
            teams: map(&budgets.teams),
            clock: clock.unwrap_or_else(|| Arc::new(SystemWallClock)),
        })
    }

    /// Opens the ledger and starts the background tasks; `stop` ends them (the ledger flushes
    /// once more first).
    pub(super) async fn start(
        self,
        keys: Option<&Arc<KeyService>>,
        stop: &watch::Receiver<bool>,
    ) -> std::io::Result<Arc<Costing>> {
        let ledger = match keys {
            Some(keys) => Ledger::open(keys.store().pool().clone())
                .await
                .map_err(|e| std::io::Error::other(format!("opening the spend ledger: {e}")))?,
            None => Ledger::in_memory(),
        };
        ledger.spawn_flush(FLUSH_EVERY, stopped(stop));
        if !self.files.is_empty() {
            self.catalog
                .spawn_reload(self.files, RELOAD_EVERY, stopped(stop));
        }
        let budgets = Budgets::new(self.users, self.teams, ledger.clone(), self.clock.clone());
        Ok(Arc::new(Costing::new(
            self.catalog,
            ledger,
            Arc::new(budgets),
            self.clock,
        )))
    }
}

fn stopped(stop: &watch::Receiver<bool>) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut stop = stop.clone();
    async move { server::stopped(&mut stop).await }
}
