//! Cost tracking end to end, over real sockets against the fake providers: requests priced from
//! the built-in catalog, the cost metric equal to the sum of the costs in the log, unpriced models
//! counted (never $0), the opt-in cost header, budgets that refuse one user and not another and
//! reopen when their window resets (a controllable clock), and spend that survives a restart.

mod support;

use std::str::FromStr;
use std::sync::Arc;

use agentgateway::budget::ManualWallClock;
use agentgateway::config::Config;
use rust_decimal::Decimal;
use serde_json::Value;
use support::fake_anthropic::FakeAnthropic;
use support::fake_openai::FakeOpenAi;
use support::gateway::TestGateway;

const COST: &str = "agentgateway_gen_ai_client_cost_usd_total";
const UNPRICED: &str = "agentgateway_gen_ai_client_unpriced_total";
/// gpt-4o-mini ($0.15 in, $0.075 cached, $0.60 out per 1M) on the fake's usage (11 in of which
/// 3 cached, 7 out): 8 * 0.15 + 3 * 0.075 + 7 * 0.6 = 5.625 millionths of a dollar.
const GPT_4O_MINI_CALL: &str = "0.000005625";
/// 2026-11-29T12:00:00Z
const NOON: i64 = 1_795_953_600;

fn config(upstream: &str, anthropic: &str, extra_global: &str) -> Config {
    let yaml = format!(
        r#"
config:
  metrics:
    fields:
      add: {{user_id: 'apiKey.user'}}
{extra_global}
llm:
  policies:
    apiKey:
      mode: strict
      keys:
      - key: sk-alice
        metadata: {{user: alice, team: search}}
      - key: sk-bob
        metadata: {{user: bob, team: search}}
    budgets:
      users:
        alice: [{{usd: 0.00001, window: 1h}}]
      teams:
        search: [{{usd: 1, window: month, soft: true}}]
  models:
  - name: gpt-4o-mini
    provider: openAI
    params: {{baseUrl: '{upstream}', apiKey: sk-provider}}
  - name: claude-sonnet-4-5
    provider: anthropic
    params: {{baseUrl: '{anthropic}', apiKey: sk-ant}}
  - name: homegrown
    provider: vllm
    params: {{baseUrl: '{upstream}'}}
"#
    );
    Config::from_yaml(&yaml, &|_| None).expect("test config loads")
}

