#!/usr/bin/env bash
# The load benchmark, one command: bench/run.sh  (DURATION=seconds per run, default 10;
# MODES="json sse large" to choose the runs).
# Builds the gateway in release, starts an nginx fake provider, then loads with wrk (32
# connections): the gateway with every feature on, plain nginx proxy_pass, and the provider
# directly. The proxy under test gets CPU 0; wrk and the provider share CPU 1, so the proxy's
# own cost is what the numbers show. Prints a table and writes bench/results/latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH="$PWD/bench"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-1}"
CONNECTIONS=32
UPSTREAM_PORT="${UPSTREAM_PORT:-18081}"
PROXY_PORT="${PROXY_PORT:-18082}"
GATEWAY_PORT="${GATEWAY_PORT:-18083}"
STATS_PORT="${STATS_PORT:-18084}"
READY_PORT="${READY_PORT:-18085}"
KEYS=(sk-bench-alice sk-bench-bob sk-bench-carol sk-bench-dave)

die() { echo "bench: $*" >&2; exit 1; }

need=()
command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ "$(nproc)" -ge 2 ] || die "needs at least 2 CPUs (the proxy on CPU 0, load and provider on CPU 1)"

for port in "$UPSTREAM_PORT" "$PROXY_PORT" "$GATEWAY_PORT" "$STATS_PORT" "$READY_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    die "port $port on 127.0.0.1 is busy; free it or set UPSTREAM_PORT/PROXY_PORT/GATEWAY_PORT/STATS_PORT/READY_PORT"
  fi
done

# PROFILE=json|sse|large: instead of the table, sample the gateway with `perf` during one run of
# that mode (a release build with line tables, cargo profile `profiling`) and print the hottest
# functions; the full report stays in bench/results/perf.<mode>.txt. With TOOL=callgrind the
# gateway runs under valgrind instead and the report counts instructions per request (user space
# only, but repeatable whatever else the machine is doing); with TOOL=strace it counts system
# calls per request.
PROFILE="${PROFILE:-}"
TOOL="${TOOL:-perf}"
CARGO_PROFILE=release
if [ -n "$PROFILE" ]; then
  CARGO_PROFILE=profiling
  command -v perf >/dev/null 2>&1 || need_perf=1
  if [ -n "${need_perf:-}" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends linux-perf >/dev/null
  fi
fi

echo "==> cargo build --profile $CARGO_PROFILE -p agentgateway"
# CARGO_FLAGS (e.g. --no-default-features) builds a variant for an A/B comparison.
# shellcheck disable=SC2086
cargo build --profile "$CARGO_PROFILE" -p agentgateway --quiet ${CARGO_FLAGS:-}
GATEWAY_BIN="${CARGO_TARGET_DIR:-$PWD/target}/$CARGO_PROFILE/agentgateway"
[ -x "$GATEWAY_BIN" ] || die "no gateway binary at $GATEWAY_BIN"

TMP="$(mktemp -d -t agw-bench.XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$TMP/runs"

# Fills @NAME@ placeholders of a conf template.
render() {
  sed -e "s|@TMP@|$TMP|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" -e "s|@PROXY_PORT@|$PROXY_PORT|g" "$1" >"$2"
}

wait_http() {
  local url="$1" name="$2" pid="$3"
  for _ in $(seq 1 "${WAIT_TENTHS:-100}"); do
    curl -s -o /dev/null "$url" && return 0
    kill -0 "$pid" 2>/dev/null || die "$name exited at start; see its log in the output above"
    sleep 0.1
  done
  die "$name did not answer on $url within 10 s"
}

python3 "$BENCH/bench.py" fixtures "$TMP/www"
render "$BENCH/upstream.nginx.conf" "$TMP/upstream.conf"
render "$BENCH/proxy.nginx.conf" "$TMP/proxy.conf"

taskset -c 1 nginx -e "$TMP/upstream.error.log" -p "$TMP" -c "$TMP/upstream.conf" &
UPSTREAM_PID=$!; PIDS+=("$UPSTREAM_PID")
taskset -c 0 nginx -e "$TMP/proxy.error.log" -p "$TMP" -c "$TMP/proxy.conf" &
PROXY_PID=$!; PIDS+=("$PROXY_PID")

cat >"$TMP/gateway.yaml" <<YAML
config:
  statsAddr: 127.0.0.1:$STATS_PORT
  readinessAddr: 127.0.0.1:$READY_PORT
  logging:
    level: warn
  metrics:
    fields:
      add: {user_id: 'apiKey.user'}
llm:
  port: $GATEWAY_PORT
  policies:
    apiKey:
      mode: strict
      keys:
$(for k in "${KEYS[@]}"; do printf '      - key: %s\n        metadata: {user: %s}\n' "$k" "${k#sk-bench-}"; done)
    localRateLimit:
    # Per user, and large enough never to refuse: the bucket's cost is measured, not its refusals.
    - type: requests
      maxTokens: 1000000000
      fillInterval: 1s
      key: 'apiKey.user'
  models:
  - name: bench-json
    provider: openAI
    params:
      model: gpt-4o-mini
      apiKey: sk-provider-bench
      baseUrl: http://127.0.0.1:$UPSTREAM_PORT/json/v1
  - name: bench-sse
    provider: openAI
    params:
      model: gpt-4o-mini
      apiKey: sk-provider-bench
      baseUrl: http://127.0.0.1:$UPSTREAM_PORT/sse/v1
  - name: bench-sse-long
    provider: openAI
    params:
      model: gpt-4o-mini
      apiKey: sk-provider-bench
      baseUrl: http://127.0.0.1:$UPSTREAM_PORT/sse-long/v1
YAML
# The access log (one line per request) goes to a file, as a deployment would ship it.
GATEWAY_CMD=("$GATEWAY_BIN")
if [ -n "$PROFILE" ] && [ "$TOOL" = callgrind ]; then
  GATEWAY_CMD=(valgrind -q --tool=callgrind --callgrind-out-file="$BENCH/results/callgrind.out" --dump-instr=no "$GATEWAY_BIN")
  WAIT_TENTHS=1200
fi
taskset -c 0 "${GATEWAY_CMD[@]}" -f "$TMP/gateway.yaml" >"$TMP/access.log" 2>"$TMP/gateway.stderr" &
GATEWAY_PID=$!; PIDS+=("$GATEWAY_PID")

wait_http "http://127.0.0.1:$UPSTREAM_PORT/" "fake provider (nginx)" "$UPSTREAM_PID"
wait_http "http://127.0.0.1:$PROXY_PORT/" "nginx proxy" "$PROXY_PID"
wait_http "http://127.0.0.1:$READY_PORT/healthz/ready" "gateway" "$GATEWAY_PID"

# One request each way first: a misconfiguration must fail loudly, not be benchmarked.
check() {
  local url="$1" body="$2" want="$3" got
  got="$(curl -s -H 'Content-Type: application/json' -H "Authorization: Bearer ${KEYS[0]}" -d "$body" "$url")"
  case "$got" in
    *"$want"*) ;;
    *) cat "$TMP/gateway.stderr" >&2; die "unexpected answer from $url: ${got:0:300}" ;;
  esac
}
check "http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions" '{"model":"bench-json","messages":[]}' '"usage"'
check "http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions" '{"model":"bench-sse","stream":true,"messages":[]}' 'data: [DONE]'
check "http://127.0.0.1:$PROXY_PORT/json/v1/chat/completions" '{}' '"usage"'
check "http://127.0.0.1:$PROXY_PORT/sse/v1/chat/completions" '{}' 'data: [DONE]'

