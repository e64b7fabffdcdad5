#!/usr/bin/env bash
# The PostgreSQL engine's benchmark (`ENGINE=postgres bench/run.sh` runs it): the same scenarios
# as run.sh, through one node and through two nodes on one database, against the same
# PostgreSQL queried directly (../shared/bench/pg_baseline.sh, in the same run).
#
#   ENGINE=postgres bench/run.sh                     # N=1000000 SECS=15 CLIENTS=8
#   ENGINE=postgres N=200000 SECS=10 bench/run.sh    # a quicker look
#
# Uses Debian's PostgreSQL cluster (started with `service postgresql start`, as pg_baseline.sh
# does), a database `registry_bench` created afresh, reached over TCP with a password set for
# the run. Seeds N devices of app_bench through the engine's import path (bench/seed.rs), starts
# two nodes, and prints one table: each scenario through node A alone, through A and B at once
# (each with CLIENTS connections), the two-node ratio, and the ratio of one node to the
# PostgreSQL peer.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}; SECS=${SECS:-15}; CLIENTS=${CLIENTS:-8}
PORT=${PORT:-18099}; PORT_B=$((PORT + 2)); KEY=bench-admin-key
SHARED=${SHARED:-../shared}
POOL=${POOL:-16}

need() { command -v "$1" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null; }; }
need wrk wrk
need curl curl
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
service postgresql start >/dev/null

echo "== building (release)"
cargo build --release --locked --quiet
cargo bench --locked --no-run --bench seed 2>/dev/null
BIN=target/release/device-registry
WORK=$(mktemp -d)
SERVERS=()
trap 'for s in "${SERVERS[@]}"; do kill "$s" 2>/dev/null || true; done; rm -rf "$WORK"' EXIT

PASSWORD=bench-$RANDOM$RANDOM
su postgres -c "psql -qAt -c \"ALTER USER postgres PASSWORD '$PASSWORD'\"" >/dev/null
su postgres -c "dropdb --if-exists registry_bench; createdb registry_bench"
URL="postgres://postgres:$PASSWORD@127.0.0.1:5432/registry_bench"

echo "== seeding $N devices into PostgreSQL"
SEEDED=$(DATABASE_URL=$URL N=$N cargo bench --locked --quiet --bench seed 2>/dev/null | tail -1)
echo "$SEEDED"
su postgres -c "psql -qAt registry_bench -c 'VACUUM ANALYZE'"

cat > "$WORK/node.toml" <<EOF
[storage]
engine = "postgres"
[storage.postgres]
url = "$URL"
pool_size = $POOL
[devices]
touch_interval = "3650d"
[retention]
device_ttl = "3651d"
[limits]
auth_failures = 0
EOF

start_node() { # port
  DEVICE_REGISTRY_ADMIN_KEY=$KEY RUST_LOG=warn "$BIN" --config "$WORK/node.toml" --bind "127.0.0.1:$1" &
  SERVERS+=($!)
  until curl -sf "http://127.0.0.1:$1/health" >/dev/null; do sleep 0.01; done
}
start_node "$PORT"
start_node "$PORT_B"

source bench/scenarios.sh

declare -A ONE TWO P99
wrk_rps() { awk '/Requests\/sec/ {print $2}' <<<"$1"; }
wrk_p99() { awk '$1 == "99%" {print $2}' <<<"$1"; }
non2xx() { awk '/Non-2xx/ {print $NF}' <<<"$1"; }
SCENARIOS="one page_random page_desc summary checkin_same checkin_new link"
echo "== through one node ($CLIENTS connections, ${SECS}s each)"
for s in $SCENARIOS; do
  out=$(wrk -t2 -c"$CLIENTS" -d"${SECS}s" --latency -s "$WORK/$s.lua" "http://127.0.0.1:$PORT" 2>&1)
  ONE[$s]=$(wrk_rps "$out"); P99[$s]=$(wrk_p99 "$out")
  printf '%-14s %10s req/s  p99 %8s%s\n' "$s" "${ONE[$s]}" "${P99[$s]}" "$(n=$(non2xx "$out"); [[ -n $n ]] && echo "  non-2xx: $n")"
done
echo "== through two nodes at once ($CLIENTS connections each)"
for s in $SCENARIOS; do
  wrk -t1 -c"$CLIENTS" -d"${SECS}s" -s "$WORK/$s.lua" "http://127.0.0.1:$PORT_B" > "$WORK/b.out" 2>&1 &
  B=$!
  a=$(wrk -t1 -c"$CLIENTS" -d"${SECS}s" -s "$WORK/$s.lua" "http://127.0.0.1:$PORT" 2>&1)
  wait $B
  TWO[$s]=$(awk -v a="$(wrk_rps "$a")" -v b="$(wrk_rps "$(cat "$WORK/b.out")")" 'BEGIN { printf "%.2f", a + b }')
  printf '%-14s %10s req/s (A %s + B %s)\n' "$s" "${TWO[$s]}" "$(wrk_rps "$a")" "$(wrk_rps "$(cat "$WORK/b.out")")"
done
RSS_A=$(awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/${SERVERS[0]}/status")
for s in "${SERVERS[@]}"; do kill -TERM "$s"; wait "$s" || true; done
SERVERS=()
DB_BYTES=$(su postgres -c "psql -qAt registry_bench -c \"SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'\"")

echo "== PostgreSQL baseline (pg_baseline.sh, N=$N)"
PG=$(N=$N SECS=$SECS CLIENTS=$CLIENTS bash "$SHARED/bench/pg_baseline.sh")
echo "$PG"
pg() { awk -F= -v k="postgres_$1_tps" '$1 == k {print $2}' <<<"$PG"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
echo
echo "| scenario | one node req/s | p99 | two nodes req/s | two/one | PostgreSQL peer | PostgreSQL tps | one node / PostgreSQL | target |"
echo "|---|---|---|---|---|---|---|---|---|"
row() { # scenario, label, peer label, peer tps, target
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "${ONE[$1]}" "${P99[$1]}" "${TWO[$1]}" \
    "$(ratio "${TWO[$1]}" "${ONE[$1]}")" "$3" "${4:-}" "$( [[ -n ${4:-} ]] && ratio "${ONE[$1]}" "$4" || echo -)" "$5"
}
row one "single device GET" "primary-key lookup (one)" "$(pg one)" ">= 0.7x; two nodes >= 1.6x"
row page_random "page of 50, random depth" "keyset by device_id (pageid)" "$(pg pageid)" ">= 0.7x; two nodes >= 1.6x"
row page_desc "order=desc page, random depth" "keyset by updated_at (page)" "$(pg page)" ">= 0.7x"
row summary "summary" "" "" "-"
row checkin_same "check-in, unchanged" "upsert, async commit" "$(pg checkin_async_commit)" "-"
row checkin_new "check-in, changed" "upsert, sync commit (checkin)" "$(pg checkin)" "-"
row link "durable POST /device link" "upsert, sync commit (checkin)" "$(pg checkin)" "-"
echo
echo "- seeding through the engine's import path: $SEEDED"
echo "- node A's RSS after the scenarios: ${RSS_A} MiB; the database's tables and indexes: $((DB_BYTES / 1048576)) MiB"
echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); the nodes, PostgreSQL and wrk share them"
