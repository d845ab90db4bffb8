#!/usr/bin/env bash
# Weft's main command: builds weft and runs `weft up`, the shop example meshed on this host
# (a control plane; a frontend calling reviews v1/v2, a 90/10 canary, and ratings over gRPC;
# each in a network namespace of its own with its proxy, mutual TLS STRICT). Ctrl-C stops
# and removes everything. Needs root for namespaces and iptables: run as root, or it asks
# sudo for the steps that need it. Extra arguments go to `weft up` (e.g. `--for 30s`, DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

if ! command -v cargo >/dev/null; then
  echo "weft needs a Rust toolchain (cargo): https://rustup.rs, then run this again" >&2
  exit 1
fi
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v iptables >/dev/null || need+=(iptables)
# The dashboard is built from npm packages as weft builds.
command -v npm >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "==> building weft (release)"
cargo build --release -q -p weft --manifest-path "$root/Cargo.toml"
as_root "$root/target/release/weft" up "$@"
