use super::*;

fn env(name: &str) -> Option<String> {
    (name == "KEY").then(|| "sk-1".to_owned())
}

/// `LINE:COLUMN: path: message` of each diagnostic.
fn report(text: &str) -> Vec<String> {
    check_text(text, &env)
        .diagnostics
        .iter()
        .map(Diagnostic::to_string)
        .collect()
}

#[test]
fn a_valid_file_yields_its_config() {
    let checked = check_text(
        "llm:\n  models:\n  - name: a\n    provider: openai\n    params: {apiKey: $KEY}\n",
        &env,
    );
    assert_eq!(checked.diagnostics, []);
    let config = checked.config.unwrap();
    assert_eq!(config.llm.models[0].params.api_key.as_deref(), Some("sk-1"));
}

#[test]
fn every_structural_problem_is_reported_with_its_place() {
    let text = "\
llm:
  port: abc
  modles: []
  models:
  - name: a
    provider: claude
    params:
      baseurl: http://x
  - provider: openAI
";
    let lines = report(text);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_eq!(
        lines[0],
        "2:9: llm.port: expected an integer, found the string \"abc\""
    );
    assert_eq!(
        lines[1],
        "3:3: llm.modles: unknown field `modles`; did you mean `models`?"
    );
    assert!(
        lines[2].starts_with(
            "6:15: llm.models[0].provider: unknown value \"claude\": expected one of openAI, "
        ),
        "{}",
        lines[2]
    );
    assert_eq!(
        lines[3],
        "8:7: llm.models[0].params.baseurl: unknown field `baseurl`; did you mean `baseUrl`?"
    );
    assert_eq!(
        lines[4],
        "9:5: llm.models[1].name: missing required field `name`"
    );
}

#[test]
fn semantic_and_cel_problems_are_all_reported() {
    let text = "\
config:
  metrics:
    fields:
      add: {user: 'apiKey.user +', le: 'apiKey.team'}
  logging:
    filter: 'respons.code >= 400'
llm:
  policies:
    localRateLimit:
    - {maxTokens: 0, fillInterval: 1s, key: 'apiKey..user'}
  models:
  - {name: a, provider: openAI, params: {baseUrl: 'ftp://x'}}
  - {name: a, provider: openAI}
";
    let lines = report(text);
    let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    assert!(
        has("4:19: config.metrics.fields.add.user: invalid CEL expression"),
        "{lines:#?}"
    );
    assert!(
        has("4:36: config.metrics.fields.add.le: clashes with a built-in label"),
        "{lines:#?}"
    );
    assert!(has("6:13: config.logging.filter: "), "{lines:#?}");
    assert!(
        has("10:19: llm.policies.localRateLimit[0].maxTokens: must be greater than 0"),
        "{lines:#?}"
    );
    assert!(
        has("10:45: llm.policies.localRateLimit[0].key: invalid CEL expression"),
        "{lines:#?}"
    );
    assert!(
        has("12:51: llm.models[0].params.baseUrl: \"ftp://x\" must start with http"),
        "{lines:#?}"
    );
    assert!(
        has("13:12: llm.models[1].name: duplicate model name"),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 7, "{lines:#?}");
    assert!(
        lines.iter().all(|l| !l.contains('\n')),
        "one line each: {lines:#?}"
    );
}

#[test]
fn unset_variables_are_reported_and_their_lines_not_checked_further() {
    let text = "llm:\n  port: $PORT\n  models:\n  - {name: a, provider: openAI, params: {apiKey: ${NOPE}}}\n";
    let lines = report(text);
    assert_eq!(
        lines,
        [
            "2:9: llm.port: environment variable $PORT is not set (and has no `:-default`)",
            "4:50: llm.models[0].params.apiKey: environment variable $NOPE is not set (and has no `:-default`)",
        ]
    );
    assert!(check_text(text, &env).config.is_none());
}

#[test]
fn a_default_applies_and_an_unset_variable_breaks_nothing_else() {
    let text = "llm:\n  models:\n  - name: a\n    provider: openAI\n    params:\n      baseUrl: ${UP:-http://x/v1}\n  - name: b\n    provider: openAI\n    params:\n      baseUrl: $GONE\n  - name: c\n    provider: openAI\n    params: {baseUrl: $GONE}\n";
    assert_eq!(
        report(text),
        ["10:16: llm.models[1].params.baseUrl: environment variable $GONE is not set (and has no `:-default`)"]
    );
}

#[test]
fn columns_are_those_of_the_file_as_written() {
    // `$KEY` expands to a shorter value: the typo after it keeps its written column.
    let text =
        "llm:\n  models:\n  - {name: a, provider: openAI, params: {apiKey: $KEY, modle: x}}\n";
    assert_eq!(
        report(text),
        ["3:56: llm.models[0].params.modle: unknown field `modle`; did you mean `model`?"]
    );
}

#[test]
fn syntax_errors_and_empty_files_have_a_place() {
    let lines = report("llm:\n  port: 1\n bad: [\n");
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("(root): "), "{lines:?}");
    assert_eq!(
        report(""),
        ["1:1: (root): expected a mapping, found nothing (null)"]
    );
}

#[test]
fn a_build_message_is_placed_by_its_path() {
    let text = "config:\n  logging:\n    fields:\n      remove: [nope]\nllm: {}\n";
    let checked = check_text(text, &env);
    let diagnostic = checked.diagnostic_for("config.logging.fields.remove[0]: unknown field name");
    assert_eq!(
        diagnostic.to_string(),
        "4:16: config.logging.fields.remove[0]: unknown field name"
    );
    let unplaced = checked.diagnostic_for("cannot open \"x\"");
    assert_eq!(unplaced.to_string(), "1:1: (root): cannot open \"x\"");
}
