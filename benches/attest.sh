#!/usr/bin/env bash
# What --sbom --provenance costs: the same builds with and without them,
# side by side in one run (interleaved), medians of REPEAT.
#   uv cold   testdata/python-e2e (httpx, pydantic, numpy and the project's
#             wheel) on the tests' Debian bookworm + python3 layout, empty
#             store each time, into an OCI layout
#   uv warm   the same, rebuilt with a warm store (nothing to build)
#   debian warm  fixtures/debian-python (a native Debian base of python3
#             and ca-certificates, a source folder), rebuilt warm
# No SBOM scanner (syft, trivy, grype) is packaged by Debian bookworm, so
# there is no buildah + scanner row here; see the README.
#
# Usage:  bash benches/attest.sh       Quick: REPEAT=1 bash benches/attest.sh
# Environment (defaults in brackets):
#   BENCH_DIR [/tmp/imgbuild-attestbench]  REPEAT [5]  SKIP_BUILD [0]
#   BASE_LAYOUT [the tests' cached base under target/test-cache]
#   IMGBUILD [target/release/imgbuild]  UV [target/test-tools/uv/bin/uv, else uv]
#   RESULTS [benches/attest-results.md]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/imgbuild-attestbench}
REPEAT=${REPEAT:-5}
SKIP_BUILD=${SKIP_BUILD:-0}
IMGBUILD=${IMGBUILD:-$REPO/target/release/imgbuild}
BASE_LAYOUT=${BASE_LAYOUT:-$REPO/target/test-cache/debian-python-base-bookworm-python3-v1}
RESULTS=${RESULTS:-$REPO/benches/attest-results.md}
UV=${UV:-$REPO/target/test-tools/uv/bin/uv}
[[ -x $UV ]] || UV=$(command -v uv || true)

log() { printf '[attest-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ -n $UV ]] || die "uv not found (run scripts/test.sh once, or put uv on PATH)"
[[ -f $BASE_LAYOUT/index.json ]] || die "no base at $BASE_LAYOUT (run: cargo test --test run)"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer"
if [[ $SKIP_BUILD != 1 ]]; then
    (cd "$REPO" && cargo build --release >&2)
fi
export PATH="$(dirname "$UV"):$PATH"

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR/logs"
PY=$BENCH_DIR/uv-project
cp -r "$REPO/testdata/python-e2e" "$PY"
sed -i "s|^base = .*|base = \"oci:$BASE_LAYOUT:latest\"|" "$PY/imgbuild.toml"
(cd "$PY" && "$UV" lock -q) || die "uv lock failed"
DEB=$BENCH_DIR/debian-python
cp -r "$REPO/fixtures/debian-python" "$DEB"

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR % 2) printf "%.3f\n", a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
declare -A T=()
timed() { # ROW NAME CMD [ARGS]
    local row=$1 name=$2 t0 t1
    shift 2
    t0=$(now_ns)
    "$@" >"$BENCH_DIR/logs/$name.log" 2>&1 || { tail -n 20 "$BENCH_DIR/logs/$name.log" >&2; die "$name failed"; }
    t1=$(now_ns)
    T[$row]+="$(secs "$t0" "$t1") "
    log "$name: $(secs "$t0" "$t1") s"
}
ATTEST=(--sbom --provenance)
build() { # DIR STORE OUT [FLAGS]
    local dir=$1 store=$2 out=$3
    shift 3
    "$IMGBUILD" build "$dir" --cache-dir "$store" --output "oci:$out" -q "$@"
}

# ------------------------------------------------------------ uv, cold
for i in $(seq 1 "$REPEAT"); do
    rm -rf "$BENCH_DIR/s" "$BENCH_DIR/o"
    timed uv_cold_plain "uv-cold-plain-$i" build "$PY" "$BENCH_DIR/s" "$BENCH_DIR/o"
    rm -rf "$BENCH_DIR/s" "$BENCH_DIR/o"
    timed uv_cold_attest "uv-cold-attest-$i" build "$PY" "$BENCH_DIR/s" "$BENCH_DIR/o" "${ATTEST[@]}"
done

# ------------------------------------------------------------ warm rebuilds
build "$PY" "$BENCH_DIR/warm" "$BENCH_DIR/ow" "${ATTEST[@]}" >/dev/null 2>&1 || die "uv warm-up failed"
log "debian-python warm-up (native Debian base: fetches its .debs once)"
build "$DEB" "$BENCH_DIR/warm" "$BENCH_DIR/dw" "${ATTEST[@]}" >/dev/null 2>"$BENCH_DIR/logs/deb-warmup.log" ||
    die "debian warm-up failed: $(tail -5 "$BENCH_DIR/logs/deb-warmup.log")"
for i in $(seq 1 "$REPEAT"); do
    timed uv_warm_plain "uv-warm-plain-$i" build "$PY" "$BENCH_DIR/warm" "$BENCH_DIR/ow"
    timed uv_warm_attest "uv-warm-attest-$i" build "$PY" "$BENCH_DIR/warm" "$BENCH_DIR/ow" "${ATTEST[@]}"
    timed deb_warm_plain "deb-warm-plain-$i" build "$DEB" "$BENCH_DIR/warm" "$BENCH_DIR/dw"
    timed deb_warm_attest "deb-warm-attest-$i" build "$DEB" "$BENCH_DIR/warm" "$BENCH_DIR/dw" "${ATTEST[@]}"
done

# ------------------------------------------------------------ report
row() { # LABEL PLAIN ATTEST
    local p a
    # shellcheck disable=SC2086
    p=$(median ${T[$2]})
    # shellcheck disable=SC2086
    a=$(median ${T[$3]})
    awk -v l="$1" -v p="$p" -v a="$a" -v rp="${T[$2]}" -v ra="${T[$3]}" 'BEGIN {
        printf "| %s | %.3f | %.3f | %+.0f ms | %+.1f%% | %s/ %s|\n", l, p, a, (a - p) * 1000, (a - p) / p * 100, rp, ra }'
}
{
    echo "# Attestation cost benchmark"
    echo
    echo "\`bash benches/attest.sh\` ($(date -u +%Y-%m-%d), $(nproc) cores, REPEAT=$REPEAT): the same builds"
    echo "without and with \`--sbom --provenance\`, interleaved. $($IMGBUILD --version)."
    echo
    echo "| build | plain s | with attestations s | cost | cost % | runs (plain / attest) |"
    echo "|---|---:|---:|---:|---:|---|"
    row "uv project, cold (empty store)" uv_cold_plain uv_cold_attest
    row "uv project, warm (nothing built)" uv_warm_plain uv_warm_attest
    row "native Debian base (fixtures/debian-python), warm" deb_warm_plain deb_warm_attest
} >"$RESULTS"
cat "$RESULTS"
