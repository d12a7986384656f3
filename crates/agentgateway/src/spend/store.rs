//! The `spend_hourly` table, in the key database: one row per (hour start, key id, user, team,
//! provider, model) holding that hour's request count, input and output tokens, and cost.
//!
//! Cost is an integer of pico-USD (`cost_pico`), never a float or a decimal string: integers add
//! exactly in SQL, so a flush is a pure additive upsert (`value = value + excluded.value`), which
//! needs no read first and stays right when several gateway processes share the file. A row
//! holds up to `i64::MAX` pico-USD, about 9.2 million USD per booking per hour. SQLite would turn
//! an integer overflow into a float; the `CHECK` constraints refuse that instead, so the flush
//! fails loudly and keeps its batch rather than storing an inexact number. Reads are summed in
//! Rust (`i128`), never with SQL `SUM`.
//!
//! Like the key store, the SQL is plain (`$n` placeholders, `ON CONFLICT` upsert) so that a
//! Postgres backend could reuse it.

use futures_util::TryStreamExt;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::pending::{Buckets, Totals};
use super::GroupBy;

// Idempotent, one statement each, so two processes starting on a new file both succeed.
const SCHEMA: [&str; 1] = ["CREATE TABLE IF NOT EXISTS spend_hourly (
    hour_start BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    team TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    requests BIGINT NOT NULL CHECK (requests BETWEEN 0 AND 9223372036854775807),
    input_tokens BIGINT NOT NULL CHECK (input_tokens BETWEEN 0 AND 9223372036854775807),
    output_tokens BIGINT NOT NULL CHECK (output_tokens BETWEEN 0 AND 9223372036854775807),
    cost_pico BIGINT NOT NULL
        CHECK (cost_pico BETWEEN -9223372036854775807 AND 9223372036854775807),
    PRIMARY KEY (hour_start, key_id, user_name, team, provider, model)
)"];

/// Adds a bucket to its row. Every sum saturates at i64::MAX: one absurd usage number (a buggy
/// upstream) must pin its own row at the maximum, not fail every later flush (an overflowing
/// SQLite sum turns into a float, which the CHECKs refuse).
const UPSERT: &str = "INSERT INTO spend_hourly (hour_start, key_id, user_name, team, provider, \
    model, requests, input_tokens, output_tokens, cost_pico) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
    ON CONFLICT (hour_start, key_id, user_name, team, provider, model) DO UPDATE SET \
    requests = CASE WHEN spend_hourly.requests > 9223372036854775807 - excluded.requests \
        THEN 9223372036854775807 ELSE spend_hourly.requests + excluded.requests END, \
    input_tokens = CASE WHEN spend_hourly.input_tokens > 9223372036854775807 - excluded.input_tokens \
        THEN 9223372036854775807 ELSE spend_hourly.input_tokens + excluded.input_tokens END, \
    output_tokens = CASE WHEN spend_hourly.output_tokens > 9223372036854775807 - excluded.output_tokens \
        THEN 9223372036854775807 ELSE spend_hourly.output_tokens + excluded.output_tokens END, \
    cost_pico = CASE WHEN spend_hourly.cost_pico > 9223372036854775807 - excluded.cost_pico \
        THEN 9223372036854775807 ELSE spend_hourly.cost_pico + excluded.cost_pico END";

/// Creates the table if it is missing.
pub async fn create_schema(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    for statement in SCHEMA {
        sqlx::query(statement).execute(pool).await?;
    }
    Ok(())
}

/// Adds every bucket of `batch` to its row, in one transaction: all of it or none of it.
pub async fn add_batch(pool: &SqlitePool, batch: &Buckets) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for (hour, key, totals) in batch.iter() {
        sqlx::query(UPSERT)
            .bind(hour)
            .bind(&*key.key_id)
            .bind(&*key.user)
            .bind(&*key.team)
            .bind(&*key.provider)
            .bind(&*key.model)
            .bind(to_i64(totals.requests))
            .bind(to_i64(totals.input_tokens))
            .bind(to_i64(totals.output_tokens))
            .bind(cost_to_i64(totals.cost_pico))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Calls `add(group, totals)` for every stored row whose hour start is in `[from, to)`, streaming
/// (a month of rows is never held at once).
pub async fn fold_range(
    pool: &SqlitePool,
    group_by: GroupBy,
    from: i64,
    to: i64,
    mut add: impl FnMut(&str, Totals),
) -> Result<(), sqlx::Error> {
    // The column comes from the enum, never from the request.
    let sql = format!(
        "SELECT {} AS grp, requests, input_tokens, output_tokens, cost_pico FROM spend_hourly \
         WHERE hour_start >= $1 AND hour_start < $2",
        column(group_by)
    );
    let mut rows = sqlx::query(&sql).bind(from).bind(to).fetch(pool);
    while let Some(row) = rows.try_next().await? {
        add(row.try_get("grp")?, totals_of(&row)?);
    }
    Ok(())
}

/// The sum of the stored rows of one scope whose hour start is `since` or later.
pub async fn sum_scope(
    pool: &SqlitePool,
    dimension: GroupBy,
    value: &str,
    since: i64,
) -> Result<Totals, sqlx::Error> {
    let sql = format!(
        "SELECT requests, input_tokens, output_tokens, cost_pico FROM spend_hourly \
         WHERE {} = $1 AND hour_start >= $2",
        column(dimension)
    );
    let mut rows = sqlx::query(&sql).bind(value).bind(since).fetch(pool);
    let mut sum = Totals::default();
    while let Some(row) = rows.try_next().await? {
        sum.add(&totals_of(&row)?);
    }
    Ok(sum)
}

fn column(group_by: GroupBy) -> &'static str {
    match group_by {
        GroupBy::User => "user_name",
        GroupBy::Team => "team",
        GroupBy::Key => "key_id",
        GroupBy::Model => "model",
    }
}

fn totals_of(row: &SqliteRow) -> Result<Totals, sqlx::Error> {
    let count = |column: &str| -> Result<u64, sqlx::Error> {
        // The CHECKs keep counts non-negative; a negative one could only be a foreign write.
        Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0))
    };
    Ok(Totals {
        requests: count("requests")?,
        input_tokens: count("input_tokens")?,
        output_tokens: count("output_tokens")?,
        cost_pico: i128::from(row.try_get::<i64, _>("cost_pico")?),
    })
}

fn to_i64(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// A bucket's cost as a column value. Beyond +-9.2 million USD in one bucket it saturates (with a
/// warning) rather than failing the whole flush forever.
fn cost_to_i64(pico: i128) -> i64 {
    i64::try_from(pico).unwrap_or_else(|_| {
        tracing::warn!(
            pico,
            "one spend bucket is over 9.2 million USD; storing the maximum"
        );
        if pico < 0 {
            -i64::MAX
        } else {
            i64::MAX
        }
    })
}
