//! Rate limits and allow-lists end to end, over real sockets: per-user `localRateLimit` buckets,
//! per-key limits (requests, tokens trued up with the provider's usage, parallel slots released
//! when the client leaves), OpenAI-style 429s and headers, model allow-lists, the decisions
//! metric and the cardinality bound on custom labels.

mod support;

use std::time::{Duration, Instant};

use support::fake_openai::{FakeOpenAi, SCENARIO_HEADER};
use support::gateway::{config_with_upstream, TestGateway};

const DECISIONS: &str = "agentgateway_ratelimit_decisions_total";
const REQUESTS: &str = "agentgateway_requests_total";

fn chat(model: &str) -> String {
    format!(r#"{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}]}}"#)
}

/// A chat completion for `model` with key `key`.
async fn chat_as(gw: &TestGateway, key: &str, model: &str) -> reqwest::Response {
    gw.post("/v1/chat/completions", Some(key), &chat(model))
        .await
}

async fn start(yaml: &str) -> (FakeOpenAi, TestGateway) {
    let fake = FakeOpenAi::start().await;
    let gateway = TestGateway::start(&config_with_upstream(yaml, &fake.base_url())).await;
    (fake, gateway)
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

const PER_USER: &str = r#"
config:
  logging:
    fields:
      add: {team: 'apiKey.team'}
  metrics:
    fields:
      add: {user_id: 'apiKey.user'}
llm:
  policies:
    apiKey:
      keys:
      - key: sk-alice
        metadata: {user: alice, team: search}
      - key: sk-bob
        metadata: {user: bob, team: ads}
    localRateLimit:
    - type: requests
      maxTokens: 2
      tokensPerFill: 2
      fillInterval: 60s
      key: 'apiKey.user'
  models:
  - name: gpt-4o-mini
    provider: openAI
    params: {baseUrl: '{upstream}', apiKey: sk-provider}
"#;

#[tokio::test]
async fn one_user_is_limited_and_the_other_is_untouched() {
    let (fake, gw) = start(PER_USER).await;
    let mut remaining = Vec::new();
    for _ in 0..2 {
        let ok = chat_as(&gw, "sk-alice", "gpt-4o-mini").await;
        assert_eq!(ok.status(), 200);
        assert_eq!(header(&ok, "x-ratelimit-limit-requests"), Some("2"));
        remaining.push(header(&ok, "x-ratelimit-remaining-requests").map(str::to_owned));
        assert!(header(&ok, "x-ratelimit-reset-requests").is_some());
    }
    assert_eq!(remaining, [Some("1".to_owned()), Some("0".to_owned())]);

    let limited = chat_as(&gw, "sk-alice", "gpt-4o-mini").await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = header(&limited, "retry-after").unwrap().parse().unwrap();
    assert!(
        (1..=30).contains(&retry_after),
        "one of 2/min refills in <= 30s"
    );
    assert_eq!(
        header(&limited, "x-ratelimit-remaining-requests"),
        Some("0")
    );
    assert_eq!(header(&limited, "x-ratelimit-limit-requests"), Some("2"));
    assert!(header(&limited, "x-request-id").is_some());
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("try again"));
    assert_eq!(
        fake.request_count(),
        2,
        "a limited request never reaches the provider"
    );

    for _ in 0..2 {
        let bob = chat_as(&gw, "sk-bob", "gpt-4o-mini").await;
        assert_eq!(bob.status(), 200, "bob has his own bucket");
    }

    let lines = gw.wait_for_log_lines(5).await;
    let refused: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("http.status=429"))
        .collect();
    assert_eq!(refused.len(), 1, "{lines:#?}");
    assert!(refused[0].contains("reason=rate_limited"), "{}", refused[0]);
    assert!(refused[0].contains("user=alice"), "{}", refused[0]);
    assert!(!lines
        .iter()
        .any(|l| l.contains("sk-alice") || l.contains("sk-bob")));

    let m = gw.metrics().await;
    let decisions = |decision: &str, user: &str| {
        m.sum(
            DECISIONS,
            &[
                ("decision", decision),
                ("limit", "requests"),
                ("user_id", user),
            ],
        )
    };
    assert_eq!(decisions("allowed", "alice"), 2.0);
    assert_eq!(decisions("limited", "alice"), 1.0);
    assert_eq!(decisions("allowed", "bob"), 2.0);
    assert_eq!(decisions("limited", "bob"), 0.0);
    let refused_count = m.sum(
        REQUESTS,
        &[
            ("status", "429"),
            ("reason", "rate_limited"),
            ("user_id", "alice"),
        ],
    );
    assert_eq!(refused_count, 1.0);
    gw.shutdown().await;
}

const PER_KEY: &str = r#"
llm:
  policies:
    apiKey:
      keys:
      - key: sk-tokens
        metadata: {user: tina}
        limits: {tpd: 40}
      - key: sk-serial
        metadata: {user: sam}
        limits: {maxParallel: 1}
      - key: sk-narrow
        metadata: {user: nora}
        allowedModels: ['gpt-4o*']
      - key: sk-wide
        metadata: {user: will}
  models:
  - name: gpt-4o-mini
    provider: openAI
    params: {baseUrl: '{upstream}', apiKey: sk-provider}
  - name: o3
    provider: openAI
    params: {baseUrl: '{upstream}', apiKey: sk-provider}
"#;

