//! Tests of CEL over a record: the fast path and the interpreter agree on every field path, values
//! map as documented, compile errors name the problem, header reads are detected.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use agentgateway_wire::{Operation, Usage};
use serde_json::json;

use super::*;
use crate::auth::Identity;
use crate::record::{ListenerInfo, LlmInfo, RequestRecord, RouteInfo};

fn identity() -> Identity {
    let serde_json::Value::Object(metadata) = json!({
        "user": "alice",
        "team": "search",
        "tier": 3,
        "big": u64::MAX,
        "ratio": 0.25,
        "flag": true,
        "nothing": null,
        "tags": ["a", "b"],
        "limits": {"daily": 1000, "models": ["gpt-4o"]},
    }) else {
        unreachable!("a JSON object literal")
    };
    Identity {
        id: "static-0".into(),
        name: Some("alice-key".into()),
        metadata,
        ..Default::default()
    }
}

fn headers() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("x-team", "search".parse().expect("header value"));
    h.append("x-multi", "one".parse().expect("header value"));
    h.append("x-multi", "two".parse().expect("header value"));
    h.insert(
        "authorization",
        "Bearer sk-secret".parse().expect("header value"),
    );
    h.insert("x-api-key", "sk-secret".parse().expect("header value"));
    h
}

/// A finished, authenticated LLM request with headers kept.
fn full_record() -> RequestRecord {
    let mut rec = anonymous_record();
    rec.identity = Some(Arc::new(identity()));
    rec.headers = Some(headers());
    rec.route = Some(Arc::new(RouteInfo {
        route: "llm/gpt-4o".into(),
        system: "openai",
        endpoint: "api.openai.com:443".into(),
    }));
    rec.llm = LlmInfo {
        operation: Some(Operation::ChatCompletions),
        request_model: Some("gpt-4o".into()),
        response_model: Some("gpt-4o-2024-08-06".into()),
        usage: Usage {
            input_tokens: Some(68),
            output_tokens: Some(298),
            ..Usage::default()
        },
        streaming: true,
        cost: Default::default(),
    };
    rec.status = 200;
    rec
}

/// A request refused before anything LLM-specific was known.
fn anonymous_record() -> RequestRecord {
    RequestRecord {
        start: Instant::now(),
        start_time: SystemTime::UNIX_EPOCH,
        request_id: "req-1".into(),
        src_addr: "10.0.0.7:5555".parse().expect("socket address"),
        listener: Arc::new(ListenerInfo {
            bind: "4000".into(),
            gateway: "bind/4000".into(),
            listener: "llm".into(),
        }),
        method: http::Method::POST,
        host: Some("localhost".into()),
        path: "/v1/chat/completions".into(),
        version: http::Version::HTTP_11,
        headers: None,
        status: 401,
        identity: None,
        route: None,
        llm: LlmInfo::default(),
        ttft: None,
        duration: Duration::from_millis(3),
        error: None,
        reason: Some("unauthorized"),
        limits: Default::default(),
        admission: Default::default(),
    }
}

fn compile(source: &str) -> Expr {
    Expr::compile(source).unwrap_or_else(|e| panic!("{e}"))
}

const PATHS: &[&str] = &[
    "apiKey",
    "apiKey.user",
    "apiKey.name",
    "apiKey.tier",
    "apiKey.big",
    "apiKey.ratio",
    "apiKey.flag",
    "apiKey.nothing",
    "apiKey.tags",
    "apiKey.limits",
    "apiKey.limits.daily",
    "apiKey['limits']['models']",
    "apiKey.limits.missing",
    "apiKey.user.nested",
    "apiKey.missing",
    "request",
    "request.method",
    "request.path",
    "request.headers",
    "request.headers['x-team']",
    "request.headers['X-Team']",
    "request.headers['x-multi']",
    "request.headers.authorization",
    "request.headers['x-api-key']",
    "request.headers.missing",
    "request.path.nested",
    "request.missing",
    "source",
    "source.address",
    "llm",
    "llm.requestModel",
    "llm.responseModel",
    "llm.provider",
    "llm.inputTokens",
    "llm.outputTokens",
    "llm.streaming",
    "response",
    "response.code",
];

#[test]
fn fast_path_and_interpreter_agree_on_every_path() {
    for rec in [full_record(), anonymous_record()] {
        for source in PATHS {
            let expr = compile(source);
            assert!(expr.is_fast_path(), "{source} should take the fast path");
            assert_eq!(expr.eval(&rec), expr.interpret(&rec), "{source}");
        }
    }
}

