#!/usr/bin/env bash
# The benchmark of record: device-registry against PostgreSQL, same data size, same run.
#
#   bench/run.sh                      # N=1000000 SECS=20 CLIENTS=8
#   N=200000 SECS=10 bench/run.sh     # a quicker look
#   N=5000000 bench/run.sh            # the fleet-growth lines, against the last 1M run
#
# Builds in release, seeds N devices into one app through the store's import path, serves them,
# drives each scenario with wrk for SECS seconds, then runs ../shared/bench/pg_baseline.sh with
# the same N and prints one table: throughput, p99 and the ratio to the matching PostgreSQL
# figure. Also: the server's RSS, its size on disk against PostgreSQL's table plus indexes, its
# cold start on the seeded store, the sweep's time for 0 and 100k expired devices, and single
# GETs served while changed check-ins run; then the sweep of the oldest 10% in the server with
# single GETs beside it, and PostgreSQL's size after as many updates as the server took. Key
# figures go to bench/out/run-N.env; a run at another N than 1M compares itself with the last
# 1M run's (cold start, GET p99 and throughput, pages, summary, import rate, RSS).
set -euo pipefail
cd "$(dirname "$0")/.."
# ENGINE=postgres: the PostgreSQL engine through one and two nodes (bench/postgres.sh).
[[ ${ENGINE:-sled} == postgres ]] && exec bash bench/postgres.sh
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
SEEDED=$(DATA_DIR=$DATA N=$N cargo bench --locked --quiet --bench seed 2>/dev/null | tail -1)
echo "$SEEDED"
IMPORT_RATE=$(sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' <<<"$SEEDED")

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

# Waits for the server's first /health answer; a server that exits instead ends the run.
wait_up() {
  until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; do
    kill -0 "$SERVER" 2>/dev/null || { echo "the server exited before it answered" >&2; exit 1; }
    sleep 0.005
  done
}
start_server() {
  local t0; t0=$(date +%s%N)
  DEVICE_REGISTRY_ADMIN_KEY=$KEY RUST_LOG=warn "$BIN" --config "$WORK/bench.toml" --bind 127.0.0.1:$PORT &
  SERVER=$!
  wait_up
  COLD_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}
start_server
start_server_ms=$COLD_MS
RSS_IDLE_MIB=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$SERVER/status)

# --- wrk scenarios -------------------------------------------------------------------------
source bench/scenarios.sh

declare -A RPS P99
run() {
  local out; out=$(wrk -t2 -c"$CLIENTS" -d"${SECS}s" --latency -s "$WORK/$1.lua" "http://127.0.0.1:$PORT" 2>&1)
  RPS[$1]=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  P99[$1]=$(awk '$1 == "99%" {print $2}' <<<"$out")
  local non2xx; non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  printf '%-14s %10s req/s  p99 %8s%s\n' "$1" "${RPS[$1]}" "${P99[$1]}" "${non2xx:+  non-2xx: $non2xx}"
}
echo "== device-registry ($CLIENTS connections, ${SECS}s each)"
for s in health one page_random page_first page_deep page_desc summary checkin_same checkin_new link; do run $s; done
# How many device writes the server took (changed check-ins and links), for PostgreSQL's churn.
CHURN=$(awk -v a="${RPS[checkin_new]}" -v b="${RPS[link]}" -v s="$SECS" 'BEGIN { printf "%d", (a + b) * s }')
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

# PostgreSQL after the same churn: the baseline's table loaded again under another name, then as
# many upserts of random devices as the server took, autovacuum on (the default), then its size.
echo "== PostgreSQL after $CHURN updates"
su postgres -c "psql -qAt -v ON_ERROR_STOP=1 devbench" <<SQL
DROP TABLE IF EXISTS devices_churn;
CREATE TABLE devices_churn (LIKE devices INCLUDING ALL);
INSERT INTO devices_churn SELECT 'app_' || (i % 4), 'device_' || lpad(i::text, 9, '0'),
       timestamptz '2026-08-01' + (random() * interval '90 days'), 'c' || i, 1, '1.0.' || (i % 50),
       CASE WHEN i % 2 = 0 THEN 'ios' ELSE 'android' END, '6.0.0', '17.0', '1', true, false