/// The fakes (kept alive by the caller) and a config with a key database in a fresh directory.
async fn with_database() -> ((FakeOpenAi, FakeAnthropic), Config, std::path::PathBuf) {
    let fake = FakeOpenAi::start().await;
    let anthropic = FakeAnthropic::start().await;
    let dir = std::env::temp_dir().join(format!("agw-cost-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("  database: {}", dir.join("keys.db").display());
    let cfg = config(&fake.base_url(), &anthropic.base_url(), &database);
    ((fake, anthropic), cfg, dir)
}

fn chat(model: &str, extra: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#)
}

fn usd(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

/// The `agw.ai.usage.cost.total` values of the log lines, summed exactly.
fn logged_cost(lines: &[String]) -> Decimal {
    lines
        .iter()
        .filter_map(|l| {
            l.split(' ')
                .find_map(|kv| kv.strip_prefix("agw.ai.usage.cost.total="))
        })
        .map(usd)
        .sum()
}

#[tokio::test]
async fn cost_metric_equals_the_logged_costs_and_unpriced_is_counted() {
    let fake = FakeOpenAi::start().await;
    let anthropic = FakeAnthropic::start().await;
    let cfg = config(
        &fake.base_url(),
        &anthropic.base_url(),
        "  costHeader: true",
    );
    let gw = TestGateway::start_config(&cfg).await;
    let plain = gw
        .post(
            "/v1/chat/completions",
            Some("sk-bob"),
            &chat("gpt-4o-mini", ""),
        )
        .await;
    assert_eq!(plain.headers()["x-agw-cost-usd"], GPT_4O_MINI_CALL);
    let stream = chat("gpt-4o-mini", r#","stream":true"#);
    gw.post("/v1/chat/completions", Some("sk-bob"), &stream)
        .await
        .bytes()
        .await
        .unwrap();
    // Claude through the OpenAI API: 21 input + 9 cache read + 4 cache write, 13 output.
    let claude = gw
        .post(
            "/v1/chat/completions",
            Some("sk-bob"),
            &chat("claude-sonnet-4-5", ""),
        )
        .await;
    assert_eq!(claude.status(), 200);
    let unpriced = gw
        .post(
            "/v1/chat/completions",
            Some("sk-bob"),
            &chat("homegrown", ""),
        )
        .await;
    assert_eq!(unpriced.status(), 200);
    assert!(unpriced.headers().get("x-agw-cost-usd").is_none());
    let lines = gw.wait_for_log_lines(4).await;
    assert!(
        lines[3].contains("agw.ai.usage.cost.unpriced=true"),
        "{}",
        lines[3]
    );
    assert!(!lines[3].contains("agw.ai.usage.cost.total"), "never $0");

    // claude-sonnet-4-5: $3 in, $0.30 cache read, $3.75 cache write, $15 out per 1M:
    // 21 * 3 + 9 * 0.3 + 4 * 3.75 + 13 * 15 = 275.7 millionths.
    assert!(
        lines[2].contains("agw.ai.usage.cost.total=0.0002757 "),
        "{}",
        lines[2]
    );
    let logged = logged_cost(&lines);
    assert_eq!(logged, usd("0.000005625") * Decimal::TWO + usd("0.0002757"));
    let m = gw.metrics().await;
    // As with tokens, input and output together are the total; the rest are subsets.
    let metric = m.sum(COST, &[("user_id", "bob"), ("gen_ai_token_type", "input")])
        + m.sum(COST, &[("user_id", "bob"), ("gen_ai_token_type", "output")]);
    assert!((metric - 0.00028695).abs() < 1e-12, "{metric}");
    let cached = m.sum(
        COST,
        &[
            ("gen_ai_request_model", "gpt-4o-mini"),
            ("gen_ai_token_type", "input_cache_read"),
        ],
    );
    assert!((cached - 2.0 * 0.000000225).abs() < 1e-15, "{cached}");
    assert_eq!(
        m.sum(UNPRICED, &[("gen_ai_request_model", "homegrown")]),
        1.0
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_spent_budget_refuses_its_user_until_the_window_resets() {
    let fake = FakeOpenAi::start().await;
    let anthropic = FakeAnthropic::start().await;
    let clock = Arc::new(ManualWallClock::new(NOON));
    let cfg = config(&fake.base_url(), &anthropic.base_url(), "");
    let gw = TestGateway::start_with_clock(&cfg, Some(clock.clone())).await;
    let call = |key: &'static str| {
        let gw = &gw;
        async move {
            gw.post("/v1/chat/completions", Some(key), &chat("gpt-4o-mini", ""))
                .await
        }
    };
    // $0.00001 per hour: two calls of $0.000005625 cross it.
    assert_eq!(call("sk-alice").await.status(), 200);
    assert_eq!(call("sk-alice").await.status(), 200);
    let refused = call("sk-alice").await;
    assert_eq!(refused.status(), 429);
    let retry_after: i64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry_after, 3600, "the hour resets at 13:00");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_quota");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2026-11-29T13:00:00Z"),
        "{body}"
    );
    // Bob is untouched.
    assert_eq!(call("sk-bob").await.status(), 200);
    // The next hour, alice is back.
    clock.advance(3600);
    assert_eq!(call("sk-alice").await.status(), 200);
    assert_eq!(
        fake.request_count(),
        4,
        "the refused call never reached the provider"
    );
    let m = gw.metrics().await;
    let remaining = m.sum(
        "agentgateway_budget_remaining_usd",
        &[("scope", "user"), ("name", "alice"), ("window", "1h")],
    );
    assert!((remaining - 0.000004375).abs() < 1e-12, "{remaining}");
    let lines = gw.wait_for_log_lines(5).await;
    assert!(lines[2].contains("reason=budget_exceeded"), "{}", lines[2]);
    gw.shutdown().await;
}

#[tokio::test]
async fn spend_survives_a_restart() {
    let (_fakes, cfg, dir) = with_database().await;
    let clock = Arc::new(ManualWallClock::new(NOON));
    let gw = TestGateway::start_with_clock(&cfg, Some(clock.clone())).await;
    for key in ["sk-alice", "sk-alice", "sk-bob"] {
        let response = gw
            .post("/v1/chat/completions", Some(key), &chat("gpt-4o-mini", ""))
            .await;
        assert_eq!(response.status(), 200);
    }
    gw.wait_for_log_lines(3).await;
    gw.shutdown().await;

    let gw = TestGateway::start_with_clock(&cfg, Some(clock)).await;
    let spend: Value = gw
        .client
        .get(format!(
            "{}/v1/spend?group_by=user&from=2026-11-29&to=2026-11-30",
            gw.admin_url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(spend["total_usd"], "0.000016875", "{spend}");
    let alice = spend["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["user"] == "alice")
        .unwrap();
    assert_eq!(alice["cost_usd"], "0.00001125");
    assert_eq!(alice["requests"], 2);
    // Alice's budget remembers: still spent after the restart.
    let refused = gw
        .post(
            "/v1/chat/completions",
            Some("sk-alice"),
            &chat("gpt-4o-mini", ""),
        )
        .await;
    assert_eq!(refused.status(), 429);
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's alert rule is valid Prometheus (promtool checks its syntax and PromQL).
#[test]
fn readme_alert_rule_passes_promtool() {
    if !support::prometheus::binaries_available() {
        return;
    }
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("groups:\n- name: llm-spend")
        .expect("alert rule in README");
    let rule = &readme[start..];
    let rule = &rule[..rule.find("```").expect("end of the rule block")];
    assert!(rule.contains("agentgateway_gen_ai_client_cost_usd_total"));
    let path = std::env::temp_dir().join(format!("agw-rule-{}.yaml", uuid::Uuid::new_v4()));
    std::fs::write(&path, rule).unwrap();
    let out = std::process::Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A dynamic key's budget, set through the admin API, refuses the key once spent, and
/// `GET /v1/keys/{id}` shows its spend and what is left per window.
#[tokio::test]
async fn dynamic_key_budget_through_the_admin_api() {
    let (_fakes, cfg, dir) = with_database().await;
    let clock = Arc::new(ManualWallClock::new(NOON));
    let gw = TestGateway::start_with_clock(&cfg, Some(clock)).await;
    let created: Value = gw
        .client
        .post(format!("{}/v1/keys", gw.admin_url))
        .body(r#"{"name":"ci","user":"carol","budgets":[{"usd":"0.000006","window":"1d"}]}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["budgets"][0]["usd"], "0.000006");
    let body = chat("gpt-4o-mini", "");
    let call = || gw.post("/v1/chat/completions", Some(&secret), &body);
    assert_eq!(call().await.status(), 200);
    assert_eq!(
        call().await.status(),
        200,
        "5.625 of 6 millionths: not spent yet"
    );
    let refused = call().await;
    assert_eq!(refused.status(), 429);
    let key: Value = gw
        .client
        .get(format!("{}/v1/keys/{id}", gw.admin_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let usage = &key["usage"];
    assert_eq!(usage["spendUsd"]["1d"], "0.00001125", "{key}");
    assert_eq!(usage["spendUsd"]["month"], "0.00001125");
    let budget = &usage["budgets"][0];
    assert_eq!(budget["scope"], "key");
    assert_eq!(budget["window"], "1d");
    assert_eq!(budget["remainingUsd"], "-0.00000525");
    assert_eq!(budget["resetsAt"], "2026-11-30T00:00:00Z");
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