#[test]
fn paths_resolve_to_the_record_values() {
    let rec = full_record();
    let eval = |s: &str| compile(s).eval(&rec);
    let string = |s: &str| Some(ExprValue::String(s.into()));
    assert_eq!(eval("apiKey.user"), string("alice"));
    assert_eq!(eval("apiKey.name"), string("alice-key"));
    assert_eq!(eval("apiKey.tier"), Some(ExprValue::Int(3)));
    assert_eq!(eval("apiKey.big"), Some(ExprValue::UInt(u64::MAX)));
    assert_eq!(eval("apiKey.limits.daily"), Some(ExprValue::Int(1000)));
    assert_eq!(eval("request.headers['x-multi']"), string("one, two"));
    assert_eq!(eval("request.headers.authorization"), string("<redacted>"));
    assert_eq!(eval("source.address"), string("10.0.0.7"));
    assert_eq!(eval("llm.provider"), string("openai"));
    assert_eq!(eval("llm.inputTokens"), Some(ExprValue::Int(68)));
    assert_eq!(eval("llm.streaming"), Some(ExprValue::Bool(true)));
    assert_eq!(eval("response.code"), Some(ExprValue::Int(200)));
    assert_eq!(eval("apiKey.missing"), None);
    assert_eq!(eval("request.headers.missing"), None);
}

#[test]
fn unknown_values_are_absent() {
    let rec = anonymous_record();
    for source in [
        "apiKey.user",
        "llm.requestModel",
        "llm.streaming",
        "request.headers",
    ] {
        assert_eq!(compile(source).eval(&rec), None, "{source}");
    }
    for source in ["llm", "apiKey"] {
        let value = compile(source).eval(&rec);
        assert_eq!(value, Some(ExprValue::Map(Default::default())), "{source}");
    }
    let fallback = compile("has(apiKey.user) ? apiKey.user : 'anonymous'");
    assert_eq!(fallback.eval_string(&rec).as_deref(), Some("anonymous"));
    assert_eq!(
        fallback.eval_string(&full_record()).as_deref(),
        Some("alice")
    );
}

#[test]
fn other_expressions_use_the_interpreter() {
    let full = full_record();
    let anon = anonymous_record();
    let filter = compile("response.code >= 400");
    assert!(!filter.is_fast_path());
    assert!(filter.eval_bool(&anon));
    assert!(!filter.eval_bool(&full));
    let total = compile("llm.inputTokens + llm.outputTokens");
    assert_eq!(total.eval(&full), Some(ExprValue::Int(366)));
    assert_eq!(total.eval(&anon), None);
    let team = compile("apiKey.tags.exists(t, t == 'b') && request.headers['x-team'] == 'search'");
    assert!(team.eval_bool(&full));
    let typed = compile("type(llm.inputTokens) == int");
    assert!(typed.eval_bool(&full));
    let leaked = compile("'key=' + request.headers['x-api-key']");
    assert_eq!(leaked.eval_string(&full).as_deref(), Some("key=<redacted>"));
}

#[test]
fn eval_string_and_eval_bool_semantics() {
    let rec = full_record();
    let string = |s: &str| compile(s).eval_string(&rec);
    assert_eq!(string("apiKey.user").as_deref(), Some("alice"));
    assert_eq!(string("apiKey.tier").as_deref(), Some("3"));
    assert_eq!(string("apiKey.flag").as_deref(), Some("true"));
    assert_eq!(string("apiKey.ratio").as_deref(), Some("0.25"));
    assert_eq!(string("apiKey.nothing"), None);
    assert_eq!(string("apiKey.tags").as_deref(), Some(r#"["a","b"]"#));
    assert_eq!(
        string("apiKey.limits.models").as_deref(),
        Some(r#"["gpt-4o"]"#)
    );
    assert!(
        !compile("apiKey.user").eval_bool(&rec),
        "a string is not true"
    );
    assert!(compile("apiKey.flag").eval_bool(&rec));
    assert!(
        !compile("1 / 0 == 1").eval_bool(&rec),
        "an error is not true"
    );
}

#[test]
fn compile_errors_quote_the_expression() {
    let syntax = Expr::compile("apiKey.user ==").expect_err("syntax error");
    assert!(syntax.contains("`apiKey.user ==`"), "{syntax}");
    let typo = Expr::compile("apikey.user").expect_err("unknown variable");
    assert!(
        typo.contains("`apikey.user`") && typo.contains("unknown variable `apikey`"),
        "{typo}"
    );
    for ok in [
        "[1, 2].map(x, x * 2).size() > 0",
        "apiKey.tags.all(t, t != '')",
        "{'a': 1}.exists(k, k == 'a')",
        "type(response.code) == int",
    ] {
        assert!(Expr::compile(ok).is_ok(), "{ok}");
    }
}

#[test]
fn detects_reads_of_request_headers() {
    for reads in [
        "request.headers.authorization",
        "request.headers['x-team']",
        "has(request.headers.x)",
        "request['headers']",
        "size(request) > 0",
        "request.path == '/' || request.headers.x == 'y'",
    ] {
        assert!(compile(reads).uses_request_headers(), "{reads}");
    }
    for ignores in [
        "request.path",
        "request.method == 'POST'",
        "apiKey.user",
        "llm.streaming",
    ] {
        assert!(!compile(ignores).uses_request_headers(), "{ignores}");
    }
}

#[test]
fn expr_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expr>();
}
