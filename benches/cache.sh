#!/usr/bin/env bash
# Registry cache benchmark: a fresh CI runner (empty store) against a warm
# registry cache, building and pushing to a local registry (Debian's
# docker-registry), side by side in one run:
#   dockerfile  fixtures/dockerfile-multistage: imgbuild `build -f --push
#               --cache-from` against `buildah bud --layers --cache-from`
#               (+ `buildah push`), buildah with empty vfs storage each time
#   uv          testdata/python-e2e (a uv project: httpx, pydantic, numpy and
#               the project's own wheel): imgbuild `build --push --cache-from`
#   export      imgbuild `--cache-to` again after a build that changed
#               nothing: the bytes it sent (from its JSON report)
# Both tools take the base from the same registry (pushed there by skopeo
# from the tests' Debian bookworm + python3 layout).
#
# Usage:  bash benches/cache.sh          (as root: buildah's chroot isolation)
# Quick:  REPEAT=1 bash benches/cache.sh
#
# Environment (defaults in brackets):
#   BENCH_DIR [/tmp/imgbuild-cachebench]  REPEAT [3]  SKIP_BUILD [0]
#   BASE_LAYOUT [the tests' cached base under target/test-cache]
#   IMGBUILD [target/release/imgbuild]  REGISTRY_BIN [docker-registry]
#   UV [target/test-tools/uv/bin/uv, else uv on PATH]
#   RESULTS [benches/cache-results.md]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/imgbuild-cachebench}
REPEAT=${REPEAT:-3}
SKIP_BUILD=${SKIP_BUILD:-0}
IMGBUILD=${IMGBUILD:-$REPO/target/release/imgbuild}
REGISTRY_BIN=${REGISTRY_BIN:-docker-registry}
BASE_LAYOUT=${BASE_LAYOUT:-$REPO/target/test-cache/debian-python-base-bookworm-python3-v1}
RESULTS=${RESULTS:-$REPO/benches/cache-results.md}
UV=${UV:-$REPO/target/test-tools/uv/bin/uv}
[[ -x $UV ]] || UV=$(command -v uv || true)

log() { printf '[cache-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in "$REGISTRY_BIN" buildah skopeo curl python3 awk; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -n $UV ]] || die "uv not found (run scripts/test.sh once, or put uv on PATH)"
[[ $(id -u) -eq 0 ]] || die "run as root (buildah's chroot isolation)"
[[ -f $BASE_LAYOUT/index.json ]] || die "no base at $BASE_LAYOUT (run: cargo test --test run)"
[[ $REPEAT =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive integer"
if [[ $SKIP_BUILD != 1 ]]; then
    (cd "$REPO" && cargo build --release >&2)
fi

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR/logs" "$BENCH_DIR/registry/storage"

# ------------------------------------------------------------ the registry
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$BENCH_DIR/registry/config.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $BENCH_DIR/registry/storage}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$PORT}
EOF
"$REGISTRY_BIN" serve "$BENCH_DIR/registry/config.yml" >"$BENCH_DIR/registry/log" 2>&1 &
REG_PID=$!
trap 'kill $REG_PID 2>/dev/null || true; wait $REG_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/v2/" && break
    sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/v2/" || die "the registry did not start"
R=127.0.0.1:$PORT
log "registry on $R; pushing the base"
skopeo copy -q --dest-tls-verify=false "oci:$BASE_LAYOUT:latest" "docker://$R/base/debian-python:1" >&2
BASE=$R/base/debian-python:1

# ------------------------------------------------------------ helpers
now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR % 2) printf "%.3f\n", a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
declare -A T=()
timed() { # ROW NAME CMD [ARGS]: runs CMD NAME [ARGS], adds its seconds to ROW
    local row=$1 name=$2 cmd=$3 t0 t1
    shift 3
    t0=$(now_ns)
    "$cmd" "$name" "$@" || { tail -n 20 "$BENCH_DIR/logs/$name.log" >&2; die "$name failed"; }
    t1=$(now_ns)
    T[$row]+="$(secs "$t0" "$t1") "
    log "$name: $(secs "$t0" "$t1") s"
}

CTX=$BENCH_DIR/dockerfile
cp -r "$REPO/fixtures/dockerfile-multistage" "$CTX"
PY=$BENCH_DIR/uv-project
cp -r "$REPO/testdata/python-e2e" "$PY"
sed -i "s|^base = .*|base = \"$BASE\"|" "$PY/imgbuild.toml"
(cd "$PY" && "$UV" lock -q) || die "uv lock failed"

