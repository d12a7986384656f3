//! Property tests for `JsonMeter`: for arbitrary JSON object bodies (with `model`, `usage`,
//! `error` and `status` members among others, repeated keys, strings full of quotes, escapes and
//! brackets, nested arrays, compact or spaced out), the summary is the same however the body is
//! cut into chunks, and equals an oracle computed from the generated members with serde_json's
//! own reading of each value. The oracle restates the documented rules (`usage.rs`) on its own,
//! so a fast path in the meter that read something differently would show up here.

mod common;

use agentgateway_wire::{JsonMeter, Operation, ResponseSummary, Usage};
use common::*;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// One top-level member as generated. `Usage` keeps its members in order with repeats, which a
/// `serde_json::Value` object cannot.
#[derive(Debug, Clone)]
enum Member {
    Plain(String, Value),
    Usage(Vec<(String, Value)>),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ._-]{0,12}",
        // Quotes, backslashes, brackets, control characters and non-ASCII, all escaped or
        // carried by serde_json as JSON requires.
        "[\"\\\\{}\\[\\]:, a-z\n\t\u{0}-\u{1f}\u{7f}é😀]{0,24}",
        "[a-z!]{100,300}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        text().prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// What a provider might put in a token count field, odd shapes included.
fn count() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => (0u64..100_000).prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => (0u32..100_000).prop_map(|n| Value::from(f64::from(n))),
        1 => (-1e6f64..1e6).prop_map(Value::from),
        1 => (i64::MIN..0).prop_map(Value::from),
        1 => Just(Value::Null),
        1 => "[0-9]{1,4}".prop_map(Value::String),
        1 => Just(json!({"n": 1})),
        1 => Just(json!([1, 2])),
    ]
}

fn details() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("cached_tokens".to_owned()),
        Just("cache_write_tokens".to_owned()),
        Just("reasoning_tokens".to_owned()),
        Just("audio_tokens".to_owned()),
    ];
    prop_oneof![
        4 => prop::collection::btree_map(key, count(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        1 => Just(Value::Null),
        1 => value(),
    ]
}

fn usage_members() -> impl Strategy<Value = Vec<(String, Value)>> {
    let counted = prop_oneof![
        Just("prompt_tokens"),
        Just("completion_tokens"),
        Just("input_tokens"),
        Just("output_tokens"),
        Just("total_tokens"),
        Just("cache_creation_input_tokens"),
        Just("cache_read_input_tokens"),
    ];
    let detailed = prop_oneof![
        Just("prompt_tokens_details"),
        Just("completion_tokens_details"),
        Just("input_tokens_details"),
        Just("output_tokens_details"),
        Just("cache_creation"),
    ];
    let member = prop_oneof![
        6 => (counted, count()).prop_map(|(k, v)| (k.to_owned(), v)),
        3 => (detailed, details()).prop_map(|(k, v)| (k.to_owned(), v)),
        1 => (text(), value()),
    ];
    prop::collection::vec(member, 0..8)
}

fn error_value() -> impl Strategy<Value = Value> {
    let code = prop_oneof![
        text().prop_map(Value::String),
        (0u64..1000).prop_map(Value::from),
        Just(Value::Null)
    ];
    let kind = prop_oneof![text().prop_map(Value::String), Just(Value::Null)];
    prop_oneof![
        3 => (prop::option::of(code), prop::option::of(kind), text()).prop_map(|(c, t, m)| {
            let mut o = Map::new();
            o.insert("message".into(), Value::String(m));
            c.map(|c| o.insert("code".into(), c));
            t.map(|t| o.insert("type".into(), t));
            Value::Object(o)
        }),
        1 => Just(Value::Null),
        1 => value(),
    ]
}

fn member() -> impl Strategy<Value = Member> {
    let other_key = prop_oneof![
        Just("id".to_owned()),
        Just("choices".to_owned()),
        Just("data".to_owned()),
        // Near misses of the wanted keys: each must be ignored.
        Just("us\"age".to_owned()),
        Just("model\\".to_owned()),
        Just("Model".to_owned()),
        Just("usage_".to_owned()),
        Just("a_very_long_key_name_indeed".to_owned()),
        text(),
    ];
    let status = prop_oneof![
        Just(json!("completed")),
        Just(json!("failed")),
        Just(json!("incomplete")),
        Just(json!("in_progress")),
        Just(Value::Null),
    ];
    prop_oneof![
        4 => (other_key, value()).prop_map(|(k, v)| Member::Plain(k, v)),
        2 => prop_oneof![text().prop_map(Value::String), leaf()]
            .prop_map(|v| Member::Plain("model".into(), v)),
        3 => usage_members().prop_map(Member::Usage),
        1 => value().prop_map(|v| Member::Plain("usage".into(), v)),
        1 => error_value().prop_map(|v| Member::Plain("error".into(), v)),
        1 => status.prop_map(|v| Member::Plain("status".into(), v)),
    ]
}

/// Serialises the members as one object. `spaced` puts whitespace around every token and
/// pretty-prints nested values.
fn body(members: &[Member], spaced: bool) -> Vec<u8> {
    let (sep, colon) = if spaced { (",\n  ", " : ") } else { (",", ":") };
    let write = |v: &Value| match spaced {
        true => serde_json::to_string_pretty(v),
        false => serde_json::to_string(v),
    };
    let encode = |k: &str, v: String| format!("{}{colon}{v}", Value::from(k));
    let parts: Vec<String> = members
        .iter()
        .map(|m| match m {
            Member::Plain(k, v) => encode(k, write(v).unwrap()),
            Member::Usage(fields) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| encode(k, write(v).unwrap()))
                    .collect();
                encode("usage", format!("{{{}}}", inner.join(sep)))
            }
        })
        .collect();
    let open = if spaced { "{\n  " } else { "{" };
    format!(
        "{open}{}{}}}",
        parts.join(sep),
        if spaced { "\n" } else { "" }
    )
    .into_bytes()
}

