//! The built `agentgateway` binary, run with `examples/local.yaml` against the fake provider, driven
//! by the official `openai` Python SDK: what real applications see (parsed responses, streams
//! without a stray usage chunk, error types), plus the metrics and stdout log lines it leaves.
//!
//! The SDK comes from `scripts/test.sh`, which installs it into `target/sdk-venv`; `AGW_PYTHON`
//! may point at another interpreter. Under `CI` a missing SDK is a failure, locally a skip.

mod support;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::fake_openai::{FakeOpenAi, MODEL_SUFFIX};
use support::gateway::Metrics;
use support::prometheus::free_port;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The gateway process; SIGTERM-ed and reaped on drop if a test fails early.
struct GatewayProcess {
    child: Child,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `examples/local.yaml` as shipped, except on a free LLM port (4000 may be taken on a CI box).
fn local_example_on(port: u16, dir: &Path) -> PathBuf {
    let example = std::fs::read_to_string(Path::new(WORKSPACE).join("examples/local.yaml"))
        .expect("examples/local.yaml");
    assert!(example.contains("port: 4000"));
    let path = dir.join("local.yaml");
    std::fs::write(
        &path,
        example.replace("port: 4000", &format!("port: {port}")),
    )
    .expect("write");
    path
}

async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(response) = reqwest::get(url).await {
            if response.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gateway not ready at {url} within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_through_the_built_binary() {
    let Some(python) = support::python::python_with("openai") else {
        return;
    };
    let fake = FakeOpenAi::start().await;
    let dir = std::env::temp_dir().join(format!("agw-sdk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (llm, stats, ready) = (free_port(), free_port(), free_port());
    let config = local_example_on(llm, &dir);
    let child = Command::new(env!("CARGO_BIN_EXE_agentgateway"))
        .arg("-f")
        .arg(&config)
        .env("LOCAL_LLM_BASE_URL", fake.base_url())
        .env("STATS_ADDR", format!("127.0.0.1:{stats}"))
        .env("READINESS_ADDR", format!("127.0.0.1:{ready}"))
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the gateway binary");
    let mut gateway = GatewayProcess { child };
    wait_ready(&format!("http://127.0.0.1:{ready}/healthz/ready")).await;

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/openai_client.py");
    let base_url = format!("http://127.0.0.1:{llm}/v1");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args([base_url.as_str(), "sk-local-alice"])
            .output()
    })
    .await
    .expect("join")
    .expect("run python");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "SDK script failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&output.stdout).expect("script prints JSON");
    check_what_the_sdk_saw(&seen);

    let text = reqwest::get(format!("http://127.0.0.1:{stats}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text");
    check_metrics(&Metrics::parse(&text));

    let pid = gateway.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = wait_exit(&mut gateway.child, Duration::from_secs(20));
    assert!(status.success(), "exit status after SIGTERM: {status}");
    check_stdout_is_the_access_log(&mut gateway.child);
    let _ = std::fs::remove_dir_all(&dir);
}

fn check_what_the_sdk_saw(seen: &Value) {
    let chat = &seen["chat"];
    assert_eq!(chat["model"], format!("llama3.2{MODEL_SUFFIX}"));
    assert_eq!(chat["prompt_tokens"], 11);
    assert_eq!(chat["completion_tokens"], 7);
    // Without stream_options the SDK sees exactly OpenAI's plain stream: no usage anywhere.
    let stream = &seen["stream"];
    assert_eq!(stream["content"], "Hello!");
    assert_eq!(stream["chunks"], 5);
    assert_eq!(stream["chunks_with_usage"], 0);
    assert_eq!(stream["chunks_without_choices"], 0);
    let with_usage = &seen["stream_with_usage"];
    assert_eq!(with_usage["chunks"], 6);
    assert_eq!(with_usage["last_prompt_tokens"], 11);
    assert_eq!(with_usage["last_choices"], 0);
    assert_eq!(seen["embeddings"]["prompt_tokens"], 5);
    assert_eq!(seen["embeddings"]["dims"], 8);
    assert!(seen["models"].is_array());
    let bad = &seen["bad_key"];
    assert_eq!(bad["status"], 401, "{seen}");
    assert_eq!(bad["code"], "invalid_api_key");
    assert_eq!(bad["type"], "authentication_error");
}

fn check_metrics(m: &Metrics) {
    let tokens = "agentgateway_gen_ai_client_token_usage_sum";
    let alice_chat = [("user_id", "alice"), ("gen_ai_operation_name", "chat")];
    let input = m.sum(
        tokens,
        &[alice_chat[0], alice_chat[1], ("gen_ai_token_type", "input")],
    );
    let output = m.sum(
        tokens,
        &[
            alice_chat[0],
            alice_chat[1],
            ("gen_ai_token_type", "output"),
        ],
    );
    assert_eq!(
        (input, output),
        (33.0, 21.0),
        "three chats of 11 in / 7 out"
    );
    let embeddings = [
        ("user_id", "alice"),
        ("gen_ai_operation_name", "embeddings"),
    ];
    assert_eq!(
        m.sum(
            tokens,
            &[embeddings[0], embeddings[1], ("gen_ai_token_type", "input")]
        ),
        5.0
    );
    let unauthorized = [("status", "401"), ("reason", "unauthorized")];
    assert_eq!(m.sum("agentgateway_requests_total", &unauthorized), 1.0);
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "gateway did not exit within {limit:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// stdout holds one access-log line per request and nothing else.
fn check_stdout_is_the_access_log(child: &mut Child) {
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    let lines: Vec<&str> = stdout.lines().collect();
    // chat, stream, stream with usage, embeddings, models, bad key.
    assert_eq!(lines.len(), 6, "{stdout}");
    for line in &lines {
        let mut parts = line.splitn(3, '\t');
        let timestamp = parts.next().unwrap_or_default();
        assert!(timestamp.ends_with('Z'), "{line}");
        assert_eq!(parts.next(), Some("info"), "{line}");
        assert!(
            parts
                .next()
                .is_some_and(|rest| rest.starts_with("request ")),
            "{line}"
        );
        assert!(
            !line.contains("sk-local-alice"),
            "a key reached the log: {line}"
        );
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(stderr.contains("agentgateway listening"), "{stderr}");
}
