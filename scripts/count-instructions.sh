#!/usr/bin/env bash
# Counts the user-space instructions a proxy executes per request, under callgrind: a figure
# that, unlike CPU seconds, does not move with whatever else the machine is doing. Use it to
# judge a change to the request path; weft-bench remains the measure of time and memory.
#
#   ./scripts/count-instructions.sh [REQUESTS]     # default 1000
#
# Five paths, each after 200 warm-up requests on one keep-alive HTTP/1.1 connection (curl):
#   weft-1      client → Weft (outbound, explicit proxy) → HTTP/1 backend
#   weft-2 A/B  client → Weft A → HTTP/2 → Weft B → HTTP/1 backend (the mesh hop, static mode)
#   weft-2-jwt A/B    the same hop, every request carrying an EdDSA JWT (made with openssl)
#   weft-2-authz A/B  the same hop, B restarted with policy: AuthorizationPolicies of 20 rules
#               (the request matches no DENY rule and only the last ALLOW rule) and a
#               RequestAuthentication that verifies the token
#   nginx       client → nginx (one worker, upstream keepalive) → HTTP/1 backend
# The backend is `weft echo`. Everything listens on 127.0.78.x.
# With PROFILES=DIR, each measured profile is kept as DIR/<path>-<proxy>.cg, for
# callgrind_annotate (`callgrind_annotate --inclusive=yes DIR/weft-1-client.cg | head -60`).
#
# The second figure is the code each request runs through, in 64-byte cache lines (lines with
# an instruction executed at least once per two requests). Between two requests at a low rate
# the other processes push the proxy's code out of the CPU's caches, so a request pays for
# every line it touches again: time follows this as much as the instruction count.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-1000}
weft="$root/target/release/weft"
[ -x "$weft" ] || { echo "build first: cargo build --release -p weft" >&2; exit 1; }
for tool in valgrind nginx curl openssl; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install -y $tool)" >&2; exit 1; }
done
# shellcheck source=lib/loopback-mesh.sh
. "$root/scripts/lib/loopback-mesh.sh"
loopback_mesh_init instructions 127.0.78
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
daemon off; master_process off; worker_processes 1;
pid $work/nginx/nginx.pid; error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off; keepalive_timeout 300s; keepalive_requests 1000000;
  client_body_temp_path $work/nginx; proxy_temp_path $work/nginx; fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx; scgi_temp_path $work/nginx;
  upstream backend { server 127.0.78.3:8080; keepalive 32; }
  server {
    listen 127.0.78.6:8080;
    location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF

grind() { # OUT CMD...: runs CMD under callgrind, profile to $work/OUT.cg.<part>
  local out=$1; shift
  valgrind -q --tool=callgrind --compress-strings=no --dump-instr=yes --compress-pos=no --callgrind-out-file="$work/$out.cg" "$@" \
    >"$work/$out.log" 2>&1 &
  pids+=($!)
}
proxy() { # NAME IP [CONFIG_DIR]
  WEFT_LOG=warn grind "$1" "$weft" proxy --config-dir "${3:-$work/mesh}" --workload "$1" --namespace prof \
    --outbound-addr "$2:4140" --inbound-addr "$2:4143" --admin-addr "$2:4191" --app-ip "$2"
}
"$weft" echo --http 127.0.78.2:8080 >/dev/null 2>&1 &
pids+=($!)
"$weft" echo --http 127.0.78.3:8080 >/dev/null 2>&1 &
pids+=($!)
proxy client 127.0.78.1
proxy echo 127.0.78.2
grind nginx nginx -c "$work/nginx/nginx.conf"
for ip in 127.0.78.1 127.0.78.2; do
  for _ in $(seq 120); do curl -fs "http://$ip:4191/ready" >/dev/null && break; sleep 0.5; done
done
for _ in $(seq 60); do curl -fs -o /dev/null http://127.0.78.6:8080/ && break; sleep 0.5; done

# load URL_BASE HOST COUNT: COUNT GETs on one keep-alive connection, bodies discarded, each
# with the headers in $extra_headers (an array).
extra_headers=()
load() {
  local urls=() i
  for i in $(seq "$3"); do urls+=("$1/item/$i"); done
  curl -fs -H "Host: $2" "${extra_headers[@]}" "${urls[@]}" >/dev/null
}
# code_lines PROFILE MIN: distinct (object, 64-byte line) pairs holding an instruction that
# ran at least MIN times. The cost line after `calls=` is the call's inclusive cost: skipped.
code_lines() {
  awk -v min="$2" '
    function hex(s,   i, v) { v = 0; s = tolower(substr(s, 3))
      for (i = 1; i <= length(s); i++) v = v * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
      return v }
    /^ob=/ { ob = substr($0, 4) }
    /^calls=/ { skip = 1; next }
    /^0x/ { if (skip) { skip = 0; next }
            if ($NF + 0 >= min) { k = ob ":" int(hex($1) / 64); if (!(k in seen)) { seen[k] = 1; c++ } } }
    END { print c + 0 }' "$1"
}
# measure LABEL URL HOST PROFILE...: warm up, zero every profile's counters, send the load,
# dump, and print each named profile's instructions per request (the idle ones count ~0).
measure() {
  local label=$1 url=$2 host=$3 p part total
  shift 3
  load "$url" "$host" 200
  callgrind_control -z >/dev/null 2>&1
  load "$url" "$host" "$n"
  callgrind_control -d >/dev/null 2>&1
  sleep 0.5
  for p in "$@"; do
    part=$(ls -t "$work/$p.cg".* | head -1)
    total=$(awk '/^summary:/ {print $2}' "$part")
    lines=$(code_lines "$part" $((n / 2)))
    printf '%-8s %-7s %7d instructions per request, %5d code lines\n' "$label" "$p" $((total / n)) "$lines"
    if [ -n "${PROFILES:-}" ]; then
      mkdir -p "$PROFILES"
      cp "$part" "$PROFILES/$label-$p.cg"
    fi
  done
}
printf '%d requests per path, after 200 warm-up requests\n' "$n"
measure weft-1 http://127.0.78.1:4140 plain.prof:8080 client
measure weft-2 http://127.0.78.1:4140 echo.prof client echo
measure nginx http://127.0.78.6:8080 127.0.78.6 nginx

# The hop with policy on the callee: B restarts on a copy of the mesh with policies added.
# shellcheck source=lib/authz-policy.sh
. "$root/scripts/lib/authz-policy.sh"
authz_policy_init "$work/mesh-authz"
# The same hop carrying the token, before any policy: what the token alone costs to carry
# (HTTP/2 never indexes `authorization`, so its value is Huffman-coded on every request).
extra_headers=(-H "authorization: Bearer $token")
measure weft-2-jwt http://127.0.78.1:4140 echo.prof client echo
kill "$(pgrep -f -- "--workload echo --namespace prof" | head -1)" 2>/dev/null || true
sleep 1
proxy echo 127.0.78.2 "$work/mesh-authz"
for _ in $(seq 120); do curl -fs "http://127.0.78.2:4191/ready" >/dev/null && break; sleep 0.5; done
extra_headers=(-H "authorization: Bearer $token")
# Check the policy holds before counting: without the token the same request is refused.
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: echo.prof' http://127.0.78.1:4140/item/1)
[ "$code" = 403 ] || { echo "weft-2-authz: a request without its token got $code, not 403" >&2; exit 1; }
measure weft-2-authz http://127.0.78.1:4140 echo.prof client echo
