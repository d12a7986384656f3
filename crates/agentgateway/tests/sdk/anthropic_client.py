"""Drives an Anthropic Messages endpoint with the official `anthropic` Python SDK and prints what
the SDK saw, one JSON object per line, each with a "step" key.

Usage: anthropic_client.py [BASE_URL [API_KEY]] [options]
  BASE_URL  the API root WITHOUT /v1 (the SDK appends /v1/messages); default $ANTHROPIC_BASE_URL
  API_KEY   sent as x-api-key; default $ANTHROPIC_API_KEY
  --model M             model for the successful steps (default claude-sonnet-4-6)
  --unknown-model M     model the gateway has no route for (default no-such-model)
  --bad-key K           key the gateway does not know (default sk-ant-wrong)
  --limited-key K       key whose rate limit the rate_limit step exhausts (default API_KEY)
  --rate-limit-tries N  requests the rate_limit step sends at most (default 3)
  --steps a,b           run only these steps (default: all, in the order below)
  --x-api-key           also send each client's key as `x-api-key`. Some SDK versions (2.x)
                        send the key only as `Authorization: Bearer`; Anthropic's own header is
                        `x-api-key`, and the fake provider requires it. Leave it off against the
                        gateway, to call it exactly as applications do.

Steps and what they print (besides "step"):
  create        model, text, stop_reason, usage{input,output,cache_creation,cache_read tokens}
  stream        messages.stream(): text (joined text_stream), text_events, and from
                get_final_message(): model, stop_reason, usage
  count_tokens  input_tokens
  tool_use      non-streamed call with a get_weather tool: stop_reason, text, tool{name,input}
  tool_use_stream  the same streamed: the SDK joins the input_json_delta fragments into input
  upstream_errors  one object per fake-provider scenario (x-fake-scenario header, forwarded by
                the gateway): scenario, outcome; error-429/529/400 fail before the stream,
                stream-error fails mid-stream (outcome.text_before = text received first)
  unknown_model, bad_key  outcome of one call the gateway should refuse
  rate_limit    attempts: one outcome per request with the limited key, stopping at the first
                error
An outcome is "accepted" or {"error": SDK exception class, "status", "type" (Anthropic error
type), "retry_after" (header, or null)}. The Rust test asserts on these lines, so this script
only observes: it exits non-zero only when something other than an Anthropic API error fails.
"""
import argparse
import json
import os
import sys

import anthropic

MESSAGES = [{"role": "user", "content": "hi"}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
ALL_STEPS = [
    "create",
    "stream",
    "count_tokens",
    "tool_use",
    "tool_use_stream",
    "upstream_errors",
    "unknown_model",
    "bad_key",
    "rate_limit",
]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("base_url", nargs="?", default=os.environ.get("ANTHROPIC_BASE_URL"))
    p.add_argument("api_key", nargs="?", default=os.environ.get("ANTHROPIC_API_KEY"))
    p.add_argument("--model", default="claude-sonnet-4-6")
    p.add_argument("--unknown-model", default="no-such-model")
    p.add_argument("--bad-key", default="sk-ant-wrong")
    p.add_argument("--limited-key")
    p.add_argument("--rate-limit-tries", type=int, default=3)
    p.add_argument("--steps", default=",".join(ALL_STEPS))
    p.add_argument("--x-api-key", action="store_true")
    args = p.parse_args()
    if not args.base_url or not args.api_key:
        p.error("BASE_URL and API_KEY are required (arguments or ANTHROPIC_* variables)")
    args.steps = [s for s in args.steps.split(",") if s]
    unknown = set(args.steps) - set(ALL_STEPS)
    if unknown:
        p.error(f"unknown steps: {sorted(unknown)}")
    return args


def client(args, key):
    # No retries: a refusal must reach the script as the first answer, not be retried away.
    headers = {"x-api-key": key} if args.x_api_key else None
    return anthropic.Anthropic(
        base_url=args.base_url, api_key=key, max_retries=0, timeout=30, default_headers=headers
    )


def usage(u):
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_creation_input_tokens,
        "cache_read_input_tokens": u.cache_read_input_tokens,
    }


