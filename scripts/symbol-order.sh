#!/usr/bin/env bash
# Regenerates crates/weft/link/symbol-order.txt, the list of functions a proxy executes, which
# the linker places first in the `weft` binary (see crates/weft/build.rs for why).
#
#   ./scripts/symbol-order.sh           # profile proxies under callgrind, rewrite the list
#   ./scripts/symbol-order.sh --check   # how much of the list the built binary still has
#
# The profile runs real proxies on loopback (127.0.77.x), the workload in scripts/lib/training.sh
# that scripts/pgo.sh records too. Functions are listed hottest first (instructions
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

for tool in valgrind curl python3 openssl; do
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

# shellcheck source=lib/training.sh
. "$root/scripts/lib/training.sh"

# Proxies run under callgrind, each profile to $work/NAME-MODE.cg; the control plane runs as is
# (its functions are not on a proxy's pages).
training_launch() {
  local name=$1 mode=$2
  shift 2
  if [ "$name" = control ]; then
    "$@" &
  else
    valgrind -q --tool=callgrind --demangle=no --callgrind-out-file="$work/$name-$mode.cg" "$@" &
  fi
  pids+=($!)
  training_pids+=($!)
}
training_run

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
