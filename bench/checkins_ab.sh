#!/usr/bin/env bash
# Check-ins of two builds on the same data, in one run: bench/run.sh's two check-in scenarios
# (unchanged and changed) against binary A, then B, then A and B again, each on a fresh copy of
# one seeded data directory.
#
#   A=old/device-registry B=target/release/device-registry SEED_DIR=/tmp/seeded bench/checkins_ab.sh
#
# SEED_DIR holds a store seeded by `cargo bench --bench seed` (of the older build, when the store
# format changed between them: a newer build reads older records, not the reverse). Before each
# run, the public channel is moved to bundle 2.0.0, a major release that native 1.x builds may not
# take: every check-in is then refused, so "unchanged" check-ins write nothing on either build.
#
# ROLLOUT_BPS=5000 also starts a rollout of bundle 3.0.0 (refused as well) on that channel: each
# device then keeps a decision, written at its first check-in (WARMUP seconds of check-ins come
# first, over DEVICES devices, so that the measured ones are unchanged). A build without
# rollouts ignores the fields and runs without one.
set -euo pipefail
N=${N:-1000000}; SECS=${SECS:-20}; CLIENTS=${CLIENTS:-8}; PORT=${PORT:-18098}; KEY=bench-admin-key
ROUNDS=${ROUNDS:-2}; DEVICES=${DEVICES:-$N}; WARMUP=${WARMUP:-0}; ROLLOUT_BPS=${ROLLOUT_BPS:-}
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT

cat > "$WORK/checkin.lua" <<LUA
local n = $DEVICES
math.randomseed(os.time() + $RANDOM)
local headers = {["content-type"] = "application/json"}
local changed = os.getenv("CHANGED") == "1"
request = function()
  local i = math.random(1, n)
  local version = changed and ("2.0." .. math.random(0, 1000000)) or ("1.0." .. (i % 50))
  local platform = (i % 2 == 0) and "ios" or "android"
  return wrk.format("POST", "/updates", headers, string.format('{"app_id":"app_bench","device_id":"device_%09d","platform":"%s","custom_id":"c%d","version_name":"%s","version_build":"1","version_os":"17.0","plugin_version":"6.0.0","is_prod":true,"is_emulator":false}', i, platform, i, version))
end
LUA

one_run() { # label binary
  rm -rf "$WORK/data"; cp -r "$SEED_DIR" "$WORK/data"
  printf '[storage]\ndata_dir = "%s"\n[devices]\ntouch_interval = "3650d"\n[retention]\ndevice_ttl = "3651d"\n' "$WORK/data" > "$WORK/c.toml"
  DEVICE_REGISTRY_ADMIN_KEY=$KEY RUST_LOG=warn "$2" --config "$WORK/c.toml" --bind 127.0.0.1:$PORT &
  SERVER=$!
  until curl -sf "http://127.0.0.1:$PORT/health" >/dev/null; do sleep 0.01; done
  curl -sf -X POST "http://127.0.0.1:$PORT/bundle" -H "authorization: $KEY" -H "content-type: application/json" \
    -d '{"app_id":"app_bench","version":"2.0.0","external_url":"https://cdn.example.com/2.0.0.zip","checksum":"c"}' >/dev/null
  curl -sf -X POST "http://127.0.0.1:$PORT/channel" -H "authorization: $KEY" -H "content-type: application/json" \
    -d '{"app_id":"app_bench","channel":"production","version":"2.0.0"}' >/dev/null
  if [[ -n $ROLLOUT_BPS ]]; then
    curl -s -X POST "http://127.0.0.1:$PORT/bundle" -H "authorization: $KEY" -H "content-type: application/json" \
      -d '{"app_id":"app_bench","version":"3.0.0","external_url":"https://cdn.example.com/3.0.0.zip","checksum":"c"}' >/dev/null
    curl -s -X POST "http://127.0.0.1:$PORT/channel" -H "authorization: $KEY" -H "content-type: application/json" \
      -d "{\"app_id\":\"app_bench\",\"channel\":\"production\",\"rollout_version\":\"3.0.0\",\"rollout_percentage_bps\":$ROLLOUT_BPS}" >/dev/null
  fi
  if (( WARMUP > 0 )); then
    CHANGED=0 wrk -t2 -c"$CLIENTS" -d"${WARMUP}s" -s "$WORK/checkin.lua" "http://127.0.0.1:$PORT" >/dev/null 2>&1
  fi
  for scenario in unchanged changed; do
    local out; out=$(CHANGED=$([[ $scenario == changed ]] && echo 1 || echo 0) \
      wrk -t2 -c"$CLIENTS" -d"${SECS}s" --latency -s "$WORK/checkin.lua" "http://127.0.0.1:$PORT" 2>&1)
    printf '%-3s %-10s %10s req/s  p99 %s\n' "$1" "$scenario" \
      "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")"
  done
  kill -TERM $SERVER; wait $SERVER || true
}
for _ in $(seq "$ROUNDS"); do one_run A "$A"; one_run B "$B"; done