fn run(op: Operation, chunks: &[bytes::Bytes]) -> ResponseSummary {
    let mut meter = JsonMeter::new(op);
    for chunk in chunks {
        meter.feed(chunk);
    }
    meter.summary()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn summary_ignores_chunking_and_matches_the_oracle(
        op in prop::sample::select(OPS.to_vec()),
        members in prop::collection::vec(member(), 0..7),
        spaced in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let body = body(&members, spaced);
        let whole = run(op, &whole(&body));
        prop_assert_eq!(&run(op, &split(&body, &cuts)), &whole);
        prop_assert_eq!(&whole, &oracle::summary(op, &members), "{}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn usage_alone_in_every_split_matches_the_oracle(
        op in prop::sample::select(OPS.to_vec()),
        fields in usage_members(),
        cut in any::<usize>(),
    ) {
        let members = [Member::Plain("model".into(), json!("m")), Member::Usage(fields)];
        let body = body(&members, false);
        let want = oracle::summary(op, &members);
        prop_assert_eq!(&run(op, &split(&body, &[cut])), &want, "{}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn oracle_agrees_with_hand_checked_bodies() {
    // The oracle itself, on shapes whose answers are known from the fixtures' tests.
    let usage = Member::Usage(vec![
        ("prompt_tokens".into(), json!(12)),
        ("completion_tokens".into(), json!(40.0)),
        (
            "prompt_tokens_details".into(),
            json!({"cached_tokens": 8, "audio_tokens": 0}),
        ),
        ("prompt_tokens".into(), json!(13)),
    ]);
    let members = [Member::Plain("model".into(), json!("m")), usage];
    let s = oracle::summary(Operation::ChatCompletions, &members);
    // A repeated field makes serde refuse the whole object: no usage at all.
    assert_eq!(s.usage, Usage::default());
    assert_eq!(s.response_model.as_deref(), Some("m"));
    let anthropic = Member::Usage(vec![
        ("input_tokens".into(), json!(21)),
        ("cache_read_input_tokens".into(), json!(2051)),
        ("cache_creation_input_tokens".into(), json!(188)),
        ("output_tokens".into(), json!(393)),
    ]);
    let s = oracle::summary(Operation::Messages, &[anthropic]);
    assert_eq!(s.usage, anthropic_usage(2260, 393, Some(2051), Some(188)));
    let body = body(&[Member::Plain("error".into(), json!({"code": 7}))], true);
    assert_eq!(
        run(Operation::ChatCompletions, &whole(&body))
            .error
            .as_deref(),
        Some("7")
    );
}

/// The summary rules, restated over `serde_json::Value`s.
mod oracle {
    use super::Member;
    use agentgateway_wire::{Operation, ResponseSummary, Usage};
    use serde_json::Value;

    /// A value as the usage decoder's lenient scalar: a count, a string, or neither.
    enum Scalar {
        Count(u64),
        Str(String),
        Other,
    }

    fn scalar(v: Option<&Value>) -> Scalar {
        match v {
            Some(Value::String(s)) => Scalar::Str(s.clone()),
            Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
                (Some(u), _) => Scalar::Count(u),
                _ if n.is_i64() => Scalar::Other,
                (None, Some(f))
                    if f >= 0.0 && f.fract() == 0.0 && f < 18_446_744_073_709_551_615.0 =>
                {
                    Scalar::Count(f as u64)
                }
                _ => Scalar::Other,
            },
            _ => Scalar::Other,
        }
    }

    fn count(v: Option<&Value>) -> Option<u64> {
        match scalar(v) {
            Scalar::Count(n) => Some(n),
            _ => None,
        }
    }

    fn label(v: Option<&Value>) -> Option<String> {
        match scalar(v) {
            Scalar::Count(n) => Some(n.to_string()),
            Scalar::Str(s) => {
                let l: String = s
                    .chars()
                    .take(64)
                    .map(|c| match c.is_ascii_alphanumeric() || "_.-".contains(c) {
                        true => c,
                        false => '_',
                    })
                    .collect();
                (!l.is_empty()).then_some(l)
            }
            Scalar::Other => None,
        }
    }

    /// The fields of a usage object; `None` when it is not an object or repeats a field the
    /// decoder reads (serde refuses those).
    fn fields<'a>(
        members: &'a [(String, Value)],
        known: &[&str],
    ) -> Option<Vec<(&'a str, &'a Value)>> {
        let mut seen = Vec::new();
        for (k, _) in members {
            if known.contains(&k.as_str()) {
                if seen.contains(k) {
                    return None;
                }
                seen.push(k.clone());
            }
        }
        Some(members.iter().map(|(k, v)| (k.as_str(), v)).collect())
    }

    fn get<'a>(fields: &[(&str, &'a Value)], key: &str) -> Option<&'a Value> {
        fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// (cached, cache_write, reasoning) of a details value; empty unless a well-formed object.
    fn details(v: Option<&Value>) -> [Option<u64>; 3] {
        match v {
            Some(Value::Object(m)) => [
                count(m.get("cached_tokens")),
                count(m.get("cache_write_tokens")),
                count(m.get("reasoning_tokens")),
            ],
            _ => [None; 3],
        }
    }

    const OPENAI: [&str; 8] = [
        "prompt_tokens",
        "completion_tokens",
        "input_tokens",
        "output_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
        "input_tokens_details",
        "output_tokens_details",
    ];
    const ANTHROPIC: [&str; 4] = [
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    ];

    fn usage(op: Operation, members: &[(String, Value)]) -> Option<Usage> {
        match op {
            Operation::CountTokens => None,
            Operation::Messages => {
                let f = fields(members, &ANTHROPIC)?;
                let input = count(get(&f, "input_tokens"));
                let read = count(get(&f, "cache_read_input_tokens"));
                let write = count(get(&f, "cache_creation_input_tokens"));
                let parts = [input, read, write];
                Some(Usage {
                    input_tokens: parts.iter().any(Option::is_some).then(|| {
                        parts
                            .iter()
                            .flatten()
                            .fold(0u64, |a, n| a.saturating_add(*n))
                    }),
                    output_tokens: count(get(&f, "output_tokens")),
                    cache_read_input_tokens: read,
                    cache_write_input_tokens: write,
                    reasoning_output_tokens: None,
                })
            }
            _ => {
                let f = fields(members, &OPENAI)?;
                let c = |k| count(get(&f, k));
                let (input, output, inp, out) = match op {
                    Operation::Responses => (
                        c("input_tokens").or(c("prompt_tokens")),
                        c("output_tokens").or(c("completion_tokens")),
                        "input_tokens_details",
                        "output_tokens_details",
                    ),
                    _ => (
                        c("prompt_tokens").or(c("input_tokens")),
                        c("completion_tokens").or(c("output_tokens")),
                        "prompt_tokens_details",
                        "completion_tokens_details",
                    ),
                };
                if op == Operation::Embeddings {
                    return Some(Usage {
                        input_tokens: input,
                        ..Usage::default()
                    });
                }
                let [cached, cache_write, _] = details(get(&f, inp));
                Some(Usage {
                    input_tokens: input,
                    output_tokens: output,
                    cache_read_input_tokens: cached,
                    cache_write_input_tokens: cache_write,
                    reasoning_output_tokens: details(get(&f, out))[2],
                })
            }
        }
    }

    fn error(v: &Value) -> Option<String> {
        match v {
            Value::Null => None,
            Value::Object(m) => Some(
                label(m.get("code"))
                    .or_else(|| label(m.get("type")))
                    .unwrap_or_else(|| "provider_error".into()),
            ),
            _ => Some("provider_error".into()),
        }
    }

    pub fn summary(op: Operation, members: &[Member]) -> ResponseSummary {
        let (mut model, mut u, mut err, mut status) = (None, Usage::default(), None, None);
        for m in members {
            match m {
                Member::Usage(fields) if op != Operation::CountTokens => {
                    u = usage(op, fields).unwrap_or(u)
                }
                Member::Usage(_) => {}
                Member::Plain(k, v) => match (k.as_str(), v) {
                    ("model", Value::String(s)) => model = Some(s.clone()),
                    ("usage", Value::Object(o)) if op != Operation::CountTokens => {
                        let pairs: Vec<(String, Value)> =
                            o.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                        u = usage(op, &pairs).unwrap_or(u);
                    }
                    ("error", v) => err = error(v),
                    ("status", v) if op == Operation::Responses => {
                        status = v.as_str().map(str::to_owned)
                    }
                    _ => {}
                },
            }
        }
        let error = match (status.as_deref(), err) {
            (Some("incomplete"), _) => Some("response_incomplete".into()),
            (Some("failed"), None) => Some("response_failed".into()),
            (_, err) => err,
        };
        ResponseSummary {
            usage: u,
            response_model: model,
            error,
        }
    }
}
