//! `agentgateway --validate-only -f FILE`, run as a user runs it (the built binary on files in a
//! temporary directory): every problem of a file is listed at once as
//! `FILE:LINE:COLUMN: field.path: message` and the exit code is 1; a valid file exits 0 with one
//! line; every shipped example config is valid.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The binary in the repository root (examples name files relative to it), without the
/// environment's address overrides.
fn validate_with(path: &Path, vars: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_agentgateway"))
        .args(["--validate-only", "-f"])
        .arg(path)
        .current_dir(repo_root())
        .env_remove("STATS_ADDR")
        .env_remove("READINESS_ADDR")
        .env_remove("ADMIN_ADDR")
        .env_remove("LOG_FORMAT")
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run agentgateway")
}

struct Checked {
    code: i32,
    /// stderr with the file name taken off each line.
    lines: Vec<String>,
    stdout: String,
}

fn check(tag: &str, yaml: &str) -> Checked {
    let dir = std::env::temp_dir().join(format!("agw-validate-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, yaml).expect("write config");
    let out = validate_with(&path, &[]);
    let _ = std::fs::remove_dir_all(&dir);
    let prefix = format!("{}:", path.display());
    let stderr = String::from_utf8_lossy(&out.stderr);
    Checked {
        code: out.status.code().expect("exit code"),
        lines: stderr
            .lines()
            .map(|line| line.strip_prefix(&prefix).unwrap_or(line).to_owned())
            .collect(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

const MODEL: &str = "llm:\n  models:\n  - name: gpt-4o-mini\n    provider: openAI\n";

#[test]
fn a_typo_is_named_with_the_closest_field() {
    let out = check(
        "typo",
        &format!("{MODEL}    parms:\n      baseUrl: http://x/v1\n"),
    );
    assert_eq!(out.code, 1, "{:#?}", out.lines);
    assert_eq!(
        out.lines,
        [
            "5:5: llm.models[0].parms: unknown field `parms`; did you mean `params`?",
            " 1 problem"
        ]
    );
}

#[test]
fn a_wrong_type_names_what_was_expected() {
    let out = check("type", "llm:\n  port: abc\n  maxRequestBodyBytes: [1]\n");
    assert_eq!(out.code, 1);
    assert_eq!(
        out.lines,
        [
            "2:9: llm.port: expected an integer, found the string \"abc\"",
            "3:24: llm.maxRequestBodyBytes: expected an integer, found a list",
            " 2 problems"
        ]
    );
}

#[test]
fn an_unknown_provider_lists_the_valid_ones() {
    let out = check(
        "provider",
        "llm:\n  models:\n  - name: a\n    provider: antropic\n",
    );
    assert_eq!(out.code, 1);
    let line = &out.lines[0];
    assert!(
        line.starts_with("4:15: llm.models[0].provider: unknown value \"antropic\": expected one of openAI, groq,"),
        "{line}"
    );
    for name in ["anthropic", "azure", "vllm", "openrouter"] {
        assert!(line.contains(name), "{line}");
    }
    assert!(line.ends_with("did you mean `anthropic`?"), "{line}");
}

#[test]
fn a_bad_cel_expression_reports_its_compile_error() {
    let yaml = format!(
        "config:\n  metrics:\n    fields:\n      add:\n        user_id: 'apiKey.user +'\n{MODEL}"
    );
    let out = check("cel", &yaml);
    assert_eq!(out.code, 1);
    let line = &out.lines[0];
    assert!(
        line.starts_with(
            "5:18: config.metrics.fields.add.user_id: invalid CEL expression `apiKey.user +`: "
        ),
        "{line}"
    );
    // An unknown variable is a compile error too: a typo must not yield no value forever.
    let yaml = format!("config:\n  logging:\n    filter: 'apikey.user == \"x\"'\n{MODEL}");
    let out = check("cel-var", &yaml);
    assert_eq!(out.code, 1);
    assert!(
        out.lines[0].starts_with("3:13: config.logging.filter: "),
        "{:?}",
        out.lines
    );
    assert!(out.lines[0].contains("apikey"), "{:?}", out.lines);
}

#[test]
fn every_problem_of_one_file_is_reported_in_order() {
    let yaml = "\
config:
  statsAdr: 0.0.0.0:15020
  drainTimeout: 10
llm:
  port: 99999
  policies:
    apiKey:
      mode: stric
      keys:
      - key: sk-1
        metdata: {user: alice}
    localRateLimit:
    - type: tokens
      fillInterval: 1m
      key: 'apiKey..user'
  models:
  - name: a
    provider: opnai
  - name: b
    provider: azure
    params: {maxTokens: -1}
";
    let out = check("many", yaml);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.lines,
        [
            "2:3: config.statsAdr: unknown field `statsAdr`; did you mean `statsAddr`?",
            "3:17: config.drainTimeout: expected a string, found the number 10",
            "5:9: llm.port: must be at most 65535 (found 99999)",
            "8:13: llm.policies.apiKey.mode: unknown value \"stric\": expected one of strict, optional, permissive; did you mean `strict`?",
            "11:9: llm.policies.apiKey.keys[0].metdata: unknown field `metdata`; did you mean `metadata`?",
            "15:12: llm.policies.localRateLimit[0].key: invalid CEL expression `apiKey..user`: ERROR: <input>:1:8: Syntax error: no viable alternative at input '..'",
            "18:15: llm.models[0].provider: unknown value \"opnai\": expected one of openAI, groq, mistral, deepseek, together, fireworks, openrouter, xai, cerebras, perplexity, ollama, vllm, anthropic, azure, mock, openai, deepSeek, openRouter; did you mean `openAI`?",
            "21:25: llm.models[1].params.maxTokens: must be at least 0 (found -1)",
            " 8 problems",
        ]
    );
}

#[test]
fn semantic_problems_come_all_at_once_once_the_structure_is_right() {
    let yaml = "\
llm:
  policies:
    localRateLimit:
    - {type: tokens, fillInterval: 1m}
    - {type: cost, maxUsd: 0.0000001, fillInterval: 0s}
  models:
  - {name: a, provider: azure}
  - {name: a, provider: openAI, params: {baseUrl: 'ftp://x'}}
";
    let out = check("semantic", yaml);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.lines,
        [
            "4:7: llm.policies.localRateLimit[0].maxTokens: required for type tokens",
            "5:28: llm.policies.localRateLimit[1].maxUsd: 0.0000001 has more than 6 decimal places (the limiter counts micro-dollars)",
            "5:53: llm.policies.localRateLimit[1].fillInterval: must be longer than 0",
            "7:5: llm.models[0].params.azureResourceName: required for provider azure (or set params.baseUrl)",
            "8:12: llm.models[1].name: duplicate model name \"a\"",
            "8:51: llm.models[1].params.baseUrl: \"ftp://x\" must start with http:// or https://",
            " 6 problems",
        ]
    );
}

#[test]
fn a_problem_only_the_build_finds_is_placed_too() {
    let yaml =
        format!("{MODEL}  tls:\n    cert: /nonexistent/cert.pem\n    key: /nonexistent/key.pem\n");
    let out = check("build", &yaml);
    assert_eq!(out.code, 1);
    assert!(
        out.lines[0].starts_with("6:11: llm.tls.cert: cannot read"),
        "{:?}",
        out.lines
    );
}

#[test]
fn a_valid_file_exits_0_with_one_line() {
    let out = check("valid", MODEL);
    assert_eq!(out.code, 0, "{:#?}", out.lines);
    assert_eq!(out.lines, [" configuration is valid"]);
    assert!(out.stdout.is_empty(), "stdout is for the access log only");
}

/// Every variable the text references without a default.
fn required_vars(text: &str) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    for rest in text.split('$').skip(1) {
        let rest = rest.strip_prefix('{').unwrap_or(rest);
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && !rest[name.len()..].starts_with(":-") {
            vars.push((name, "dummy-value".to_owned()));
        }
    }
    vars
}

#[test]
fn every_shipped_example_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_root().join("examples")).expect("examples/") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read");
        if path.extension().and_then(|e| e.to_str()) != Some("yaml")
            || !text.lines().any(|l| l.starts_with("llm:"))
        {
            continue; // a price catalog, not a gateway config
        }
        let out = validate_with(&path, &required_vars(&text));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{}: {stderr}", path.display());
        assert!(
            stderr.trim_end().ends_with("configuration is valid"),
            "{stderr}"
        );
        checked += 1;
    }
    assert!(checked >= 6, "checked {checked} examples");
}

#[test]
fn an_unset_variable_is_reported_where_it_is_used() {
    let yaml = format!("{MODEL}    params:\n      apiKey: $AGW_TEST_SURELY_UNSET_KEY\n");
    let out = check("unset", &yaml);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.lines[0],
        "6:15: llm.models[0].params.apiKey: environment variable $AGW_TEST_SURELY_UNSET_KEY is not set (and has no `:-default`)"
    );
}
