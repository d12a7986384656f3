//! Cost rate limits (`localRateLimit` with `type: cost`) end to end, over real sockets against the
//! fake OpenAI provider: a per-user bucket of US dollars that takes each request's estimate
//! before forwarding and keeps its real cost after (streams included), refuses one user with an
//! OpenAI-style 429 while another is untouched, and counts its decisions as `limit="cost"`.

mod support;

use support::fake_openai::FakeOpenAi;
use support::gateway::{config_with_upstream, TestGateway};

const DECISIONS: &str = "agentgateway_ratelimit_decisions_total";

/// $0.00001 an hour per user: 10 micro-dollars. gpt-4o-mini is $0.15 in / $0.075 cached /
/// $0.60 out per 1M tokens; the fake bills every call 11 input (3 cached) + 7 output tokens,
/// $0.000005625, which the limiter keeps as 6 micro-dollars (rounded up). A "hi" chat is
/// estimated at 8 input tokens, $0.0000012: 2 micro-dollars.
const PER_USER_DOLLARS: &str = r#"
config:
  metrics:
    fields:
      add: {user_id: 'apiKey.user'}
llm:
  policies:
    apiKey:
      keys:
      - key: sk-alice
        metadata: {user: alice}
      - key: sk-bob
        metadata: {user: bob}
    localRateLimit:
    - type: cost
      maxUsd: 0.00001
      fillInterval: 1h
      key: 'apiKey.user'
  models:
  - name: gpt-4o-mini
    provider: openAI
    params: {baseUrl: '{upstream}', apiKey: sk-provider}
"#;

fn chat(extra: &str) -> String {
    format!(r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"hi"}}]{extra}}}"#)
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Sends a chat as `key`, reads the whole answer and waits until its record is finished (so the
/// true-up has happened before the next request). Returns the status.
async fn spend(gw: &TestGateway, key: &str, body: &str, finished: usize) -> u16 {
    let response = gw.post("/v1/chat/completions", Some(key), body).await;
    let status = response.status().as_u16();
    response.bytes().await.unwrap();
    gw.wait_for_log_lines(finished).await;
    status
}

#[tokio::test]
async fn a_dollar_bucket_refuses_one_user_after_the_real_spend_and_not_the_other() {
    let fake = FakeOpenAi::start().await;
    let gw = TestGateway::start(&config_with_upstream(PER_USER_DOLLARS, &fake.base_url())).await;

    // Estimated far above the bucket (100k output tokens allowed: $0.06), so it takes all 10
    // micro-dollars; it really cost 6, and the true-up gives 4 back.
    let generous = chat(r#","max_tokens":100000"#);
    assert_eq!(spend(&gw, "sk-alice", &generous, 1).await, 200);
    // Only the true-up leaves room for this one: 4 left, 2 estimated; then 6 real: 2 in debt.
    assert_eq!(spend(&gw, "sk-alice", &chat(""), 2).await, 200);

    let refused = gw
        .post("/v1/chat/completions", Some("sk-alice"), &chat(""))
        .await;
    assert_eq!(refused.status(), 429);
    // From 2 in debt to the 2 estimated is 4 micro-dollars at 10 an hour: 24 minutes.
    let retry_after: u64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((1430..=1440).contains(&retry_after), "{retry_after}");
    assert!(
        !refused
            .headers()
            .keys()
            .any(|name| name.as_str().starts_with("x-ratelimit-")),
        "OpenAI has no rate-limit header for dollars: {:?}",
        refused.headers()
    );
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["type"], "cost");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Rate limit reached on US dollars per time window"),
        "{message}"
    );
    assert_eq!(fake.request_count(), 2, "the refused request never left");

    // Bob's bucket is his own; his streamed call is trued up with its real cost as well.
    assert_eq!(spend(&gw, "sk-bob", &chat(""), 4).await, 200);
    assert_eq!(
        spend(&gw, "sk-bob", &chat(r#","stream":true"#), 5).await,
        200
    );
    assert_eq!(
        spend(&gw, "sk-bob", &chat(""), 6).await,
        429,
        "10 - 6 - 6: the stream's real cost was kept, not its estimate of 2"
    );

    let lines = gw.log_lines();
    let costs = lines
        .iter()
        .filter(|l| l.contains("agw.ai.usage.cost.total=0.000005625"))
        .count();
    assert_eq!(costs, 4, "four calls reached the provider: {lines:#?}");

    let m = gw.metrics().await;
    let decisions = |decision: &str, user: &str| {
        m.sum(
            DECISIONS,
            &[("decision", decision), ("limit", "cost"), ("user_id", user)],
        )
    };
    assert_eq!(decisions("allowed", "alice"), 2.0);
    assert_eq!(decisions("limited", "alice"), 1.0);
    assert_eq!(decisions("allowed", "bob"), 2.0);
    assert_eq!(decisions("limited", "bob"), 1.0);
    gw.shutdown().await;
}
