#!/usr/bin/env python3
"""Generates crates/agentgateway/data/prices.json, the price catalog compiled into the gateway.

The source is LiteLLM's public price table (model_prices_and_context_window.json, MIT licence),
which gives USD per token. The output is the agentgateway catalog format: provider (our
gen_ai_system name) -> model -> USD per 1M tokens, wrapped with where the numbers came from and
when. Only chat, completion, responses and embedding entries of the providers the gateway speaks
to are kept, so the binary stays small.

Numbers are carried as decimal text end to end (json parse_float=Decimal, scaleb(6)), never as
binary floats: 1.5e-07 per token must become exactly 0.15 per 1M.

Usage: scripts/gen-price-catalog.py [LITELLM_JSON] [--source-date YYYY-MM-DD]
LITELLM_JSON defaults to ../shared/data/litellm-model-prices.json relative to the repo root;
the source date defaults to that file's modification date. Python 3 standard library only.
"""

import argparse
import datetime
import decimal
import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE = os.path.join(REPO, "..", "shared", "data", "litellm-model-prices.json")
OUTPUT = os.path.join(REPO, "crates", "agentgateway", "data", "prices.json")
SOURCE_URL = (
    "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json (MIT)"
)

# LiteLLM's provider name -> our gen_ai_system name. Gemini, Vertex and Bedrock are left out of
# the builtin file (the gateway has no such provider yet, and they would triple its size); the
# gateway's LiteLLM loader still maps them for users who add the full table themselves.
PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure": "azure.ai.openai",
    "groq": "groq",
    "mistral": "mistral_ai",
    "deepseek": "deepseek",
    "together_ai": "together_ai",
    "fireworks_ai": "fireworks_ai",
    "openrouter": "openrouter",
    "xai": "x_ai",
    "cerebras": "cerebras",
    "perplexity": "perplexity",
    "ollama": "ollama",
}
MODES = {"chat", "completion", "responses", "embedding"}

# LiteLLM field -> our field. Tier fields are these names plus `_above_{N}k_tokens`.
BASE_FIELDS = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cacheRead",
    "cache_creation_input_token_cost": "cacheWrite",
}
REASONING_FIELD = "output_cost_per_reasoning_token"
TIER_FIELD = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost)_above_(\d+)k_tokens$"
)
PER_MILLION = 6


def per_million(value):
    """USD per token (Decimal parsed from the JSON text) -> USD per 1M tokens, as plain text."""
    if not isinstance(value, decimal.Decimal) or value < 0:
        raise ValueError(f"not a price: {value!r}")
    text = format(value.scaleb(PER_MILLION).normalize(), "f")
    return decimal.Decimal(text)


def model_name(key, provider):
    """Drops LiteLLM's `provider/` key prefix; the rest is the name the provider answers with."""
    head, sep, rest = key.partition("/")
    if sep and head == provider:
        return rest, True
    return key, False


def tiers_of(entry):
    tiers = {}
    for field, value in entry.items():
        m = TIER_FIELD.match(field)
        if m and value is not None:
            above = int(m.group(2)) * 1000
            tiers.setdefault(above, {"above": above})[BASE_FIELDS[m.group(1)]] = per_million(
                value
            )
    return [tiers[k] for k in sorted(tiers)]


def convert(entry):
    """One LiteLLM entry -> our price object, or None when it cannot be priced per token."""
    if entry.get("input_cost_per_token") is None:
        return None
    if entry.get("output_cost_per_token") is None and entry.get("mode") != "embedding":
        return None
    price = {}
    for field, ours in BASE_FIELDS.items():
        if entry.get(field) is not None:
            price[ours] = per_million(entry[field])
    price.setdefault("output", decimal.Decimal(0))
    if entry.get(REASONING_FIELD) is not None:
        price["reasoning"] = per_million(entry[REASONING_FIELD])
    tiers = tiers_of(entry)
    if tiers:
        price["tiers"] = tiers
    return price


def skip_key(provider, name):
    # Azure's `us/`, `eu/`, `global/`... keys are LiteLLM deployment-type variants, not names
    # Azure answers with; they would only bloat the file.
    return provider == "azure" and "/" in name


def select(table):
    """provider -> model -> price. A bare key wins over its `provider/`-prefixed duplicate."""
    bare, prefixed = [], []
    for key, entry in table.items():
        if not isinstance(entry, dict) or key == "sample_spec":
            continue
        provider = entry.get("litellm_provider")
        if provider not in PROVIDERS or entry.get("mode") not in MODES:
            continue
        name, was_prefixed = model_name(key, provider)
        if skip_key(provider, name):
            continue
        price = convert(entry)
        if price is not None:
            (prefixed if was_prefixed else bare).append((PROVIDERS[provider], name, price))
    out = {}
    for provider, name, price in prefixed + bare:
        out.setdefault(provider, {})[name] = price
    return out


def number(value):
    return format(value.normalize(), "f") if isinstance(value, decimal.Decimal) else str(value)


def render_fields(obj, keys):
    return ",".join(f'"{key}":{number(obj[key])}' for key in keys if key in obj)


def render_price(price):
    parts = [render_fields(price, ("input", "output", "cacheRead", "cacheWrite", "reasoning"))]
    if "tiers" in price:
        keys = ("above", "input", "output", "cacheRead", "cacheWrite")
        tiers = ",".join("{" + render_fields(tier, keys) + "}" for tier in price["tiers"])
        parts.append(f'"tiers":[{tiers}]')
    return "{" + ",".join(parts) + "}"


def render(prices, source_date, generated):
    lines = [
        "{",
        f'"source":{json.dumps(SOURCE_URL)},',
        f'"sourceDate":"{source_date}",',
        f'"generated":"{generated}",',
        '"prices":{',
    ]
    providers = sorted(prices)
    for i, provider in enumerate(providers):
        lines.append(f"{json.dumps(provider)}:{{")
        models = sorted(prices[provider])
        for j, model in enumerate(models):
            comma = "," if j + 1 < len(models) else ""
            lines.append(f"{json.dumps(model)}:{render_price(prices[provider][model])}{comma}")
        lines.append("}," if i + 1 < len(providers) else "}")
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default=DEFAULT_SOURCE)
    parser.add_argument("--source-date", help="YYYY-MM-DD (default: the file's mtime date)")
    parser.add_argument("--output", default=OUTPUT)
    args = parser.parse_args()

    with open(args.source, encoding="utf-8") as f:
        table = json.load(f, parse_float=decimal.Decimal, parse_int=decimal.Decimal)
    mtime = os.path.getmtime(args.source)
    source_date = args.source_date or datetime.datetime.fromtimestamp(
        mtime, datetime.timezone.utc
    ).date().isoformat()
    generated = datetime.datetime.now(datetime.timezone.utc).date().isoformat()

    prices = select(table)
    text = render(prices, source_date, generated)
    json.loads(text)  # the output must be valid JSON
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    count = sum(len(m) for m in prices.values())
    print(f"{args.output}: {count} models, {len(text)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
