#!/usr/bin/env bash
# Reads and writes of two builds whose stores differ in layout: each build seeds its own store
# through its own import path (bench/seed.rs built with it), then serves single GETs, pages in
# the three orders, changed check-ins and durable links (wrk, 2 threads, 8 connections, SECS
# each), and says its RSS and data directory before and after.
#
#   A_BIN=old/device-registry A_SEED=old/deps/seed-... \
#   B_BIN=target/release/device-registry B_SEED=target/release/deps/seed-... bench/layout_ab.sh
#
# ORDER="B A" runs B first: run both orders, this machine drifts between runs.
set -euo pipefail
KEY=bench-admin-key; PORT=${PORT:-18777}; N=${N:-1000000}; SECS=${SECS:-10}
W=$(mktemp -d)
trap 'kill $S 2>/dev/null || true; rm -rf "$W"' EXIT
S=
lua() { cat > "$W/$1.lua" <<L
local n = $N
local headers = {["authorization"] = "$KEY", ["content-type"] = "application/json"}
local function device(i) return string.format("device_%09d", i) end
local function report(i, version)
  local platform = (i % 2 == 0) and "ios" or "android"
  return string.format('{"app_id":"app_bench","device_id":"%s","platform":"%s","custom_id":"c%d","version_name":"%s","version_build":"1","version_os":"17.0","plugin_version":"6.0.0","is_prod":true,"is_emulator":false}', device(i), platform, i, version)
end
request = function()
$2
end
L
}
lua one 'return wrk.format("GET", "/device/?app_id=app_bench&device_id=" .. device(math.random(1, n)), headers)'
lua page_random 'return wrk.format("GET", "/device/?app_id=app_bench&limit=50&cursor=2026-01-01T00:00:00Z%7C" .. device(math.random(1, n)), headers)'
lua page_desc 'local t = 1785542400 + math.random(0, 7776000); return wrk.format("GET", "/device/?app_id=app_bench&limit=50&order=desc&cursor=" .. os.date("!%Y-%m-%dT%H:%M:%SZ", t) .. "%7Cdevice_999999999", headers)'
lua page_asc 'local t = 1785542400 + math.random(0, 7776000); return wrk.format("GET", "/device/?app_id=app_bench&limit=50&order=asc&cursor=" .. os.date("!%Y-%m-%dT%H:%M:%SZ", t) .. "%7Cdevice_000000000", headers)'
lua checkin_new 'local i = math.random(1, n); return wrk.format("POST", "/updates", headers, report(i, "2.0." .. math.random(0, 1000000)))'
lua link 'return wrk.format("POST", "/device", headers, string.format("{\"app_id\":\"app_bench\",\"device_id\":\"%s\",\"channel\":\"production\"}", device(math.random(1, n))))'
for build in ${ORDER:-A B}; do
  if [[ $build == A ]]; then BIN=$A_BIN; SEED=$A_SEED; else BIN=$B_BIN; SEED=$B_SEED; fi
  rm -rf "$W/data"; DATA_DIR=$W/data N=$N $SEED --bench 2>/dev/null | tail -1
  printf '[storage]\ndata_dir = "%s"\n[devices]\ntouch_interval = "3650d"\n[retention]\ndevice_ttl = "3651d"\n[limits]\nauth_failures = 0\n' "$W/data" > "$W/c.toml"
  DEVICE_REGISTRY_ADMIN_KEY=$KEY RUST_LOG=warn $BIN --config "$W/c.toml" --bind 127.0.0.1:$PORT & S=$!
  until curl -sf http://127.0.0.1:$PORT/health >/dev/null; do sleep 0.01; done
  echo "== $build: seeded dir $(du -sm $W/data | cut -f1) MiB"
  for s in one page_random page_desc page_asc checkin_new link; do
    out=$(wrk -t2 -c8 -d${SECS}s --latency -s "$W/$s.lua" http://127.0.0.1:$PORT 2>&1)
    printf '%-12s %10s req/s p99 %s\n' $s "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")"
  done
  echo "RSS $(awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$S/status) MiB"
  kill -TERM $S; wait $S || true
  echo "disk after $(du -sm $W/data | cut -f1) MiB"
done
