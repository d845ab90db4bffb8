# Sourced by scripts/symbol-order.sh and scripts/count-instructions.sh: a scratch directory,
# background processes stopped on exit, and the small loopback mesh both profile.
#
#   loopback_mesh_init NAME NET   # $work (a fresh /tmp dir), $pids, an EXIT trap, and
#                                 # $work/mesh/mesh.yaml with workloads at NET.1 .2 .3
#
# The mesh (namespace `prof`): Service `echo` (port 80 → 8080, an HTTPRoute with a header
# match and a response-header filter) on workload `echo` (NET.2, meshed), Service `plain`
# (port 8080) on workload `plain` (NET.3, no proxy), and workload `client` (NET.1).

loopback_mesh_init() {
  local name=$1 net=$2
  # Leftovers from an earlier run would answer in place of this run's processes.
  if ss -Hltn src "$net.0/24" | grep -q .; then
    echo "$name: something already listens on $net.x; stop it first:" >&2
    ss -Hltnp src "$net.0/24" >&2
    exit 1
  fi
  work=$(mktemp -d "/tmp/weft-$name.XXXXXX")
  pids=()
  trap loopback_mesh_cleanup EXIT
  mkdir -p "$work/mesh"
  cat >"$work/mesh/mesh.yaml" <<YAML
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: prof}
spec:
  selector: {app: echo}
  ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: prof}
spec:
  selector: {app: plain}
  ports: [{name: http, port: 8080, appProtocol: http}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: prof}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - matches: [{headers: [{name: x-debug, value: "1"}]}]
    filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {add: [{name: x-debug, value: "1"}]}}]
    backendRefs: [{name: echo, port: 80}]
  - backendRefs: [{name: echo, port: 80}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client, namespace: prof}
spec: {address: $net.1, labels: {app: client}, serviceAccount: client}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo, namespace: prof}
spec: {address: $net.2, labels: {app: echo}, serviceAccount: echo}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: plain
  namespace: prof
  annotations: {weft.dev/proxy: none}
spec: {address: $net.3, labels: {app: plain}}
YAML
}

loopback_mesh_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
