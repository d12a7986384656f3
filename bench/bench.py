#!/usr/bin/env python3
"""Helpers for run.sh (stdlib only): the fake provider's fixed answers, /proc readings of a
process, and the report (wrk output + /proc readings -> table on stdout and JSON file).

Kept apart from run.sh because parsing wrk's text and doing arithmetic in bash is fragile."""
import json
import os
import re
import sys
import time

USAGE = {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52}


def fixtures(www):
    """The JSON completion and the 40-event SSE stream, as static files nginx serves."""
    completion = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Hello! " * 20}}],
        "usage": USAGE,
    }
    events = []
    for i in range(40):
        chunk = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
                 "model": "gpt-4o-mini",
                 "choices": [{"index": 0, "delta": {"content": "tok%d " % i},
                              "finish_reason": "stop" if i == 39 else None}]}
        events.append("data: " + json.dumps(chunk, separators=(",", ":")) + "\n\n")
    final = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000,
             "model": "gpt-4o-mini", "choices": [], "usage": USAGE}
    events.append("data: " + json.dumps(final, separators=(",", ":")) + "\n\n")
    events.append("data: [DONE]\n\n")
    # The long stream: 50,000 content events (~9 MB), for "memory stays flat as a stream grows".
    long_events = [events[0].replace("tok0 ", "tok ")] * 50000 + events[-2:]
    for kind, text in (("json", json.dumps(completion, separators=(",", ":"))),
                       ("sse", "".join(events)), ("sse-long", "".join(long_events))):
        path = os.path.join(www, kind, "v1", "chat")
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "completions"), "w") as f:
            f.write(text)


def ticks(pid):
    """utime + stime of the whole process (all threads), in clock ticks."""
    with open("/proc/%s/stat" % pid) as f:
        # The command name may hold spaces; the fields after its closing paren are fixed.
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def hwm_kib(pid):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS_MS[m.group(2)] if m else None


def parse_wrk(text):
    out = {"requests": 0, "rps": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0}
    m = re.search(r"(\d+) requests in", text)
    if m:
        out["requests"] = int(m.group(1))
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if m:
        out["rps"] = float(m.group(1))
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, text, re.M)
        if m:
            out[key] = to_ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        out["errors"] += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["errors"] += sum(int(g) for g in m.groups())
    return out


def load_run(path, clk_tck):
    meta = {}
    with open(path + ".meta") as f:
        for line in f:
            key, _, value = line.strip().partition("=")
            meta[key] = value
    with open(path + ".wrk") as f:
        run = parse_wrk(f.read())
    run.update(target=meta["target"], mode=meta["mode"], process=meta["process"])
    used = int(meta["ticks_after"]) - int(meta["ticks_before"])
    run["cpu_us_per_req"] = (used * 1e6 / clk_tck / run["requests"]) if run["requests"] else None
    run["peak_rss_mib"] = round(int(meta["hwm_kib"]) / 1024, 1)
    return run


