//! The request body: Anthropic Messages -> OpenAI Chat Completions. The top level is read by a
//! hand-written map visitor rather than a derived struct, because the caller must learn every
//! field that had no place in the target API (`TranslatedRequest::dropped`), and serde's
//! `flatten` (the derived way to collect unknown keys) would buffer the whole body and lose the
//! borrowed `&RawValue`s.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::content::{note_dropped, Content};
use super::messages::{self, ChatMessage, Turn};
use crate::translate::{RequestOptions, TranslateError, TranslatedRequest};

/// The Anthropic request, typed only in what is translated.
#[derive(Default)]
struct Input<'a> {
    system: Option<Content<'a>>,
    messages: Option<Vec<Turn<'a>>>,
    max_tokens: Option<u64>,
    stop_sequences: Option<Vec<Str<'a>>>,
    temperature: Option<&'a RawValue>,
    top_p: Option<&'a RawValue>,
    stream: Option<bool>,
    metadata: Option<Metadata<'a>>,
    tools: Option<Vec<Tool<'a>>>,
    tool_choice: Option<ToolChoice<'a>>,
    dropped: Vec<String>,
}

/// A string borrowed from the body when it has no escapes.
#[derive(Debug, Deserialize, Serialize)]
#[serde(transparent)]
struct Str<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(default, borrow)]
    user_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Tool<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default, borrow)]
    description: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    input_schema: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ToolChoice<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

/// The OpenAI request.
#[derive(Serialize)]
struct Output<'a> {
    model: &'a str,
    messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<Vec<Str<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ChatTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ChatToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Cow<'a, str>>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct ChatTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionDef<'a>,
}

#[derive(Serialize)]
struct FunctionDef<'a> {
    name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a RawValue>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum ChatToolChoice<'a> {
    Mode(&'static str),
    Function {
        #[serde(rename = "type")]
        kind: &'static str,
        function: Named<'a>,
    },
}

#[derive(Serialize)]
struct Named<'a> {
    name: Cow<'a, str>,
}

pub(super) fn translate(
    body: &[u8],
    opts: &RequestOptions<'_>,
) -> Result<TranslatedRequest, TranslateError> {
    let mut input: Input<'_> = serde_json::from_slice(body)
        .map_err(|e| TranslateError(format!("invalid Anthropic Messages request: {e}")))?;
    let turns = input.messages.take().ok_or_else(|| {
        TranslateError("invalid Anthropic Messages request: missing field `messages`".into())
    })?;
    let mut dropped = std::mem::take(&mut input.dropped);

    let mut chat = Vec::with_capacity(turns.len() + 1);
    if let Some(system) = input.system.take() {
        chat.extend(messages::system(system, &mut dropped));
    }
    for turn in turns {
        messages::turn(turn, &mut chat, &mut dropped)?;
    }
    let tools = tools(input.tools.take().unwrap_or_default(), &mut dropped);
    let (tool_choice, parallel_tool_calls) = match input.tool_choice.take() {
        Some(_) if tools.is_empty() => {
            // OpenAI refuses a tool_choice without tools (all of them may have been dropped).
            note_dropped(&mut dropped, "tool_choice".into());
            (None, None)
        }
        Some(choice) => tool_choice(choice, &mut dropped),
        None => (None, None),
    };
    let stream = input.stream.filter(|s| *s);
    let output = Output {
        model: opts.model,
        messages: chat,
        max_tokens: input.max_tokens.filter(|_| !opts.max_completion_tokens),
        max_completion_tokens: input.max_tokens.filter(|_| opts.max_completion_tokens),
        temperature: input.temperature,
        top_p: input.top_p,
        stop: input.stop_sequences.filter(|s| !s.is_empty()),
        stream,
        // The gateway meters the provider's bytes, and an Anthropic client always gets usage.
        stream_options: stream
            .filter(|_| opts.stream_options)
            .map(|_| StreamOptions {
                include_usage: true,
            }),
        tools,
        tool_choice,
        parallel_tool_calls,
        user: input.metadata.and_then(|m| m.user_id),
    };
    let mut body_out = Vec::with_capacity(body.len() + 128);
    serde_json::to_writer(&mut body_out, &output)
        .map_err(|e| TranslateError(format!("cannot write the OpenAI request: {e}")))?;
    Ok(TranslatedRequest {
        body: body_out,
        dropped,
    })
}

/// Client tools become functions; server tools (a `type` other than `custom`, e.g.
/// `web_search_20250305`) run at Anthropic and have no OpenAI equivalent.
fn tools<'a>(tools: Vec<Tool<'a>>, dropped: &mut Vec<String>) -> Vec<ChatTool<'a>> {
    let mut out = Vec::with_capacity(tools.len());
    for tool in tools {
        match tool.kind.as_deref() {
            None | Some("custom") => out.push(ChatTool {
                kind: "function",
                function: FunctionDef {
                    name: tool.name,
                    description: tool.description,
                    parameters: tool.input_schema,
                },
            }),
            Some(kind) => note_dropped(dropped, format!("tools[].{kind}")),
        }
    }
    out
}

fn tool_choice<'a>(
    choice: ToolChoice<'a>,
    dropped: &mut Vec<String>,
) -> (Option<ChatToolChoice<'a>>, Option<bool>) {
    let parallel = choice
        .disable_parallel_tool_use
        .filter(|d| *d)
        .map(|_| false);
    let mapped = match (choice.kind.as_ref(), choice.name) {
        ("auto", _) => ChatToolChoice::Mode("auto"),
        ("any", _) => ChatToolChoice::Mode("required"),
        ("none", _) => ChatToolChoice::Mode("none"),
        ("tool", Some(name)) => ChatToolChoice::Function {
            kind: "function",
            function: Named { name },
        },
        (kind, _) => {
            note_dropped(dropped, format!("tool_choice.{kind}"));
            return (None, parallel);
        }
    };
    (Some(mapped), parallel)
}

impl<'de: 'a, 'a> Deserialize<'de> for Input<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(InputVisitor(std::marker::PhantomData))
    }
}

struct InputVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for InputVisitor<'a> {
    type Value = Input<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an Anthropic Messages request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut input = Input::default();
        while let Some(key) = map.next_key::<Str<'a>>()? {
            match key.0.as_ref() {
                // Replaced by the route's model.
                "model" => {
                    map.next_value::<IgnoredAny>()?;
                }
                "system" => input.system = map.next_value()?,
                "messages" => input.messages = map.next_value()?,
                "max_tokens" => input.max_tokens = map.next_value()?,
                "stop_sequences" => input.stop_sequences = map.next_value()?,
                "temperature" => input.temperature = map.next_value()?,
                "top_p" => input.top_p = map.next_value()?,
                "stream" => input.stream = map.next_value()?,
                "metadata" => input.metadata = map.next_value()?,
                "tools" => input.tools = map.next_value()?,
                "tool_choice" => input.tool_choice = map.next_value()?,
                // top_k, thinking, service_tier, container, mcp_servers, and anything new.
                other => {
                    map.next_value::<IgnoredAny>()?;
                    note_dropped(&mut input.dropped, other.to_owned());
                }
            }
        }
        Ok(input)
    }
}
