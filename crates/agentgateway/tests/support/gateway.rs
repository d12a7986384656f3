//! The gateway under test: started in-process from a YAML config on `127.0.0.1:0` (LLM, stats,
//! readiness and admin ports), with the access log captured in memory, plus a parser for the Prometheus text
//! exposition so tests assert exact metric values instead of grepping.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentgateway::accesslog::LogSink;
use agentgateway::config::Config;
use agentgateway::{Gateway, Listeners, Options, RunningGateway};
use tokio::net::TcpListener;

pub struct TestGateway {
    running: Option<RunningGateway>,
    log: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    pub stats_url: String,
    pub readiness_url: String,
    pub admin_url: String,
    pub client: reqwest::Client,
}

/// Replaces `{upstream}` in the YAML with the fake provider's base URL.
pub fn config_with_upstream(yaml: &str, upstream: &str) -> String {
    yaml.replace("{upstream}", upstream)
}

impl TestGateway {
    pub async fn start(yaml: &str) -> TestGateway {
        let config = Config::from_yaml(yaml, &|_| None).expect("test config must load");
        Self::start_config(&config).await
    }

    pub async fn start_config(config: &Config) -> TestGateway {
        Self::start_with_clock(config, None).await
    }

    /// With `clock`, budgets and the spend ledger read that clock (tests move time).
    pub async fn start_with_clock(
        config: &Config,
        clock: Option<Arc<dyn agentgateway::budget::WallClock>>,
    ) -> TestGateway {
        let log = Arc::new(Mutex::new(Vec::new()));
        let options = Options {
            log_sink: LogSink::Memory(log.clone()),
            log_format: None,
            clock,
        };
        let gateway = Gateway::build(config, options).expect("test config must build");
        let listeners = Listeners {
            llm: bind().await,
            stats: Some(bind().await),
            readiness: Some(bind().await),
            admin: Some(bind().await),
        };
        let running = gateway.start(listeners).await.expect("gateway starts");
        let url = format!("http://{}", running.llm_addr);
        let stats_url = format!("http://{}", running.stats_addr.expect("stats bound"));
        let readiness_url = format!(
            "http://{}",
            running.readiness_addr.expect("readiness bound")
        );
        let admin_url = format!("http://{}", running.admin_addr.expect("admin bound"));
        TestGateway {
            running: Some(running),
            log,
            url,
            stats_url,
            readiness_url,
            admin_url,
            client: reqwest::Client::new(),
        }
    }

    pub fn running(&self) -> &RunningGateway {
        self.running.as_ref().expect("not shut down")
    }

    /// POSTs JSON to a gateway path with an optional gateway key.
    pub async fn post(&self, path: &str, key: Option<&str>, body: &str) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.expect("request reaches the gateway")
    }

    /// The access-log lines written so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().expect("log lock").clone()
    }

    /// Waits (bounded) until at least `n` log lines exist: a record is finished when the response
    /// body has been fully sent, which can be a moment after the client read it.
    pub async fn wait_for_log_lines(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let lines = self.log_lines();
            if lines.len() >= n {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("expected {n} log lines, got {:?}", self.log_lines());
    }

    pub async fn scrape(&self, accept: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}/metrics", self.stats_url));
        if let Some(accept) = accept {
            request = request.header("accept", accept);
        }
        request.send().await.expect("stats port answers")
    }

    /// The classic-format exposition, parsed.
    pub async fn metrics(&self) -> Metrics {
        let text = self.scrape(None).await.text().await.expect("metrics body");
        Metrics::parse(&text)
    }

    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown().await;
        }
    }
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// One sample line of the exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Metrics {
    pub samples: Vec<Sample>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(parse_sample)
            .collect();
        Metrics { samples }
    }

    /// Samples named `name` whose labels include every `(key, value)` given.
    pub fn select(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The sum of matching samples (0 when none match).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.select(name, labels).iter().map(|s| s.value).sum()
    }
}

fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("sample has a value");
    let value = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value in {line:?}"));
    let (name, labels) = match series.split_once('{') {
        None => (series.to_owned(), BTreeMap::new()),
        Some((name, rest)) => (name.to_owned(), parse_labels(rest.trim_end_matches('}'))),
    };
    Sample {
        name,
        labels,
        value,
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        assert_eq!(
            chars.next(),
            Some('"'),
            "label value must be quoted in {text:?}"
        );
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                other => value.push(other),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}
