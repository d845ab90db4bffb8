#!/usr/bin/env bash
# Runs Weft's tests. Installs what the tests need first (as root, from Debian's packages):
# iptables (transparent-capture tests in network namespaces), prometheus (promtool checks
# the /metrics output), curl, etcd-server and etcd-client (the replicated store's tests run a
# real etcd on loopback); and rotel, a real OTLP collector for the tracing tests, from
# PyPI into .venv-otel. Under CI=true, tests that need root fail instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v iptables >/dev/null || need+=(iptables)
command -v promtool >/dev/null || need+=(prometheus)
command -v curl >/dev/null || need+=(curl)
command -v ip >/dev/null || need+=(iproute2)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v python3 >/dev/null || need+=(python3)
python3 -c "import ensurepip" 2>/dev/null || need+=(python3-venv)
command -v npm >/dev/null || need+=(nodejs npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "==> installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: missing ${need[*]} and not root; tests that need them will say so" >&2
  fi
fi

# The dashboard's browser test drives Chromium with playwright-core (from npm, locked).
if command -v npm >/dev/null && [ ! -d dashboard/node_modules/playwright-core ]; then
  echo "==> npm ci (dashboard: playwright-core for the browser test)"
  (cd dashboard && npm ci --no-audit --no-fund --loglevel=error) \
    || echo "warning: npm ci failed in dashboard/; the browser test will say so" >&2
fi

have_rotel() { ls .venv-otel/lib/python3*/site-packages/rotel/rotel-agent >/dev/null 2>&1; }
if ! have_rotel; then
  echo "==> installing rotel (PyPI) into .venv-otel"
  python3 -m venv .venv-otel && .venv-otel/bin/pip install -q rotel \
    || echo "warning: could not install rotel; the tracing tests will say so" >&2
fi

cargo test --workspace --all-targets "$@"
