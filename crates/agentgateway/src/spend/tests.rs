//! Ledger unit tests: hour bucketing, exact money, grouping and range edges, pending + stored
//! merging, budget totals, and the failure paths of a flush. Durability across a restart, the
//! flush task and the HTTP API are tested in `tests/spend_ledger.rs`.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use rust_decimal::Decimal;
use sqlx::SqlitePool;

use super::pending::{from_pico, hour_of, to_pico, Buckets, Totals};
use super::*;
use crate::keys::KeyStore;

/// 2025-03-01T00:00:00Z, an hour start.
const H0: i64 = 1_740_787_200;
const HOUR: i64 = 3600;

fn usd(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn key(key_id: &str, user: &str, team: &str, model: &str) -> SpendKey {
    SpendKey {
        key_id: key_id.into(),
        user: user.into(),
        team: team.into(),
        provider: "openai".into(),
        model: model.into(),
    }
}

fn alice() -> SpendKey {
    key("key_a", "alice", "search", "gpt-4o-mini")
}

/// A key database in a fresh temp directory (removed on drop).
struct TempDb {
    dir: PathBuf,
    pool: SqlitePool,
}

impl TempDb {
    async fn new() -> TempDb {
        let dir = std::env::temp_dir().join(format!("agw-spend-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = KeyStore::open(dir.join("keys.db").to_str().unwrap())
            .await
            .unwrap();
        TempDb {
            pool: store.pool().clone(),
            dir,
        }
    }

    async fn ledger(&self) -> Arc<Ledger> {
        Ledger::open(self.pool.clone()).await.unwrap()
    }

    async fn row_count(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM spend_hourly")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn hours_start_on_the_hour_also_before_1970() {
    assert_eq!(hour_of(H0), H0);
    assert_eq!(hour_of(H0 + HOUR - 1), H0);
    assert_eq!(hour_of(H0 + HOUR), H0 + HOUR);
    assert_eq!(hour_of(0), 0);
    assert_eq!(hour_of(-1), -HOUR);
    assert_eq!(hour_of(i64::MIN), i64::MIN);
}

#[test]
fn picos_are_exact_rounded_and_saturating() {
    assert_eq!(to_pico(usd("0.000000075")), 75_000);
    assert_eq!(to_pico(usd("10.1")), 10_100_000_000_000);
    assert_eq!(to_pico(usd("-2")), -2_000_000_000_000);
    // Below the resolution: half to even.
    assert_eq!(to_pico(usd("0.0000000000015")), 2);
    assert_eq!(to_pico(usd("0.0000000000025")), 2);
    assert_eq!(to_pico(usd("0.00000000000049")), 0);
    assert_eq!(to_pico(Decimal::MAX), i128::MAX);
    assert_eq!(to_pico(Decimal::MIN), i128::MIN);
    assert_eq!(from_pico(10_100_000_000_000).to_string(), "10.1");
    assert_eq!(from_pico(0).to_string(), "0");
    assert_eq!(from_pico(75_000).to_string(), "0.000000075");
    assert_eq!(from_pico(i128::MAX), Decimal::MAX);
}

#[test]
fn buckets_share_an_hour_and_split_at_its_end() {
    let mut buckets = Buckets::default();
    let one = Totals::one(5, 10, 20);
    buckets.add(hour_of(H0 + 10), &alice(), &one);
    buckets.add(hour_of(H0 + HOUR - 1), &alice(), &one);
    let all: Vec<_> = buckets.iter().collect();
    assert_eq!(all.len(), 1);
    assert_eq!(*all[0].2, Totals::one(10, 20, 40).with_requests(2));
    buckets.add(hour_of(H0 + HOUR), &alice(), &one);
    assert_eq!(buckets.iter().count(), 2);
}

impl Totals {
    fn with_requests(mut self, requests: u64) -> Totals {
        self.requests = requests;
        self
    }
}

#[tokio::test]
async fn one_row_per_hour_and_booking_in_the_database() {
    let db = TempDb::new().await;
    let ledger = db.ledger().await;
    ledger.record(H0 + 1, &alice(), usd("0.5"), 100, 10);
    ledger.record(H0 + HOUR - 1, &alice(), usd("0.25"), 50, 5);
    ledger.flush().await.unwrap();
    assert_eq!(db.row_count().await, 1);

    ledger.record(H0 + HOUR, &alice(), usd("1"), 1, 1);
    ledger.record(
        H0 + 2,
        &key("key_a", "alice", "search", "gpt-4o"),
        usd("1"),
        1,
        1,
    );
    ledger.flush().await.unwrap();
    assert_eq!(db.row_count().await, 3);

    let (requests, input, output, cost): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT requests, input_tokens, output_tokens, cost_pico FROM spend_hourly \
         WHERE hour_start = $1 AND model = 'gpt-4o-mini'",
    )
    .bind(H0)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((requests, input, output), (2, 150, 15));
    assert_eq!(cost, 750_000_000_000);
    // A flush with nothing pending writes nothing and succeeds.
    ledger.flush().await.unwrap();
    assert_eq!(db.row_count().await, 3);
}

#[tokio::test]
async fn a_million_tiny_costs_add_up_exactly() {
    let db = TempDb::new().await;
    let ledger = db.ledger().await;
    let price = usd("0.000000075"); // 0.075 USD per million tokens, one token
    let other = key("key_b", "bob", "", "gpt-4o-mini");
    for i in 0..1_000_000i64 {
        let booking = if i % 2 == 0 { alice() } else { other.clone() };
        ledger.record(H0 + i % (3 * HOUR), &booking, price, 1, 0);
    }
    let expected = usd("0.075");
    let by_model = ledger
        .query(GroupBy::Model, H0, H0 + 3 * HOUR)
        .await
        .unwrap();
    assert_eq!(by_model.len(), 1);
    assert_eq!(by_model[0].cost_usd, expected);
    assert_eq!(by_model[0].cost_usd.to_string(), "0.075");
    assert_eq!(by_model[0].requests, 1_000_000);
    ledger.flush().await.unwrap();
    let by_model = ledger
        .query(GroupBy::Model, H0, H0 + 3 * HOUR)
        .await
        .unwrap();
    assert_eq!(by_model[0].cost_usd, expected);
    let alice_total = ledger.total(&Scope::User("alice".into()), H0).await;
    assert_eq!(alice_total.unwrap(), usd("0.0375"));
    // The float sum the ledger avoids is not exact.
    let float: f64 = (0..1_000_000).map(|_| 7.5e-8_f64).sum();
    assert_ne!(float, 0.075);
}

/// Four bookings over three hours, used by the grouping and range tests.
fn fill(ledger: &Ledger) {
    let bob = key("key_b", "bob", "search", "claude-sonnet");
    let carol = key("static-carol", "carol", "", "gpt-4o-mini");
    let anonymous = key("", "", "", "gpt-4o-mini");
    ledger.record(H0, &alice(), usd("1.5"), 100, 10);
    ledger.record(H0 + 59, &bob, usd("2"), 200, 20);
    ledger.record(H0 + HOUR, &alice(), usd("0.5"), 50, 5);
    ledger.record(H0 + 2 * HOUR + 7, &carol, usd("0.25"), 1, 2);
    ledger.record(H0 + 2 * HOUR + 8, &anonymous, usd("0.125"), 3, 4);
}

fn summary(rows: &[SpendRow]) -> Vec<(String, String, u64, u64, u64)> {
    rows.iter()
        .map(|r| {
            let cost = r.cost_usd.to_string();
            (
                r.group.clone(),
                cost,
                r.requests,
                r.input_tokens,
                r.output_tokens,
            )
        })
        .collect()
}

fn row(
    group: &str,
    cost: &str,
    requests: u64,
    input: u64,
    output: u64,
) -> (String, String, u64, u64, u64) {
    (group.to_owned(), cost.to_owned(), requests, input, output)
}

#[tokio::test]
async fn queries_group_and_sort_by_cost() {
    let ledger = Ledger::in_memory();
    fill(&ledger);
    let all = |group_by| ledger.query(group_by, H0, H0 + 3 * HOUR);
    assert_eq!(
        summary(&all(GroupBy::User).await.unwrap()),
        [
            row("alice", "2", 2, 150, 15),
            row("bob", "2", 1, 200, 20),
            row("carol", "0.25", 1, 1, 2),
            row("", "0.125", 1, 3, 4),
        ]
    );
    assert_eq!(
        summary(&all(GroupBy::Team).await.unwrap()),
        [row("search", "4", 3, 350, 35), row("", "0.375", 2, 4, 6)]
    );
    assert_eq!(
        summary(&all(GroupBy::Key).await.unwrap()),
        [
            row("key_a", "2", 2, 150, 15),
            row("key_b", "2", 1, 200, 20),
            row("static-carol", "0.25", 1, 1, 2),
            row("", "0.125", 1, 3, 4),
        ]
    );
    assert_eq!(
        summary(&all(GroupBy::Model).await.unwrap()),
        [
            row("gpt-4o-mini", "2.375", 4, 154, 21),
            row("claude-sonnet", "2", 1, 200, 20),
        ]
    );
}

#[tokio::test]
async fn a_bucket_counts_when_its_hour_start_is_in_range() {
    let ledger = Ledger::in_memory();
    fill(&ledger);
    let users = |from, to| {
        let ledger = ledger.clone();
        async move { summary(&ledger.query(GroupBy::User, from, to).await.unwrap()) }
    };
    // `to` is exclusive: the hour starting at `to` is out.
    assert_eq!(
        users(H0, H0 + HOUR).await,
        [row("bob", "2", 1, 200, 20), row("alice", "1.5", 1, 100, 10)]
    );
    // `from` inside an hour: that hour started before `from`, so it is out.
    assert_eq!(
        users(H0 + 1, H0 + HOUR + 1).await,
        [row("alice", "0.5", 1, 50, 5)]
    );
    assert!(users(H0 + HOUR, H0 + HOUR).await.is_empty());
    assert!(users(H0 + 3 * HOUR, H0 + 2 * HOUR).await.is_empty());
    assert!(users(H0 + 3 * HOUR, i64::MAX).await.is_empty());
    assert_eq!(users(i64::MIN, i64::MAX).await.len(), 4);
}

#[tokio::test]
async fn queries_merge_stored_and_pending_spend() {
    let db = TempDb::new().await;
    let ledger = db.ledger().await;
    fill(&ledger);
    ledger.flush().await.unwrap();
    // Same bucket as a stored row, plus a new one.
    ledger.record(H0 + 30, &alice(), usd("0.000000001"), 1, 1);
    ledger.record(H0 + 5 * HOUR, &alice(), usd("3"), 1, 1);
    let expected = [
        row("alice", "5.000000001", 4, 152, 17),
        row("bob", "2", 1, 200, 20),
        row("carol", "0.25", 1, 1, 2),
        row("", "0.125", 1, 3, 4),
    ];
    let users = || ledger.query(GroupBy::User, H0, H0 + 6 * HOUR);
    assert_eq!(summary(&users().await.unwrap()), expected);
    ledger.flush().await.unwrap();
    assert_eq!(summary(&users().await.unwrap()), expected);
    assert_eq!(db.row_count().await, 6);

    // A second ledger on the same file (another process) sees what was stored.
    let other = db.ledger().await;
    assert_eq!(
        summary(&other.query(GroupBy::User, H0, H0 + 6 * HOUR).await.unwrap()),
        expected
    );
}

#[tokio::test]
async fn totals_by_scope_count_from_the_hour_holding_since() {
    let db = TempDb::new().await;
    for ledger in [Ledger::in_memory(), db.ledger().await] {
        fill(&ledger);
        ledger.flush().await.unwrap();
        ledger.record(H0 + HOUR + 1, &alice(), usd("0.01"), 1, 1); // pending
        let total = |scope: Scope, since: i64| {
            let ledger = ledger.clone();
            async move { ledger.total(&scope, since).await.unwrap().to_string() }
        };
        assert_eq!(total(Scope::User("alice".into()), H0).await, "2.01");
        assert_eq!(total(Scope::User("alice".into()), H0 + HOUR).await, "0.51");
        // The hour holding `since` counts whole.
        assert_eq!(
            total(Scope::User("alice".into()), H0 + HOUR + 1800).await,
            "0.51"
        );
        assert_eq!(total(Scope::User("alice".into()), H0 + 2 * HOUR).await, "0");
        assert_eq!(total(Scope::Key("key_b".into()), H0).await, "2");
        assert_eq!(total(Scope::Key("static-carol".into()), H0).await, "0.25");
        assert_eq!(total(Scope::Key("".into()), H0).await, "0.125");
        assert_eq!(total(Scope::Team("search".into()), H0).await, "4.01");
        assert_eq!(total(Scope::Team("".into()), H0).await, "0.375");
        assert_eq!(total(Scope::Team("nobody".into()), i64::MIN).await, "0");
    }
}

#[tokio::test]
async fn a_failed_flush_keeps_its_spend_pending() {
    let db = TempDb::new().await;
    let ledger = db.ledger().await;
    ledger.record(H0, &alice(), usd("1"), 1, 1);
    sqlx::query("DROP TABLE spend_hourly")
        .execute(&db.pool)
        .await
        .unwrap();
    assert!(ledger.flush().await.is_err());
    ledger.record(H0, &alice(), usd("2"), 1, 1);
    super::store::create_schema(&db.pool).await.unwrap();
    assert_eq!(
        ledger.total(&Scope::Key("key_a".into()), H0).await.unwrap(),
        usd("3")
    );
    ledger.flush().await.unwrap();
    assert_eq!(db.row_count().await, 1);
    let stored = db
        .ledger()
        .await
        .total(&Scope::Key("key_a".into()), H0)
        .await;
    assert_eq!(stored.unwrap(), usd("3"));
}

/// One absurd number pins its own row at the maximum; it never stops later flushes (a sum past
/// i64 would otherwise become a float the CHECKs refuse, failing every flush from then on).
#[tokio::test]
async fn an_overflowing_row_saturates_and_flushing_goes_on() {
    let db = TempDb::new().await;
    let ledger = db.ledger().await;
    let nine_million = usd("9000000");
    ledger.record(H0, &alice(), nine_million, u64::MAX, 1);
    ledger.flush().await.unwrap();
    ledger.record(H0, &alice(), nine_million, u64::MAX, 1);
    ledger.record(H0, &key("key_b", "bob", "ads", "gpt-4o"), usd("1"), 1, 1);
    ledger.flush().await.unwrap();
    let (cost, input): (i64, i64) = sqlx::query_as(
        "SELECT cost_pico, input_tokens FROM spend_hourly WHERE user_name = 'alice'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!((cost, input), (i64::MAX, i64::MAX));
    let bob = ledger.total(&Scope::User("bob".into()), H0).await.unwrap();
    assert_eq!(bob, usd("1"), "other rows are written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_racing_flushes_count_every_bucket_once() {
    let db = TempDb::new().await;
    let ledger = db.ledger().await;
    let flusher = {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            for _ in 0..400 {
                ledger.flush().await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let cent = usd("0.01");
    for i in 1..=200i64 {
        ledger.record(H0 + i, &alice(), cent, 1, 0);
        let rows = ledger.query(GroupBy::Key, H0, H0 + HOUR).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].requests, u64::try_from(i).unwrap());
        assert_eq!(rows[0].cost_usd, cent * Decimal::from(i));
    }
    flusher.await.unwrap();
    ledger.flush().await.unwrap();
    assert_eq!(db.row_count().await, 1);
}

#[test]
fn group_by_parses_its_four_names_only() {
    for group_by in GroupBy::ALL {
        assert_eq!(group_by.as_str().parse::<GroupBy>(), Ok(group_by));
    }
    let error = "users".parse::<GroupBy>().unwrap_err();
    assert!(
        error.contains("group_by") && error.contains("\"users\""),
        "{error}"
    );
    assert!("User".parse::<GroupBy>().is_err());
}