CLK_TCK="$(getconf CLK_TCK)"
RUN_NO=0
# run NAME-OF-TARGET MODE PID URL: warm up, then one measured wrk run, with the process's CPU
# ticks before/after and its peak RSS over the measured run.
run() {
  local target="$1" mode="$2" pid="$3" url="$4" out before after
  RUN_NO=$((RUN_NO + 1))
  out="$TMP/runs/$(printf '%02d' "$RUN_NO")-$target-$mode"
  echo "==> $target $mode: ${DURATION}s, $CONNECTIONS connections"
  taskset -c 1 wrk -t 1 -c "$CONNECTIONS" -d "${WARMUP}s" -s "$BENCH/post.lua" "$url" -- "$mode" "${KEYS[@]}" >/dev/null
  # Resets VmHWM so the peak is this run's, not the warm-up's or an earlier mode's.
  echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
  before="$(python3 "$BENCH/bench.py" ticks "$pid")"
  taskset -c 1 wrk -t 1 -c "$CONNECTIONS" -d "${DURATION}s" --latency -s "$BENCH/post.lua" "$url" -- "$mode" "${KEYS[@]}" >"$out.wrk"
  after="$(python3 "$BENCH/bench.py" ticks "$pid")"
  printf 'target=%s\nmode=%s\nprocess=%s\nticks_before=%s\nticks_after=%s\nhwm_kib=%s\n' \
    "$target" "$mode" "$pid" "$before" "$after" "$(python3 "$BENCH/bench.py" hwm "$pid")" >"$out.meta"
}

if [ -n "$PROFILE" ] && [ "$TOOL" = callgrind ]; then
  mkdir -p "$BENCH/results"
  url="http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions"
  taskset -c 1 wrk -t 1 -c 4 -d 3s -s "$BENCH/post.lua" "$url" -- "$PROFILE" "${KEYS[@]}" >/dev/null
  sleep 0.5
  callgrind_control -z "$GATEWAY_PID" >/dev/null
  lines_before="$(wc -l <"$TMP/access.log")"
  taskset -c 1 wrk -t 1 -c 4 -d "${DURATION}s" -s "$BENCH/post.lua" "$url" -- "$PROFILE" "${KEYS[@]}" >/dev/null
  sleep 0.5
  callgrind_control -d "$GATEWAY_PID" >/dev/null
  requests=$(( $(wc -l <"$TMP/access.log") - lines_before ))
  dump="$(ls -t "$BENCH"/results/callgrind.out* | head -1)"
  report="$BENCH/results/callgrind.$PROFILE.txt"
  callgrind_annotate --inclusive=yes --threshold=100 "$dump" >"$report" 2>/dev/null || true
  total="$(awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1; exit}' "$report")"
  echo "requests: $requests; instructions: $total; per request: $(( total / (requests > 0 ? requests : 1) ))"
  echo "report: $report; dump: $dump (callgrind_annotate --inclusive=yes)"
  exit 0
