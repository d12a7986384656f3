//! Per-key budgets in the store: the version-1 -> 2 migration (on files laid out exactly as the
//! version-1 gateway wrote them), round trips through the store, the cache and the identity, an
//! unreadable stored list, and the admin API body's `budgets` field.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool};

use super::store::SCHEMA_VERSION;
use super::validate::{parse_key_patch, parse_new_key, parse_usd, parse_window};
use super::*;
use crate::auth::{digest, KeyLookup};
use crate::budget::{BudgetSpec, Window};

/// A directory removed when the test ends.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("agw-budgets-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn db(&self) -> String {
        self.0.join("keys.db").to_str().unwrap().to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn usd(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn spec(amount: &str, window: Window, soft: bool) -> BudgetSpec {
    BudgetSpec {
        usd: usd(amount),
        window,
        soft,
    }
}

// The version-1 gateway's schema, verbatim: what a file it created holds.
const V1_SCHEMA: [&str; 5] = [
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

const V1_SECRET: &str = "sk-agw-written-by-the-version-1-gateway0000";

async fn raw_pool(db: &str) -> SqlitePool {
    let options = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    SqlitePool::connect_with(options).await.unwrap()
}

/// A version-1 database holding one key, written with the version-1 statements.
async fn write_v1_file(db: &str) {
    let pool = raw_pool(db).await;
    for statement in V1_SCHEMA {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    sqlx::query(
        "INSERT INTO virtual_keys (id, key_hash, key_hint, name, user_name, team, metadata, \
         allowed_models, rpm, tpm, tpd, max_parallel, expires_at, revoked, created_at, \
         updated_at) VALUES ('key_00000000000000v1', $1, 'sk-agw-…0000', 'old-bot', 'alice', \
         NULL, '{\"env\":\"ci\"}', '[\"gpt-4o*\"]', 60, NULL, NULL, 2, NULL, FALSE, 1700000000, \
         1700000001)",
    )
    .bind(hex::encode(digest(V1_SECRET)))
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("UPDATE key_generation SET value = 1")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn schema_version(db: &str) -> i64 {
    let pool = raw_pool(db).await;
    let version = sqlx::query_scalar("SELECT version FROM schema_version WHERE id = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    version
}

async fn stored_budgets(store: &KeyStore, id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT budgets FROM virtual_keys WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

// === migration ===

#[tokio::test]
async fn a_version_1_file_is_migrated_in_place_and_its_key_still_works() {
    let dir = TempDir::new();
    write_v1_file(&dir.db()).await;
    assert_eq!(schema_version(&dir.db()).await, 1);

    let service = KeyService::open(&dir.db()).await.unwrap();
    assert_eq!(SCHEMA_VERSION, 2);
    assert_eq!(schema_version(&dir.db()).await, 2);
    let old = service.get("key_00000000000000v1").await.unwrap().unwrap();
    assert_eq!(
        (old.name.as_str(), old.user.as_deref()),
        ("old-bot", Some("alice"))
    );
    assert_eq!(old.metadata["env"], "ci");
    assert_eq!(
        (old.limits.rpm, old.limits.max_parallel),
        (Some(60), Some(2))
    );
    assert!(old.budgets.is_empty(), "a version-1 row has no budgets");
    assert_eq!(
        (old.created_at, old.updated_at),
        (1_700_000_000, 1_700_000_001)
    );
    let identity = service.cache().lookup(&digest(V1_SECRET)).unwrap();
    assert_eq!(identity.id.as_ref(), "key_00000000000000v1");
    assert!(identity.allows_model("gpt-4o-mini") && identity.budgets.is_empty());
    assert_eq!(service.store().generation().await.unwrap(), 1);

    let patch = KeyPatch {
        budgets: Some(vec![spec("12.5", Window::Day, false)]),
        ..KeyPatch::default()
    };
    service.update(&old.id, &patch).await.unwrap();
    service.close().await;

    let reopened = KeyStore::open(&dir.db()).await.unwrap();
    let again = reopened.get(&old.id).await.unwrap().unwrap();
    assert_eq!(again.budgets, vec![spec("12.5", Window::Day, false)]);
    assert_eq!(
        schema_version(&dir.db()).await,
        2,
        "reopening migrates nothing twice"
    );
    reopened.close().await;
}

#[tokio::test]
async fn processes_opening_an_old_or_a_new_file_at_once_all_succeed() {
    // Separate pools are separate SQLite connections, as separate processes would have.
    for old in [true, true, true, false, false] {
        let dir = TempDir::new();
        if old {
            write_v1_file(&dir.db()).await;
        }
        let db = dir.db();
        let (a, b, c) = tokio::join!(
            KeyStore::open(&db),
            KeyStore::open(&db),
            KeyStore::open(&db)
        );
        let stores = [a.unwrap(), b.unwrap(), c.unwrap()];
        assert_eq!(schema_version(&db).await, 2);
        let created = stores[0]
            .create(&NewKey {
                name: "after".into(),
                budgets: vec![spec("1", Window::Hour, true)],
                ..NewKey::default()
            })
            .await
            .unwrap();
        let seen = stores[2].get(&created.record.id).await.unwrap().unwrap();
        assert_eq!(seen.budgets, created.record.budgets);
        assert_eq!(
            stores[1].list().await.unwrap().len(),
            if old { 2 } else { 1 }
        );
        for store in stores {
            store.close().await;
        }
    }
}

// === round trips ===

#[tokio::test]
async fn budgets_round_trip_through_the_store_the_cache_and_the_identity() {
    let dir = TempDir::new();
    let service = KeyService::open(&dir.db()).await.unwrap();
    let budgets = vec![
        spec("10", Window::Day, false),
        spec("5.25", Window::Month, true),
        spec("0.000001", Window::Hour, false),
        spec("1000000", Window::Days30, false),
        spec("70", Window::Week, true),
    ];
    let created = service
        .create(&NewKey {
            name: "budgeted".into(),
            budgets: budgets.clone(),
            ..NewKey::default()
        })
        .await
        .unwrap();
    let id = created.record.id.clone();
    assert_eq!(created.record.budgets, budgets);
    let stored = service.get(&id).await.unwrap().unwrap();
    assert_eq!(stored, created.record);
    assert_eq!(stored.identity().budgets, budgets);
    let cached = service.cache().lookup(&created.record.digest).unwrap();
    assert_eq!(cached.budgets, budgets, "the request path sees them");
    let text = stored_budgets(service.store(), &id).await.unwrap();
    let column: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        column,
        json!([
            {"usd": "10", "window": "1d", "soft": false},
            {"usd": "5.25", "window": "month", "soft": true},
            {"usd": "0.000001", "window": "1h", "soft": false},
            {"usd": "1000000", "window": "30d", "soft": false},
            {"usd": "70", "window": "7d", "soft": true},
        ]),
        "a JSON array, amounts as exact decimal strings"
    );

    let other_field = KeyPatch {
        name: Some("renamed".into()),
        ..KeyPatch::default()
    };
    let renamed = service.update(&id, &other_field).await.unwrap();
    assert_eq!(
        renamed.budgets, budgets,
        "a patch without budgets keeps them"
    );

    let replace = KeyPatch {
        budgets: Some(vec![spec("3", Window::Week, false)]),
        ..KeyPatch::default()
    };
    let replaced = service.update(&id, &replace).await.unwrap();
    assert_eq!(replaced.budgets, vec![spec("3", Window::Week, false)]);
    let cached = service.cache().lookup(&created.record.digest).unwrap();
    assert_eq!(cached.budgets, replaced.budgets);

    let clear = KeyPatch {
        budgets: Some(Vec::new()),
        ..KeyPatch::default()
    };
    let cleared = service.update(&id, &clear).await.unwrap();
    assert!(cleared.budgets.is_empty());
    assert_eq!(
        stored_budgets(service.store(), &id).await,
        None,
        "none is NULL"
    );
    assert!(service.get(&id).await.unwrap().unwrap().budgets.is_empty());
    service.close().await;
}

#[tokio::test]
async fn an_unreadable_budget_list_is_a_corrupt_key() {
    let dir = TempDir::new();
    let store = KeyStore::open(&dir.db()).await.unwrap();
    let named = |name: &str| NewKey {
        name: name.into(),
        ..NewKey::default()
    };
    let id = store.create(&named("victim")).await.unwrap().record.id;
    let healthy = store.create(&named("healthy")).await.unwrap().record.id;
    for (text, reason) in [
        ("not json", "budgets: "),
        (r#"[{"usd":"10","window":"2d"}]"#, "budgets: "),
        (
            r#"[{"usd":"-1","window":"1d"}]"#,
            "budgets[0].usd: not positive",
        ),
        (r#"{"usd":"1","window":"1d"}"#, "budgets: "),
    ] {
        sqlx::query("UPDATE virtual_keys SET budgets = $1 WHERE id = $2")
            .bind(text)
            .bind(&id)
            .execute(store.pool())
            .await
            .unwrap();
        match store.get(&id).await {
            Err(StoreError::Corrupt {
                id: bad,
                reason: why,
            }) => {
                assert_eq!(bad, id);
                assert!(why.starts_with(reason), "{text}: {why}");
            }
            other => panic!("{text}: {other:?}"),
        }
        let active = store.load_active().await.unwrap();
        let ids: Vec<&str> = active.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            [healthy.as_str()],
            "only the unreadable key is left out"
        );
    }
    store.close().await;
}

// === the admin API body ===

const NOW: i64 = 1_700_000_000;

fn parsed(budgets: serde_json::Value) -> Result<Vec<BudgetSpec>, String> {
    let body = json!({"name": "a", "budgets": budgets});
    parse_new_key(body.to_string().as_bytes(), NOW).map(|new| new.budgets)
}

#[test]
fn budgets_parse_from_strings_and_numbers_exactly() {
    let budgets = parsed(json!([
        {"usd": "10", "window": "1d"},
        {"usd": 2.5, "window": "month", "soft": true},
        {"usd": "10.50", "window": "1h", "soft": false},
        {"usd": 0.1, "window": "7d"},
        {"usd": 30, "window": "30d"},
        {"usd": "1e3", "window": "1d"},
    ]))
    .unwrap();
    let expected = vec![
        spec("10", Window::Day, false),
        spec("2.5", Window::Month, true),
        spec("10.50", Window::Hour, false),
        spec("0.1", Window::Week, false),
        spec("30", Window::Days30, false),
        spec("1000", Window::Day, false),
    ];
    assert_eq!(budgets, expected);
    assert_eq!(budgets[2].usd.to_string(), "10.50", "kept as written");
    assert_eq!(budgets[3].usd, Decimal::new(1, 1), "0.1 is exactly a tenth");
    assert_eq!(parsed(json!([])).unwrap(), Vec::new());
    assert_eq!(parsed(json!(null)).unwrap(), Vec::new());
    let none = parse_new_key(br#"{"name": "a"}"#, NOW).unwrap();
    assert!(none.budgets.is_empty());
}

#[test]
fn budget_errors_name_the_field() {
    let cases = [
        (json!({"usd": "10"}), "budgets[0].window: required"),
        (json!({"window": "1d"}), "budgets[0].usd: required"),
        (
            json!({"usd": 0, "window": "1d"}),
            "budgets[0].usd: must be a positive",
        ),
        (
            json!({"usd": "-5", "window": "1d"}),
            "budgets[0].usd: must be a positive",
        ),
        (
            json!({"usd": "ten", "window": "1d"}),
            "budgets[0].usd: must be a positive",
        ),
        (
            json!({"usd": true, "window": "1d"}),
            "budgets[0].usd: must be a positive",
        ),
        (
            json!({"usd": "1", "window": "2d"}),
            "budgets[0].window: must be one of 1h, 1d, 7d, 30d, month",
        ),
        (
            json!({"usd": "1", "window": 1}),
            "budgets[0].window: must be one of",
        ),
        (
            json!({"usd": "1", "window": "1d", "soft": "yes"}),
            "budgets[0].soft: must be true or false",
        ),
        (
            json!({"usd": "1", "window": "1d", "hard": true}),
            "budgets[0].hard: unknown field",
        ),
        (json!("10/1d"), "budgets[0]: must be an object"),
    ];
    for (item, expected) in cases {
        let error = parsed(json!([item])).unwrap_err();
        assert!(error.starts_with(expected), "{item} -> {error}");
    }
    let second = parsed(json!([{"usd": "1", "window": "1d"}, {"usd": "1", "window": "1y"}]));
    assert!(second.unwrap_err().starts_with("budgets[1].window: "));
    let not_a_list = parsed(json!({"usd": "1", "window": "1d"})).unwrap_err();
    assert!(
        not_a_list.starts_with("budgets: must be an array"),
        "{not_a_list}"
    );
}

#[test]
fn a_patch_replaces_or_clears_the_budget_list() {
    let patch = |body: &str| parse_key_patch(body.as_bytes(), NOW).unwrap().budgets;
    assert_eq!(patch(r#"{"name": "b"}"#), None, "absent: left alone");
    assert_eq!(patch(r#"{"budgets": []}"#), Some(Vec::new()));
    assert_eq!(patch(r#"{"budgets": null}"#), Some(Vec::new()));
    assert_eq!(
        patch(r#"{"budgets": [{"usd": "5", "window": "month", "soft": true}]}"#),
        Some(vec![spec("5", Window::Month, true)])
    );
    let mut record = KeyRecord {
        id: "key_1".into(),
        digest: digest("s"),
        hint: String::new(),
        name: "a".into(),
        user: None,
        team: None,
        metadata: Default::default(),
        allowed_models: None,
        limits: Default::default(),
        budgets: vec![
            spec("1", Window::Day, false),
            spec("2", Window::Hour, false),
        ],
        expires_at: None,
        revoked: false,
        created_at: 0,
        updated_at: 0,
    };
    record.apply(&KeyPatch {
        budgets: Some(vec![spec("9", Window::Week, true)]),
        ..KeyPatch::default()
    });
    assert_eq!(record.budgets, vec![spec("9", Window::Week, true)]);
}

#[test]
fn amounts_and_windows_read_their_text_forms() {
    assert_eq!(parse_usd("10"), Some(usd("10")));
    assert_eq!(parse_usd("0.01"), Some(usd("0.01")));
    assert_eq!(parse_usd("2.5e1"), Some(usd("25")));
    for bad in ["0", "-1", "0.0", "", "abc", "1/1d", "NaN"] {
        assert_eq!(parse_usd(bad), None, "{bad:?}");
    }
    let windows = ["1h", "1d", "7d", "30d", "month"].map(parse_window);
    assert_eq!(
        windows,
        [
            Window::Hour,
            Window::Day,
            Window::Week,
            Window::Days30,
            Window::Month
        ]
        .map(Some)
    );
    for bad in ["2h", "Month", "1D", "", "30"] {
        assert_eq!(parse_window(bad), None, "{bad:?}");
    }
}
