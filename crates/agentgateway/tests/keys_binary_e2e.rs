//! The README's virtual-key walkthrough, with the built binary: `examples/virtual-keys.yaml`
//! served by `agentgateway -f`, keys managed with `agentgateway keys ...` against its admin API,
//! the gateway killed with SIGKILL right after a key was created (a crash loses no committed key),
//! restarted on the same SQLite file, and a revocation through the CLI.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::fake_openai::FakeOpenAi;
use support::prometheus::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_agentgateway");
const TOKEN: &str = "walkthrough-admin-token";

struct Ports {
    llm: u16,
    stats: u16,
    ready: u16,
    admin: u16,
}

/// The example, moved off port 4000 so the test runs beside anything else.
fn example_config(dir: &Path, llm_port: u16) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/virtual-keys.yaml");
    let text = std::fs::read_to_string(example).expect("read the example");
    assert!(text.contains("port: 4000\n"));
    let path = dir.join("virtual-keys.yaml");
    std::fs::write(
        &path,
        text.replace("port: 4000\n", &format!("port: {llm_port}\n")),
    )
    .unwrap();
    path
}

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start(config: &Path, dir: &Path, upstream: &str, ports: &Ports) -> Gateway {
    let child = Command::new(BIN)
        .arg("-f")
        .arg(config)
        .env("LLM_BASE_URL", upstream)
        .env("OPENAI_API_KEY", "sk-provider-test")
        .env("AGW_DATABASE", dir.join("keys.db"))
        .env("AGW_ADMIN_TOKEN", TOKEN)
        .env("STATS_ADDR", format!("127.0.0.1:{}", ports.stats))
        .env("READINESS_ADDR", format!("127.0.0.1:{}", ports.ready))
        .env("ADMIN_ADDR", format!("127.0.0.1:{}", ports.admin))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the gateway binary");
    let mut gateway = Gateway(child);
    let url = format!("http://127.0.0.1:{}/healthz/ready", ports.ready);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = gateway.0.try_wait() {
            panic!("the gateway exited early: {status}");
        }
        if matches!(reqwest::get(&url).await, Ok(r) if r.status() == 200) {
            return gateway;
        }
        assert!(Instant::now() < deadline, "the gateway never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `agentgateway keys <args>` against the admin port, off the async workers.
async fn keys(ports: &Ports, args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("keys")
        .args(["--admin-url", &format!("http://127.0.0.1:{}", ports.admin)])
        .args(args)
        .env("AGW_ADMIN_TOKEN", TOKEN);
    tokio::task::spawn_blocking(move || command.output().expect("run the CLI"))
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "CLI failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

async fn chat(ports: &Ports, key: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/v1/chat/completions", ports.llm))
        .bearer_auth(key)
        .json(&serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("the gateway answers")
        .status()
        .as_u16()
}

async fn create(ports: &Ports, name: &str, user: &str) -> (String, String) {
    let out = keys(
        ports,
        &[
            "create", "--name", name, "--user", user, "--team", "search", "--rpm", "60",
            "--models", "gpt-4o*", "--json",
        ],
    )
    .await;
    let created: Value = serde_json::from_str(&stdout(&out)).expect("--json prints JSON");
    let secret = created["key"].as_str().unwrap().to_owned();
    (created["id"].as_str().unwrap().to_owned(), secret)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_walkthrough_survives_a_crash_and_a_restart() {
    let fake = FakeOpenAi::start().await;
    let dir = std::env::temp_dir().join(format!("agw-keys-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ports = Ports {
        llm: free_port(),
        stats: free_port(),
        ready: free_port(),
        admin: free_port(),
    };
    let config = example_config(&dir, ports.llm);
    let mut gateway = start(&config, &dir, &fake.base_url(), &ports).await;

    let (alice_id, alice) = create(&ports, "alice-laptop", "alice").await;
    assert!(alice.starts_with("sk-agw-"));
    assert_eq!(chat(&ports, &alice).await, 200);
    let (_, bob) = create(&ports, "bob-ci", "bob").await;
    // Crash right after the commit: no graceful shutdown, no WAL checkpoint.
    gateway.0.kill().expect("SIGKILL");
    gateway.0.wait().unwrap();
    drop(gateway);

    let _gateway = start(&config, &dir, &fake.base_url(), &ports).await;
    assert_eq!(chat(&ports, &alice).await, 200);
    assert_eq!(
        chat(&ports, &bob).await,
        200,
        "the key created just before the crash"
    );

    let table = stdout(&keys(&ports, &["list"]).await);
    assert!(
        table.contains("alice-laptop") && table.contains("bob-ci"),
        "{table}"
    );
    assert!(!table.contains(&alice), "list never shows a secret");
    let details = stdout(&keys(&ports, &["get", &alice_id]).await);
    assert!(details.contains("rpm"), "{details}");

    stdout(&keys(&ports, &["revoke", &alice_id]).await);
    assert_eq!(chat(&ports, &alice).await, 401);
    assert_eq!(chat(&ports, &bob).await, 200);

    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", ports.stats))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("user_id=\"alice\"") && metrics.contains("user_id=\"bob\""),
        "per-user series"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
