#!/usr/bin/env bash
# The benchmark of record: device-registry against PostgreSQL, same data size, same run.
#
#   bench/run.sh                      # N=1000000 SECS=20 CLIENTS=8
#   N=200000 SECS=10 bench/run.sh     # a quicker look
#
# Builds in release, seeds N devices into one app through the store's import path, serves them,
# drives each scenario with wrk for SECS seconds, then runs ../shared/bench/pg_baseline.sh with
# the same N and prints one table: throughput, p99 and the ratio to the matching PostgreSQL
# figure. Also: the server's RSS, its size on disk against PostgreSQL's table plus indexes, its
# cold start on the seeded store, the sweep's time for 0 and 100k expired devices, and single
# GETs served while changed check-ins run.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}; SECS=${SECS:-20}; CLIENTS=${CLIENTS:-8}
PORT=${PORT:-18099}; KEY=bench-admin-key
SHARED=${SHARED:-../shared}

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need curl curl

echo "== building (release)"
cargo build --release --locked --quiet
cargo bench --locked --no-run --bench seed --bench sweep --bench bare 2>/dev/null
BARE_BIN=$(ls -t target/release/deps/bare-* | grep -v '\.d$' | head -1)
BIN=target/release/device-registry
WORK=$(mktemp -d); DATA=$WORK/data
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "== seeding $N devices"
DATA_DIR=$DATA N=$N cargo bench --locked --quiet --bench seed 2>/dev/null | tail -1

cat > "$WORK/bench.toml" <<EOF
[storage]
data_dir = "$DATA"
[devices]
# Unchanged check-ins must take the no-write path: seeded devices were last seen weeks ago.
touch_interval = "3650d"
[retention]
# The seeded devices date from 2026-08-01 on, as pg_baseline.sh's rows do: keep them all.
device_ttl = "3651d"
[limits]
auth_failures = 0
EOF

start_server() {
  local t0; t0=$(date +%s%N)
  DEVICE_REGISTRY_ADMIN_KEY=$KEY RUST_LOG=warn "$BIN" --config "$WORK/bench.toml" --bind 127.0.0.1:$PORT &
  SERVER=$!
  until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; do sleep 0.005; done
  COLD_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}
start_server
start_server_ms=$COLD_MS

# --- wrk scenarios -------------------------------------------------------------------------
lua() { # name, body of request()
  cat > "$WORK/$1.lua" <<EOF
local n = $N
local key = "$KEY"
math.randomseed(os.time() + $RANDOM)
local headers = {["authorization"] = key, ["content-type"] = "application/json"}
local function device(i) return string.format("device_%09d", i) end
local function report(i, version)
  local platform = (i % 2 == 0) and "ios" or "android"
  return string.format('{"app_id":"app_bench","device_id":"%s","platform":"%s","custom_id":"c%d","version_name":"%s","version_build":"1","version_os":"17.0","plugin_version":"6.0.0","is_prod":true,"is_emulator":false}', device(i), platform, i, version)
end
request = function()
$2
end
EOF
}
lua health       'return wrk.format("GET", "/health")'
lua one          'return wrk.format("GET", "/device/?app_id=app_bench&device_id=" .. device(math.random(1, n)), headers)'
lua page_random  'return wrk.format("GET", "/device/?app_id=app_bench&limit=50&cursor=2026-01-01T00:00:00Z%7C" .. device(math.random(1, n)), headers)'
lua page_first   'return wrk.format("GET", "/device/?app_id=app_bench&limit=50", headers)'
lua page_deep    'return wrk.format("GET", "/device/?app_id=app_bench&limit=50&cursor=2026-01-01T00:00:00Z%7C" .. device(math.floor(n * 0.99)), headers)'
lua page_desc    'local t = 1785542400 + math.random(0, 7776000); return wrk.format("GET", "/device/?app_id=app_bench&limit=50&order=desc&cursor=" .. os.date("!%Y-%m-%dT%H:%M:%SZ", t) .. "%7Cdevice_999999999", headers)'
lua checkin_same 'local i = math.random(1, n); return wrk.format("POST", "/updates", headers, report(i, "1.0." .. (i % 50)))'
lua checkin_new  'local i = math.random(1, n); return wrk.format("POST", "/updates", headers, report(i, "2.0." .. math.random(0, 1000000)))'
lua link         'return wrk.format("POST", "/device", headers, string.format("{\"app_id\":\"app_bench\",\"device_id\":\"%s\",\"channel\":\"production\"}", device(math.random(1, n))))'

