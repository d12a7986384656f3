//! Durable virtual keys: [`KeyStore`], a SQLite database (sqlx) holding one row per key and a
//! one-row `key_generation` counter that every write bumps in its own transaction.
//!
//! Durability first: WAL with `synchronous=FULL`, so a committed key survives a crash, and a busy
//! timeout so two gateway processes can share the file. The queries are plain SQL with `$n`
//! placeholders and no SQLite-only functions, so a Postgres backend can reuse them; only the
//! connection options are SQLite's. Only the SHA-256 of a secret is stored, never the secret.
//!
//! Every write transaction starts by bumping the generation. That takes the write lock before
//! anything is read, so a read-modify-write (PATCH) can neither lose a concurrent update nor fail
//! on a stale snapshot, and it tells every cache (in this process or another) that keys changed.
//!
//! The schema is versioned: a file is created at version 1 and brought up to [`SCHEMA_VERSION`]
//! by `MIGRATIONS` when opened, so a new file and one an older gateway wrote end up alike.

use std::str::FromStr;
use std::time::Duration;

use rand::distr::{Alphanumeric, SampleString};
use rand::RngCore;
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};
use tokio::sync::Mutex;

use super::record::{budgets_json, CreatedKey, KeyPatch, KeyRecord, KeySecret, NewKey};
use crate::auth::{digest, unix_now, KeyDigest};
use crate::budget::BudgetSpec;
use crate::identity::{KeyLimits, ModelPatterns};

/// The schema this code reads and writes. A newer database is refused rather than misread.
pub const SCHEMA_VERSION: i64 = 2;

/// How many times an open that found the database busy is tried again.
const OPEN_ATTEMPTS: u32 = 8;

/// SQLite's `SQLITE_BUSY` ("database is locked"), in any of its extended forms.
fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|code| code.parse::<i64>().ok())
            .is_some_and(|code| code & 0xff == 5),
        _ => false,
    }
}

/// How long a write waits for another process holding the database's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Secret format: a recognisable prefix (secret scanners match it) and ~238 random bits.
const SECRET_PREFIX: &str = "sk-agw-";
const SECRET_RANDOM_CHARS: usize = 40;

// The version-1 layout. Each statement is idempotent and runs on its own, so two processes
// starting on a new file at once both succeed (a transaction could fail on a stale read snapshot
// instead). Later columns come from `MIGRATIONS`, on new files too, so there is one layout.
// `user_name`, not `user`: `user` is a reserved word in Postgres.
const SCHEMA: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
    "INSERT INTO schema_version (id, version) VALUES (1, 1) ON CONFLICT (id) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS key_generation (id INTEGER PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO key_generation (id, value) VALUES (1, 0) ON CONFLICT (id) DO NOTHING",
    "CREATE TABLE IF NOT EXISTS virtual_keys (
        id TEXT PRIMARY KEY,
        key_hash TEXT NOT NULL UNIQUE,
        key_hint TEXT NOT NULL,
        name TEXT NOT NULL,
        user_name TEXT,
        team TEXT,
        metadata TEXT NOT NULL,
        allowed_models TEXT,
        rpm BIGINT,
        tpm BIGINT,
        tpd BIGINT,
        max_parallel BIGINT,
        expires_at BIGINT,
        revoked BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
];

// Each step takes the database from version `from` to `from + 1`. Its statements need not be
// idempotent (SQLite has no `ADD COLUMN IF NOT EXISTS`): `migrate`'s version guard runs each
// step once per database, however many processes open it at once. Only columns are added, with
// NULL for old rows, so a gateway still running the older code keeps working on the file until
// it restarts (its statements name their columns); on restart it refuses the newer version.
const MIGRATIONS: [(i64, &[&str]); 1] = [
    // 2: the key's own budgets, a JSON array of `{"usd","window","soft"}`; NULL: none.
    (1, &["ALTER TABLE virtual_keys ADD COLUMN budgets TEXT"]),
];

const CLAIM_MIGRATION: &str =
    "UPDATE schema_version SET version = $1 WHERE id = 1 AND version = $2";

