//! Store, cache, service and body-validation tests, on real SQLite files in a temp directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::validate::{parse_key_patch, parse_new_key};
use super::*;
use crate::auth::{digest, KeyLookup};
use crate::identity::{KeyLimits, ModelPatterns};

/// A directory removed when the test ends (no tempfile dependency).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let path = std::env::temp_dir().join(format!("agw-keys-{}", uuid::Uuid::new_v4()));
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

fn new_key(name: &str) -> NewKey {
    NewKey {
        name: name.into(),
        ..NewKey::default()
    }
}

fn models(list: &[&str]) -> ModelPatterns {
    ModelPatterns::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
}

/// Every byte SQLite has written for this database: the file, its WAL and shared-memory index.
fn database_bytes(db: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = format!("{db}{suffix}");
        if Path::new(&path).exists() {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    bytes
}

// === store ===

#[tokio::test]
async fn store_creates_lists_gets_patches_and_revokes() {
    let dir = TempDir::new();
    let store = KeyStore::open(&dir.db()).await.unwrap();
    assert_eq!(store.generation().await.unwrap(), 0);
    let mut new = new_key("ci-bot");
    new.user = Some("alice".into());
    new.allowed_models = Some(models(&["gpt-4o*"]));
    new.limits.rpm = Some(60);
    let created = store.create(&new).await.unwrap();
    let record = &created.record;
    assert_eq!(record.digest, digest(created.secret.expose()));
    let tail = &created.secret.expose()[created.secret.expose().len() - 4..];
    assert_eq!(record.hint, format!("sk-agw-…{tail}"));
    assert_eq!(store.generation().await.unwrap(), 1);

    let got = store.get(&record.id).await.unwrap().unwrap();
    assert_eq!(&got, record);
    assert_eq!(store.list().await.unwrap(), vec![record.clone()]);
    assert!(store.get("key_unknown").await.unwrap().is_none());

    let patch = KeyPatch {
        user: Some(None),
        team: Some(Some("search".into())),
        limits: LimitsPatch {
            tpm: Some(Some(1000)),
            ..LimitsPatch::default()
        },
        ..KeyPatch::default()
    };
    let patched = store.update(&record.id, &patch).await.unwrap();
    assert_eq!(patched.user, None);
    assert_eq!(patched.team.as_deref(), Some("search"));
    assert_eq!(patched.limits.rpm, Some(60), "limits merge field by field");
    assert_eq!(patched.limits.tpm, Some(1000));
    assert_eq!(store.get(&record.id).await.unwrap().unwrap(), patched);

    let revoked = store.revoke(&record.id).await.unwrap();
    assert!(revoked.revoked);
    assert!(store.load_active().await.unwrap().is_empty());
    assert_eq!(
        store.list().await.unwrap().len(),
        1,
        "revoked keys stay listed"
    );
    assert_eq!(store.generation().await.unwrap(), 3);
    assert!(matches!(
        store.update(&record.id, &KeyPatch::default()).await,
        Err(StoreError::Revoked)
    ));
    assert!(store.revoke(&record.id).await.unwrap().revoked);
    assert_eq!(
        store.generation().await.unwrap(),
        3,
        "a refused or no-op write does not bump the generation"
    );
    assert!(matches!(
        store.revoke("key_unknown").await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn the_secret_is_never_written_to_the_database() {
    let dir = TempDir::new();
    let store = KeyStore::open(&dir.db()).await.unwrap();
    let created = store.create(&new_key("secretive")).await.unwrap();
    let secret = created.secret.expose().as_bytes().to_vec();
    let hash = hex::encode(created.record.digest).into_bytes();
    let written = database_bytes(&dir.db());
    let contains = |needle: &[u8]| written.windows(needle.len()).any(|w| w == needle);
    assert!(
        contains(&hash),
        "the digest is stored (so the search works)"
    );
    assert!(!contains(&secret), "the secret must not be stored");
    assert!(!format!("{:?}", created).contains(created.secret.expose()));
}

#[tokio::test]
async fn keys_survive_reopening_the_file() {
    let dir = TempDir::new();
    let store = KeyStore::open(&dir.db()).await.unwrap();
    let first = store.create(&new_key("one")).await.unwrap().record;
    let second = store.create(&new_key("two")).await.unwrap().record;
    store.revoke(&second.id).await.unwrap();
    store.close().await;
    drop(store);

    let reopened = KeyStore::open(&format!("sqlite:{}", dir.db()))
        .await
        .unwrap();
    let ids: Vec<_> = reopened.list().await.unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(reopened.get(&first.id).await.unwrap().unwrap(), first);
    assert!(reopened.get(&second.id).await.unwrap().unwrap().revoked);
    assert_eq!(reopened.generation().await.unwrap(), 3);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = TempDir::new();
    let store = KeyStore::open(&dir.db()).await.unwrap();
    store.close().await;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.db());
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    sqlx::query("UPDATE schema_version SET version = 99")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert!(matches!(
        KeyStore::open(&dir.db()).await,
        Err(StoreError::SchemaTooNew { found: 99 })
    ));
}

/// Awaits every task; each must succeed.
async fn all<T>(tasks: Vec<tokio::task::JoinHandle<Result<T, StoreError>>>) -> Vec<T> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap().unwrap());
    }
    results
}

