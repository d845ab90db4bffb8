#!/usr/bin/env bash
# Three hosts on one machine: each a network namespace on a network between hosts
# (198.18.90.0/24, a bridge in this namespace), each with an etcd member (one three-member
# cluster), a control-plane replica on it, its tunnel, and part of the shop (examples/shop):
#
#   host-1  198.18.90.1   etcd h1, replica 1, tunnel   reviews-v1, ratings
#   host-2  198.18.90.2   etcd h2, replica 2, tunnel   reviews-v2
#   host-3  198.18.90.3   etcd h3, replica 3, tunnel   frontend (calls reviews and ratings)
#
# Every host joins the mesh (`weft host join`) and gets a block of its own and a credential;
# workloads start with `weft run` (hosts 1 and 2) and `weft up` (host 3), registered with the
# host's credential; calls between hosts travel HBONE through the peer host's tunnel. The
# frontend's report shows the 90/10 canary and gRPC calls across hosts. Ctrl-C (or --for)
# stops everything and removes what it made.
#
#   sudo examples/hosts/run.sh              # until Ctrl-C
#   sudo examples/hosts/run.sh --for 30s    # then stop
#   sudo examples/hosts/run.sh --for 30s --check
#       # and check `weft audit` and the dashboard (headless Chromium) through a replica
#       # (used by CI; needs chromium and `npm ci` in dashboard/, as scripts/test.sh does)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
duration=""
check=""
while [ $# -gt 0 ]; do
  case "$1" in
    --for) duration=${2:?--for needs a duration, e.g. 30s}; shift 2 ;;
    --check) check=1; shift ;;
    *) echo "usage: $0 [--for DURATION] [--check]" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  echo "examples/hosts needs root (network namespaces, iptables): sudo $0 $*" >&2
  exit 1
fi
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
command -v curl >/dev/null || need+=(curl)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# WEFT=path/to/weft uses that binary instead of building one.
weft=${WEFT:-}
if [ -z "$weft" ]; then
  if ! command -v cargo >/dev/null; then
    echo "weft needs a Rust toolchain (cargo): https://rustup.rs, then run this again" >&2
    exit 1
  fi
  echo "==> building weft (release)"
  cargo build --release -q -p weft --manifest-path "$root/Cargo.toml"
  weft="$root/target/release/weft"
fi

