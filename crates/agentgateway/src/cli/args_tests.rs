use super::*;
use clap::Parser;

/// The `keys` subcommands as the binary parses them, so the clap attributes are tested too.
#[derive(Parser)]
struct Keys {
    #[command(subcommand)]
    command: KeysCommand,
}

fn parse(args: &[&str]) -> Result<KeysCommand, clap::Error> {
    Keys::try_parse_from(std::iter::once("keys").chain(args.iter().copied())).map(|k| k.command)
}

fn create(args: &[&str]) -> CreateArgs {
    match parse(&[&["create"], args].concat()) {
        Ok(KeysCommand::Create(create)) => create,
        Ok(_) => panic!("not a create"),
        Err(e) => panic!("{e}"),
    }
}

fn update(args: &[&str]) -> UpdateArgs {
    match parse(&[&["update", "key_1"], args].concat()) {
        Ok(KeysCommand::Update(update)) => update,
        Ok(_) => panic!("not an update"),
        Err(e) => panic!("{e}"),
    }
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn create_maps_every_flag() {
    let args = create(&[
        "--name",
        "ci-bot",
        "--user",
        "alice",
        "--team",
        "search",
        "--rpm",
        "60",
        "--tpm",
        "100000",
        "--tpd",
        "5000000",
        "--max-parallel",
        "4",
        "--models",
        "gpt-4o*,o3-mini",
        "--models",
        "*-nano",
        "--metadata",
        "env=prod",
        "--metadata",
        "query=a=b",
        "--expires-in",
        "30d",
    ]);
    assert_eq!(
        create_body(&args, now()).unwrap(),
        json!({
            "name": "ci-bot",
            "user": "alice",
            "team": "search",
            "metadata": {"env": "prod", "query": "a=b"},
            "allowedModels": ["gpt-4o*", "o3-mini", "*-nano"],
            "limits": {"rpm": 60, "tpm": 100000, "tpd": 5000000, "maxParallel": 4},
            "expiresAt": "2030-01-31T00:00:00Z"
        })
    );
}

#[test]
fn create_sends_only_what_is_given() {
    assert_eq!(
        create_body(&create(&["--name", "x"]), now()).unwrap(),
        json!({"name": "x"})
    );
    let args = create(&["--name", "x", "--tpm", "10"]);
    assert_eq!(
        create_body(&args, now()).unwrap(),
        json!({"name": "x", "limits": {"tpm": 10}})
    );
}

#[test]
fn expires_at_is_normalised_to_utc() {
    let args = create(&["--name", "x", "--expires-at", "2031-06-01T02:30:00+02:00"]);
    assert_eq!(
        create_body(&args, now()).unwrap()["expiresAt"],
        "2031-06-01T00:30:00Z"
    );
}

#[test]
fn bad_flags_are_refused_and_named() {
    let cases: [(&[&str], &str); 6] = [
        (&["create"], "--name"),
        (
            &["create", "--name", "x", "--metadata", "novalue"],
            "KEY=VALUE",
        ),
        (&["create", "--name", "x", "--rpm", "many"], "--rpm"),
        (
            &["create", "--name", "x", "--expires-in", "30", "--rpm", "1"],
            "missing unit",
        ),
        (
            &[
                "create",
                "--name",
                "x",
                "--expires-in",
                "1d",
                "--expires-at",
                "2031-01-01T00:00:00Z",
            ],
            "cannot be used with",
        ),
        (&["update", "k", "--clear", "owner"], "owner"),
    ];
    for (args, needle) in cases {
        let err = match parse(args) {
            Ok(_) => panic!("{args:?} should fail"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(needle),
            "{args:?}: expected {needle:?} in {err}"
        );
    }
}

#[test]
fn a_bad_model_pattern_is_named_before_sending() {
    let args = create(&["--name", "x", "--models", "ok,a*b"]);
    let err = create_body(&args, now()).unwrap_err();
    assert!(err.starts_with("--models[1]:"), "{err}");
}

#[test]
fn parses_expiry_durations_with_days() {
    let day = 86_400;
    let cases = [
        ("30d", 30 * day),
        ("1d12h", day + 12 * 3600),
        ("12h", 12 * 3600),
        ("90m", 5400),
    ];
    for (text, secs) in cases {
        assert_eq!(
            parse_expires_in(text),
            Ok(Duration::from_secs(secs)),
            "{text}"
        );
    }
    for bad in ["", "d", "0d", "0s", "1dd", "1.5d", "12h1d", "-1d"] {
        assert!(parse_expires_in(bad).is_err(), "{bad:?} should fail");
    }
}

#[test]
fn update_sends_only_named_fields_and_nulls_for_clears() {
    let args = update(&[
        "--name",
        "renamed",
        "--clear",
        "user,models",
        "--clear",
        "expiry",
    ]);
    assert!(!update_needs_current(&args));
    assert_eq!(
        update_body(&args, None, now()).unwrap(),
        json!({"name": "renamed", "user": null, "allowedModels": null, "expiresAt": null})
    );
    let args = update(&["--clear", "metadata"]);
    assert_eq!(
        update_body(&args, None, now()).unwrap(),
        json!({"metadata": null})
    );
}

#[test]
fn update_merges_limits_into_the_current_ones() {
    let current = json!({"id": "key_1", "limits": {"rpm": 10, "tpm": 20, "tpd": 30}});
    let args = update(&["--rpm", "100", "--clear", "tpd"]);
    assert!(update_needs_current(&args));
    assert_eq!(
        update_body(&args, Some(&current), now()).unwrap(),
        json!({"limits": {"rpm": 100, "tpm": 20, "tpd": null, "maxParallel": null}})
    );
    let args = update(&["--clear", "rpm"]);
    assert_eq!(
        update_body(&args, Some(&current), now()).unwrap(),
        json!({"limits": {"rpm": null, "tpm": 20, "tpd": 30, "maxParallel": null}})
    );
}

#[test]
fn update_merges_metadata_unless_cleared() {
    let current = json!({"metadata": {"env": "dev", "owner": "bob"}});
    let args = update(&["--metadata", "env=prod"]);
    assert_eq!(
        update_body(&args, Some(&current), now()).unwrap(),
        json!({"metadata": {"env": "prod", "owner": "bob"}})
    );
    let args = update(&["--clear", "metadata", "--metadata", "env=prod"]);
    assert_eq!(
        update_body(&args, Some(&current), now()).unwrap(),
        json!({"metadata": {"env": "prod"}})
    );
}

#[test]
fn update_refuses_nothing_and_contradictions() {
    let err = update_body(&update(&[]), None, now()).unwrap_err();
    assert!(err.starts_with("nothing to update"), "{err}");
    let args = update(&["--max-parallel", "2", "--clear", "max-parallel"]);
    let err = update_body(&args, Some(&json!({})), now()).unwrap_err();
    assert_eq!(
        err,
        "--max-parallel and --clear max-parallel contradict each other"
    );
}

// === --budget ===

#[test]
fn create_sends_budgets_as_exact_decimal_strings() {
    let args = create(&[
        "--name",
        "x",
        "--budget",
        "10/1d",
        "--budget",
        "2.50/month/soft",
        "--budget",
        "$0.05/1h",
    ]);
    assert_eq!(
        create_body(&args, now()).unwrap(),
        json!({"name": "x", "budgets": [
            {"usd": "10", "window": "1d", "soft": false},
            {"usd": "2.50", "window": "month", "soft": true},
            {"usd": "0.05", "window": "1h", "soft": false},
        ]})
    );
    let none = create(&["--name", "x", "--budget", "none"]);
    let err = create_body(&none, now()).unwrap_err();
    assert_eq!(err, "--budget none: a new key has no budgets to remove");
}

#[test]
fn budget_flags_parse_every_window_and_refuse_the_rest() {
    for (text, window) in [
        ("1/1h", "1h"),
        ("1/1d", "1d"),
        ("1/7d", "7d"),
        ("1/30d", "30d"),
        ("1/month", "month"),
    ] {
        let BudgetFlag::Budget(spec) = parse_budget(text).unwrap() else {
            panic!("{text}");
        };
        assert_eq!((spec.window.as_str(), spec.soft), (window, false), "{text}");
    }
    assert_eq!(parse_budget(" None "), Ok(BudgetFlag::None));
    let cases = [
        ("10", "expected USD/WINDOW[/soft]"),
        ("10/1d/hard", "expected USD/WINDOW[/soft]"),
        ("10/1d/soft/x", "expected USD/WINDOW[/soft]"),
        ("10/2d", "the window must be one of 1h, 1d, 7d, 30d, month"),
        ("10/", "the window must be one of"),
        ("0/1d", "the amount must be a positive number of dollars"),
        ("-3/1d", "the amount must be a positive"),
        ("ten/1d", "the amount must be a positive"),
        ("/1d", "the amount must be a positive"),
    ];
    for (text, needle) in cases {
        let err = parse_budget(text).unwrap_err();
        assert!(err.contains(needle), "{text:?}: {err}");
    }
    let err = match parse(&["create", "--name", "x", "--budget", "5/1y"]) {
        Ok(_) => panic!("a bad window must fail"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("--budget") && err.contains("1h, 1d"), "{err}");
}

#[test]
fn update_replaces_or_clears_the_budgets_without_reading_the_key() {
    let args = update(&["--budget", "3/7d", "--budget", "20/30d/soft"]);
    assert!(!update_needs_current(&args), "a list is replaced whole");
    assert_eq!(
        update_body(&args, None, now()).unwrap(),
        json!({"budgets": [
            {"usd": "3", "window": "7d", "soft": false},
            {"usd": "20", "window": "30d", "soft": true},
        ]})
    );
    for clear in [&["--budget", "none"][..], &["--clear", "budgets"]] {
        assert_eq!(
            update_body(&update(clear), None, now()).unwrap(),
            json!({"budgets": []}),
            "{clear:?}"
        );
    }
    let mixed = update(&["--budget", "none", "--budget", "1/1d"]);
    let err = update_body(&mixed, None, now()).unwrap_err();
    assert_eq!(err, "--budget none cannot be combined with other budgets");
    let contradiction = update(&["--budget", "1/1d", "--clear", "budgets"]);
    let err = update_body(&contradiction, None, now()).unwrap_err();
    assert_eq!(err, "--budget and --clear budgets contradict each other");
}
