//! The request: an OpenAI Chat Completions body -> an Anthropic Messages body.
//!
//! The body is read in one pass by a map visitor over its top-level members, so every member is
//! either used, passed through as its raw bytes, or dropped and named in
//! [`TranslatedRequest::dropped`] — nothing is silently lost and no DOM is built. The
//! conversation itself is [`super::messages`]; this module owns the sampling parameters, tools
//! and tool choice, and writes the output with serde into one buffer sized from the input.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::common::Str;
use super::messages::{self, Block, Conversation, Message, Turn};
use crate::translate::{RequestOptions, TranslateError, TranslatedRequest};

/// Members Anthropic accepts with the same meaning, sent on as the caller wrote them.
/// (`service_tier` is not among them: OpenAI's values are not Anthropic's.)
const PASSTHROUGH: &[&str] = &["top_k", "thinking", "container", "mcp_servers"];

/// The members of the caller's body the translation reads.
#[derive(Default)]
struct ChatRequest<'a> {
    messages: Option<Vec<Message<'a>>>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    stop: Option<&'a RawValue>,
    temperature: Option<f64>,
    top_p: Option<&'a RawValue>,
    stream: Option<bool>,
    user: Option<&'a RawValue>,
    metadata: Option<&'a RawValue>,
    n: Option<u64>,
    tools: Option<Vec<Tool<'a>>>,
    tool_choice: Option<&'a RawValue>,
    parallel_tool_calls: Option<bool>,
    passthrough: Vec<(&'static str, &'a RawValue)>,
    dropped: Vec<String>,
}

impl<'de> Deserialize<'de> for ChatRequest<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ChatRequestVisitor)
    }
}

struct ChatRequestVisitor;

impl<'de> Visitor<'de> for ChatRequestVisitor {
    type Value = ChatRequest<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut req = ChatRequest::default();
        while let Some(key) = map.next_key::<Str<'de>>()? {
            match key.as_str() {
                "messages" => req.messages = Some(map.next_value()?),
                "max_tokens" => req.max_tokens = map.next_value()?,
                "max_completion_tokens" => req.max_completion_tokens = map.next_value()?,
                "stop" => req.stop = map.next_value()?,
                "temperature" => req.temperature = map.next_value()?,
                "top_p" => req.top_p = map.next_value()?,
                "stream" => req.stream = map.next_value()?,
                "user" => req.user = map.next_value()?,
                "metadata" => req.metadata = map.next_value()?,
                "n" => req.n = map.next_value()?,
                "tools" => req.tools = map.next_value()?,
                "tool_choice" => req.tool_choice = map.next_value()?,
                "parallel_tool_calls" => req.parallel_tool_calls = map.next_value()?,
                // Replaced by the route's model / answered by the translator itself.
                "model" | "stream_options" => {
                    map.next_value::<IgnoredAny>()?;
                }
                name => match PASSTHROUGH.iter().find(|p| **p == name) {
                    Some(p) => {
                        if let Some(value) = map.next_value::<Option<&RawValue>>()? {
                            req.passthrough.push((p, value));
                        }
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                        req.dropped.push(key.0.into_owned());
                    }
                },
            }
        }
        Ok(req)
    }
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(default, borrow)]
    function: Option<FunctionDef<'a>>,
}

#[derive(Deserialize)]
struct FunctionDef<'a> {
    #[serde(borrow)]
    name: &'a RawValue,
    #[serde(default, borrow)]
    description: Option<&'a RawValue>,
    #[serde(default, borrow)]
    parameters: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct ToolOut<'a> {
    name: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a RawValue>,
    input_schema: Schema<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Schema<'a> {
    Given(&'a RawValue),
    /// Anthropic requires a schema; OpenAI lets a function omit `parameters`.
    Empty {
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

#[derive(Serialize)]
struct ToolChoiceOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
struct ToolChoiceObject<'a> {
    #[serde(rename = "type", borrow)]
    kind: Str<'a>,
    #[serde(default, borrow)]
    function: Option<NamedFunction<'a>>,
}

#[derive(Deserialize)]
struct NamedFunction<'a> {
    #[serde(borrow)]
    name: &'a RawValue,
}

/// The Anthropic body, written member by member so optional members are simply absent.
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u64,
    conversation: Conversation<'a>,
    tools: Vec<ToolOut<'a>>,
    tool_choice: Option<ToolChoiceOut<'a>>,
    stop: Option<&'a RawValue>,
    temperature: Option<f64>,
    top_p: Option<&'a RawValue>,
    stream: Option<bool>,
    /// Anthropic's `metadata.user_id`, its only metadata member.
    user_id: Option<&'a RawValue>,
    passthrough: Vec<(&'static str, &'a RawValue)>,
}

/// Translates an OpenAI Chat Completions request body into an Anthropic Messages one.
pub fn request(
    body: &[u8],
    opts: &RequestOptions<'_>,
) -> Result<TranslatedRequest, TranslateError> {
    let mut req: ChatRequest<'_> = serde_json::from_slice(body)
        .map_err(|e| TranslateError(format!("invalid request body: {e}")))?;
    if let Some(n) = req.n.filter(|n| *n != 1) {
        return Err(TranslateError(format!(
            "`n` = {n} is not supported: Anthropic returns one choice per request"
        )));
    }
    let messages = req
        .messages
        .ok_or_else(|| TranslateError("`messages` is required".into()))?;
    let conversation = messages::conversation(messages)?;
    let tools = tools(req.tools.unwrap_or_default())?;
    let tool_choice = tool_choice(req.tool_choice, req.parallel_tool_calls, !tools.is_empty())?;
    let out = MessagesRequest {
        model: opts.model,
        max_tokens: req
            .max_completion_tokens
            .or(req.max_tokens)
            .unwrap_or(opts.default_max_tokens),
        conversation,
        tools,
        tool_choice,
        stop: stop(req.stop)?,
        // Anthropic's range is 0..=1 where OpenAI's is 0..=2: the closest legal value.
        temperature: req.temperature.map(|t| t.min(1.0)),
        top_p: req.top_p,
        stream: req.stream,
        user_id: user_id(req.metadata, req.user, &mut req.dropped)?,
        passthrough: req.passthrough,
    };
    let mut buf = Vec::with_capacity(body.len() + 128);
    serde_json::to_writer(&mut buf, &out)
        .map_err(|e| TranslateError(format!("cannot write the translated request: {e}")))?;
    Ok(TranslatedRequest {
        body: buf,
        dropped: req.dropped,
    })
}

