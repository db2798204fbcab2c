#!/usr/bin/env bash
# Fuzzes the parsers: scripts/fuzz.sh [seconds-per-target] [targets...]
#
# Installs cargo-fuzz when missing, seeds fuzz/corpus/ (fuzz/seed.sh), builds
# every target once (libFuzzer with AddressSanitizer, debug assertions and
# overflow checks), then runs the targets one after another for the given
# time each (60 s by default; all targets when none is named). Exits non-zero
# when any target finds a crash, leak, timeout or out-of-memory input; the
# input is kept in fuzz/artifacts/<target>/. Ends with a table of the
# executions each target reached.
#
# cargo-fuzz needs nightly compiler flags (-Z sanitizer): on a stable
# toolchain RUSTC_BOOTSTRAP=1 unlocks them. FUZZ_TARGET_DIR sets where the
# fuzz build goes (default: <cargo target dir>/fuzz).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds=${1:-60}
shift || true
if ! [[ $seconds =~ ^[0-9]+$ ]] || ((seconds == 0)); then
    echo "usage: scripts/fuzz.sh [seconds-per-target] [targets...]" >&2
    exit 2
fi

export RUSTC_BOOTSTRAP=1
if [[ $(cargo fuzz --version 2>/dev/null) != *"$CARGO_FUZZ_VERSION"* ]]; then
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

target_dir=${FUZZ_TARGET_DIR:-${CARGO_TARGET_DIR:-$PWD/target}/fuzz}
mapfile -t all < <(cd fuzz && cargo fuzz list)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
# (A loop, not `printf | grep -q`: grep -q stops reading at the first match,
# printf then dies of SIGPIPE, and pipefail turns a found target into a
# missing one.)
is_target() {
    local a
    for a in "${all[@]}"; do
        [[ $a == "$1" ]] && return 0
    done
    return 1
}
for t in "${targets[@]}"; do
    if ! is_target "$t"; then
        echo "no fuzz target $t (targets: ${all[*]})" >&2
        exit 2
    fi
done

# The longest input worth trying, per kind: whole files for the file
# parsers, a few KiB for one-line inputs.
max_len() {
    case $1 in
    uv_lock | base_layer_tar | deb_package) echo 65536 ;;
    dockerfile | definition_toml | definition_json | poetry_lock | simple_index | requirements) echo 16384 ;;
    flyte_spec | oci_document | debian_control | debian_release | debian_sources) echo 8192 ;;
    *) echo 4096 ;;
    esac
}

bash fuzz/seed.sh >/dev/null
(cd fuzz && cargo fuzz build --target-dir "$target_dir")

declare -A execs crashes secs
failed=()
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "fuzz/artifacts/$t"
    before=$(find "fuzz/artifacts/$t" -type f | wc -l)
    echo "== $t (${seconds}s)"
    start=$SECONDS
    status=0
    (cd fuzz && cargo fuzz run --target-dir "$target_dir" "$t" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len="$(max_len "$t")" -print_final_stats=1) >"$log/$t" 2>&1 || status=$?
    # libFuzzer's own time (waiting on cargo's locks does not count).
    secs[$t]=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log/$t" | tail -1)
    [[ -n ${secs[$t]} ]] || secs[$t]=$((SECONDS - start))
    after=$(find "fuzz/artifacts/$t" -type f | wc -l)
    crashes[$t]=$((after - before))
    # The run's total: libFuzzer's final stats, else its last status line.
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log/$t" | tail -1)
    [[ -n $n ]] || n=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log/$t" | tail -1)
    execs[$t]=${n:-0}
    if ((status != 0 || crashes[$t] > 0)); then
        ((crashes[$t] > 0)) || crashes[$t]=1
        failed+=("$t")
        grep -E 'ERROR|panicked|SUMMARY|Test unit written|artifact_prefix' "$log/$t" | head -20 >&2 || true
        tail -40 "$log/$t" >&2
    fi
done

echo
echo "| target | executions | seconds | crashes |"
echo "|---|---:|---:|---:|"
for t in "${targets[@]}"; do
    echo "| \`$t\` | ${execs[$t]} | ${secs[$t]} | ${crashes[$t]} |"
done
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if ((${#failed[@]})); then
    echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
