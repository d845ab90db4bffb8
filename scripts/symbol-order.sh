#!/usr/bin/env bash
# Regenerates crates/weft/link/symbol-order.txt, the list of functions a proxy executes, which
# the linker places first in the `weft` binary (see crates/weft/build.rs for why).
#
#   ./scripts/symbol-order.sh           # profile proxies under callgrind, rewrite the list
#   ./scripts/symbol-order.sh --check   # how much of the list the built binary still has
#
# The profile runs real proxies on loopback (127.0.77.x) in both modes a user runs them:
# static (`--config-dir`, a plaintext HTTP/2 hop between two proxies) and with a control plane
# (xDS, certificates from a CSR, mutual TLS between the proxies). Traffic: HTTP/1.1 keep-alive,
# HTTP/2 (h2c) from the client, a POST with a body, a request to a workload without a proxy,
# an unknown host, and the admin endpoints. Functions are listed hottest first (instructions
# spent in each), so the request path shares as few pages as possible. Regenerate after a
# dependency or toolchain change: symbol names carry a hash that changes with them (`--check`,
# which CI runs, says when).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
list="$root/crates/weft/link/symbol-order.txt"
weft="$root/target/release/weft"

if [ "${1:-}" = "--check" ]; then
  # Fails (CI=true; else warns) when under 80% of the listed functions are still in the binary,
  # or when the binary was linked without the list.
  [ -x "$weft" ] || { echo "symbol-order: build first: cargo build --release -p weft" >&2; exit 1; }
  have=$(nm --defined-only "$weft" | awk '{print $3}' | sort -u | comm -12 - <(sort -u "$list") | wc -l)
  total=$(sort -u "$list" | wc -l)
  pct=$((100 * have / (total > 0 ? total : 1)))
  echo "symbol-order: $have of $total listed functions are in $weft ($pct%)"
  if [ "$pct" -lt 80 ]; then
    echo "symbol-order: the list is stale (a dependency or the toolchain changed): run scripts/symbol-order.sh" >&2
    [ "${CI:-}" = true ] && exit 1
  fi
  # Applied at all? Then the lowest-addressed function in .text is one from the list.
  first=$(nm -n --defined-only "$weft" | awk '$2 ~ /^[tT]$/ && !seen {print $3; seen = 1}')
  if ! grep -qxF -- "$first" "$list"; then
    echo "symbol-order: the binary was linked without the list (first function: $first); see crates/weft/build.rs" >&2
    [ "${CI:-}" = true ] && exit 1
  fi
  exit 0
fi

for tool in valgrind curl python3; do
  if ! command -v "$tool" >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
    else
      echo "symbol-order: needs $tool (apt-get install -y $tool)" >&2; exit 1
    fi
  fi
done

echo "==> building weft (release)"
cargo build --release -q -p weft --manifest-path "$root/Cargo.toml"
# shellcheck source=lib/loopback-mesh.sh
. "$root/scripts/lib/loopback-mesh.sh"
loopback_mesh_init symbol-order 127.0.77

"$weft" echo --http 127.0.77.2:8080 --service echo --namespace prof --pod echo 2>"$work/echo.log" &
pids+=($!)
"$weft" echo --http 127.0.77.3:8080 --service plain --namespace prof --pod plain 2>"$work/plain.log" &
pids+=($!)

# proxy NAME IP MODE [ARGS...]: one proxy under callgrind; its profile goes to $work/NAME-MODE.cg.
proxy() {
  local name=$1 ip=$2 mode=$3
  shift 3
  WEFT_LOG=warn valgrind -q --tool=callgrind --demangle=no --callgrind-out-file="$work/$name-$mode.cg" \
    "$weft" proxy --workload "$name" --namespace prof "$@" \
    --outbound-addr "$ip:4140" --inbound-addr "$ip:4143" --admin-addr "$ip:4191" --app-ip "$ip" \
    >"$work/$name-$mode.log" 2>&1 &
  pids+=($!)
}

ready() {
  for ip in "$@"; do
    for _ in $(seq 120); do curl -fs "http://$ip:4191/ready" >/dev/null && break; sleep 0.5; done
    curl -fs "http://$ip:4191/ready" >/dev/null || { echo "proxy at $ip did not start; see $work" >&2; exit 1; }
  done
}

