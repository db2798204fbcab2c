#!/usr/bin/env bash
# Dockerfile benchmark: `imgbuild build -f` against `buildah bud` (vfs,
# chroot isolation, --layers) on fixtures/dockerfile-multistage, with the
# same Debian bookworm + python3 base in both tools' stores.
#
# Usage:  bash benches/dockerfile.sh          (as root)
#
#   cold     imgbuild with an empty store; buildah with storage holding only
#            the base. Both run every step.
#   source   one source file changed, then a build with warm caches.
#
# Environment (defaults in brackets):
#   BENCH_DIR [/tmp/imgbuild-dfbench]  REPEAT [3]  SKIP_BUILD [0]
#   BASE_LAYOUT [the tests' cached base under target/test-cache]
#   IMGBUILD [target/release/imgbuild]  RESULTS [benches/dockerfile-results.md]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/imgbuild-dfbench}
REPEAT=${REPEAT:-3}
SKIP_BUILD=${SKIP_BUILD:-0}
IMGBUILD=${IMGBUILD:-$REPO/target/release/imgbuild}
RESULTS=${RESULTS:-$REPO/benches/dockerfile-results.md}
BASE_LAYOUT=${BASE_LAYOUT:-$REPO/target/test-cache/debian-python-base-bookworm-python3-v1}

log() { printf '[dockerfile-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
command -v buildah >/dev/null || die "buildah not found"
[[ $(id -u) -eq 0 ]] || die "run as root (buildah's chroot isolation)"
[[ -f $BASE_LAYOUT/index.json ]] || die "no base at $BASE_LAYOUT (run: cargo test --test run)"
BASE_LAYOUT=$(cd "$BASE_LAYOUT" && pwd)
if [[ $SKIP_BUILD != 1 ]]; then
    (cd "$REPO" && cargo build --release >&2)
fi

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR/logs"
CTX="$BENCH_DIR/ctx"
cp -r "$REPO/fixtures/dockerfile-multistage" "$CTX"
BASE_ARG="BASE=oci:$BASE_LAYOUT:latest"
CACHE_I="$BENCH_DIR/imgbuild-cache"
BTPL="$BENCH_DIR/buildah-base"
BROOT="$BENCH_DIR/buildah/root"
BRUN="$BENCH_DIR/buildah/runroot"
bah() { buildah --storage-driver vfs --root "$BROOT" --runroot "$BRUN" "$@"; }

log "importing the base into buildah storage"
buildah --storage-driver vfs --root "$BTPL/root" --runroot "$BTPL/runroot" \
    pull -q "oci:$BASE_LAYOUT:latest" >/dev/null
fresh_buildah() { rm -rf "$BENCH_DIR/buildah"; mkdir -p "$BRUN"; cp -a "$BTPL/root" "$BROOT"; }

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR % 2) printf "%.3f\n", a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
run_imgbuild() {
    "$IMGBUILD" build -f "$CTX/Dockerfile" "$CTX" --build-arg "$BASE_ARG" \
        --cache-dir "$CACHE_I" --output "oci:$BENCH_DIR/out" -q >"$BENCH_DIR/logs/$1.log" 2>&1
}
run_buildah() {
    bah bud --isolation chroot --layers --build-arg "$BASE_ARG" -t bench:latest \
        -f "$CTX/Dockerfile" "$CTX" >"$BENCH_DIR/logs/$1.log" 2>&1
}
declare -A T=()
timed() { # ROW NAME CMD
    local row=$1 name=$2 t0 t1
    shift 2
    sync
    t0=$(now_ns)
    "$@" "$name" || { tail -n 20 "$BENCH_DIR/logs/$name.log" >&2; die "$name failed"; }
    t1=$(now_ns)
    T[$row]+="$(secs "$t0" "$t1") "
    log "$name: $(secs "$t0" "$t1") s"
}
for i in $(seq 1 "$REPEAT"); do
    rm -rf "$CACHE_I"
    timed cold_i "cold-imgbuild-$i" run_imgbuild
    fresh_buildah
    timed cold_b "cold-buildah-$i" run_buildah
done
for i in $(seq 1 "$REPEAT"); do
    printf 'print("edit %s")\n' "$i" >"$CTX/src/app/__main__.py"
    timed src_i "source-imgbuild-$i" run_imgbuild
    timed src_b "source-buildah-$i" run_buildah
done
CI_=$(median ${T[cold_i]}); CB=$(median ${T[cold_b]}); SI=$(median ${T[src_i]}); SB=$(median ${T[src_b]})
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f×", a / b }'; }
REPORT=$(cat <<EOM
# Dockerfile builds: imgbuild vs buildah bud

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); nproc=$(nproc); $(buildah --version | head -1); imgbuild $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
- fixture: fixtures/dockerfile-multistage (two stages, RUN, COPY --from, COPY --chown, USER) on Debian bookworm + python3
- reproduce: \`bash benches/dockerfile.sh\` (REPEAT=$REPEAT), medians of interleaved runs, whole processes

| scenario | imgbuild s | buildah s | buildah / imgbuild | target |
| --- | ---: | ---: | ---: | ---: |
| cold (empty caches, base in store) | $CI_ | $CB | $(ratio "$CB" "$CI_") | ≥ 2× |
| one source file changed, warm caches | $SI | $SB | $(ratio "$SB" "$SI") | ≥ 10× |

Runs (s): cold imgbuild ${T[cold_i]}/ buildah ${T[cold_b]}; source imgbuild ${T[src_i]}/ buildah ${T[src_b]}
EOM
)
printf '%s\n' "$REPORT" | tee "$RESULTS"
