#!/usr/bin/env bash
# Regenerates crates/weft/link/weft.profdata, the execution profile that every optimised build
# is compiled with (profile-guided optimisation; scripts/rustc-pgo applies it), and then the
# link order made from a binary built with it (scripts/symbol-order.sh).
#
#   ./scripts/pgo.sh
#
# 1. builds `weft` instrumented (-Cprofile-generate) into target/pgo-instrumented;
# 2. runs it on the workload in scripts/lib/training.sh (proxies in both modes on 127.0.77.x,
#    the control plane, echo servers), each process writing its counters when it exits;
# 3. merges them with llvm-profdata (--sparse: functions that never ran are left out, which
#    keeps the committed file small; LLVM compiles them as it would without a profile);
# 4. rebuilds target/release from scratch (Cargo does not know the profile is an input, so
#    its cached dependencies would keep the old one), regenerates the link order and relinks.
#
# Rerun after a change to the request path, a dependency or the toolchain: a function whose
# code changed since it was recorded simply loses its profile, so a stale file costs speed,
# never correctness (scripts/symbol-order.sh --check, which CI runs, says when names moved).
# Needs llvm-profdata (Debian: llvm-19 or newer), curl and openssl, installed as root if missing
# (symbol-order.sh installs what it needs itself).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
profile="$root/crates/weft/link/weft.profdata"
instrumented="$root/target/pgo-instrumented"
raw="$instrumented/raw"

# rustc's raw profiles need llvm-profdata 19 or newer; an older one (Debian ships 14 beside
# other LLVM tools) cannot read them, so pick the newest versioned one of at least 19.
profdata=$(compgen -c llvm-profdata- | sort -uV | awk -F- '$NF >= 19' | tail -1 || true)
if [ -z "$profdata" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq llvm-19 >/dev/null
    profdata=llvm-profdata-19
  else
    echo "pgo: needs llvm-profdata 19 or newer (apt-get install -y llvm-19)" >&2; exit 1
  fi
fi
for tool in curl openssl; do command -v "$tool" >/dev/null || { [ "$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null; } \
  || { echo "pgo: needs $tool (apt-get install -y $tool)" >&2; exit 1; }; done

echo "==> building weft instrumented (target/pgo-instrumented)"
RUSTFLAGS="-Cprofile-generate=$raw" cargo build --release -q -p weft \
  --manifest-path "$root/Cargo.toml" --target-dir "$instrumented"
rm -rf "$raw" && mkdir -p "$raw"
export LLVM_PROFILE_FILE="$raw/weft-%p-%m.profraw"

# shellcheck source=lib/loopback-mesh.sh
. "$root/scripts/lib/loopback-mesh.sh"
loopback_mesh_init pgo 127.0.77
# shellcheck source=lib/training.sh
. "$root/scripts/lib/training.sh"
weft="$instrumented/release/weft"
training_launch() {
  shift 2
  "$@" &
  pids+=($!)
  training_pids+=($!)
}
training_run
loopback_mesh_cleanup
trap - EXIT

shopt -s nullglob
runs=("$raw"/*.profraw)
[ "${#runs[@]}" -ge 5 ] || { echo "pgo: expected a profile from each proxy and the control plane, found ${#runs[@]} in $raw" >&2; exit 1; }
echo "==> merging ${#runs[@]} profiles with $profdata into $profile"
"$profdata" merge --sparse -o "$profile" "${runs[@]}" || {
  echo "pgo: $profdata could not read this rustc's profiles ($(rustc -vV | grep LLVM)); use a newer llvm-profdata" >&2
  exit 1
}

echo "==> rebuilding target/release with the new profile"
rm -rf "$root/target/release"
"$root/scripts/symbol-order.sh"
cargo build --release -q -p weft --manifest-path "$root/Cargo.toml"
"$root/scripts/symbol-order.sh" --check
echo "==> done: commit crates/weft/link/weft.profdata and crates/weft/link/symbol-order.txt"