def text_of(message):
    return "".join(b.text for b in message.content if b.type == "text")


def tool_of(message):
    tools = [b for b in message.content if b.type == "tool_use"]
    return {"name": tools[0].name, "input": tools[0].input} if tools else None


def error_outcome(e):
    """What an SDK exception tells a caller: its class, status and Anthropic error type."""
    out = {"error": type(e).__name__, "status": None, "type": None, "retry_after": None}
    if isinstance(e, anthropic.APIStatusError):
        out["status"] = e.status_code
        out["retry_after"] = e.response.headers.get("retry-after")
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            out["type"] = err.get("type")
    return out


def attempt(call):
    try:
        call()
        return "accepted"
    except anthropic.APIError as e:
        return error_outcome(e)


def step_create(args, c):
    m = c.messages.create(model=args.model, max_tokens=64, messages=MESSAGES)
    return {
        "model": m.model,
        "text": text_of(m),
        "stop_reason": m.stop_reason,
        "usage": usage(m.usage),
    }


def step_stream(args, c):
    with c.messages.stream(model=args.model, max_tokens=64, messages=MESSAGES) as s:
        pieces = list(s.text_stream)
        final = s.get_final_message()
    return {
        "text": "".join(pieces),
        "text_events": len(pieces),
        "model": final.model,
        "stop_reason": final.stop_reason,
        "usage": usage(final.usage),
    }


def step_count_tokens(args, c):
    r = c.messages.count_tokens(model=args.model, messages=MESSAGES)
    return {"input_tokens": r.input_tokens}


def tool_request(args):
    return {
        "model": args.model,
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "extra_headers": {"x-fake-scenario": "tool-use"},
    }


def step_tool_use(args, c):
    m = c.messages.create(**tool_request(args))
    return {"stop_reason": m.stop_reason, "text": text_of(m), "tool": tool_of(m)}


def step_tool_use_stream(args, c):
    with c.messages.stream(**tool_request(args)) as s:
        final = s.get_final_message()
    return {"stop_reason": final.stop_reason, "text": text_of(final), "tool": tool_of(final)}


def stream_until_error(args, c, scenario):
    pieces = []
    try:
        with c.messages.stream(
            model=args.model,
            max_tokens=64,
            messages=MESSAGES,
            extra_headers={"x-fake-scenario": scenario},
        ) as s:
            for text in s.text_stream:
                pieces.append(text)
        return "accepted"
    except anthropic.APIError as e:
        return dict(error_outcome(e), text_before="".join(pieces))


def step_upstream_errors(args, c):
    lines = []
    for scenario in ["error-429", "error-529", "error-400"]:
        outcome = attempt(
            lambda: c.messages.create(
                model=args.model,
                max_tokens=64,
                messages=MESSAGES,
                extra_headers={"x-fake-scenario": scenario},
            )
        )
        lines.append({"scenario": scenario, "outcome": outcome})
    lines.append({"scenario": "stream-error", "outcome": stream_until_error(args, c, "stream-error")})
    return lines


def step_unknown_model(args, c):
    outcome = attempt(
        lambda: c.messages.create(model=args.unknown_model, max_tokens=64, messages=MESSAGES)
    )
    return {"model": args.unknown_model, "outcome": outcome}


def step_bad_key(args, _c):
    bad = client(args, args.bad_key)
    outcome = attempt(
        lambda: bad.messages.create(model=args.model, max_tokens=64, messages=MESSAGES)
    )
    return {"outcome": outcome}


def step_rate_limit(args, _c):
    limited = client(args, args.limited_key or args.api_key)
    attempts = []
    for _ in range(args.rate_limit_tries):
        outcome = attempt(
            lambda: limited.messages.create(model=args.model, max_tokens=64, messages=MESSAGES)
        )
        attempts.append(outcome)
        if outcome != "accepted":
            break
    return {"attempts": attempts}


def main():
    args = parse_args()
    c = client(args, args.api_key)
    for name in args.steps:
        result = globals()[f"step_{name}"](args, c)
        for line in result if isinstance(result, list) else [result]:
            print(json.dumps({"step": name, **line}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
