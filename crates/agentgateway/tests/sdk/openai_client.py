"""Drives the gateway with the official `openai` Python SDK and prints what the SDK saw as JSON.

Run by tests/openai_sdk.rs: argv = base_url api_key. The Rust test asserts on the printed JSON,
so this script only observes; it raises (exit 1) only when the SDK itself fails unexpectedly.
"""
import json
import sys

import openai

base_url, api_key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
out = {}

chat = client.chat.completions.create(
    model="llama3.2", messages=[{"role": "user", "content": "hi"}]
)
out["chat"] = {
    "model": chat.model,
    "content": chat.choices[0].message.content,
    "prompt_tokens": chat.usage.prompt_tokens,
    "completion_tokens": chat.usage.completion_tokens,
}

# No stream_options: the SDK must see no usage and no choice-less chunk.
chunks = list(
    client.chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "hi"}], stream=True
    )
)
out["stream"] = {
    "chunks": len(chunks),
    "content": "".join(c.choices[0].delta.content or "" for c in chunks if c.choices),
    "chunks_with_usage": sum(1 for c in chunks if getattr(c, "usage", None) is not None),
    "chunks_without_choices": sum(1 for c in chunks if not c.choices),
}

chunks = list(
    client.chat.completions.create(
        model="llama3.2",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
)
last = chunks[-1]
out["stream_with_usage"] = {
    "chunks": len(chunks),
    "last_prompt_tokens": last.usage.prompt_tokens if last.usage else None,
    "last_choices": len(last.choices),
}

emb = client.embeddings.create(model="text-embedding-3-small", input="hello")
out["embeddings"] = {"dims": len(emb.data[0].embedding), "prompt_tokens": emb.usage.prompt_tokens}

models = client.models.list()
out["models"] = [m.id for m in models.data]

bad = openai.OpenAI(base_url=base_url, api_key="sk-wrong", max_retries=0)
try:
    bad.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "hi"}])
    out["bad_key"] = "accepted"
except openai.AuthenticationError as e:
    out["bad_key"] = {"status": e.status_code, "code": e.code, "type": e.type}

print(json.dumps(out))
