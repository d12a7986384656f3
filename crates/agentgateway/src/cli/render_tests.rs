use super::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn keys() -> Vec<Value> {
    vec![
        json!({
            "id": "key_1", "name": "ci-bot", "user": "alice", "team": "search",
            "allowedModels": ["gpt-4o*", "o3-mini"], "limits": {"rpm": 60, "tpm": 100000},
            "budgets": [{"usd": "10", "window": "1d", "soft": false},
                        {"usd": "2.50", "window": "month", "soft": true}],
            "expiresAt": "2030-02-01T12:30:00Z", "revoked": false
        }),
        json!({
            "id": "key_22", "name": "old", "user": null, "team": null, "allowedModels": null,
            "limits": {}, "budgets": [], "expiresAt": "2029-12-31T23:59:59Z", "revoked": false
        }),
        json!({
            "id": "key_333", "name": "gone", "user": "bob", "limits": {"maxParallel": 2},
            "expiresAt": null, "revoked": true
        }),
    ]
}

#[test]
fn the_table_aligns_every_column() {
    let expected = "\
ID       NAME    USER   TEAM    MODELS           LIMITS           BUDGETS                  EXPIRES            STATUS
key_1    ci-bot  alice  search  gpt-4o*,o3-mini  60rpm 100000tpm  $10/1d $2.50/month/soft  2030-02-01 12:30Z  active
key_22   old     -      -       all              -                -                        2029-12-31 23:59Z  expired
key_333  gone    bob    -       all              2parallel        -                        never              revoked
";
    assert_eq!(key_table(&keys(), now()), expected);
}

#[test]
fn an_empty_list_says_so() {
    assert_eq!(key_table(&[], now()), "no keys\n");
}

#[test]
fn status_follows_revocation_then_expiry() {
    let statuses: Vec<_> = keys().iter().map(|k| status(k, now())).collect();
    assert_eq!(statuses, ["active", "expired", "revoked"]);
    let at_the_second = json!({"expiresAt": "2030-01-01T00:00:00Z"});
    assert_eq!(
        status(&at_the_second, now()),
        "expired",
        "expiry is inclusive"
    );
}

#[test]
fn limits_read_as_units() {
    let all = json!({"rpm": 1, "tpm": 2, "tpd": 3, "maxParallel": 4});
    assert_eq!(limits(&all), "1rpm 2tpm 3tpd 4parallel");
    assert_eq!(limits(&json!({"tpd": null})), "-");
    assert_eq!(limits(&Value::Null), "-");
}

#[test]
fn details_show_every_field_and_the_usage_tree() {
    let mut key = keys().remove(0);
    key["metadata"] = json!({"env": "prod"});
    key["keyHint"] = json!("sk-...a1b2");
    key["usage"] = json!({
        "requests": 12,
        "tokens": {"input": 100, "output": 50},
        "models": ["gpt-4o", "o3-mini"],
        "days": [{"day": "2030-01-01", "tokens": 150}]
    });
    let text = key_details(&key, now());
    let expected_lines = [
        "id:       key_1",
        "models:   gpt-4o*,o3-mini",
        "limits:   60rpm 100000tpm",
        "budgets:  $10/1d $2.50/month/soft",
        "metadata: env=prod",
        "expires:  2030-02-01 12:30Z",
        "status:   active",
        "key hint: sk-...a1b2",
        "created:  -",
        "usage:",
        "  requests: 12",
        "  tokens:",
        "    input: 100",
        "  models: gpt-4o, o3-mini",
        "  days:",
        "    -",
        "      day: 2030-01-01",
    ];
    for line in expected_lines {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(!key_details(&keys()[1], now()).contains("usage"));
}

#[test]
fn created_shows_id_secret_and_the_warning() {
    let text = created(&json!({"id": "key_9", "name": "ci-bot"}), "sk-agw-secret");
    assert!(text.contains("id:     key_9"), "{text}");
    assert!(text.contains("secret: sk-agw-secret"), "{text}");
    assert!(text.contains("shown only this once"), "{text}");
}

#[test]
fn server_text_cannot_reach_the_terminal_raw() {
    let key = json!({"id": "k", "name": "evil\u{1b}[2Jname\nnext"});
    let table = key_table(&[key], now());
    assert!(!table.contains('\u{1b}'), "{table:?}");
    assert_eq!(table.lines().count(), 2, "{table:?}");
}

#[test]
fn long_cells_are_cut() {
    let many: Vec<String> = (0..20).map(|i| format!("model-{i}")).collect();
    let key = json!({"id": "k", "allowedModels": many});
    let table = key_table(&[key], now());
    let mut lines = table.lines();
    let start = lines.next().unwrap().find("MODELS").unwrap();
    let models = lines.next().unwrap()[start..].split("  ").next().unwrap();
    assert_eq!(models.chars().count(), MAX_CELL);
    assert!(models.ends_with('…'), "{models}");
}

#[test]
fn budgets_read_as_the_flags_that_set_them() {
    let list = json!([
        {"usd": "10", "window": "1d", "soft": false},
        {"usd": "0.5", "window": "7d", "soft": true},
        {"usd": "3", "window": "1h"}
    ]);
    let shown = budgets(&list);
    assert_eq!(shown, "$10/1d $0.5/7d/soft $3/1h");
    let flags: Vec<_> = shown
        .split(' ')
        .map(|flag| crate::cli::args::parse_budget(flag).unwrap())
        .collect();
    assert_eq!(flags.len(), 3, "each one reads back as a --budget value");
    assert_eq!(budgets(&json!([])), "-");
    assert_eq!(budgets(&Value::Null), "-", "a server without budgets");
}
