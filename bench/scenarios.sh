# The wrk scenarios of bench/run.sh and bench/postgres.sh, sourced by both: writes one Lua
# script per scenario into $WORK, for N seeded devices of app_bench and the admin key $KEY.
# shellcheck shell=bash
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
lua summary      'return wrk.format("GET", "/device/summary?app_id=app_bench", headers)'
lua link         'return wrk.format("POST", "/device", headers, string.format("{\"app_id\":\"app_bench\",\"device_id\":\"%s\",\"channel\":\"production\"}", device(math.random(1, n))))'

