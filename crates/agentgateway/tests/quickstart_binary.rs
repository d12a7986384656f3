//! The README's Quickstart, run as written against the built binary: `examples/quickstart.yaml`
//! with no `OPENAI_API_KEY` in the environment (moved to free ports so the test runs beside
//! anything else), the three `curl` commands taken from the README itself and run with `curl`,
//! and their output compared with the output the README documents. The gateway must start,
//! and say on stderr that the OpenAI model is disabled.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::prometheus::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_agentgateway");
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[derive(Clone, Copy)]
struct Ports {
    llm: u16,
    stats: u16,
    ready: u16,
}

/// The README's Quickstart section.
fn quickstart() -> String {
    let readme = std::fs::read_to_string(Path::new(WORKSPACE).join("README.md")).unwrap();
    let start = readme.find("## Quickstart").expect("a Quickstart section");
    let rest = &readme[start..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_owned()
}

/// The fenced blocks of `text`, as (info string, body).
fn fenced_blocks(text: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut open: Option<(String, String)> = None;
    for line in text.lines() {
        match (open.take(), line.strip_prefix("```")) {
            (None, Some(info)) => open = Some((info.to_owned(), String::new())),
            (Some(block), Some(_)) => blocks.push(block),
            (Some((info, mut body)), None) => {
                body.push_str(line);
                body.push('\n');
                open = Some((info, body));
            }
            (None, None) => {}
        }
    }
    blocks
}

/// The `curl` commands of a shell block, continuation lines joined.
fn curl_commands(block: &str) -> Vec<String> {
    block
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with("curl "))
        .map(str::to_owned)
        .collect()
}

/// Shell words: whitespace-separated, single quotes kept together (all the README uses).
fn words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in command.chars() {
        match c {
            '\'' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// Runs one README command with `curl` (a `| grep PATTERN` applied to its output here).
fn run_curl(command: &str, ports: &Ports) -> String {
    let command = command
        .replace("localhost:4000", &format!("localhost:{}", ports.llm))
        .replace("localhost:15020", &format!("localhost:{}", ports.stats));
    let (curl, grep) = match command.split_once(" | grep ") {
        Some((curl, pattern)) => (curl.to_owned(), Some(pattern.trim().to_owned())),
        None => (command, None),
    };
    let words = words(&curl);
    assert_eq!(words[0], "curl");
    let output = Command::new("curl")
        .args(&words[1..])
        .output()
        .expect("curl runs (Debian ships it)");
    assert!(output.status.success(), "{curl}: {output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    match grep {
        Some(pattern) => text
            .lines()
            .filter(|line| line.contains(&pattern))
            .map(|line| format!("{line}\n"))
            .collect(),
        None => text,
    }
}

/// [`run_curl`] off the async workers.
async fn curl(command: &str, ports: Ports) -> String {
    let command = command.to_owned();
    tokio::task::spawn_blocking(move || run_curl(&command, &ports))
        .await
        .unwrap()
}

/// `"created":<digits>` varies from run to run; everything else is deterministic.
fn without_timestamps(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\"created\":") {
        let (head, tail) = rest.split_at(at + "\"created\":".len());
        out.push_str(head);
        out.push('0');
        rest = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out.trim_end().to_owned()
}

fn config(dir: &Path, ports: &Ports) -> PathBuf {
    let text =
        std::fs::read_to_string(Path::new(WORKSPACE).join("examples/quickstart.yaml")).unwrap();
    for fixed in [
        "port: 4000\n",
        "statsAddr: 127.0.0.1:15020\n",
        "readinessAddr: 127.0.0.1:15021\n",
    ] {
        assert!(text.contains(fixed), "{fixed}");
    }
    let text = text
        .replace("port: 4000\n", &format!("port: {}\n", ports.llm))
        .replace("127.0.0.1:15020", &format!("127.0.0.1:{}", ports.stats))
        .replace("127.0.0.1:15021", &format!("127.0.0.1:{}", ports.ready));
    let path = dir.join("quickstart.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn start(config: &Path, stderr: &Path, ports: &Ports) -> Gateway {
    let child = Command::new(BIN)
        .arg("-f")
        .arg(config)
        .env_remove("OPENAI_API_KEY")
        .env_remove("RUST_LOG")
        .env("ADMIN_ADDR", format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(stderr).unwrap())
        .spawn()
        .expect("start the gateway binary");
    let mut gateway = Gateway(child);
    let url = format!("http://127.0.0.1:{}/healthz/ready", ports.ready);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = gateway.0.try_wait() {
            let stderr = std::fs::read_to_string(stderr).unwrap_or_default();
            panic!("the gateway exited early: {status}\n{stderr}");
        }
        if matches!(reqwest::get(&url).await, Ok(r) if r.status() == 200) {
            return gateway;
        }
        assert!(Instant::now() < deadline, "the gateway never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_readme_quickstart_works_without_a_provider_key() {
    let section = quickstart();
    let blocks = fenced_blocks(&section);
    let shell = &blocks[0];
    assert_eq!(shell.0, "sh");
    assert!(shell
        .1
        .starts_with("cargo run --release -- -f examples/quickstart.yaml &"));
    let commands = curl_commands(&shell.1);
    assert_eq!(commands.len(), 3, "{commands:?}");
    assert!(commands[0].contains("sk-alice-123") && commands[1].contains("sk-bob-456"));
    assert!(commands[2].ends_with("/metrics | grep token_usage"));
    let documented: Vec<&String> = blocks[1..4].iter().map(|(_, body)| body).collect();

    let dir = std::env::temp_dir().join(format!("agw-quickstart-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ports = Ports {
        llm: free_port(),
        stats: free_port(),
        ready: free_port(),
    };
    let stderr = dir.join("stderr.log");
    let gateway = start(&config(&dir, &ports), &stderr, &ports).await;
    let warning = std::fs::read_to_string(&stderr).unwrap();
    assert!(
        warning.contains("WARN")
            && warning.contains("\"gpt-4o-mini\" (openai) is disabled")
            && warning.contains("params.apiKey is empty"),
        "{warning}"
    );

    let chat = curl(&commands[0], ports).await;
    assert_eq!(without_timestamps(&chat), without_timestamps(documented[0]));
    let stream = curl(&commands[1], ports).await;
    assert_eq!(
        without_timestamps(&stream),
        without_timestamps(documented[1])
    );

    // Every metric line the README shows is in the output (the README trims the rest); the
    // `bind` labels carry the port, moved here.
    let metrics = run_metrics(&commands[2], ports).await;
    for user in ["alice", "bob"] {
        assert!(
            metrics
                .lines()
                .any(|l| l.contains(&format!("user_id=\"{user}\""))),
            "{metrics}"
        );
    }
    for line in documented[2]
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let moved = line
            .replace("bind/4000", &format!("bind/{}", ports.llm))
            .replace("bind=\"4000\"", &format!("bind=\"{}\"", ports.llm));
        assert!(
            metrics.lines().any(|l| l == moved),
            "documented line missing:\n{moved}\nin:\n{metrics}"
        );
    }
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The metrics command; the stream's record is finished just after its last byte, so wait
/// (bounded) until both users are in the output.
async fn run_metrics(command: &str, ports: Ports) -> String {
    let mut output = String::new();
    for _ in 0..100 {
        output = curl(command, ports).await;
        if output.contains("user_id=\"bob\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    output
}
