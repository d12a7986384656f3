//! [`Ledger`]: books finished requests in memory and writes them to the database every second.
//!
//! Two locks with two jobs. A `std` mutex guards the pending buckets: the request path holds it
//! for one hash-map update and never across an await. An async read-write gate makes reads
//! consistent with flushes: a flush holds it (write) from taking its batch until the batch is
//! committed or put back, and [`Ledger::query`] / [`Ledger::total`] hold it (read) while they read
//! the stored rows and then the pending buckets. So every bucket is counted exactly once: either
//! still pending or already stored, never both and never neither.

use std::fmt;
use std::future::Future;
use std::mem;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::SqlitePool;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

use super::pending::{from_pico, hour_of, to_pico, Buckets, Totals};
use super::query::Aggregate;
use super::{store, GroupBy, Scope, SpendKey, SpendRow};

/// The shortest flush period [`Ledger::spawn_flush`] accepts (a zero period would spin).
const MIN_FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// The spend ledger. Share it behind the `Arc` its constructors return.
pub struct Ledger {
    /// `None`: memory only (no `config.database`); everything stays pending.
    pool: Option<SqlitePool>,
    pending: Mutex<Buckets>,
    gate: RwLock<()>,
}

/// A flush's batch while it is being written. If the flush does not reach its commit (an error,
/// or its future dropped mid-way, e.g. at runtime shutdown) the batch goes back to pending on
/// drop, so spend is never lost to a failed or cancelled write.
struct Batch<'a> {
    ledger: &'a Ledger,
    buckets: Option<Buckets>,
}

// === impl Ledger ===

impl Ledger {
    /// Durable ledger in the key database (creates its table if missing).
    pub async fn open(pool: SqlitePool) -> Result<Arc<Ledger>, sqlx::Error> {
        store::create_schema(&pool).await?;
        Ok(Arc::new(Ledger::new(Some(pool))))
    }

    /// Memory only (no `config.database`): same API, nothing survives a restart.
    pub fn in_memory() -> Arc<Ledger> {
        Arc::new(Ledger::new(None))
    }

    fn new(pool: Option<SqlitePool>) -> Ledger {
        Ledger {
            pool,
            pending: Mutex::new(Buckets::default()),
            gate: RwLock::new(()),
        }
    }

    /// Whether flushed spend survives a restart.
    pub fn is_durable(&self) -> bool {
        self.pool.is_some()
    }

    /// Books one finished request at unix time `at` (seconds) into its hour's bucket. Never
    /// blocks on I/O. `cost` is rounded to the nearest pico-USD.
    pub fn record(
        &self,
        at: i64,
        key: &SpendKey,
        cost: Decimal,
        input_tokens: u64,
        output_tokens: u64,
    ) {
        let totals = Totals::one(to_pico(cost), input_tokens, output_tokens);
        self.pending().add(hour_of(at), key, &totals);
    }

    /// Adds every pending bucket to its stored row, in one transaction. On failure the buckets
    /// stay pending (merged with whatever arrived meanwhile) for the next flush. Memory-only
    /// ledgers have nothing to write.
    pub async fn flush(&self) -> Result<(), sqlx::Error> {
        let Some(pool) = &self.pool else {
            return Ok(());
        };
        let _gate = self.gate.write().await;
        let taken = mem::take(&mut *self.pending());
        if taken.is_empty() {
            return Ok(());
        }
        let mut batch = Batch {
            ledger: self,
            buckets: Some(taken),
        };
        if let Some(buckets) = &batch.buckets {
            store::add_batch(pool, buckets).await?;
        }
        // Committed: the rows now hold it. A cancellation inside the commit itself is the one
        // case this cannot tell apart (the batch would be put back and could count twice).
        batch.buckets = None;
        Ok(())
    }

    /// Flushes every `every` until `stop` completes, then flushes once more. Failures are logged
    /// once per outage (the spend stays pending and is retried on the next tick).
    pub fn spawn_flush(
        self: &Arc<Self>,
        every: Duration,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> JoinHandle<()> {
        let ledger = self.clone();
        let every = every.max(MIN_FLUSH_INTERVAL);
        tokio::spawn(async move {
            let mut stop = std::pin::pin!(stop);
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                tokio::select! {
                    _ = &mut stop => break,
                    _ = ticks.tick() => {}
                }
                failing = log_outcome(ledger.flush().await, failing);
            }
            if let Err(error) = ledger.flush().await {
                tracing::error!(%error, "the final spend flush failed: unflushed spend is lost");
            }
        })
    }

    /// Spend grouped by `group_by` over the hour buckets whose start is in `[from, to)`: stored
    /// rows plus what is still pending, most expensive group first.
    pub async fn query(
        &self,
        group_by: GroupBy,
        from: i64,
        to: i64,
    ) -> Result<Vec<SpendRow>, sqlx::Error> {
        let mut aggregate = Aggregate::default();
        if from >= to {
            return Ok(aggregate.into_rows());
        }
        let _gate = self.gate.read().await;
        if let Some(pool) = &self.pool {
            store::fold_range(pool, group_by, from, to, |group, totals| {
                aggregate.add(group, &totals)
            })
            .await?;
        }
        for (key, totals) in self.pending().in_range(from, to) {
            aggregate.add(group_by.of(key), totals);
        }
        Ok(aggregate.into_rows())
    }

    /// Total spend of one scope since `since` (for budgets). `since` is taken down to the start
    /// of its hour: the hour holding `since` counts whole, so a budget errs on the safe side.
    pub async fn total(&self, scope: &Scope, since: i64) -> Result<Decimal, sqlx::Error> {
        let (dimension, value) = scope.parts();
        let since = hour_of(since);
        let _gate = self.gate.read().await;
        let mut sum = match &self.pool {
            Some(pool) => store::sum_scope(pool, dimension, value, since).await?,
            None => Totals::default(),
        };
        for (key, totals) in self.pending().in_range(since, i64::MAX) {
            if dimension.of(key) == value {
                sum.add(totals);
            }
        }
        Ok(from_pico(sum.cost_pico))
    }

    /// The pending buckets. A panic elsewhere while holding the lock leaves the map consistent
    /// (every update is a single insert or add), so a poisoned lock is still usable.
    fn pending(&self) -> MutexGuard<'_, Buckets> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("durable", &self.is_durable())
            .finish_non_exhaustive()
    }
}

// === impl Batch ===

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if let Some(buckets) = self.buckets.take() {
            self.ledger.pending().merge(buckets);
        }
    }
}

/// Logs a flush's result, once per outage; returns whether flushing is now failing.
fn log_outcome(outcome: Result<(), sqlx::Error>, failing: bool) -> bool {
    match outcome {
        Ok(()) if failing => {
            tracing::info!("spend ledger flush recovered");
            false
        }
        Ok(()) => false,
        Err(error) if !failing => {
            tracing::warn!(%error, "spend ledger flush failed; keeping the spend and retrying");
            true
        }
        Err(error) => {
            tracing::debug!(%error, "spend ledger flush still failing");
            true
        }
    }
}