net=198.18.90
bridge=wefthosts
dir=$(mktemp -d /tmp/weft-hosts.XXXXXX)
# The proxies run as their own uid and read their CA bundle under here.
chmod 755 "$dir"
pids=()
replicas=()
etcds=()
runners=()
cleanup() {
  set +e
  echo "==> stopping (logs stay in $dir)"
  # Workloads first (each removes its own namespace and registration), then the rest.
  for p in "${runners[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${runners[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  # Replicas and tunnels, then etcd: a replica that lost etcd first would log it as a fault.
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
  for p in "${etcds[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  for n in 1 2 3; do ip netns del "weft-host-$n" 2>/dev/null; done
  ip link del "$bridge" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# In the background, `ip netns exec` itself (not a function) so that $! is the program's pid
# (ip execs it).
in_host() { local n=$1; shift; ip netns exec "weft-host-$n" "$@"; }
wait_for() { # what, command...: up to 30 s
  local what=$1; shift
  for _ in $(seq 150); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "$what did not come up; logs in $dir" >&2
  exit 1
}

echo "==> three hosts on $net.0/24 (network namespaces weft-host-1..3)"
ip link del "$bridge" 2>/dev/null || true
ip link add "$bridge" type bridge
ip addr add "$net.254/24" dev "$bridge"
ip link set "$bridge" up
for n in 1 2 3; do
  ip netns del "weft-host-$n" 2>/dev/null || true
  ip netns add "weft-host-$n"
  ip link add "wefthosts-$n" type veth peer name uplink netns "weft-host-$n"
  ip link set "wefthosts-$n" master "$bridge" up
  in_host "$n" ip addr add "$net.$n/24" dev uplink
  in_host "$n" ip link set uplink up
  in_host "$n" ip link set lo up
done

echo "==> etcd: one member on each host"
cluster="h1=http://$net.1:2380,h2=http://$net.2:2380,h3=http://$net.3:2380"
for n in 1 2 3; do
  ip netns exec "weft-host-$n" etcd --name "h$n" --data-dir "$dir/etcd-$n" \
    --listen-client-urls "http://$net.$n:2379" --advertise-client-urls "http://$net.$n:2379" \
    --listen-peer-urls "http://$net.$n:2380" --initial-advertise-peer-urls "http://$net.$n:2380" \
    --initial-cluster "$cluster" --initial-cluster-state new 2>"$dir/etcd-$n.log" &
  etcds+=($!)
done
endpoints="http://$net.1:2379,http://$net.2:2379,http://$net.3:2379"
wait_for "etcd" etcdctl --endpoints "$endpoints" endpoint health

echo "==> a control-plane replica on each host (one CA, its key sealed in etcd)"
"$weft" ca seal-key --out "$dir/seal.key" >/dev/null
for n in 1 2 3; do
  ip netns exec "weft-host-$n" "$weft" control --store etcd --etcd-endpoints "$endpoints" \
    --ca-seal-key "$dir/seal.key" --state-dir "$dir/replica-$n" \
    --grpc-addr "$net.$n:4180" --admin-addr "$net.$n:4181" 2>"$dir/control-$n.log" &
  pids+=($!)
  replicas[$n]=$!
done
for n in 1 2 3; do wait_for "replica $n" curl -sf "http://$net.$n:4181/ready"; done
admin() { echo --control "$net.$1:4181" --admin-token-file "$dir/replica-$1/admin-token"; }
# shellcheck disable=SC2046
"$weft" apply -f "$root/examples/shop/mesh.yaml" $(admin 1)

controls="$net.1:4180,$net.2:4180,$net.3:4180"
admins="$net.1:4181,$net.2:4181,$net.3:4181"
echo "==> each host joins (through its replica; its proxies will know all three), and serves its tunnel"
for n in 1 2 3; do
  # The host keeps its record and credential in host-N, apart from the replica's admin token:
  # its workloads register with the credential.
  # shellcheck disable=SC2046
  "$weft" host join "host-$n" --address "$net.$n" --control-grpc "$controls" \
    --control-admins "$admins" --state-dir "$dir/host-$n" $(admin "$n")
  ip netns exec "weft-host-$n" "$weft" host tunnel --state-dir "$dir/host-$n" 2>"$dir/tunnel-$n.log" &
  pids+=($!)
done

run() { # host name service account port [labels...] -- command...
  local n=$1 name=$2 service=$3 port=$4; shift 4
  local extra=()
  while [ "$1" != "--" ]; do extra+=(--label "$1"); shift; done
  shift
  ip netns exec "weft-host-$n" "$weft" run --name "$name" --namespace shop --service "$service" \
    --service-account "$service" --port "$port" "${extra[@]}" \
    --state-dir "$dir/host-$n" --run-dir "$dir/run-$n" -- "$@" >"$dir/$name.log" 2>&1 &
  runners+=($!)
}
echo "==> the shop, spread over the hosts"
run 1 reviews-v1 reviews 9080 version=v1 -- "$weft" echo --http 0.0.0.0:9080 --pod reviews-v1
run 2 reviews-v2 reviews 9080 version=v2 -- "$weft" echo --http 0.0.0.0:9080 --pod reviews-v2
run 1 ratings ratings 9090 -- "$weft" echo --http 0.0.0.0:9090 --pod ratings
for name in reviews-v1 reviews-v2 ratings; do
  wait_for "$name" grep -q "application started" "$dir/$name.log"
done
# Host 3 runs its part with `weft up` of a directory: no control plane of its own on a
# joined host; the frontend registers with the mesh's replicas as host-3's workload.
mkdir -p "$dir/up-3"
cat >"$dir/up-3/frontend.yaml" <<'YAML'
apiVersion: weft.dev/v1alpha1
kind: LocalWorkload
metadata: {name: frontend, namespace: shop}
spec:
  serviceAccount: frontend
  port: 8080
  command: [weft, demo, --listen, "0.0.0.0:8080", --report-every, 5s]
YAML
ip netns exec weft-host-3 "$weft" up "$dir/up-3" --state-dir "$dir/host-3" \
  --run-dir "$dir/run-3" >"$dir/frontend.log" 2>&1 &
runners+=($!)
wait_for frontend grep -q "Weft is up" "$dir/frontend.log"

# shellcheck disable=SC2046
"$weft" host list $(admin 1)
echo "==> to look: $weft dashboard --control $net.2:4181 --admin-token-file $dir/replica-2/admin-token"
echo "    (or weft stat / weft audit with the same two options; any replica answers for all hosts)"
echo "==> the frontend on host-3 calls reviews (host-1, host-2) and ratings (host-1) over HBONE:"
tail -n +1 -f --pid=$$ "$dir/frontend.log" | grep --line-buffered "demo:" &
pids+=($!)
if [ -n "$check" ]; then
  # The dashboard and the audit through replica 2, once the frontend has called for a while:
  # every proxy is on a joined host, so all they read of proxies crosses the hosts' tunnels.
  # A first audit sets the replica's baseline of each proxy's counters (the ledger counts
  # what grew after it).
  # shellcheck disable=SC2046
  "$weft" audit --window 1h $(admin 2) >/dev/null
  sleep 8
  echo "==> check: weft audit through replica 2"
  # shellcheck disable=SC2046
  audit=$("$weft" audit --window 1h $(admin 2))
  echo "$audit" | grep -E "verdict|one traffic layer" | head -n 3
  echo "$audit" | grep -q "one traffic layer across machines: 3 hosts" \
    || { echo "$audit"; echo "check: the audit did not see the three hosts" >&2; exit 1; }
  echo "==> check: the dashboard through replica 2, in headless Chromium"
  # shellcheck disable=SC2046
  "$weft" dashboard --listen 127.0.0.1:4691 --no-browser $(admin 2) 2>"$dir/dashboard.log" &
  pids+=($!)
  wait_for "weft dashboard" curl -sf http://127.0.0.1:4691/dashboard/
  (cd "$root/dashboard" && node tests/hosts.mjs http://127.0.0.1:4691 \
    "$root/target/dashboard-screenshots/hosts") \
    || { echo "check: the dashboard across hosts failed (screenshots in target/dashboard-screenshots/hosts)" >&2; exit 1; }
  echo "check: dashboard and audit across hosts: PASSED"
  # Replica 1 stops. Host 1's workloads joined through it; their registrations are leases
  # (15 s) that must outlive it: the runners renew them through the next replica.
  echo "==> check: replica 1 stops; host-1's workloads stay registered past their 15 s lease"
  kill -TERM "${replicas[1]}"
  sleep 20
  token2=$(cat "$dir/replica-2/admin-token")
  listed=$(curl -sf -H "Authorization: Bearer $token2" "http://$net.2:4181/workloads")
  for w in reviews-v1 ratings; do
    echo "$listed" | grep -q "\"$w\"" || { echo "$listed"; echo "check: $w was not renewed after replica 1 stopped" >&2; exit 1; }
  done
  grep -q "the control plane answers through this replica now" "$dir/reviews-v1.log" \
    || { tail -n 20 "$dir/reviews-v1.log"; echo "check: reviews-v1's runner did not fail over" >&2; exit 1; }
  last=$(grep "demo: reviews:" "$dir/frontend.log" | tail -n 1)
  echo "$last"
  echo "$last" | grep -q "reviews-v1 [1-9].*errors: 0" \
    || { echo "check: the frontend's calls failed after replica 1 stopped" >&2; exit 1; }
  echo "check: registrations fail over between replicas: PASSED"
fi
if [ -n "$duration" ]; then
  sleep "${duration%s}"
else
  while true; do sleep 3600; done
fi