STORE=$BENCH_DIR/store
img_df() { # NAME [FLAGS]: imgbuild on the Dockerfile, pushing, JSON to logs/NAME.json
    local name=$1
    shift
    "$IMGBUILD" build -f "$CTX/Dockerfile" "$CTX" --build-arg "BASE=$BASE" --cache-dir "$STORE" \
        --push --tag "$R/bench/imgbuild:v1" --format json -q "$@" \
        >"$BENCH_DIR/logs/$name.json" 2>"$BENCH_DIR/logs/$name.log"
}
img_py() { # NAME [FLAGS]
    local name=$1
    shift
    "$IMGBUILD" build "$PY" --cache-dir "$STORE" --push --tag "$R/bench/uv:v1" --format json -q "$@" \
        >"$BENCH_DIR/logs/$name.json" 2>"$BENCH_DIR/logs/$name.log"
}
BROOT=$BENCH_DIR/buildah
bah() { buildah --storage-driver vfs --root "$BROOT/root" --runroot "$BROOT/run" "$@"; }
buildah_df() { # NAME [FLAGS]: bud and push, both to the registry
    local name=$1
    shift
    {
        TMPDIR=$BROOT/tmp bah bud --isolation chroot --layers --tls-verify=false \
            --build-arg "BASE=$BASE" -t "$R/bench/buildah:v1" "$@" \
            -f "$CTX/Dockerfile" "$CTX" &&
            TMPDIR=$BROOT/tmp bah push --tls-verify=false "$R/bench/buildah:v1"
    } >"$BENCH_DIR/logs/$name.log" 2>&1
}
fresh() { rm -rf "$STORE" "$BROOT"; mkdir -p "$BROOT/tmp" "$BROOT/run"; }
json() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }

# ------------------------------------------------------------ warm the caches
log "filling the caches (one cold build each)"
fresh
img_df warm-imgbuild --cache-to "$R/cache/imgbuild" || die "imgbuild warm-up failed: $(tail -5 "$BENCH_DIR/logs/warm-imgbuild.log")"
img_py warm-uv --cache-to "$R/cache/uv" || die "uv warm-up failed: $(tail -5 "$BENCH_DIR/logs/warm-uv.log")"
buildah_df warm-buildah --cache-to "$R/cache/buildah" || die "buildah warm-up failed: $(tail -5 "$BENCH_DIR/logs/warm-buildah.log")"

# ------------------------------------------------------------ fresh runners
for i in $(seq 1 "$REPEAT"); do
    fresh
    timed df_img "fresh-imgbuild-$i" img_df --cache-from "$R/cache/imgbuild"
    [[ $(json "$BENCH_DIR/logs/fresh-imgbuild-$i.json" 'd["layers_built"]') == 0 ]] ||
        die "fresh-imgbuild-$i built layers: the cache missed"
    fresh
    timed df_bah "fresh-buildah-$i" buildah_df --cache-from "$R/cache/buildah"
    fresh
    timed uv_img "fresh-uv-$i" img_py --cache-from "$R/cache/uv"
    [[ $(json "$BENCH_DIR/logs/fresh-uv-$i.json" 'd["layers_built"]') == 0 ]] ||
        die "fresh-uv-$i built layers: the cache missed"
done
# Export after a build that changed nothing (the store of the last fresh
# uv run, which found everything in the cache).
img_py export-uv --cache-from "$R/cache/uv" --cache-to "$R/cache/uv" || die "export failed"
EXPORT_UV=$(json "$BENCH_DIR/logs/export-uv.json" 'd["cache_export"]["bytes_uploaded"]')
fresh
img_df export-df-warm --cache-from "$R/cache/imgbuild" >/dev/null
img_df export-df --cache-from "$R/cache/imgbuild" --cache-to "$R/cache/imgbuild" || die "export failed"
EXPORT_DF=$(json "$BENCH_DIR/logs/export-df.json" 'd["cache_export"]["bytes_uploaded"]')

# ------------------------------------------------------------ report
# shellcheck disable=SC2086
DF_I=$(median ${T[df_img]})
# shellcheck disable=SC2086
DF_B=$(median ${T[df_bah]})
# shellcheck disable=SC2086
UV_I=$(median ${T[uv_img]})
RATIO=$(awk -v a="$DF_B" -v b="$DF_I" 'BEGIN { printf "%.1f", a / b }')
{
    echo "# Registry cache benchmark"
    echo
    echo "\`bash benches/cache.sh\` ($(date -u +%Y-%m-%d), $(nproc) cores, REPEAT=$REPEAT): a fresh runner"
    echo "(empty store or storage) builds and pushes against a warm registry cache on"
    echo "a local docker-registry. $($IMGBUILD --version), $(buildah --version)."
    echo
    echo "| workload | tool | median s | runs |"
    echo "|---|---|---:|---|"
    echo "| Dockerfile fixture, build + push | imgbuild \`--cache-from\` | $DF_I | ${T[df_img]}|"
    echo "| Dockerfile fixture, build + push | buildah \`bud --layers --cache-from\` + push | $DF_B | ${T[df_bah]}|"
    echo "| uv project (httpx, pydantic, numpy), build + push | imgbuild \`--cache-from\` | $UV_I | ${T[uv_img]}|"
    echo
    echo "imgbuild is ${RATIO}× faster than buildah on the Dockerfile fixture."
    echo "Cache export after a build that changed nothing: $EXPORT_DF bytes (Dockerfile), $EXPORT_UV bytes (uv project)."
} >"$RESULTS"
cat "$RESULTS"