/// Column order shared by every SELECT, the INSERT and the UPDATE (`$1` is always the id).
const COLUMNS: &str = "id, key_hash, key_hint, name, user_name, team, metadata, allowed_models, \
                       rpm, tpm, tpd, max_parallel, expires_at, revoked, created_at, updated_at, \
                       budgets";

const INSERT: &str = "INSERT INTO virtual_keys (id, key_hash, key_hint, name, user_name, team, \
    metadata, allowed_models, rpm, tpm, tpd, max_parallel, expires_at, revoked, created_at, \
    updated_at, budgets) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
    $15, $16, $17)";

const UPDATE: &str = "UPDATE virtual_keys SET key_hash = $2, key_hint = $3, name = $4, \
    user_name = $5, team = $6, metadata = $7, allowed_models = $8, rpm = $9, tpm = $10, \
    tpd = $11, max_parallel = $12, expires_at = $13, revoked = $14, created_at = $15, \
    updated_at = $16, budgets = $17 WHERE id = $1";

const BUMP: &str = "UPDATE key_generation SET value = value + 1 WHERE id = 1";

/// Why a store operation failed. `NotFound` and `Revoked` are the caller's doing; the rest are
/// the database's (their text carries no key material: values are always bound, never inlined).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no key with this id")]
    NotFound,
    #[error("the key is revoked")]
    Revoked,
    #[error("the database has schema version {found}; this gateway knows up to {SCHEMA_VERSION}")]
    SchemaTooNew { found: i64 },
    #[error("stored key {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// The key database. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct KeyStore {
    pool: SqlitePool,
    /// Serialises this process's writes: each is one short transaction, and queueing them here
    /// keeps them off SQLite's busy-wait (which is for other processes).
    writes: Mutex<()>,
}

// === impl KeyStore ===

impl KeyStore {
    /// The connection pool, shared with the spend ledger (same database file).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Opens `db` (a file path or a `sqlite:` URL), creating the file and schema if needed.
    pub async fn open(db: &str) -> Result<KeyStore, StoreError> {
        // Processes starting together on one file can see SQLITE_BUSY without the busy timeout
        // helping (switching a new file to WAL, or a read lock upgraded to a write): such an
        // open is simply tried again, as the work it does is idempotent.
        let mut attempt = 0;
        loop {
            match Self::open_once(db).await {
                Err(StoreError::Database(e)) if is_busy(&e) && attempt < OPEN_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(25 * u64::from(attempt))).await;
                }
                result => return result,
            }
        }
    }

    async fn open_once(db: &str) -> Result<KeyStore, StoreError> {
        let options = if db.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(db)?
        } else {
            SqliteConnectOptions::new().filename(db)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        for statement in SCHEMA {
            sqlx::query(statement).execute(&pool).await?;
        }
        migrate(&pool).await?;
        let found: i64 = sqlx::query_scalar("SELECT version FROM schema_version WHERE id = 1")
            .fetch_one(&pool)
            .await?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew { found });
        }
        Ok(KeyStore {
            pool,
            writes: Mutex::new(()),
        })
    }

    /// Closes every connection (checkpointing the WAL); later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates a key with a fresh secret. The secret is in the result and nowhere else.
    pub async fn create(&self, new: &NewKey) -> Result<CreatedKey, StoreError> {
        let secret = generate_secret();
        let now = unix_now();
        let record = KeyRecord {
            id: generate_id(),
            digest: digest(&secret),
            hint: hint_of(&secret),
            name: new.name.clone(),
            user: new.user.clone(),
            team: new.team.clone(),
            metadata: new.metadata.clone(),
            allowed_models: new.allowed_models.clone(),
            limits: new.limits,
            budgets: new.budgets.clone(),
            expires_at: new.expires_at,
            revoked: false,
            created_at: now,
            updated_at: now,
        };
        let _serial = self.writes.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(BUMP).execute(&mut *tx).await?;
        bind_record(sqlx::query(INSERT), &record)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(CreatedKey {
            record,
            secret: KeySecret::new(secret),
        })
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM virtual_keys ORDER BY created_at, id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(record_from_row).collect()
    }

    pub async fn get(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM virtual_keys WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Applies `patch` to a key that is not revoked.
    pub async fn update(&self, id: &str, patch: &KeyPatch) -> Result<KeyRecord, StoreError> {
        self.modify(id, |record| {
            if record.revoked {
                return Err(StoreError::Revoked);
            }
            record.apply(patch);
            Ok(true)
        })
        .await
    }

    /// Revokes a key. Revoking a revoked key changes nothing and is not an error.
    pub async fn revoke(&self, id: &str) -> Result<KeyRecord, StoreError> {
        self.modify(id, |record| {
            Ok(!std::mem::replace(&mut record.revoked, true))
        })
        .await
    }

    /// The change counter: it moves on every committed write, from any process.
    pub async fn generation(&self) -> Result<i64, StoreError> {
        let value = sqlx::query_scalar("SELECT value FROM key_generation WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(value)
    }

    /// Keys that may authenticate (not revoked; expiry is the authenticator's check). A row that
    /// cannot be read is left out with a warning: that key is refused rather than the whole load.
    pub async fn load_active(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM virtual_keys WHERE revoked = FALSE");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        let records = rows.iter().filter_map(|row| {
            record_from_row(row)
                .inspect_err(|error| tracing::warn!(%error, "skipping an unreadable key"))
                .ok()
        });
        Ok(records.collect())
    }

    /// A read-modify-write of one key in one transaction. `change` returns whether it changed
    /// anything; if not (or on error) the transaction, generation bump included, is rolled back.
    async fn modify<F>(&self, id: &str, change: F) -> Result<KeyRecord, StoreError>
    where
        F: FnOnce(&mut KeyRecord) -> Result<bool, StoreError>,
    {
        let _serial = self.writes.lock().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query(BUMP).execute(&mut *tx).await?;
        let mut record = select_for_write(&mut tx, id).await?;
        if !change(&mut record)? {
            return Ok(record);
        }
        record.updated_at = unix_now().max(record.updated_at);
        bind_record(sqlx::query(UPDATE), &record)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(record)
    }
}

