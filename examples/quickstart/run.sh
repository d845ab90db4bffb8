#!/usr/bin/env bash
# Weft quickstart: builds weft, runs two versions of an echo service and a client, each
# with a Weft proxy beside it (all on loopback, no root needed), sends traffic through the
# mesh and shows where it went. Ctrl-C stops everything.
#
#   ./examples/quickstart/run.sh            # run until Ctrl-C
#   ./examples/quickstart/run.sh --once     # show the traffic, then stop (used by CI)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
once=${1:-}

if ! command -v cargo >/dev/null; then
  echo "weft needs a Rust toolchain (cargo): https://rustup.rs, then run this again" >&2
  exit 1
fi
if ! command -v curl >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq curl >/dev/null; else
    echo "please install curl (apt-get install -y curl)" >&2; exit 1; fi
fi

echo "==> building weft (release)"
cargo build --release -q -p weft --manifest-path "$root/Cargo.toml"
weft="$root/target/release/weft"
logs=$(mktemp -d /tmp/weft-quickstart.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM
# The admin token the proxies ask for on /config and /tap (only /ready, /live, /metrics are open).
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$logs/admin-token"

start() { # name ip namespace: echo server + proxy for a workload
  local name=$1 ip=$2
  "$weft" echo --http "$ip:9080" --service "${name%-v*}" --namespace shop --pod "$name" 2>>"$logs/$name-echo.log" &
  pids+=($!)
  "$weft" proxy --config-dir "$here" --workload "$name" --namespace shop \
    --outbound-addr "$ip:4140" --inbound-addr "$ip:4143" --admin-addr "$ip:4191" --app-ip "$ip" \
    --admin-token-file "$logs/admin-token" \
    --access-log >>"$logs/$name-access.log" 2>>"$logs/$name-proxy.log" &
  pids+=($!)
}
start reviews-v1 127.0.50.11
start reviews-v2 127.0.50.12
"$weft" proxy --config-dir "$here" --workload client --namespace shop \
  --outbound-addr 127.0.50.1:4140 --inbound-addr 127.0.50.1:4143 --admin-addr 127.0.50.1:4191 \
  --admin-token-file "$logs/admin-token" --access-log >>"$logs/client-access.log" 2>>"$logs/client-proxy.log" &
pids+=($!)

for ip in 127.0.50.1 127.0.50.11 127.0.50.12; do
  for _ in $(seq 100); do curl -fs "http://$ip:4191/ready" >/dev/null && break; sleep 0.1; done
  curl -fs "http://$ip:4191/ready" >/dev/null || { echo "proxy at $ip did not start; see $logs" >&2; tail "$logs"/*-proxy.log >&2; exit 1; }
done

echo "==> 100 requests from the client to http://reviews:9080/ through its proxy (90/10 canary)"
v1=0; v2=0
for _ in $(seq 100); do
  pod=$(curl -fs -x http://127.0.50.1:4140 http://reviews.shop:9080/ | sed -n 's/.*"pod": *"\([^"]*\)".*/\1/p')
  case $pod in reviews-v1) v1=$((v1+1));; reviews-v2) v2=$((v2+1));; esac
done
echo "    reviews-v1 answered $v1, reviews-v2 answered $v2"
echo "==> with x-canary: 1 (pinned to v2):"
curl -fs -x http://127.0.50.1:4140 -H 'x-canary: 1' http://reviews.shop:9080/hello | grep -E '"(pod|path)"'
echo "==> the client proxy's request metrics:"
curl -fs http://127.0.50.1:4191/metrics | grep '^weft_requests_total' || true

if [ "$once" = "--once" ]; then
  [ "$v1" -gt 0 ] && [ "$v2" -gt 0 ] && [ $((v1 + v2)) -eq 100 ] || { echo "unexpected split" >&2; exit 1; }
  exit 0
fi
cat <<MSG

The mesh is running. Try:
  curl -x http://127.0.50.1:4140 http://reviews.shop:9080/        # through the client's proxy
  curl -H "Authorization: Bearer \$(cat $logs/admin-token)" http://127.0.50.1:4191/config   # what the proxy holds
  curl http://127.0.50.1:4191/metrics | grep weft_requests_total  # golden metrics
  \$EDITOR $here/mesh.yaml    # change the weights; the proxies reload it
Access logs and proxy logs: $logs
Ctrl-C stops everything.
MSG
wait