def post_stream(conn, path, key, model):
    """POSTs a streaming chat request on a kept-alive connection; returns the seconds until the
    first event line arrived, after reading the whole stream."""
    body = json.dumps({"model": model, "stream": True, "messages": []})
    headers = {"Content-Type": "application/json", "Authorization": "Bearer " + key}
    start = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read(1)  # the first byte of the first event
    first = time.perf_counter() - start
    resp.read()
    if resp.status != 200:
        raise SystemExit("stream check: %s answered %d" % (path, resp.status))
    return first


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def stream_check(gateway, proxy, direct, key, pid, out, samples=400):
    """First-event latency through the gateway, through nginx proxy_pass and direct (one
    connection each, one request at a time). Gateway minus nginx is the gateway's own added time:
    both pay the same extra hop (and, on a VM, the same cross-CPU wake-ups). Then the gateway's
    peak RSS while streaming 40-event vs 50,000-event answers."""
    import http.client
    result = {}
    for name, (host, port) in (("gateway", gateway), ("nginx", proxy), ("direct", direct)):
        conn = http.client.HTTPConnection(host, port)
        path = "/v1/chat/completions" if name == "gateway" else "/sse/v1/chat/completions"
        times = [post_stream(conn, path, key, "bench-sse") for _ in range(samples)]
        result[name + "_first_event_us"] = {"p50": round(percentile(times, 0.5) * 1e6, 1),
                                            "p99": round(percentile(times, 0.99) * 1e6, 1)}
        conn.close()
    result["first_event_added_vs_nginx_us_p50"] = round(
        result["gateway_first_event_us"]["p50"] - result["nginx_first_event_us"]["p50"], 1)
    conn = http.client.HTTPConnection(*gateway)
    for kind, model, repeat in (("short", "bench-sse", 200), ("long", "bench-sse-long", 5)):
        with open("/proc/%s/clear_refs" % pid, "w") as f:
            f.write("5")
        for _ in range(repeat):
            post_stream(conn, "/v1/chat/completions", key, model)
        result["peak_rss_mib_%s_stream" % kind] = round(hwm_kib(pid) / 1024, 1)
    conn.close()
    with open(out, "w") as f:
        json.dump(result, f, indent=2)


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def report(runs_dir, out_json, duration, clk_tck):
    names = sorted(n[:-5] for n in os.listdir(runs_dir) if n.endswith(".meta"))
    runs = [load_run(os.path.join(runs_dir, n), clk_tck) for n in names]
    nginx = {r["mode"]: r for r in runs if r["target"] == "nginx"}
    for r in runs:
        base = nginx.get(r["mode"])
        if r["target"] == "gateway" and base:
            r["cpu_ratio_to_nginx"] = ratio(r["cpu_us_per_req"], base["cpu_us_per_req"])
            r["p99_ratio_to_nginx"] = ratio(r["p99_ms"], base["p99_ms"])
    head = ("target", "mode", "req/s", "p50 ms", "p99 ms", "CPU-us/req", "peak RSS MiB",
            "errors", "CPU x nginx", "p99 x nginx")
    rows = [(r["target"], r["mode"], fmt(r["rps"], ".0f"), fmt(r["p50_ms"], ".2f"),
             fmt(r["p99_ms"], ".2f"), fmt(r["cpu_us_per_req"], ".1f"),
             fmt(r["peak_rss_mib"], ".1f"), str(r["errors"]),
             fmt(r.get("cpu_ratio_to_nginx"), ".2f"), fmt(r.get("p99_ratio_to_nginx"), ".2f"))
            for r in runs]
    widths = [max(len(c) for c in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(head))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    stream = None
    stream_path = os.path.join(runs_dir, "stream.json")
    if os.path.exists(stream_path):
        with open(stream_path) as f:
            stream = json.load(f)
        g, n, d = (stream[k + "_first_event_us"] for k in ("gateway", "nginx", "direct"))
        print("\nstreaming, one request at a time, first event p50 (p99): gateway %.0f (%.0f) us, "
              "nginx proxy %.0f (%.0f) us, direct %.0f (%.0f) us; gateway adds %.0f us over nginx"
              % (g["p50"], g["p99"], n["p50"], n["p99"], d["p50"], d["p99"],
                 stream["first_event_added_vs_nginx_us_p50"]))
        print("gateway peak RSS streaming 40-event answers: %.1f MiB; 50,000-event (9 MB) "
              "answers: %.1f MiB" % (stream["peak_rss_mib_short_stream"],
                                     stream["peak_rss_mib_long_stream"]))
    doc = {"duration_s": duration, "connections": 32, "clk_tck": clk_tck, "runs": runs,
           "streaming": stream,
           "note": "CPU-us/req and peak RSS are of the process wrk talks to "
                   "(gateway, nginx proxy, or the fake provider for 'direct')"}
    with open(out_json, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    return 1 if any(r["errors"] or not r["requests"] for r in runs) else 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "fixtures":
        fixtures(argv[2])
    elif cmd == "ticks":
        print(ticks(argv[2]))
    elif cmd == "hwm":
        print(hwm_kib(argv[2]))
    elif cmd == "stream-check":
        gateway, proxy, direct = ((h, int(p)) for h, p in (a.rsplit(":", 1) for a in argv[2:5]))
        stream_check(gateway, proxy, direct, argv[5], argv[6], argv[7])
    elif cmd == "report":
        return report(argv[2], argv[3], int(argv[4]), int(argv[5]))
    else:
        print("usage: bench.py fixtures DIR | ticks PID | hwm PID | "
              "stream-check GATEWAY PROXY DIRECT KEY PID OUT | report RUNS OUT DURATION CLK_TCK",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
