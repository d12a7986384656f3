//! A real Prometheus server for tests: started from Debian's `prometheus` package in a temp dir,
//! scraping one target every second, queried over its HTTP API, and killed on drop (also when a
//! test fails). Tests that need it call [`binaries_available`] first: under `CI` a missing binary
//! is a failure, locally it is a skip with a note.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// True when both binaries run; otherwise panics under `CI`, or prints why it skips.
pub fn binaries_available() -> bool {
    let runs = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if runs("prometheus") && runs("promtool") {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "prometheus/promtool not found on PATH: \
             install Debian package prometheus (apt-get install -y prometheus)"
        );
    }
    eprintln!("skipped: prometheus not installed (install Debian package prometheus)");
    false
}

/// A running Prometheus in its own temp dir; killed and cleaned up on drop, also on failure.
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Prometheus {
    pub fn start(target: SocketAddr) -> Prometheus {
        let dir = std::env::temp_dir().join(format!(
            "agw-prometheus-{}-{}",
            std::process::id(),
            target.port()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: agentgateway\n    static_configs:\n      \
             - targets: ['{target}']\n"
        );
        std::fs::write(dir.join("prometheus.yml"), config).expect("write config");
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log file");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        Prometheus {
            child,
            dir,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    async fn get_json(&self, path_and_query: &str) -> Option<Value> {
        let response = reqwest::get(format!("{}{path_and_query}", self.url))
            .await
            .ok()?;
        response.json().await.ok()
    }

    /// Polls (at most 30 s) until our target has been scraped successfully; returns it.
    pub async fn wait_for_healthy_target(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = Value::Null;
        while Instant::now() < deadline {
            if let Some(targets) = self.get_json("/api/v1/targets").await {
                last = targets["data"]["activeTargets"][0].clone();
                if last["health"] == "up" && last["lastError"] == "" {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "target never healthy within 30 s; last state: {last:#}\nprometheus log:\n{}",
            self.log_tail()
        );
    }

    /// The instant-query result vector for `query`.
    pub async fn query(&self, query: &str) -> Vec<Value> {
        let url = format!("{}/api/v1/query", self.url);
        let client = reqwest::Client::new();
        let response = client.get(url).query(&[("query", query)]).send().await;
        let body: Value = response.expect("query").json().await.expect("query json");
        assert_eq!(body["status"], "success", "{query}: {body:#}");
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn free_port() -> u16 {
    let listener = StdListener::bind("127.0.0.1:0").expect("bind for a free port");
    listener.local_addr().expect("local addr").port()
}

/// The value of the one result whose labels include `labels`.
pub fn result_value(results: &[Value], labels: &[(&str, &str)]) -> f64 {
    let hits: Vec<&Value> = results
        .iter()
        .filter(|r| labels.iter().all(|(k, v)| r["metric"][*k] == *v))
        .collect();
    assert_eq!(hits.len(), 1, "{labels:?} in {results:#?}");
    hits[0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("numeric sample value")
}
