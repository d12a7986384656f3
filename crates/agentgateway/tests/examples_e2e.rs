//! The shipped provider examples, loaded from `examples/` as a user would run them (environment
//! variables included), with every provider's API root pointed at a fake provider through the
//! same `*_UPSTREAM` variables a user would set: each model answers on the API its callers speak,
//! and is metered under the provider that served it.

mod support;

use std::collections::HashMap;

use agentgateway::config::Config;
use support::fake_anthropic::FakeAnthropic;
use support::fake_openai::FakeOpenAi;
use support::gateway::TestGateway;

const TOKENS: &str = "agentgateway_gen_ai_client_token_usage_sum";

fn example(name: &str) -> String {
    let path = format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn load(yaml: &str, env: HashMap<&'static str, String>) -> Config {
    Config::from_yaml(yaml, &|name| env.get(name).cloned())
        .unwrap_or_else(|e| panic!("example must load: {e}"))
}

async fn call(gw: &TestGateway, path: &str, key: &str, body: String) -> u16 {
    gw.client
        .post(format!("{}{path}", gw.url))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

fn messages(model: &str) -> String {
    format!(
        r#"{{"model":"{model}","max_tokens":64,"messages":[{{"role":"user","content":"hi"}}]}}"#
    )
}

#[tokio::test]
async fn anthropic_example_serves_both_apis() {
    let fake = FakeAnthropic::start().await;
    let env = HashMap::from([
        ("ANTHROPIC_API_KEY", "sk-ant-test".to_owned()),
        ("ANTHROPIC_UPSTREAM", fake.base_url()),
    ]);
    let gw = TestGateway::start_config(&load(&example("anthropic.yaml"), env)).await;
    assert_eq!(
        call(&gw, "/v1/messages", "sk-alice-123", messages("claude")).await,
        200
    );
    let openai_style = call(
        &gw,
        "/v1/chat/completions",
        "sk-bob-456",
        chat("claude-opus-4-1"),
    )
    .await;
    assert_eq!(openai_style, 200);
    let sent = fake.requests();
    assert_eq!(sent[0].json()["model"], "claude-sonnet-4-5");
    assert_eq!(sent[1].json()["max_tokens"], 8192);
    gw.wait_for_log_lines(2).await;
    let m = gw.metrics().await;
    let input = [
        ("gen_ai_system", "anthropic"),
        ("gen_ai_token_type", "input"),
    ];
    assert_eq!(m.select(TOKENS, &input).len(), 2, "one series per user");
    gw.shutdown().await;
}

#[tokio::test]
async fn multi_provider_example_routes_every_model() {
    let openai = FakeOpenAi::start().await;
    let anthropic = FakeAnthropic::start().await;
    let env = HashMap::from([
        ("OPENAI_API_KEY", "sk-openai".to_owned()),
        ("ANTHROPIC_API_KEY", "sk-ant".to_owned()),
        ("AZURE_OPENAI_API_KEY", "az".to_owned()),
        ("AZURE_OPENAI_RESOURCE", "unused".to_owned()),
        ("GROQ_API_KEY", "gsk".to_owned()),
        ("OPENAI_UPSTREAM", openai.base_url()),
        ("GROQ_UPSTREAM", openai.base_url()),
        ("OLLAMA_UPSTREAM", openai.base_url()),
        ("ANTHROPIC_UPSTREAM", anthropic.base_url()),
    ]);
    // Azure's root comes from the resource name; here it is the fake's.
    let azure_root = openai.base_url().trim_end_matches("/v1").to_owned() + "/openai";
    let yaml = example("multi-provider.yaml").replace(
        "azureResourceName: $AZURE_OPENAI_RESOURCE",
        &format!("baseUrl: {azure_root}"),
    );
    let gw = TestGateway::start_config(&load(&yaml, env)).await;
    let alice = "sk-alice-123";
    for model in [
        "gpt-4o-mini",
        "claude-sonnet-4-5",
        "gpt-4o-azure",
        "llama-3.3-70b-versatile",
    ] {
        assert_eq!(
            call(&gw, "/v1/chat/completions", alice, chat(model)).await,
            200,
            "{model}"
        );
    }
    // A Claude-Code-style client on a local model, and bob's allow-list.
    assert_eq!(
        call(&gw, "/v1/messages", "sk-bob-456", messages("qwen3-coder")).await,
        200
    );
    assert_eq!(
        call(
            &gw,
            "/v1/messages",
            "sk-bob-456",
            messages("claude-sonnet-4-5")
        )
        .await,
        403
    );
    gw.wait_for_log_lines(6).await;
    let m = gw.metrics().await;
    for system in ["openai", "anthropic", "azure.ai.openai", "groq", "ollama"] {
        let input = [("gen_ai_system", system), ("gen_ai_token_type", "input")];
        assert!(m.sum(TOKENS, &input) > 0.0, "{system} metered");
    }
    let azure = openai
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/openai/"))
        .expect("azure call");
    assert_eq!(
        azure.path,
        "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn budgets_example_prices_its_own_model_and_refuses_past_the_key_budget() {
    let fake = FakeOpenAi::start().await;
    let dir = std::env::temp_dir().join(format!("agw-budgets-example-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let prices = format!("{}/../../examples/prices.yaml", env!("CARGO_MANIFEST_DIR"));
    let yaml = example("budgets.yaml")
        .replace("./agentgateway.db", &dir.join("db").display().to_string())
        .replace("- examples/prices.yaml", &format!("- {prices}"))
        // A key budget small enough for the fake's usage to spend it in one call.
        .replace(
            "budgets: [{usd: 5, window: 1d}]",
            "budgets: [{usd: 0.000001, window: 1d}]",
        );
    let env = HashMap::from([
        ("OPENAI_API_KEY", "sk-openai".to_owned()),
        ("OPENAI_UPSTREAM", fake.base_url()),
    ]);
    let gw = TestGateway::start_config(&load(&yaml, env)).await;
    let first = gw
        .client
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth("sk-alice-123")
        .body(chat("my-finetune"))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 200);
    // examples/prices.yaml: 8 * 0.3 + 3 * 0.15 + 7 * 1.2 = 11.25 millionths (the fake answers
    // with the fine-tune's name plus a date, which the dated-suffix fallback strips).
    assert_eq!(first.headers()["x-agw-cost-usd"], "0.00001125");
    let second = call(
        &gw,
        "/v1/chat/completions",
        "sk-alice-123",
        chat("gpt-4o-mini"),
    )
    .await;
    assert_eq!(second, 429, "the key's daily budget is spent");
    assert_eq!(
        call(
            &gw,
            "/v1/chat/completions",
            "sk-bob-456",
            chat("gpt-4o-mini")
        )
        .await,
        200
    );
    let lines = gw.wait_for_log_lines(3).await;
    assert!(lines[0].contains("cost=0.00001125"), "{}", lines[0]);
    gw.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
