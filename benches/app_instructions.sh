#!/usr/bin/env bash
# Instructions per request of the example service (GET /items: HTTP + one SQLite query + JSON) under callgrind, for
# each telemetry variant: (Ir after 300 requests − Ir after 100) / 200, so start-up and shutdown cancel out; in all
# threads, and in the request threads alone (callgrind --separate-threads: the threads that ran the handler). Unlike
# throughput on a shared machine, the counts repeat to within ~1.5% (the SQLite file and hash seeds vary).
# Needs valgrind and python3; build first: cargo build --release -p app -p otel_custom_distro_so
# Usage: benches/app_instructions.sh  -> a Markdown table on stdout (ONLY_OTLP=1: the baseline and the OTLP rows only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# count N ENV... -> instructions of a whole run serving N requests, in a fresh directory (a fresh database: the
# response lists every item)
count() {
  local n=$1; shift
  local dir
  dir=$(mktemp -d "$work/run.XXXXXX")
  mkdir -p "$dir/plugins" && chmod 700 "$dir" "$dir/plugins"
  cp "$root/target/release/libotel_custom_distro.so" "$dir/plugins/" && chmod 600 "$dir/plugins/"*.so
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  (cd "$dir" && exec env -i PATH="$PATH" APP_ADDR="127.0.0.1:$port" DATABASE_URL="sqlite:$dir/db.sqlite?mode=rwc" \
    OTEL_RUST_DISTRO_PATH="$dir/plugins" OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none OTEL_RUST_DISTRO_PROBE=false \
    OTEL_EXPORTER_FILE_TRACES_PATH="$dir/spans.jsonl" "$@" \
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$dir/cg.out" "$root/target/release/app" \
      >"$dir/log" 2>&1) &
  local vpid=$!
  python3 - "$port" "$n" <<'PY'
import http.client, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(600):  # up to 2 minutes for the service under valgrind to listen
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        c.request("GET", "/healthz"); c.getresponse().read(); break
    except OSError:
        time.sleep(0.2)
else:
    sys.exit("the service never listened")
for i in range(5):
    c.request("POST", "/items", body='{"name":"item-%d","price":%d.5}' % (i, i),
              headers={"content-type": "application/json"})
    c.getresponse().read()
for _ in range(n):
    c.request("GET", "/items"); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
  kill -TERM "$vpid"; wait "$vpid" || true
  # "TOTAL REQUEST": every thread, and the request threads alone (the threads that ran the handler).
  python3 - "$dir" <<'PY'
import glob, re, sys
total = request = 0
for f in glob.glob(sys.argv[1] + "/cg.out*"):
    text = open(f, "rb").read()
    m = re.search(rb"^(?:summary|totals): (\d+)", text, re.M)
    n = int(m.group(1)) if m else 0
    total += n
    if b"list_items" in text:
        request += n
print(total, request)
PY
}

# per_request ENV... -> "TOTAL REQUEST" instructions per request: (run of 300 − run of 100) / 200
per_request() {
  local a b
  read -r -a a <<<"$(count 100 "$@")"
  read -r -a b <<<"$(count 300 "$@")"
  echo $(( (b[0] - a[0]) / 200 )) $(( (b[1] - a[1]) / 200 ))
}

# A rotel collector (blackhole exporter) for the OTLP/gRPC rows: ROTEL=path/to/rotel-agent, else the one pip installed.
rotel=${ROTEL:-$(python3 -c 'import os, rotel; print(os.path.join(os.path.dirname(rotel.__file__), "rotel-agent"))' 2>/dev/null || true)}
grpc_port=""
if [ -n "$rotel" ] && [ -x "$rotel" ]; then
  grpc_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$rotel" start --otlp-grpc-endpoint "127.0.0.1:$grpc_port" --otlp-http-endpoint "127.0.0.1:$http_port" \
    --exporter blackhole --pid-file "$work/rotel.pid" --log-file "$work/rotel.log" >/dev/null 2>&1 &
  rotel_pid=$!
  trap 'kill "$rotel_pid" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
fi

read -r base base_req <<<"$(per_request OTEL_SDK_DISABLED=true)"
echo "| variant | instructions per request | × no telemetry | request threads alone | × |"
echo "|---|---:|---:|---:|---:|"
echo "| no telemetry | $base | 1.00× | $base_req | 1.00× |"
row() {
  local what=$1; shift
  local v r; read -r v r <<<"$(per_request "$@")"
  echo "| $what | $v | $(python3 -c "print(f'{$v / $base:.2f}')")× | $r | $(python3 -c "print(f'{$r / $base_req:.2f}')")× |"
}
otlp=(OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_PROTOCOL=grpc OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$grpc_port")
if [ -n "$grpc_port" ]; then
  row "by hand: \`sdk\` distro, \`tracing-opentelemetry\`, the SDK's batch processor, opentelemetry-otlp's exporter, OTLP/gRPC to rotel" \
    OTEL_RUST_DISTRO=sdk OTEL_RUST_TRACING_BRIDGE=tracing-opentelemetry OTEL_RUST_OTLP_ENCODER=opentelemetry-otlp \
    OTEL_RUST_SPAN_QUEUE=sdk "${otlp[@]}"
  row "\`sdk\` distro, ndotel's layer and encoder, OTLP/gRPC" OTEL_RUST_DISTRO=sdk "${otlp[@]}"
  row "reference distro \`.so\`, opentelemetry-otlp's exporter, OTLP/gRPC" \
    OTEL_RUST_DISTRO=otel_custom_distro OTEL_RUST_OTLP_ENCODER=opentelemetry-otlp "${otlp[@]}"
  row "reference distro \`.so\`, ndotel's encoder, OTLP/gRPC" OTEL_RUST_DISTRO=otel_custom_distro "${otlp[@]}"
else
  echo "(no rotel-agent: the OTLP/gRPC rows are left out; pip install --pre rotel==0.0.1a15 or set ROTEL)" >&2
fi
[ -n "${ONLY_OTLP:-}" ] && exit 0
row "\`sdk\` distro, tracing bridge off (\`OTEL_RUST_TRACING_FILTER=off\`), not exported" OTEL_RUST_DISTRO=sdk OTEL_TRACES_EXPORTER=none OTEL_RUST_TRACING_FILTER=off
row "\`sdk\` distro, not exported" OTEL_RUST_DISTRO=sdk OTEL_TRACES_EXPORTER=none
row "\`sdk\` distro, not exported, \`tracing-opentelemetry\` as the bridge" OTEL_RUST_DISTRO=sdk OTEL_TRACES_EXPORTER=none OTEL_RUST_TRACING_BRIDGE=tracing-opentelemetry
row "\`sdk\` distro, not exported, no context activation" OTEL_RUST_DISTRO=sdk OTEL_TRACES_EXPORTER=none OTEL_RUST_TRACING_CONTEXT_ACTIVATION=false
row "reference distro \`.so\`, not exported" OTEL_RUST_DISTRO=otel_custom_distro OTEL_TRACES_EXPORTER=none
row "reference distro \`.so\`, OTLP/JSON file" OTEL_RUST_DISTRO=otel_custom_distro OTEL_TRACES_EXPORTER=file
