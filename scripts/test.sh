#!/usr/bin/env bash
# Runs Weft's tests. Installs what the tests need first (as root, from Debian's packages):
# iptables (transparent-capture tests in network namespaces), prometheus (promtool checks
# the /metrics output), curl. Under CI=true, tests that need root fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v iptables >/dev/null || need+=(iptables)
command -v promtool >/dev/null || need+=(prometheus)
command -v curl >/dev/null || need+=(curl)
command -v ip >/dev/null || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: missing ${need[*]} and not root; tests that need them will say so" >&2
  fi
fi

cargo test --workspace --all-targets "$@"