/// Runs every migration step the database still needs, each in its own transaction.
async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    for (from, statements) in MIGRATIONS {
        let mut tx = pool.begin().await?;
        // The guard is the transaction's first statement and a write, so it waits for the write
        // lock before reading anything; it moves the version only if it still is `from`. Of two
        // processes migrating at once, one claims the step, the other then finds the version
        // moved and skips it. Dropping `tx` unclaimed rolls it back.
        let claimed = sqlx::query(CLAIM_MIGRATION)
            .bind(from + 1)
            .bind(from)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if claimed == 0 {
            continue;
        }
        for statement in statements {
            sqlx::query(statement).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        tracing::info!(version = from + 1, "key database schema migrated");
    }
    Ok(())
}

async fn select_for_write(
    tx: &mut Transaction<'static, Sqlite>,
    id: &str,
) -> Result<KeyRecord, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM virtual_keys WHERE id = $1");
    let row = sqlx::query(&sql).bind(id).fetch_optional(&mut **tx).await?;
    record_from_row(&row.ok_or(StoreError::NotFound)?)
}

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>;

/// Binds `record` in [`COLUMNS`] order.
fn bind_record<'q>(query: Query<'q>, record: &KeyRecord) -> Query<'q> {
    let allowed_models = record
        .allowed_models
        .as_ref()
        .map(|patterns| Value::from(patterns.as_strings()).to_string());
    let limit = |value: Option<u64>| value.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    query
        .bind(record.id.clone())
        .bind(hex::encode(record.digest))
        .bind(record.hint.clone())
        .bind(record.name.clone())
        .bind(record.user.clone())
        .bind(record.team.clone())
        .bind(Value::Object(record.metadata.clone()).to_string())
        .bind(allowed_models)
        .bind(limit(record.limits.rpm))
        .bind(limit(record.limits.tpm))
        .bind(limit(record.limits.tpd))
        .bind(limit(record.limits.max_parallel))
        .bind(record.expires_at)
        .bind(record.revoked)
        .bind(record.created_at)
        .bind(record.updated_at)
        .bind((!record.budgets.is_empty()).then(|| budgets_json(&record.budgets).to_string()))
}

