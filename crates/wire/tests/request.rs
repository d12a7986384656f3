//! scan_request and rewrite_request: what is found, what is rejected, and that rewrites splice
//! only the bytes they must.

use agentgateway_wire::{rewrite_request, rewrite_request_parts, scan_request, RequestError};
use bytes::Bytes;
use serde_json::{json, Value};

fn scan(body: &str) -> Result<agentgateway_wire::RequestInfo, RequestError> {
    scan_request(body.as_bytes())
}

fn rewrite(body: &str, model: Option<&str>, force: bool) -> Bytes {
    let body = Bytes::copy_from_slice(body.as_bytes());
    let info = scan_request(&body).expect("valid request");
    rewrite_request(&body, &info, model, force)
}

fn parsed(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("rewrite produced valid JSON")
}

#[test]
fn finds_model_stream_and_include_usage() {
    let info = scan(
        r#"{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o","stream":true,
            "stream_options":{"include_usage":true}}"#,
    )
    .expect("valid");
    assert_eq!(info.model(), "gpt-4o");
    assert!(info.stream());
    assert_eq!(info.include_usage(), Some(true));
}

#[test]
fn defaults_when_absent_or_null() {
    let info = scan(r#"{"model":"m"}"#).expect("valid");
    assert!(!info.stream());
    assert_eq!(info.include_usage(), None);
    let info = scan(r#"{"model":"m","stream":null,"stream_options":null}"#).expect("valid");
    assert!(!info.stream());
    assert_eq!(info.include_usage(), None);
    let info = scan(r#"{"model":"m","stream":false,"stream_options":{"include_usage":false}}"#)
        .expect("valid");
    assert!(!info.stream());
    assert_eq!(info.include_usage(), Some(false));
    let info =
        scan(r#"{"model":"m","stream_options":{"include_usage":null,"x":1}}"#).expect("valid");
    assert_eq!(info.include_usage(), None);
}

#[test]
fn nested_model_is_ignored() {
    let body = r#"{"metadata":{"model":"evil"},"tools":[{"model":"x"}],"model":"real","input":{"model":"y"}}"#;
    assert_eq!(scan(body).expect("valid").model(), "real");
    let only_nested = r#"{"metadata":{"model":"evil"},"messages":[]}"#;
    assert_eq!(scan(only_nested).err(), Some(RequestError::MissingModel));
}

#[test]
fn escaped_model_is_unescaped() {
    let info = scan(r#"{"model":"gpt\u002d4o\/mini \"q\""}"#).expect("valid");
    assert_eq!(info.model(), "gpt-4o/mini \"q\"");
    let info = scan(r#"{"model":"caf\u00e9-\ud83d\ude00"}"#).expect("valid");
    assert_eq!(info.model(), "café-😀");
}

#[test]
fn escaped_keys_count_and_cannot_smuggle_a_second_model() {
    let info = scan(r#"{"mod\u0065l":"m","str\u0065am":true}"#).expect("valid");
    assert_eq!(info.model(), "m");
    assert!(info.stream());
    assert!(matches!(
        scan(r#"{"model":"a","mod\u0065l":"b"}"#),
        Err(RequestError::Malformed(m)) if m.contains("duplicate field `model`")
    ));
}

#[test]
fn values_the_gateway_does_not_read_are_stepped_over_whole() {
    let body = r#"{"messages":[{"content":"]}\"{[","x":[[],{}]}],"model":"m","n":1e3,"t":null}"#;
    assert_eq!(scan(body).expect("valid").model(), "m");
    let big = format!(
        r#"{{"messages":[{{"content":"{}"}}],"model":"m"}}"#,
        "a]}\\\\".repeat(50_000)
    );
    assert_eq!(scan(&big).expect("valid").model(), "m");
}

#[test]
fn whitespace_everywhere() {
    let info = scan(" \n\t{ \"model\" :\r\n \"m\" , \"stream\" : true }\n ").expect("valid");
    assert_eq!(info.model(), "m");
    assert!(info.stream());
}

#[test]
fn every_error_variant() {
    assert_eq!(scan("").err(), Some(RequestError::Empty));
    assert_eq!(scan(" \r\n\t ").err(), Some(RequestError::Empty));
    assert!(matches!(
        scan(r#"{"model":"m""#),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        scan(r#"{"model":"m"} trailing"#),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(
        scan(r#"{"model":"m","model":"n"}"#),
        Err(RequestError::Malformed(_))
    ));
    assert!(matches!(scan("nope"), Err(RequestError::Malformed(_))));
    assert_eq!(
        scan(r#"[{"model":"m"}]"#).err(),
        Some(RequestError::NotAnObject)
    );
    assert_eq!(scan(r#""model""#).err(), Some(RequestError::NotAnObject));
    assert_eq!(scan("42").err(), Some(RequestError::NotAnObject));
    assert_eq!(scan("{}").err(), Some(RequestError::MissingModel));
    assert_eq!(
        scan(r#"{"model":null}"#).err(),
        Some(RequestError::InvalidModel)
    );
    assert_eq!(
        scan(r#"{"model":""}"#).err(),
        Some(RequestError::InvalidModel)
    );
    assert_eq!(
        scan(r#"{"model":42}"#).err(),
        Some(RequestError::InvalidModel)
    );
    assert_eq!(
        scan(r#"{"model":["m"]}"#).err(),
        Some(RequestError::InvalidModel)
    );
    assert_eq!(
        scan(r#"{"model":"m","stream":"yes"}"#).err(),
        Some(RequestError::InvalidField("stream"))
    );
    assert_eq!(
        scan(r#"{"model":"m","stream":1}"#).err(),
        Some(RequestError::InvalidField("stream"))
    );
    assert_eq!(
        scan(r#"{"model":"m","stream_options":true}"#).err(),
        Some(RequestError::InvalidField("stream_options"))
    );
    assert_eq!(
        scan(r#"{"model":"m","stream_options":{"include_usage":"yes"}}"#).err(),
        Some(RequestError::InvalidField("stream_options.include_usage"))
    );
}

#[test]
fn malformed_message_has_position_and_display_is_clear() {
    let Err(RequestError::Malformed(msg)) = scan("{\n  \"model\": \"m\",\n  oops\n}") else {
        panic!("expected Malformed");
    };
    assert!(msg.contains("line 3"), "{msg}");
    assert!(msg.contains("column"), "{msg}");
    assert_eq!(
        RequestError::MissingModel.to_string(),
        "you must provide a model parameter"
    );
    assert!(RequestError::Malformed(msg.clone())
        .to_string()
        .contains(&msg));
    assert!(RequestError::InvalidField("stream")
        .to_string()
        .contains("stream"));
    for e in [
        RequestError::Empty,
        RequestError::NotAnObject,
        RequestError::InvalidModel,
    ] {
        assert!(!e.to_string().is_empty());
    }
    let _: &dyn std::error::Error = &RequestError::Empty;
}

#[test]
fn unchanged_body_is_the_same_bytes() {
    let body = Bytes::from_static(
        br#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true}}"#,
    );
    let info = scan_request(&body).expect("valid");
    for (model, force) in [
        (None, false),
        (None, true),
        (Some("gpt-4o"), false),
        (Some("gpt-4o"), true),
    ] {
        let out = rewrite_request(&body, &info, model, force);
        assert_eq!(out.as_ptr(), body.as_ptr(), "copied for {model:?} {force}");
        assert_eq!(out, body);
    }
}

#[test]
fn model_replaced_and_nothing_else_touched() {
    let body =
        r#"{ "messages": [{"role":"user","content":"model \"x\""}], "model" : "alias", "n": 1 }"#;
    let out = rewrite(body, Some("gpt-4o-2024-08-06"), false);
    let want = body.replace(r#""alias""#, r#""gpt-4o-2024-08-06""#);
    assert_eq!(std::str::from_utf8(&out).expect("utf8"), want);
    let out = rewrite(body, Some("we\"ird\\name\n"), false);
    assert_eq!(parsed(&out)["model"], json!("we\"ird\\name\n"));
    assert_eq!(
        scan_request(&out).expect("rescans").model(),
        "we\"ird\\name\n"
    );
}

#[test]
fn include_usage_inserted_when_absent() {
    let body = r#"{"model":"m","stream":true,"messages":[]}"#;
    let out = rewrite(body, None, true);
    assert_eq!(
        std::str::from_utf8(&out).expect("utf8"),
        r#"{"model":"m","stream_options":{"include_usage":true},"stream":true,"messages":[]}"#
    );
    let out = rewrite(body, Some("real"), true);
    let v = parsed(&out);
    assert_eq!(v["model"], json!("real"));
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
    assert_eq!(
        scan_request(&out).expect("rescans").include_usage(),
        Some(true)
    );
}

#[test]
fn include_usage_set_when_false_or_null() {
    let out = rewrite(
        r#"{"model":"m","stream_options":{"include_usage":false}}"#,
        None,
        true,
    );
    assert_eq!(
        &out[..],
        br#"{"model":"m","stream_options":{"include_usage":true}}"#
    );
    let out = rewrite(
        r#"{"model":"m","stream_options":{"include_usage":null}}"#,
        None,
        true,
    );
    assert_eq!(
        &out[..],
        br#"{"model":"m","stream_options":{"include_usage":true}}"#
    );
    let out = rewrite(r#"{"stream_options":null,"model":"m"}"#, None, true);
    assert_eq!(
        &out[..],
        br#"{"stream_options":{"include_usage":true},"model":"m"}"#
    );
}

#[test]
fn include_usage_keeps_other_stream_options() {
    let out = rewrite(
        r#"{"model":"m","stream_options":{"include_obfuscation":false}}"#,
        None,
        true,
    );
    assert_eq!(
        &out[..],
        br#"{"model":"m","stream_options":{"include_usage":true,"include_obfuscation":false}}"#
    );
    let out = rewrite(r#"{"model":"m","stream_options":{ }}"#, Some("n"), true);
    assert_eq!(
        &out[..],
        br#"{"model":"n","stream_options":{"include_usage":true }}"#
    );
    let out = rewrite(
        r#"{"stream_options":{"a":1,"include_usage":false,"b":[2]},"model":"m"}"#,
        Some("x"),
        true,
    );
    assert_eq!(
        &out[..],
        br#"{"stream_options":{"a":1,"include_usage":true,"b":[2]},"model":"x"}"#
    );
}

#[test]
fn info_from_another_body_never_panics() {
    let long = Bytes::from_static(
        br#"{"messages":[1,2,3,4,5,6,7,8,9],"stream_options":{"a":1},"model":"abcdef"}"#,
    );
    let short = Bytes::from_static(br#"{"model":"m"}"#);
    let info = scan_request(&long).expect("valid");
    let _ = rewrite_request(&short, &info, Some("x"), true);
    let info = scan_request(&short).expect("valid");
    let _ = rewrite_request(&long, &info, Some("x"), true);
}

#[test]
fn a_large_prompt_is_forwarded_as_slices_of_the_original_not_a_copy() {
    let prompt = "lorem ipsum ".repeat(10_000);
    let body = Bytes::from(format!(
        r#"{{"model":"alias","messages":[{{"role":"user","content":"{prompt}"}}],"stream":true}}"#
    ));
    let info = scan_request(&body).unwrap();
    let parts = rewrite_request_parts(&body, &info, Some("gpt-4o-mini"), true);
    let joined: Vec<u8> = parts.concat();
    assert_eq!(
        joined,
        rewrite_request(&body, &info, Some("gpt-4o-mini"), true)
    );
    let value = parsed(&joined);
    assert_eq!(value["model"], "gpt-4o-mini");
    assert_eq!(value["stream_options"]["include_usage"], true);
    let largest = parts.iter().max_by_key(|p| p.len()).unwrap();
    assert!(largest.len() > prompt.len());
    let range = body.as_ptr_range();
    assert!(
        range.contains(&largest.as_ptr()),
        "the prompt must be a slice of the caller's body"
    );
}

#[test]
fn an_unchanged_body_is_one_part_the_body_itself() {
    let body = Bytes::from_static(br#"{"model":"gpt-4o","messages":[]}"#);
    let info = scan_request(&body).unwrap();
    let parts = rewrite_request_parts(&body, &info, Some("gpt-4o"), false);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].as_ptr(), body.as_ptr());
}