fn rpm_patch(rpm: u64) -> KeyPatch {
    let limits = LimitsPatch {
        rpm: Some(Some(rpm)),
        ..LimitsPatch::default()
    };
    KeyPatch {
        limits,
        ..KeyPatch::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_patches_and_revokes_lose_nothing() {
    const KEYS: usize = 24;
    let dir = TempDir::new();
    let service = KeyService::open(&dir.db()).await.unwrap();
    let creates = (0..KEYS).map(|i| {
        let service = service.clone();
        tokio::spawn(async move { service.create(&new_key(&format!("k{i}"))).await })
    });
    let ids: Vec<String> = all(creates.collect())
        .await
        .into_iter()
        .map(|c| c.record.id)
        .collect();
    // Per key, two writers patch different fields at once: a lost update would drop one. They
    // go to the store directly, past the service's lock, so the store's own guarantees are tested.
    let mut patches = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let team = KeyPatch {
            team: Some(Some(format!("team-{i}"))),
            ..KeyPatch::default()
        };
        for patch in [rpm_patch(i as u64 + 1), team] {
            let (service, id) = (service.clone(), id.clone());
            patches.push(tokio::spawn(async move {
                service.store().update(&id, &patch).await
            }));
        }
    }
    all(patches).await;
    let revokes = ids.iter().step_by(2).map(|id| {
        let (service, id) = (service.clone(), id.clone());
        tokio::spawn(async move { service.revoke(&id).await })
    });
    assert!(all(revokes.collect()).await.iter().all(|r| r.revoked));

    let stored = service.list().await.unwrap();
    assert_eq!(stored.len(), KEYS);
    for (i, id) in ids.iter().enumerate() {
        let record = stored.iter().find(|r| &r.id == id).unwrap();
        assert_eq!(record.limits.rpm, Some(i as u64 + 1), "{id}");
        assert_eq!(record.team.as_deref(), Some(format!("team-{i}").as_str()));
        assert_eq!(record.revoked, i % 2 == 0);
    }
    let writes = KEYS + 2 * KEYS + KEYS / 2;
    assert_eq!(service.store().generation().await.unwrap(), writes as i64);
    assert_eq!(service.cache().len(), KEYS / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_file_lose_no_update() {
    // Two "processes": separate pools, so only SQLite's locking (and the generation bump that
    // opens every write) keeps their read-modify-writes apart.
    let dir = TempDir::new();
    let a = Arc::new(KeyStore::open(&dir.db()).await.unwrap());
    let b = Arc::new(KeyStore::open(&dir.db()).await.unwrap());
    let id = a.create(&new_key("shared")).await.unwrap().record.id;
    let mut tasks = Vec::new();
    for (i, store) in [a.clone(), b.clone()]
        .into_iter()
        .cycle()
        .take(8)
        .enumerate()
    {
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut limits = LimitsPatch::default();
            let limit = Some(Some(i as u64 + 1));
            match i % 4 {
                0 => limits.rpm = limit,
                1 => limits.tpm = limit,
                2 => limits.tpd = limit,
                _ => limits.max_parallel = limit,
            }
            let patch = KeyPatch {
                limits,
                ..KeyPatch::default()
            };
            store.update(&id, &patch).await.map(drop)
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let limits = b.get(&id).await.unwrap().unwrap().limits;
    for (field, value) in [limits.rpm, limits.tpm, limits.tpd, limits.max_parallel]
        .into_iter()
        .enumerate()
    {
        assert!(value.is_some(), "limit {field} was lost: {limits:?}");
    }
    assert_eq!(a.generation().await.unwrap(), 9);
}

// === cache and service ===

#[tokio::test]
async fn the_cache_resolves_digests_to_identities() {
    let dir = TempDir::new();
    let service = KeyService::open(&dir.db()).await.unwrap();
    let mut new = new_key("ci-bot");
    new.user = Some("alice".into());
    new.team = Some("search".into());
    new.metadata.insert("env".into(), json!("prod"));
    new.allowed_models = Some(models(&["gpt-4o"]));
    new.limits = KeyLimits {
        rpm: Some(5),
        max_parallel: Some(2),
        ..KeyLimits::default()
    };
    new.expires_at = Some(4_000_000_000);
    let created = service.create(&new).await.unwrap();
    let cache = service.cache();
    let identity = cache.lookup(&digest(created.secret.expose())).unwrap();
    assert_eq!(identity.id.as_ref(), created.record.id);
    assert_eq!(identity.name.as_deref(), Some("ci-bot"));
    assert_eq!(identity.user.as_deref(), Some("alice"));
    assert_eq!(identity.team.as_deref(), Some("search"));
    assert_eq!(identity.metadata["env"], "prod");
    assert!(identity.allows_model("gpt-4o") && !identity.allows_model("o3"));
    assert_eq!(identity.limits, new.limits);
    assert_eq!(identity.expires_at, Some(4_000_000_000));
    assert!(cache.lookup(&digest("sk-agw-not-a-key")).is_none());
}

#[tokio::test]
async fn a_revocation_through_the_service_is_effective_at_once() {
    let dir = TempDir::new();
    let service = KeyService::open(&dir.db()).await.unwrap();
    let created = service.create(&new_key("doomed")).await.unwrap();
    let presented = digest(created.secret.expose());
    let cache = service.cache();
    assert!(cache.lookup(&presented).is_some());
    service.revoke(&created.record.id).await.unwrap();
    assert!(cache.lookup(&presented).is_none());
}

#[test]
fn apply_inserts_changed_keys_and_removes_revoked_ones() {
    let cache = KeyCache::new();
    let mut record = KeyRecord {
        id: "key_0".into(),
        digest: digest("sk-agw-x"),
        hint: "sk-agw-…x".into(),
        name: "n".into(),
        user: None,
        team: None,
        metadata: Default::default(),
        allowed_models: None,
        limits: KeyLimits::default(),
        budgets: Vec::new(),
        expires_at: None,
        revoked: false,
        created_at: 0,
        updated_at: 0,
    };
    cache.apply(&record);
    assert_eq!(
        cache.lookup(&record.digest).unwrap().name.as_deref(),
        Some("n")
    );
    record.name = "renamed".into();
    cache.apply(&record);
    assert_eq!(
        cache.lookup(&record.digest).unwrap().name.as_deref(),
        Some("renamed")
    );
    record.revoked = true;
    cache.apply(&record);
    assert!(cache.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_sees_new_and_revoked_keys_within_a_second() {
    let dir = TempDir::new();
    let writer = KeyService::open(&dir.db()).await.unwrap();
    let reader = KeyService::open(&dir.db()).await.unwrap();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let sync = reader.spawn_sync(DEFAULT_SYNC_INTERVAL, stop);

    let created = writer.create(&new_key("shared")).await.unwrap();
    let presented = digest(created.secret.expose());
    let cache = reader.cache();
    assert!(wait_until(|| cache.lookup(&presented).is_some()).await);
    writer.revoke(&created.record.id).await.unwrap();
    assert!(wait_until(|| cache.lookup(&presented).is_none()).await);

    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(2), sync)
        .await
        .expect("the sync task stops when told")
        .unwrap();
}

/// Polls `done` for up to one second.
async fn wait_until(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done()
}

// === validation ===

const NOW: i64 = 1_700_000_000;

fn new_err(body: serde_json::Value) -> String {
    parse_new_key(body.to_string().as_bytes(), NOW).unwrap_err()
}

#[test]
fn a_full_create_body_parses() {
    let body = json!({
        "name": "ci-bot", "user": "alice", "team": null, "metadata": {"env": "ci"},
        "allowedModels": ["gpt-4o", "claude-*"],
        "limits": {"rpm": 60, "tpm": 1000, "tpd": null, "maxParallel": 2},
        "expiresAt": "2030-01-01T00:00:00Z",
    });
    let new = parse_new_key(body.to_string().as_bytes(), NOW).unwrap();
    assert_eq!(new.name, "ci-bot");
    assert_eq!(new.user.as_deref(), Some("alice"));
    assert_eq!(new.team, None);
    assert_eq!(new.metadata["env"], "ci");
    assert!(new.allowed_models.unwrap().matches("claude-3"));
    assert_eq!(
        new.limits,
        KeyLimits {
            rpm: Some(60),
            tpm: Some(1000),
            tpd: None,
            max_parallel: Some(2)
        }
    );
    assert_eq!(new.expires_at, Some(1_893_456_000));
}

#[test]
fn create_errors_name_the_field() {
    assert_eq!(new_err(json!({})), "name: required");
    assert!(new_err(json!({"name": ""})).starts_with("name: "));
    assert!(new_err(json!({"name": "x".repeat(129)})).starts_with("name: "));
    assert!(parse_new_key(json!({"name": "é".repeat(128)}).to_string().as_bytes(), NOW).is_ok());
    let rpm = new_err(json!({"name": "a", "limits": {"rpm": 0}}));
    assert_eq!(rpm, "limits.rpm: must be a positive integer");
    let tpd = new_err(json!({"name": "a", "limits": {"tpd": 1.5}}));
    assert_eq!(tpd, "limits.tpd: must be a positive integer");
    let parallel = new_err(json!({"name": "a", "limits": {"maxParallel": -1}}));
    assert_eq!(parallel, "limits.maxParallel: must be a positive integer");
    let huge = new_err(json!({"name": "a", "limits": {"tpm": u64::MAX}}));
    assert_eq!(huge, "limits.tpm: must be a positive integer");
    let typo = new_err(json!({"name": "a", "limits": {"rpn": 1}}));
    assert_eq!(typo, "limits.rpn: unknown field");
    assert_eq!(
        new_err(json!({"name": "a", "nmae": 1})),
        "nmae: unknown field"
    );
    let second = new_err(json!({"name": "a", "allowedModels": ["ok", "a*b"]}));
    assert!(second.starts_with("allowedModels[1]: "), "{second}");
    let number = new_err(json!({"name": "a", "allowedModels": ["ok", 3]}));
    assert_eq!(number, "allowedModels[1]: must be a string");
    assert!(new_err(json!({"name": "a", "metadata": []})).starts_with("metadata: "));
    assert!(new_err(json!({"name": "a", "user": 5})).starts_with("user: "));
    let past = new_err(json!({"name": "a", "expiresAt": "2020-01-01T00:00:00Z"}));
    assert_eq!(past, "expiresAt: must be in the future");
    let bad_date = new_err(json!({"name": "a", "expiresAt": "tomorrow"}));
    assert!(
        bad_date.starts_with("expiresAt: must be an RFC 3339"),
        "{bad_date}"
    );
}

#[test]
fn malformed_and_non_object_bodies_are_refused() {
    let malformed = parse_new_key(b"{\"name\": ", NOW).unwrap_err();
    assert!(malformed.starts_with("malformed JSON body"), "{malformed}");
    let array = parse_new_key(b"[]", NOW).unwrap_err();
    assert_eq!(array, "the request body must be a JSON object");
}

#[test]
fn a_patch_tells_absent_from_null() {
    let patch = parse_key_patch(
        json!({"user": null, "limits": {"rpm": null, "tpm": 5}})
            .to_string()
            .as_bytes(),
        NOW,
    )
    .unwrap();
    assert_eq!(patch.user, Some(None));
    assert_eq!(patch.team, None);
    assert_eq!(patch.limits.rpm, Some(None));
    assert_eq!(patch.limits.tpm, Some(Some(5)));
    assert_eq!(patch.limits.tpd, None);
    let clear_all = parse_key_patch(b"{\"limits\": null}", NOW).unwrap();
    let mut limits = KeyLimits {
        rpm: Some(1),
        tpd: Some(2),
        ..KeyLimits::default()
    };
    clear_all.limits.apply(&mut limits);
    assert!(limits.is_empty());
    let name_null = parse_key_patch(b"{\"name\": null}", NOW).unwrap_err();
    assert!(name_null.starts_with("name: "), "{name_null}");
}
