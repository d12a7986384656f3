//! The committed `schema/config.json` is exactly what the config types generate (so editors see
//! what the gateway accepts), the `schema` command prints it, and every shipped example config
//! is valid under it according to an independent JSON Schema validator (the `jsonschema`
//! crate, as an editor's would be), which also rejects the mistakes `--validate-only` reports.

use std::path::PathBuf;
use std::process::Command;

use agentgateway::config::check;
use agentgateway::config::schema::{config_schema, config_schema_text, REGENERATE};
use serde_json::Value;

const SCHEMA_LINE: &str = "# yaml-language-server: $schema=../schema/config.json";

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn the_committed_schema_is_the_generated_one() {
    let path = repo_root().join("schema/config.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == config_schema_text(),
        "{} is stale or missing: regenerate it with `{REGENERATE}` (from the repository root)",
        path.display()
    );
}

#[test]
fn the_schema_command_prints_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_agentgateway"))
        .arg("schema")
        .output()
        .expect("run agentgateway schema");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), config_schema_text());
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    let schema = config_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::meta::validate(&schema).expect("a valid JSON Schema");
    // The serde attributes show: camelCase names, closed objects, enum values, docs, defaults.
    let params = &schema["$defs"]["ModelParams"];
    assert_eq!(params["additionalProperties"], false);
    assert!(params["properties"]["baseUrl"]["description"].is_string());
    assert_eq!(
        schema["$defs"]["LlmConfig"]["properties"]["port"]["default"],
        4000
    );
    assert_eq!(
        schema["$defs"]["ApiKeyMode"]["enum"],
        serde_json::json!(["strict", "optional", "permissive"])
    );
    let fill = &schema["$defs"]["LocalRateLimit"]["properties"]["fillInterval"];
    assert_eq!(fill["$ref"], "#/$defs/Duration");
}

/// Every variable a file references without a default, set to a plain dummy value.
fn dummy_env(text: &str) -> impl Fn(&str) -> Option<String> {
    let names: Vec<String> = text
        .split('$')
        .skip(1)
        .filter_map(|rest| {
            let rest = rest.strip_prefix('{').unwrap_or(rest);
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let defaulted = rest[name.len()..].starts_with(":-");
            (!name.is_empty() && !defaulted).then_some(name)
        })
        .collect();
    move |name| {
        names
            .iter()
            .any(|n| n == name)
            .then(|| "dummy-value".to_owned())
    }
}

/// `examples/*.yaml` that are gateway configs (the others are price catalogs).
fn example_configs() -> Vec<(PathBuf, String)> {
    let dir = repo_root().join("examples");
    let mut configs = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read example");
        if text.lines().any(|line| line.starts_with("llm:")) {
            configs.push((path, text));
        }
    }
    configs.sort();
    configs
}

#[test]
fn every_example_config_names_the_schema_and_is_valid_under_it() {
    let validator = jsonschema::validator_for(&config_schema()).expect("compile the schema");
    let configs = example_configs();
    assert!(configs.len() >= 6, "found {}", configs.len());
    for (path, text) in configs {
        assert_eq!(text.lines().next(), Some(SCHEMA_LINE), "{}", path.display());
        let document = check::document(&text, &dummy_env(&text))
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let errors: Vec<String> = validator
            .iter_errors(&document)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

fn errors_of(yaml: &str) -> Vec<String> {
    let validator = jsonschema::validator_for(&config_schema()).expect("compile the schema");
    let document: Value = check::document(yaml, &|_| None).expect("parse");
    validator
        .iter_errors(&document)
        .map(|e| e.instance_path().to_string())
        .collect()
}

#[test]
fn an_independent_validator_rejects_the_same_mistakes() {
    let model = "llm:\n  models:\n  - name: a\n    provider: openAI\n";
    assert_eq!(errors_of(model), Vec::<String>::new());
    let typo = format!("{model}    parms: {{}}\n");
    assert_eq!(errors_of(&typo), ["/llm/models/0"]);
    assert_eq!(errors_of("llm:\n  port: abc\n"), ["/llm/port"]);
    assert_eq!(errors_of("llm:\n  port: 70000\n"), ["/llm/port"]);
    let provider = "llm:\n  models:\n  - {name: a, provider: claude}\n";
    assert_eq!(errors_of(provider), ["/llm/models/0/provider"]);
    let alias = "llm:\n  models:\n  - {name: a, provider: openai}\n";
    assert_eq!(errors_of(alias), Vec::<String>::new());
    assert_eq!(errors_of("config: {}\n"), [""], "llm is required");
    let window =
        "llm:\n  policies:\n    budgets:\n      users:\n        a: [{usd: 1, window: 2d}]\n";
    assert_eq!(
        errors_of(window),
        ["/llm/policies/budgets/users/a/0/window"]
    );
}
