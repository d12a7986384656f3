use std::str::FromStr;

use super::*;

/// A ledger stand-in: a fixed spend per scope, whatever the window.
struct Seeded(HashMap<Scope, Decimal>);

impl SpendSource for Seeded {
    fn total<'a>(
        &'a self,
        scope: &'a Scope,
        _since: i64,
    ) -> BoxFuture<'a, Result<Decimal, String>> {
        let total = self.0.get(scope).copied().unwrap_or_default();
        Box::pin(async move { Ok(total) })
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

fn identity(id: &str, user: &str, budgets: Vec<BudgetSpec>) -> Identity {
    Identity {
        id: id.into(),
        user: Some(user.into()),
        team: Some("search".into()),
        budgets,
        ..Default::default()
    }
}

const NOON: i64 = 1_795_953_600; // 2026-11-29T12:00Z

fn budgets(seed: &[(Scope, &str)], clock: Arc<ManualWallClock>) -> Budgets {
    let users = HashMap::from([(Arc::from("alice"), vec![spec("1", Window::Day, false)])]);
    let teams = HashMap::from([(Arc::from("search"), vec![spec("100", Window::Month, true)])]);
    let seeded = seed.iter().map(|(s, v)| (s.clone(), usd(v))).collect();
    Budgets::new(users, teams, Arc::new(Seeded(seeded)), clock)
}

#[tokio::test]
async fn key_user_and_team_budgets_apply() {
    let clock = Arc::new(ManualWallClock::new(NOON));
    let b = budgets(&[], clock);
    let alice = identity("k1", "alice", vec![spec("0.5", Window::Hour, false)]);
    let scopes: Vec<(&str, Window)> = b
        .applicable(&alice)
        .iter()
        .map(|(s, spec)| (s.kind(), spec.window))
        .collect();
    assert_eq!(
        scopes,
        [
            ("key", Window::Hour),
            ("user", Window::Day),
            ("team", Window::Month)
        ]
    );
    let bob = identity("k2", "bob", Vec::new());
    assert_eq!(b.applicable(&bob).len(), 1, "only the team's");
}

#[tokio::test]
async fn spent_budget_refuses_until_the_window_resets() {
    let clock = Arc::new(ManualWallClock::new(NOON));
    let alice_scope = Scope::User("alice".into());
    let b = budgets(&[(alice_scope, "0.75")], clock.clone());
    let alice = identity("k1", "alice", Vec::new());
    assert!(b.check(&alice).await.unwrap().refused.is_none());
    b.charge(&alice, usd("0.25"));
    let verdict = b.check(&alice).await.unwrap();
    let refused = verdict.refused.expect("1.00 of 1 spent");
    assert_eq!(refused.scope, "user");
    assert_eq!(refused.spent_usd, usd("1.00"));
    assert_eq!(refused.remaining_usd, Decimal::ZERO);
    assert_eq!(refused.resets_at, NOON + 12 * 3600);
    // The next day starts from zero.
    clock.set(NOON + 12 * 3600);
    assert!(b.check(&alice).await.unwrap().refused.is_none());
    let statuses = b.statuses(&alice).await.unwrap();
    assert_eq!(statuses[0].spent_usd, Decimal::ZERO);
}

#[tokio::test]
async fn soft_budgets_report_but_never_refuse() {
    let clock = Arc::new(ManualWallClock::new(NOON));
    let b = budgets(&[(Scope::Team("search".into()), "150")], clock);
    let bob = identity("k2", "bob", Vec::new());
    let verdict = b.check(&bob).await.unwrap();
    assert!(verdict.refused.is_none());
    assert_eq!(verdict.soft_exceeded.len(), 1);
    assert_eq!(verdict.soft_exceeded[0].remaining_usd, usd("-50"));
}

#[tokio::test]
async fn unseeded_tallies_are_not_charged_twice() {
    let clock = Arc::new(ManualWallClock::new(NOON));
    // The ledger already holds the 0.4 that is charged before the first check.
    let b = budgets(&[(Scope::Key("k1".into()), "0.4")], clock);
    let alice = identity("k1", "alice", vec![spec("0.5", Window::Hour, false)]);
    b.charge(&alice, usd("0.4"));
    let statuses = b.statuses(&alice).await.unwrap();
    assert_eq!(statuses[0].spent_usd, usd("0.4"));
}

#[test]
fn specs_parse_from_config() {
    let spec: BudgetSpec = serde_yaml_ng::from_str("{usd: 2.5, window: 1d}").unwrap();
    assert_eq!(spec.usd, usd("2.5"));
    assert_eq!(spec.window, Window::Day);
    assert!(!spec.soft);
    assert!(serde_yaml_ng::from_str::<BudgetSpec>("{usd: 1, window: 1d, typo: 1}").is_err());
}

#[tokio::test]
async fn the_refusal_names_the_budget_that_resets_last() {
    let clock = Arc::new(ManualWallClock::new(NOON));
    let seed = [
        (Scope::Key("k1".into()), "1"),
        (Scope::User("alice".into()), "1"),
    ];
    let b = budgets(&seed, clock);
    // Key: spent for this hour; user: spent for the day.
    let alice = identity("k1", "alice", vec![spec("0.5", Window::Hour, false)]);
    let refused = b.check(&alice).await.unwrap().refused.unwrap();
    assert_eq!(refused.window, Window::Day);
    assert_eq!(refused.resets_at, NOON + 12 * 3600);
}