/// The fake reports 11 input + 7 output tokens for every chat call: 18 per request. With 40
/// tokens a day, two requests leave 4, and the third (estimated above 4) is refused. Counting
/// only the small estimate of "hi" would have let several more through.
#[tokio::test]
async fn token_limits_are_trued_up_with_the_real_usage_streams_included() {
    let (fake, gw) = start(PER_KEY).await;
    let first = chat_as(&gw, "sk-tokens", "gpt-4o-mini").await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-limit-tokens"), Some("40"));
    first.bytes().await.unwrap();

    let stream =
        r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let second = gw
        .post("/v1/chat/completions", Some("sk-tokens"), stream)
        .await;
    assert_eq!(second.status(), 200);
    let events = second.text().await.unwrap();
    assert!(
        !events.contains("\"usage\""),
        "the caller did not ask for usage"
    );
    gw.wait_for_log_lines(2).await;

    let third = chat_as(&gw, "sk-tokens", "gpt-4o-mini").await;
    assert_eq!(third.status(), 429);
    let remaining: u64 = header(&third, "x-ratelimit-remaining-tokens")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        remaining, 4,
        "40 - 18 - 18 (a day's refill is far below one token)"
    );
    let body: serde_json::Value = third.json().await.unwrap();
    assert_eq!(body["error"]["type"], "tokens");
    assert_eq!(fake.request_count(), 2);
    let m = gw.metrics().await;
    assert_eq!(
        m.sum(DECISIONS, &[("decision", "limited"), ("limit", "tokens")]),
        1.0
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn a_parallel_slot_is_released_when_the_client_goes_away() {
    let (_fake, gw) = start(PER_KEY).await;
    let hanging = {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(800))
            .build()
            .unwrap();
        let url = format!("{}/v1/chat/completions", gw.url);
        tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth("sk-serial")
                .header(SCENARIO_HEADER, "hang")
                .header("content-type", "application/json")
                .body(chat("gpt-4o-mini"))
                .send()
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let busy = chat_as(&gw, "sk-serial", "gpt-4o-mini").await;
    assert_eq!(busy.status(), 429, "the one slot is taken");
    assert!(hanging.await.unwrap().is_err(), "the client gave up");

    // The gateway notices the disconnect and gives the slot back.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = chat_as(&gw, "sk-serial", "gpt-4o-mini").await;
        if again.status() == 200 {
            break;
        }
        assert_eq!(again.status(), 429);
        assert!(Instant::now() < deadline, "slot never released");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lines = gw.wait_for_log_lines(3).await;
    assert!(
        lines.iter().any(|l| l.contains("http.status=499")),
        "{lines:#?}"
    );
    let m = gw.metrics().await;
    assert!(m.sum(DECISIONS, &[("decision", "limited"), ("limit", "parallel")]) >= 1.0);
    gw.shutdown().await;
}

#[tokio::test]
async fn allow_lists_refuse_other_models_and_filter_the_model_list() {
    let (fake, gw) = start(PER_KEY).await;
    let refused = chat_as(&gw, "sk-narrow", "o3").await;
    assert_eq!(refused.status(), 403);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_allowed");
    assert_eq!(body["error"]["type"], "permission_error");
    assert_eq!(fake.request_count(), 0);
    let allowed = chat_as(&gw, "sk-narrow", "gpt-4o-mini").await;
    assert_eq!(allowed.status(), 200);

    let ids = |key: &'static str| {
        let request = gw
            .client
            .get(format!("{}/v1/models", gw.url))
            .bearer_auth(key);
        async move {
            let list: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids("sk-narrow").await, ["gpt-4o-mini"]);
    assert_eq!(ids("sk-wide").await, ["gpt-4o-mini", "o3"]);
    let lines = gw.wait_for_log_lines(4).await;
    assert!(
        lines[0].contains("reason=model_not_allowed"),
        "{}",
        lines[0]
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn keys_in_azure_and_anthropic_headers_work_and_never_go_upstream() {
    let (fake, gw) = start(PER_KEY).await;
    for header_name in ["api-key", "x-api-key"] {
        let response = gw
            .client
            .post(format!("{}/v1/chat/completions", gw.url))
            .header(header_name, "sk-wide")
            .header("content-type", "application/json")
            .body(chat("gpt-4o-mini"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{header_name}");
    }
    for request in fake.requests() {
        assert_eq!(request.header("api-key"), None);
        assert_eq!(request.header("x-api-key"), None);
        assert_eq!(request.header("authorization"), Some("Bearer sk-provider"));
    }
    let lines = gw.wait_for_log_lines(2).await;
    assert!(lines.iter().all(|l| l.contains("user=will")), "{lines:#?}");
    gw.shutdown().await;
}

#[tokio::test]
async fn max_label_values_folds_later_users_into_other() {
    let yaml = r#"
config:
  metrics:
    maxLabelValues: 1
    fields:
      add: {user_id: 'apiKey.user'}
llm:
  policies:
    apiKey:
      keys:
      - {key: sk-a, metadata: {user: a}}
      - {key: sk-b, metadata: {user: b}}
      - {key: sk-c, metadata: {user: c}}
  models:
  - name: gpt-4o-mini
    provider: openAI
    params: {baseUrl: '{upstream}', apiKey: sk-provider}
"#;
    let (_fake, gw) = start(yaml).await;
    for key in ["sk-a", "sk-b", "sk-c", "sk-a"] {
        let response = chat_as(&gw, key, "gpt-4o-mini").await;
        assert_eq!(response.status(), 200);
    }
    gw.wait_for_log_lines(4).await;
    let m = gw.metrics().await;
    let mut users: Vec<String> = m
        .select(REQUESTS, &[])
        .iter()
        .map(|s| s.labels["user_id"].clone())
        .collect();
    users.sort();
    users.dedup();
    assert_eq!(users, ["a", "other"]);
    assert_eq!(m.sum(REQUESTS, &[("user_id", "a")]), 2.0);
    assert_eq!(m.sum(REQUESTS, &[("user_id", "other")]), 2.0);
    gw.shutdown().await;
}