declare -A RPS P99
run() {
  local out; out=$(wrk -t2 -c"$CLIENTS" -d"${SECS}s" --latency -s "$WORK/$1.lua" "http://127.0.0.1:$PORT" 2>&1)
  RPS[$1]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  P99[$1]=$(awk '$1 == "99%" {print $2}' <<<"$out")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '%-14s %10s req/s  p99 %8s%s\n' "$1" "${RPS[$1]}" "${P99[$1]}" "${non2xx:+  non-2xx: $non2xx}"
}
echo "== device-registry ($CLIENTS connections, ${SECS}s each)"
for s in health one page_random page_first page_deep page_desc checkin_same checkin_new link; do run $s; done
RSS_MIB=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$SERVER/status)
kill -TERM $SERVER; wait $SERVER || true
DISK_BYTES=$(du -sb "$DATA" | cut -f1)
start_server; COLD_START_MS=$COLD_MS
# Reads beside writes, on the restarted server (so that the RSS and disk figures above stay
# comparable with earlier runs): single GETs and changed check-ins at once, half the
# connections each.
HALF=$(( CLIENTS > 1 ? CLIENTS / 2 : 1 ))
mixed() { wrk -t1 -c"$HALF" -d"${SECS}s" --latency -s "$WORK/$1.lua" "http://127.0.0.1:$PORT" 2>&1; }
mixed checkin_new > "$WORK/mixed_writes.out" &
MIXED_WRITER=$!
MIXED_READS=$(mixed one)
wait $MIXED_WRITER
MIXED_WRITES=$(cat "$WORK/mixed_writes.out")
rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
p99() { awk '$1 == "99%" {print $2}' <<<"$1"; }
echo "mixed          reads $(rps "$MIXED_READS") req/s p99 $(p99 "$MIXED_READS"), changed check-ins $(rps "$MIXED_WRITES") req/s p99 $(p99 "$MIXED_WRITES")"
kill -TERM $SERVER; wait $SERVER || true

# --- the request pipeline's ceiling: a bare actix-web handler answering /health's bytes -----
BIND=127.0.0.1:$((PORT + 1)) "$BARE_BIN" & BARE=$!
until curl -sf "http://127.0.0.1:$((PORT + 1))/health" >/dev/null; do sleep 0.005; done
BARE_OUT=$(wrk -t2 -c"$CLIENTS" -d"${SECS}s" --latency -s "$WORK/health.lua" "http://127.0.0.1:$((PORT + 1))" 2>&1)
RPS[bare]=$(awk '/Requests\/sec/ {print $2}' <<<"$BARE_OUT")
echo "bare actix-web /health ${RPS[bare]} req/s"
kill $BARE; wait $BARE 2>/dev/null || true

# --- PostgreSQL, same N, same run ----------------------------------------------------------
echo "== PostgreSQL baseline (pg_baseline.sh, N=$N)"
PG=$(N=$N SECS=$SECS CLIENTS=$CLIENTS bash "$SHARED/bench/pg_baseline.sh")
echo "$PG"
pg() { awk -F= -v k="postgres_$1_tps" '$1 == k {print $2}' <<<"$PG"; }
PG_BYTES=$(su postgres -c "psql -qAt devbench -c \"SELECT pg_total_relation_size('devices')\"")

# --- sweep ---------------------------------------------------------------------------------
echo "== sweep (N=$N, 10% expired)"
SWEEP=$(N=$N EXPIRED=$((N / 10)) cargo bench --locked --quiet --bench sweep 2>/dev/null)
echo "$SWEEP"

# --- the table -----------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
echo
echo "| scenario | device-registry req/s | p99 | PostgreSQL peer | PostgreSQL tps | ratio | target |"
echo "|---|---|---|---|---|---|---|"
row() { printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "${RPS[$2]}" "${P99[$2]}" "$3" "${4:-}" "$( [[ -n ${4:-} ]] && ratio "${RPS[$2]}" "$4" || echo -)" "$5"; }
row "GET /health (no store)" health "bare actix-web handler, same bytes" "${RPS[bare]}" ">= 0.75x"
row "single device GET" one "primary-key lookup (one)" "$(pg one)" ">= 1.5x"
row "page of 50, random depth, default order" page_random "keyset by device_id (pageid)" "$(pg pageid)" ">= 1x"
row "first page" page_first "" "" "-"
row "page at 99% depth" page_deep "" "" "cost <= 1.2x first page"
row "order=desc page, random depth" page_desc "keyset by updated_at (page)" "$(pg page)" "-"
row "check-in, unchanged" checkin_same "upsert, async commit" "$(pg checkin_async_commit)" ">= 2x"
row "check-in, changed" checkin_new "upsert, async commit" "$(pg checkin_async_commit)" ">= 1x"
row "durable POST /device link" link "upsert, sync commit (checkin)" "$(pg checkin)" ">= 1x"
echo
echo "- deep page cost: first/deep throughput = $(ratio "${RPS[page_first]}" "${RPS[page_deep]}") (target <= 1.2x)"
echo "- RSS after the scenarios: ${RSS_MIB} MiB (target <= 512 MiB)"
echo "- reads beside writes ($HALF connections each, no target): single GETs $(rps "$MIXED_READS") req/s (p99 $(p99 "$MIXED_READS")) while changed check-ins run at $(rps "$MIXED_WRITES") req/s (p99 $(p99 "$MIXED_WRITES"))"
echo "- on disk: $((DISK_BYTES / 1048576)) MiB; PostgreSQL table + indexes: $((PG_BYTES / 1048576)) MiB; ratio $(ratio "$DISK_BYTES" "$PG_BYTES") (target <= 1.5x)"
echo "- cold start on the seeded store: ${COLD_START_MS} ms (first start after seeding: ${start_server_ms} ms; target < 1000 ms)"
echo "- sweep: $(grep -E 'sweep with' <<<"$SWEEP" | tr '\n' ';' | sed 's/;$//')"
echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
