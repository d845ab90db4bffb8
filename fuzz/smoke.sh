#!/usr/bin/env bash
# Fuzz smoke test: builds the fuzz targets, replays every reproducer under fuzz/regressions/,
# then fuzzes each target for a short while from its seeds. Exits non-zero if any input
# crashes (a panic, a failed check, a timeout or running out of memory).
#
#   fuzz/smoke.sh                  # 30 seconds per target
#   FUZZ_SECONDS=300 fuzz/smoke.sh # longer
#
# Needs cargo (rustup); installs cargo-fuzz if missing. cargo-fuzz needs nightly features:
# on a stable toolchain RUSTC_BOOTSTRAP=1 unlocks them.
set -euo pipefail

cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# Per-target libFuzzer options.
options() {
    case "$1" in
        detect) echo "-dict=fuzz/detect.dict -max_len=4096" ;;
        yaml_loader) echo "-dict=fuzz/yaml.dict -max_len=65536" ;;
        xds_response) echo "-max_len=65536" ;;
        registration) echo "-max_len=4096" ;;
        http1) echo "-dict=fuzz/http1.dict -max_len=4096" ;;
        authz_path) echo "-dict=fuzz/authz_path.dict -max_len=1024" ;;
        jwt_token) echo "-max_len=16384" ;;
        trace_context) echo "-dict=fuzz/trace_context.dict -max_len=1024" ;;
        prometheus_text) echo "-dict=fuzz/prometheus_text.dict -max_len=4096" ;;
        tunnel_hello) echo "-max_len=20000" ;;
        *) echo "" ;;
    esac
}

cargo fuzz build
targets=$(cargo fuzz list)
failed=()
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# 1. Regressions: every saved reproducer must now pass.
for target in $targets; do
    dir="fuzz/regressions/$target"
    [ -d "$dir" ] || continue
    while IFS= read -r -d '' input; do
        echo "smoke: replaying $input" >&2
        if ! cargo fuzz run "$target" "$input" -- -runs=1 -timeout=10 -rss_limit_mb=2048 \
            >"$log" 2>&1; then
            cat "$log" >&2
            failed+=("$input")
        fi
    done < <(find "$dir" -type f -print0 | sort -z)
done

# 2. A short fuzzing run per target, from its committed seeds plus whatever corpus earlier
# runs left in fuzz/corpus/ (not committed). New inputs go to fuzz/corpus/, never to seeds.
for target in $targets; do
    corpus="fuzz/corpus/$target"
    mkdir -p "$corpus"
    seeds=()
    [ -d "fuzz/seeds/$target" ] && seeds=("fuzz/seeds/$target")
    echo "smoke: fuzzing $target for ${seconds}s" >&2
    # shellcheck disable=SC2046 # options are words on purpose
    if ! cargo fuzz run "$target" "$corpus" "${seeds[@]}" -- \
        $(options "$target") -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1; then
        failed+=("$target (crash file under fuzz/artifacts/$target/)")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "smoke: FAILED:" >&2
    printf '  %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "smoke: ok (${seconds}s per target, every regression input passes)" >&2