fn record_from_row(row: &SqliteRow) -> Result<KeyRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        id: id.clone(),
        reason,
    };
    let digest = parse_digest(&row.try_get::<String, _>("key_hash")?).map_err(&corrupt)?;
    let metadata: Map<String, Value> = serde_json::from_str(&row.try_get::<String, _>("metadata")?)
        .map_err(|e| corrupt(format!("metadata: {e}")))?;
    let allowed_models = row
        .try_get::<Option<String>, _>("allowed_models")?
        .map(|text| parse_models(&text))
        .transpose()
        .map_err(&corrupt)?;
    let limit = |column: &str| -> Result<Option<u64>, StoreError> {
        let value: Option<i64> = row.try_get(column)?;
        value
            .map(|v| u64::try_from(v).map_err(|_| corrupt(format!("{column}: negative"))))
            .transpose()
    };
    let limits = KeyLimits {
        rpm: limit("rpm")?,
        tpm: limit("tpm")?,
        tpd: limit("tpd")?,
        max_parallel: limit("max_parallel")?,
    };
    let budgets = row
        .try_get::<Option<String>, _>("budgets")?
        .map(|text| parse_budgets(&text))
        .transpose()
        .map_err(&corrupt)?
        .unwrap_or_default();
    Ok(KeyRecord {
        digest,
        hint: row.try_get("key_hint")?,
        name: row.try_get("name")?,
        user: row.try_get("user_name")?,
        team: row.try_get("team")?,
        metadata,
        allowed_models,
        limits,
        budgets,
        expires_at: row.try_get("expires_at")?,
        revoked: row.try_get("revoked")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        id,
    })
}

fn parse_digest(text: &str) -> Result<KeyDigest, String> {
    let bytes = hex::decode(text).map_err(|e| format!("key_hash: {e}"))?;
    KeyDigest::try_from(bytes).map_err(|_| "key_hash: not a SHA-256 digest".to_owned())
}

fn parse_models(text: &str) -> Result<ModelPatterns, String> {
    let list: Vec<String> =
        serde_json::from_str(text).map_err(|e| format!("allowed_models: {e}"))?;
    ModelPatterns::parse(&list).map_err(|e| format!("allowed_models{e}"))
}

/// A stored budget list. A budget of zero or less would refuse every request: that row was not
/// written by this code, so it is refused like any other unreadable one.
fn parse_budgets(text: &str) -> Result<Vec<BudgetSpec>, String> {
    let budgets: Vec<BudgetSpec> =
        serde_json::from_str(text).map_err(|e| format!("budgets: {e}"))?;
    match budgets.iter().position(|b| b.usd <= Decimal::ZERO) {
        Some(i) => Err(format!("budgets[{i}].usd: not positive")),
        None => Ok(budgets),
    }
}

/// `sk-agw-` + 40 base62 chars from the thread-local CSPRNG.
fn generate_secret() -> String {
    let random = Alphanumeric.sample_string(&mut rand::rng(), SECRET_RANDOM_CHARS);
    format!("{SECRET_PREFIX}{random}")
}

/// `key_` + 16 lowercase hex chars (64 random bits: ids are names, not secrets).
fn generate_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("key_{}", hex::encode(bytes))
}

/// `sk-agw-…` + the last 4 chars: enough to recognise a key, useless to guess it.
fn hint_of(secret: &str) -> String {
    let tail = secret.len().saturating_sub(4);
    format!("{SECRET_PREFIX}…{}", secret.get(tail..).unwrap_or(""))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn secrets_ids_and_hints_have_their_shape() {
        let secret = generate_secret();
        let random = secret.strip_prefix("sk-agw-").unwrap();
        assert_eq!(random.len(), 40);
        assert!(random.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(secret, generate_secret());
        let id = generate_id();
        let hex_part = id.strip_prefix("key_").unwrap();
        assert_eq!(hex_part.len(), 16);
        assert!(hex_part
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_eq!(hint_of("sk-agw-abcdWXYZ"), "sk-agw-…WXYZ");
    }
}