traffic() {
  local out=http://127.0.77.1:4140 urls=() i
  for i in $(seq 300); do urls+=("$out/item/$i"); done
  curl -fs -H 'Host: echo.prof' "${urls[@]}" >/dev/null
  curl -fs -H 'Host: echo.prof' -H 'x-debug: 1' "${urls[@]:0:100}" >/dev/null
  # One request per connection: curl 7.88 does not reuse a prior-knowledge HTTP/2 connection.
  for i in $(seq 50); do curl -fs --http2-prior-knowledge -H 'Host: echo.prof' "$out/h2/$i" >/dev/null; done
  curl -fs -H 'Host: plain.prof:8080' "${urls[@]:0:200}" >/dev/null
  for i in $(seq 20); do curl -fs -H 'Host: echo.prof' -d "body $i" "$out/post" >/dev/null; done
  curl -s -H 'Host: nowhere.prof' "$out/" >/dev/null
  for ip in 127.0.77.1 127.0.77.2; do
    curl -fs "http://$ip:4191/metrics" >/dev/null
    curl -fs "http://$ip:4191/config" >/dev/null
  done
}

stop_proxies() {
  pkill -TERM -f "callgrind.*weft proxy --workload .* --namespace prof" || true
  for _ in $(seq 60); do pgrep -f "callgrind.*--namespace prof" >/dev/null || return 0; sleep 0.5; done
  echo "proxies did not stop" >&2; exit 1
}

echo "==> static mode: two proxies from the directory, a plaintext HTTP/2 hop"
proxy client 127.0.77.1 static --config-dir "$work/mesh"
proxy echo 127.0.77.2 static --config-dir "$work/mesh"
ready 127.0.77.1 127.0.77.2
traffic
stop_proxies

echo "==> with a control plane: xDS, certificates, mutual TLS"
"$weft" control --config-dir "$work/mesh" --state-dir "$work/state" --grpc-addr 127.0.77.9:4180 \
  --admin-addr 127.0.77.9:4181 >"$work/control.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do curl -fs http://127.0.77.9:4181/ready >/dev/null && break; sleep 0.2; done
for w in client:127.0.77.1 echo:127.0.77.2; do
  token=$("$weft" token create --workload "${w%%:*}" --namespace prof --state-dir "$work/state")
  proxy "${w%%:*}" "${w#*:}" control --control 127.0.77.9:4180 \
    --control-ca "$work/state/ca/bundle.pem" --join-token "$token"
done
ready 127.0.77.1 127.0.77.2
traffic
stop_proxies

echo "==> writing $list"
python3 - "$weft" "$list" "$work"/*.cg <<'PY'
import re, subprocess, sys
from collections import defaultdict
binary, out, profiles = sys.argv[1], sys.argv[2], sys.argv[3:]
# "  1,234 (0.5%)  file:symbol [object]": self cost per function, from callgrind_annotate.
line = re.compile(r'^\s*([\d,]+) \([^)]*\)\s+.*:(\S+) \[(\S+)\]$')
cost, seen = defaultdict(int), defaultdict(int)
for i, p in enumerate(profiles):
    text = subprocess.run(['callgrind_annotate', '--threshold=100', '--inclusive=no', '--auto=no', p],
                          capture_output=True, text=True, check=True).stdout
    for l in text.splitlines():
        m = line.match(l)
        if m and m.group(3) == binary:
            cost[m.group(2)] += int(m.group(1).replace(',', ''))
            seen[m.group(2)] |= 1 << i
# Functions every profile ran first, then those fewer ran, grouped by which profiles ran them
# (a static proxy's start-up code apart from the control plane client's), hottest first within
# a group: each kind of proxy then touches one run of pages, not a sprinkling over all of them.
order = sorted(cost, key=lambda n: (-bin(seen[n]).count('1'), seen[n], -cost[n], n))
with open(out, 'w') as f:
    f.writelines(n + '\n' for n in order)
print(f"{len(cost)} functions from {len(profiles)} profiles")
PY
echo "==> rebuild to apply: cargo build --release -p weft"
