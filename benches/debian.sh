#!/usr/bin/env bash
# Native Debian base benchmark: `imgbuild build` of
# base = { debian = "bookworm", packages = ["python3", "ca-certificates"] }
# against `mmdebstrap --variant=minbase --include=python3,ca-certificates
# bookworm` (the same packages: no preference, apt's own choice), both
# from the host's apt sources, with the same SOURCE_DATE_EPOCH.
#
# Usage:  bash benches/debian.sh          (as root: mmdebstrap's root mode)
#
#   cold   imgbuild with the lock written and an empty store (it downloads
#          every .deb; so does mmdebstrap, which has no cache).
#   warm   the same build again with the store kept (nothing changed).
#
# Environment (defaults in brackets):
#   BENCH_DIR [/tmp/imgbuild-debbench]  REPEAT [3]  SKIP_BUILD [0]
#   IMGBUILD [target/release/imgbuild]  RESULTS [benches/debian-results.md]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/imgbuild-debbench}
REPEAT=${REPEAT:-3}
SKIP_BUILD=${SKIP_BUILD:-0}
IMGBUILD=${IMGBUILD:-$REPO/target/release/imgbuild}
RESULTS=${RESULTS:-$REPO/benches/debian-results.md}
export SOURCE_DATE_EPOCH=1700000000

log() { printf '[debian-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
command -v mmdebstrap >/dev/null || die "mmdebstrap not found"
[[ $(id -u) -eq 0 ]] || die "run as root (mmdebstrap's root mode)"

if [[ $SKIP_BUILD != 1 ]]; then
    (cd "$REPO" && cargo build --release --locked >&2)
fi

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR/proj"
cat > "$BENCH_DIR/proj/imgbuild.toml" <<'EOF'
[images.py]
base = { debian = "bookworm", packages = ["python3", "ca-certificates"], prefer = [] }
tag = "v1"
EOF
"$IMGBUILD" lock "$BENCH_DIR/proj" --cache-dir "$BENCH_DIR/lock-store" >&2

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# Seconds one imgbuild build of the project takes.
timed_build() {
    local t0 t1
    t0=$(now)
    "$IMGBUILD" build "$BENCH_DIR/proj" --locked -q --cache-dir "$BENCH_DIR/store" \
        --output "oci:$BENCH_DIR/out" >/dev/null
    t1=$(now)
    secs "$t0" "$t1"
}

cold=() warm=() mmd=()
for i in $(seq 1 "$REPEAT"); do
    rm -rf "$BENCH_DIR/store" "$BENCH_DIR/out"
    cold+=("$(timed_build)")
    log "cold-imgbuild-$i: ${cold[-1]} s"
    warm+=("$(timed_build)")
    log "warm-imgbuild-$i: ${warm[-1]} s"
    rm -f "$BENCH_DIR/ref.tar"
    t0=$(now)
    mmdebstrap --quiet --variant=minbase --include=python3,ca-certificates bookworm \
        "$BENCH_DIR/ref.tar" >/dev/null 2>&1
    t1=$(now)
    mmd+=("$(secs "$t0" "$t1")")
    log "mmdebstrap-$i: ${mmd[-1]} s"
done

mc=$(median "${cold[@]}")
mw=$(median "${warm[@]}")
mm=$(median "${mmd[@]}")
ratio=$(awk -v a="$mc" -v b="$mm" 'BEGIN { printf "%.2f", a / b }')
{
    echo "# Native Debian base: imgbuild vs mmdebstrap"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); nproc=$(nproc); $(mmdebstrap --version 2>/dev/null | head -1); imgbuild $(git -C "$REPO" describe --always --dirty)"
    echo "- packages: minbase + python3 + ca-certificates ($(grep -c '^\[\[base.package\]\]' "$BENCH_DIR/proj/imgbuild.lock") packages), from the host's apt sources"
    echo "- reproduce: \`bash benches/debian.sh\` (REPEAT=$REPEAT), medians of interleaved runs, whole processes"
    echo
    echo "| scenario | imgbuild s | mmdebstrap s | imgbuild / mmdebstrap | target |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    echo "| cold (empty store, lock written) | $mc | $mm | $ratio | ≤ 0.33 |"
    echo "| warm (nothing changed) | $mw | – | – | ≤ 0.2 s |"
    echo
    echo "Runs (s): cold ${cold[*]} / warm ${warm[*]} / mmdebstrap ${mmd[*]}"
} > "$RESULTS"
cat "$RESULTS"
