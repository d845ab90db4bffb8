# Sourced by scripts/symbol-order.sh and scripts/pgo.sh: the workload both record, so the link
# order and the execution profile describe the same runs. Needs $weft, $work, $pids (from
# loopback-mesh.sh, initialised on 127.0.77) and a function the caller defines:
#
#   training_launch NAME MODE CMD...   # start CMD (a `weft proxy` or `weft control`) in the
#                                      # background, wrapped as the caller records, and
#                                      # append its pid to $pids and $training_pids
#
# training_run: echo servers, then real proxies on loopback in both modes a user runs them:
# static (`--config-dir`, a plaintext HTTP/2 hop between two proxies) and with a control plane
# (xDS, certificates from a CSR, mutual TLS between the proxies). Traffic: HTTP/1.1 keep-alive,
# HTTP/2 (h2c) from the client, a POST with a body, a request to a workload without a proxy,
# an unknown host, and the admin endpoints. Then the static hop again with policy on the
# callee (scripts/lib/authz-policy.sh: a JWT and 20 authorization rules), with requests it
# allows and refuses, statically and from a control plane. Each proxy is stopped with SIGTERM, so it drains and exits normally (an
# instrumented binary writes its profile at exit). Needs openssl for the policy's key.

training_pids=()
# The admin token the proxies accept for /config (read once per run, as an operator would).
training_admin_token=training-admin-token-0123456789

training_proxy() {
  local name=$1 ip=$2 mode=$3
  shift 3
  # Written once: rewriting it while the proxy launched just before reads it could hand
  # that proxy an empty file.
  [ -s "$work/admin-token" ] || printf '%s\n' "$training_admin_token" >"$work/admin-token"
  WEFT_LOG=warn training_launch "$name" "$mode" \
    "$weft" proxy --workload "$name" --namespace prof --admin-token-file "$work/admin-token" "$@" \
    --outbound-addr "$ip:4140" --inbound-addr "$ip:4143" --admin-addr "$ip:4191" --app-ip "$ip" \
    >"$work/$name-$mode.log" 2>&1
}

training_ready() {
  local ip
  for ip in "$@"; do
    for _ in $(seq 120); do curl -fs "http://$ip:4191/ready" >/dev/null && break; sleep 0.5; done
    curl -fs "http://$ip:4191/ready" >/dev/null || { echo "proxy at $ip did not start; see $work" >&2; exit 1; }
  done
}

training_traffic() {
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
    curl -fs -H "Authorization: Bearer $training_admin_token" "http://$ip:4191/config" >/dev/null
  done
}

# Stops what training_launch started since the last call (SIGTERM, then waits for the exit).
training_stop() {
  local p
  for p in "${training_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${training_pids[@]}"; do
    for _ in $(seq 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$p" 2>/dev/null && { echo "process $p did not stop; see $work" >&2; exit 1; }
    wait "$p" 2>/dev/null || true
  done
  training_pids=()
}

# Requests the policy allows (the last ALLOW rule), and ones it refuses: no token (403), a
# token signed by no key it trusts (401), a denied path (403).
training_authz_traffic() {
  local out=http://127.0.77.1:4140 urls=() i
  for i in $(seq 300); do urls+=("$out/item/$i"); done
  curl -fs -H 'Host: echo.prof' -H "authorization: Bearer $token" "${urls[@]}" >/dev/null
  curl -s -H 'Host: echo.prof' "${urls[@]:0:30}" >/dev/null
  curl -s -H 'Host: echo.prof' -H "authorization: Bearer ${token%.*}.AAAA" "${urls[@]:0:30}" >/dev/null
  curl -s -H 'Host: echo.prof' -H "authorization: Bearer $token" "$out/admin/x" "$out/debug/a/b" >/dev/null
}

training_run() {
  "$weft" echo --http 127.0.77.2:8080 --service echo --namespace prof --pod echo 2>"$work/echo.log" &
  pids+=($!)
  "$weft" echo --http 127.0.77.3:8080 --service plain --namespace prof --pod plain 2>"$work/plain.log" &
  pids+=($!)

  echo "==> static mode: two proxies from the directory, a plaintext HTTP/2 hop"
  training_proxy client 127.0.77.1 static --config-dir "$work/mesh"
  training_proxy echo 127.0.77.2 static --config-dir "$work/mesh"
  training_ready 127.0.77.1 127.0.77.2
  training_traffic
  training_stop

  echo "==> static mode, policy on the callee: a JWT and 20 authorization rules"
  # shellcheck source=authz-policy.sh
  . "$root/scripts/lib/authz-policy.sh"
  authz_policy_init "$work/mesh-authz"
  training_proxy client 127.0.77.1 authz --config-dir "$work/mesh"
  training_proxy echo 127.0.77.2 authz --config-dir "$work/mesh-authz"
  training_ready 127.0.77.1 127.0.77.2
  training_authz_traffic
  training_stop

  echo "==> with a control plane: xDS, certificates, mutual TLS"
  training_control "$work/mesh" training_traffic control
  echo "==> with a control plane, policy on the callee (as it arrives over xDS)"
  training_control "$work/mesh-authz" training_authz_traffic control-authz
}

# training_control DIR TRAFFIC MODE: a control plane on DIR, the two proxies with certificates
# from it (mutual TLS between them; MODE names their profiles), TRAFFIC through them; then all
# three stop.
training_control() {
  # Not `token`: bash scopes dynamically, and the traffic reads the JWT from $token.
  local dir=$1 traffic=$2 mode=$3 w join
  WEFT_LOG=warn training_launch control control \
    "$weft" control --config-dir "$dir" --state-dir "$work/state" --grpc-addr 127.0.77.9:4180 \
    --admin-addr 127.0.77.9:4181 >>"$work/control.log" 2>&1
  local control_pids=("${training_pids[@]}")
  training_pids=()
  for _ in $(seq 50); do curl -fs http://127.0.77.9:4181/ready >/dev/null && break; sleep 0.2; done
  for w in client:127.0.77.1 echo:127.0.77.2; do
    join=$("$weft" token create --workload "${w%%:*}" --namespace prof --state-dir "$work/state")
    training_proxy "${w%%:*}" "${w#*:}" "$mode" --control 127.0.77.9:4180 \
      --control-ca "$work/state/ca/bundle.pem" --join-token "$join"
  done
  training_ready 127.0.77.1 127.0.77.2
  "$traffic"
  training_stop
  training_pids=("${control_pids[@]}")
  training_stop
}