fn tools(tools: Vec<Tool<'_>>) -> Result<Vec<ToolOut<'_>>, TranslateError> {
    tools
        .into_iter()
        .map(|tool| match (tool.kind.as_str(), tool.function) {
            ("function", Some(f)) => Ok(ToolOut {
                name: f.name,
                description: f.description,
                input_schema: f
                    .parameters
                    .map_or(Schema::Empty { kind: "object" }, Schema::Given),
            }),
            ("function", None) => Err(TranslateError("a function tool needs `function`".into())),
            (other, _) => Err(TranslateError(format!(
                "tool type `{other}` is not supported; only `function` tools translate"
            ))),
        })
        .collect()
}

fn tool_choice<'a>(
    raw: Option<&'a RawValue>,
    parallel: Option<bool>,
    has_tools: bool,
) -> Result<Option<ToolChoiceOut<'a>>, TranslateError> {
    let disable_parallel = (parallel == Some(false)).then_some(true);
    let choice = |kind, name| ToolChoiceOut {
        kind,
        name,
        // Anthropic's `none` choice has no such member.
        disable_parallel_tool_use: disable_parallel.filter(|_| kind != "none"),
    };
    let Some(raw) = raw else {
        return Ok((has_tools && disable_parallel.is_some()).then(|| choice("auto", None)));
    };
    let bad = |e: String| TranslateError(format!("invalid `tool_choice`: {e}"));
    if raw.get().starts_with('"') {
        let mode: Str<'_> = serde_json::from_str(raw.get()).map_err(|e| bad(e.to_string()))?;
        let kind = match mode.as_str() {
            "auto" => "auto",
            "required" => "any",
            "none" => "none",
            other => return Err(bad(format!("unknown mode `{other}`"))),
        };
        return Ok(Some(choice(kind, None)));
    }
    let obj: ToolChoiceObject<'_> =
        serde_json::from_str(raw.get()).map_err(|e| bad(e.to_string()))?;
    match (obj.kind.as_str(), obj.function) {
        ("function", Some(f)) => Ok(Some(choice("tool", Some(f.name)))),
        (kind, _) => Err(bad(format!("type `{kind}` is not supported"))),
    }
}

/// `stop` may be one string or an array; Anthropic takes only an array.
fn stop(raw: Option<&RawValue>) -> Result<Option<&RawValue>, TranslateError> {
    match raw.map(|r| (r, r.get().as_bytes().first())) {
        None => Ok(None),
        Some((r, Some(b'"' | b'['))) => Ok(Some(r)),
        Some(_) => Err(TranslateError(
            "`stop` must be a string or an array of strings".into(),
        )),
    }
}

/// Anthropic's metadata takes `user_id` only (it refuses other members): the caller's
/// `metadata.user_id`, else `user`; other metadata members are dropped and named.
fn user_id<'a>(
    metadata: Option<&'a RawValue>,
    user: Option<&'a RawValue>,
    dropped: &mut Vec<String>,
) -> Result<Option<&'a RawValue>, TranslateError> {
    let Some(raw) = metadata else {
        return Ok(user);
    };
    let map: BTreeMap<Str<'a>, &'a RawValue> = serde_json::from_str(raw.get())
        .map_err(|e| TranslateError(format!("invalid `metadata`: {e}")))?;
    let mut explicit = None;
    for (key, value) in map {
        if key.0 == "user_id" {
            explicit = Some(value);
        } else {
            dropped.push(format!("metadata.{}", key.0));
        }
    }
    Ok(explicit.or(user))
}

impl Serialize for MessagesRequest<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("model", self.model)?;
        map.serialize_entry("max_tokens", &self.max_tokens)?;
        let conv = &self.conversation;
        match conv.system.as_slice() {
            [] => {}
            [Block::Text { text, .. }] if conv.system_is_string => {
                map.serialize_entry("system", text)?
            }
            blocks => map.serialize_entry("system", blocks)?,
        }
        map.serialize_entry::<_, [Turn<'_>]>("messages", &conv.turns)?;
        if !self.tools.is_empty() {
            map.serialize_entry("tools", &self.tools)?;
        }
        if let Some(choice) = &self.tool_choice {
            map.serialize_entry("tool_choice", choice)?;
        }
        match self.stop {
            Some(one) if one.get().starts_with('"') => {
                map.serialize_entry("stop_sequences", &[one])?
            }
            Some(many) => map.serialize_entry("stop_sequences", many)?,
            None => {}
        }
        if let Some(t) = self.temperature {
            map.serialize_entry("temperature", &t)?;
        }
        if let Some(p) = self.top_p {
            map.serialize_entry("top_p", p)?;
        }
        if let Some(stream) = self.stream {
            map.serialize_entry("stream", &stream)?;
        }
        if let Some(user_id) = self.user_id {
            map.serialize_entry("metadata", &UserId { user_id })?;
        }
        for (name, value) in &self.passthrough {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct UserId<'a> {
    user_id: &'a RawValue,
}