FROM generate_series(1, $N) i;
VACUUM ANALYZE devices_churn;
SQL
CHURN_SQL=$(mktemp); chmod a+r "$CHURN_SQL"
cat > "$CHURN_SQL" <<SQL
\set i random(1, $N)
UPDATE devices_churn SET updated_at = now(), version_name = '2.0.' || :i WHERE app_id = 'app_' || (:i % 4) AND device_id = 'device_' || lpad(:i::text, 9, '0');
SQL
su postgres -c "PGOPTIONS='-c synchronous_commit=off' pgbench -n -M prepared -c $CLIENTS -j 2 -t $(( CHURN / CLIENTS + 1 )) -f $CHURN_SQL devbench" >/dev/null
PG_CHURN_BYTES=$(su postgres -c "psql -qAt devbench -c \"SELECT pg_total_relation_size('devices_churn')\"")
rm -f "$CHURN_SQL"

# --- sweep ---------------------------------------------------------------------------------
echo "== sweep (N=$N, 10% expired)"
# (SWEEP_BENCH=0 skips it: at 5M it seeds another 5M devices of its own.)
SWEEP=""
[[ ${SWEEP_BENCH:-1} == 0 ]] || SWEEP=$(N=$N EXPIRED=$((N / 10)) cargo bench --locked --quiet --bench sweep 2>/dev/null)
echo "$SWEEP"

# The server's own sweep of the oldest 10% (seeded devices are spread over 90 days from
# 2026-08-01: those before 2026-08-10), with single GETs beside it from its first moment.
echo "== the server's sweep of 10% with single GETs beside it"
TTL_S=$(( $(date +%s) - 1785542400 - 9 * 86400 ))
sed -e "s/^device_ttl = .*/device_ttl = \"${TTL_S}s\"/" -e 's/^touch_interval = .*/touch_interval = "1h"/' "$WORK/bench.toml" > "$WORK/sweep.toml"
DEVICE_REGISTRY_ADMIN_KEY=$KEY RUST_LOG=warn,device_registry::sweep=info "$BIN" --config "$WORK/sweep.toml" --bind 127.0.0.1:$PORT 2> "$WORK/sweep.log" &
SERVER=$!
wait_up
SWEEP_READS=$(wrk -t2 -c"$CLIENTS" -d"${SWEEP_SECS:-5}s" --latency -s "$WORK/one.lua" "http://127.0.0.1:$PORT" 2>&1)
for _ in $(seq 6000); do grep -q "sweep: removed" "$WORK/sweep.log" && break; sleep 0.1; done
SWEPT=$(grep -m1 "sweep: removed" "$WORK/sweep.log" || echo "no sweep line")
SWEEP_MS=$(sed -n 's/.* \([0-9]*\) ms)$/\1/p' <<<"$SWEPT")
SWEPT_DEVICES=$(sed -n 's/.*removed \([0-9]*\) devices.*/\1/p' <<<"$SWEPT")
kill -TERM $SERVER; wait $SERVER || true
echo "swept ${SWEPT_DEVICES:-?} devices in ${SWEEP_MS:-?} ms; GETs meanwhile $(rps "$SWEEP_READS") req/s, p99 $(p99 "$SWEEP_READS")"