fi

if [ -n "$PROFILE" ] && [ "$TOOL" = strace ]; then
  mkdir -p "$BENCH/results"
  url="http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions"
  taskset -c 1 wrk -t 1 -c "$CONNECTIONS" -d "${WARMUP}s" -s "$BENCH/post.lua" "$url" -- "$PROFILE" "${KEYS[@]}" >/dev/null
  report="$BENCH/results/strace.$PROFILE.txt"
  lines_before="$(wc -l <"$TMP/access.log")"
  timeout -s INT "$DURATION" strace -c -f -p "$GATEWAY_PID" -o "$report" &
  STRACE_PID=$!
  taskset -c 1 wrk -t 1 -c "$CONNECTIONS" -d "${DURATION}s" -s "$BENCH/post.lua" "$url" -- "$PROFILE" "${KEYS[@]}" >/dev/null
  wait "$STRACE_PID" || true
  sleep 0.5
  requests=$(( $(wc -l <"$TMP/access.log") - lines_before ))
  calls="$(awk '$NF == "total" {print $(NF-2)}' "$report")"
  cat "$report"
  echo "requests: $requests; system calls: $calls; per request: $(python3 -c "print(round($calls / max($requests, 1), 2))")"
  exit 0
fi

if [ -n "$PROFILE" ]; then
  mkdir -p "$BENCH/results"
  url="http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions"
  taskset -c 1 wrk -t 1 -c "$CONNECTIONS" -d "${WARMUP}s" -s "$BENCH/post.lua" "$url" -- "$PROFILE" "${KEYS[@]}" >/dev/null
  perf record -q -e cpu-clock -F 4999 -g --call-graph dwarf,16384 -p "$GATEWAY_PID" -o "$BENCH/results/perf.data" -- sleep "$DURATION" &
  PERF_PID=$!
  taskset -c 1 wrk -t 1 -c "$CONNECTIONS" -d "${DURATION}s" -s "$BENCH/post.lua" "$url" -- "$PROFILE" "${KEYS[@]}"
  wait "$PERF_PID" || true
  report="$BENCH/results/perf.$PROFILE.txt"
  perf report -i "$BENCH/results/perf.data" --no-children --percent-limit 0.3 --stdio -g none \
    --sort comm,symbol 2>/dev/null | sed -e 's/ *$//' >"$report"
  grep -E '^ +[0-9]' "$report" | head -40
  echo "report: $report; samples with call stacks: bench/results/perf.data (perf report -i ...)"
  exit 0
fi

for mode in ${MODES:-json sse large}; do
  run gateway "$mode" "$GATEWAY_PID" "http://127.0.0.1:$GATEWAY_PORT/v1/chat/completions"
  path=json; [ "$mode" = sse ] && path=sse
  run nginx "$mode" "$PROXY_PID" "http://127.0.0.1:$PROXY_PORT/$path/v1/chat/completions"
done
run direct json "$UPSTREAM_PID" "http://127.0.0.1:$UPSTREAM_PORT/json/v1/chat/completions"
echo "==> streaming: first-event latency and memory as streams grow"
taskset -c 1 python3 "$BENCH/bench.py" stream-check "127.0.0.1:$GATEWAY_PORT" "127.0.0.1:$PROXY_PORT" "127.0.0.1:$UPSTREAM_PORT" \
  "${KEYS[0]}" "$GATEWAY_PID" "$TMP/runs/stream.json"

mkdir -p "$BENCH/results"
echo
status=0
python3 "$BENCH/bench.py" report "$TMP/runs" "$BENCH/results/latest.json" "$DURATION" "$CLK_TCK" || status=$?
echo
echo "gateway access log: $(wc -l <"$TMP/access.log") lines; JSON: bench/results/latest.json"
# Shows that the per-user label and usage metering were live during the runs.
echo "gateway metrics, input tokens by user:"
curl -s "http://127.0.0.1:$STATS_PORT/metrics" | grep '^agentgateway_gen_ai_client_token_usage_sum' | grep 'gen_ai_token_type="input"' | sed 's/^agentgateway_gen_ai_client_token_usage_sum/  /' || echo "  (none found)"
echo "CPU-us/req and peak RSS are the process under load's: gateway, nginx proxy, or (direct) the fake provider."
[ "$status" -eq 0 ] || die "some runs had errors (non-2xx, socket errors) or no requests: see the errors column"
