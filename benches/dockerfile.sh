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
#   stages   a Dockerfile with two independent stages, each one CPU-bound
#            RUN of about 3 s (a Python loop of SPIN additions), and a last
#            stage copying from both, against the same Dockerfile with one
#            such stage: with the stages at the same time the two-stage
#            build takes about as long as the one-stage build. buildah runs
#            with --jobs 2. The commands change every repetition (cache
#            misses); both tools' stores already hold the base.
#
# Environment (defaults in brackets):
#   BENCH_DIR [/tmp/imgbuild-dfbench]  REPEAT [3]  SKIP_BUILD [0]
#   SCENARIOS ["cold source stages"]  SPIN [30000000]
#   BASE_LAYOUT [the tests' cached base under target/test-cache]
#   IMGBUILD [target/release/imgbuild]  RESULTS [benches/dockerfile-results.md; benches/dockerfile-SCENARIOS-results.md for a subset]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/imgbuild-dfbench}
REPEAT=${REPEAT:-3}
SKIP_BUILD=${SKIP_BUILD:-0}
SPIN=${SPIN:-30000000}
SCENARIOS=${SCENARIOS:-cold source stages}
# A subset writes a report of its own, leaving the whole run's in place.
RESULTS_DEFAULT=$REPO/benches/dockerfile-results.md
if [[ $SCENARIOS != "cold source stages" ]]; then
    RESULTS_DEFAULT=$REPO/benches/dockerfile-${SCENARIOS// /-}-results.md
fi
RESULTS=${RESULTS:-$RESULTS_DEFAULT}
has() { [[ " $SCENARIOS " == *" $1 "* ]]; }
IMGBUILD=${IMGBUILD:-$REPO/target/release/imgbuild}
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
    (($#)) || { echo -; return; }
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) { print "-"; exit } if (NR % 2) printf "%.3f\n", a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
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
timed() { # ROW NAME CMD [ARGS]
    local row=$1 name=$2 t0 t1
    shift 2
    sync
    t0=$(now_ns)
    "$@" "$name" || { tail -n 20 "$BENCH_DIR/logs/$name.log" >&2; die "$name failed"; }
    t1=$(now_ns)
    T[$row]+="$(secs "$t0" "$t1") "
    log "$name: $(secs "$t0" "$t1") s"
}
has cold && for i in $(seq 1 "$REPEAT"); do
    rm -rf "$CACHE_I"
    timed cold_i "cold-imgbuild-$i" run_imgbuild
    fresh_buildah
    timed cold_b "cold-buildah-$i" run_buildah
done
has source && for i in $(seq 1 "$REPEAT"); do
    printf 'print("edit %s")\n' "$i" >"$CTX/src/app/__main__.py"
    timed src_i "source-imgbuild-$i" run_imgbuild
    timed src_b "source-buildah-$i" run_buildah
done
# stages: one Dockerfile with two independent CPU-bound stages, one with one.
stages_dockerfile() { # DIR REP STAGES...
    local dir=$1 rep=$2 s
    shift 2
    mkdir -p "$dir"
    {
        echo 'ARG BASE'
        for s in "$@"; do
            echo "FROM \${BASE} AS $s"
            echo "RUN python3 -c 'exec(\"x=0\\nfor i in range($SPIN): x+=i\")' && echo $s $rep > /$s"
        done
        echo 'FROM ${BASE}'
        for s in "$@"; do echo "COPY --from=$s /$s /"; done
    } >"$dir/Dockerfile"
}
run_stages_imgbuild() { # DIR LOG
    "$IMGBUILD" build -f "$1/Dockerfile" "$1" --build-arg "$BASE_ARG" \
        --cache-dir "$CACHE_I" --output "oci:$BENCH_DIR/out-stages" -q >"$BENCH_DIR/logs/$2.log" 2>&1
}
run_stages_buildah() { # DIR LOG
    bah bud --isolation chroot --layers --jobs 2 --build-arg "$BASE_ARG" -t stages:latest \
        -f "$1/Dockerfile" "$1" >"$BENCH_DIR/logs/$2.log" 2>&1
}
has stages && stages_dockerfile "$BENCH_DIR/warm" 0 a
has stages && fresh_buildah && run_stages_imgbuild "$BENCH_DIR/warm" stages-warmup # the base's root filesystem, once
has stages && for i in $(seq 1 "$REPEAT"); do
    stages_dockerfile "$BENCH_DIR/one-$i" "$i" a
    stages_dockerfile "$BENCH_DIR/two-$i" "$i" a b
    timed one_i "stages-one-imgbuild-$i" run_stages_imgbuild "$BENCH_DIR/one-$i"
    timed two_i "stages-two-imgbuild-$i" run_stages_imgbuild "$BENCH_DIR/two-$i"
    timed one_b "stages-one-buildah-$i" run_stages_buildah "$BENCH_DIR/one-$i"
    timed two_b "stages-two-buildah-$i" run_stages_buildah "$BENCH_DIR/two-$i"
done
O_I=$(median ${T[one_i]:-}); W_I=$(median ${T[two_i]:-}); O_B=$(median ${T[one_b]:-}); W_B=$(median ${T[two_b]:-})
CI_=$(median ${T[cold_i]:-}); CB=$(median ${T[cold_b]:-}); SI=$(median ${T[src_i]:-}); SB=$(median ${T[src_b]:-})
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") printf "-"; else printf "%.1f×", a / b }'; }
REPORT=$(cat <<EOM
# Dockerfile builds: imgbuild vs buildah bud

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); nproc=$(nproc); $(buildah --version | head -1); imgbuild $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
- fixture: fixtures/dockerfile-multistage (two stages, RUN, COPY --from, COPY --chown, USER) for cold and source, generated Dockerfiles for stages; Debian bookworm + python3 base
- reproduce: \`bash benches/dockerfile.sh\` (REPEAT=$REPEAT), medians of interleaved runs, whole processes

| scenario | imgbuild s | buildah s | buildah / imgbuild | target |
| --- | ---: | ---: | ---: | ---: |
| cold (empty caches, base in store) | $CI_ | $CB | $(ratio "$CB" "$CI_") | ≥ 2× |
| one source file changed, warm caches | $SI | $SB | $(ratio "$SB" "$SI") | ≥ 10× |
| one stage, one CPU-bound RUN (~3 s) | $O_I | $O_B | $(ratio "$O_B" "$O_I") | |
| two independent such stages + a stage copying from both | $W_I | $W_B | $(ratio "$W_B" "$W_I") | |

Two stages over one stage (1.0× = the stages fully at the same time, 2.0× = one after the other): imgbuild $(ratio "$W_I" "$O_I"), buildah --jobs 2 $(ratio "$W_B" "$O_B").

Runs (s): cold imgbuild ${T[cold_i]:-}/ buildah ${T[cold_b]:-}; source imgbuild ${T[src_i]:-}/ buildah ${T[src_b]:-}; one stage imgbuild ${T[one_i]:-}/ buildah ${T[one_b]:-}; two stages imgbuild ${T[two_i]:-}/ buildah ${T[two_b]:-}
EOM
)
printf '%s\n' "$REPORT" | tee "$RESULTS"