# --- the table -----------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
echo
echo "| scenario | device-registry req/s | p99 | PostgreSQL peer | PostgreSQL tps | ratio | target |"
echo "|---|---|---|---|---|---|---|"
row() { printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "${RPS[$2]}" "${P99[$2]}" "$3" "${4:-}" "$( [[ -n ${4:-} ]] && ratio "${RPS[$2]}" "$4" || echo -)" "$5"; }
row "GET /health (no store)" health "bare actix-web handler, same bytes" "${RPS[bare]}" ">= 0.75x"
row "single device GET" one "primary-key lookup (one)" "$(pg one)" ">= 1.5x"
row "page of 50, random depth, default order" page_random "keyset by device_id (pageid)" "$(pg pageid)" ">= 1.0x"
row "first page" page_first "" "" "-"
row "page at 99% depth" page_deep "" "" "cost <= 1.2x first page"
row "order=desc page, random depth" page_desc "keyset by updated_at (page)" "$(pg page)" ">= 1.0x"
row "summary" summary "" "" "< 20 ms at 5M"
row "check-in, unchanged" checkin_same "upsert, async commit" "$(pg checkin_async_commit)" "-"
row "check-in, changed" checkin_new "upsert, async commit" "$(pg checkin_async_commit)" ">= 1.0x"
row "durable POST /device link" link "upsert, sync commit (checkin)" "$(pg checkin)" ">= 1.5x"
echo
echo "- deep page cost: first/deep throughput = $(ratio "${RPS[page_first]}" "${RPS[page_deep]}") (target <= 1.2x)"
echo "- single GETs beside changed check-ins ($HALF connections each): $(rps "$MIXED_READS") req/s (p99 $(p99 "$MIXED_READS")), $(ratio "$(rps "$MIXED_READS")" "${RPS[one]}") of GETs alone (target >= 0.50x), while changed check-ins ran at $(rps "$MIXED_WRITES") req/s (p99 $(p99 "$MIXED_WRITES"))"
echo "- RSS: idle after start ${RSS_IDLE_MIB} MiB, after the scenarios ${RSS_MIB} MiB (target <= 384 MiB)"
echo "- on disk after $CHURN device writes: $((DISK_BYTES / 1048576)) MiB; PostgreSQL table + indexes after as many updates: $((PG_CHURN_BYTES / 1048576)) MiB; ratio $(ratio "$DISK_BYTES" "$PG_CHURN_BYTES") (target <= 2x)"
echo "- cold start on the seeded store: ${COLD_START_MS} ms (first start after seeding: ${start_server_ms} ms; target < 2000 ms at 5M)"
echo "- the server's sweep of ${SWEPT_DEVICES:-?} devices: ${SWEEP_MS:-?} ms (target <= 2000 ms for 100k); single GETs beside it: $(rps "$SWEEP_READS") req/s, p99 $(p99 "$SWEEP_READS") (target <= 5 ms)"
echo "- the sweep in process (bench/sweep.rs): $(grep -E 'sweep with' <<<"$SWEEP" | tr '\n' ';' | sed 's/;$//')"
echo "- import (bench/seed.rs, the store's import path): ${IMPORT_RATE:-?} devices/s"

# --- growth with the fleet: this run against the last run at 1M ------------------------------
mkdir -p bench/out
ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.3f", v / 1000; else if (v ~ /ms$/) printf "%.3f", v + 0; else if (v ~ /s$/) printf "%.3f", v * 1000; else print v }'; }
cat > "bench/out/run-$N.env" <<ENV
N=$N
COLD_START_MS=$COLD_START_MS
ONE_RPS=${RPS[one]}
ONE_P99_MS=$(ms "${P99[one]}")
PAGE_RPS=${RPS[page_random]}
SUMMARY_P99_MS=$(ms "${P99[summary]}")
IMPORT_RATE=${IMPORT_RATE:-0}
RSS_IDLE_MIB=$RSS_IDLE_MIB
RSS_MIB=$RSS_MIB
ENV
if [[ $N != 1000000 && -f bench/out/run-1000000.env ]]; then
  base() { awk -F= -v k="$1" '$1 == k {print $2}' bench/out/run-1000000.env; }
  echo "- at N=$N against the last 1M run: cold start ${COLD_START_MS} ms (target < 2000 ms); single GET p99 $(ms "${P99[one]}") ms (target < 5 ms), throughput $(ratio "${RPS[one]}" "$(base ONE_RPS)") of 1M's (target >= 0.7x); pages $(ratio "${RPS[page_random]}" "$(base PAGE_RPS)") of 1M's (target >= 0.7x); summary p99 $(ms "${P99[summary]}") ms (target < 20 ms); import ${IMPORT_RATE:-?}/s (target >= 25000/s, 1M: $(base IMPORT_RATE)/s); RSS idle ${RSS_IDLE_MIB} MiB, after the scenarios ${RSS_MIB} MiB (target <= cache + 256 MiB)"
fi
echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
