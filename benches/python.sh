#!/usr/bin/env bash
# Python image benchmark: imgbuild's `uv_project` layers against buildah
# building the usual uv Dockerfile, for testdata/python-e2e (httpx, pydantic,
# numpy and the project itself) on the same Debian bookworm + python3 base.
#
# Usage:  bash benches/python.sh
# Quick:  REPEAT=1 bash benches/python.sh
#
# Scenarios, each run REPEAT times with the two tools side by side (imgbuild,
# then buildah, in every repetition):
#   cold    empty caches: imgbuild gets an empty --cache-dir and uv cache (the
#           project's wheel is built with uv); buildah gets storage holding only
#           the base and an empty uv cache. Both download every wheel.
#   warm    the same build again, nothing changed.
#   source  one .py file of the project changed, then a build.
#
# The Dockerfile is the usual layering: uv copied from the host, the lock and
# pyproject copied, `uv sync --locked --no-install-project` into /opt/venv,
# then the source copied and `uv sync --locked` (the project as a wheel).
# buildah runs `bud --isolation chroot --layers` on vfs storage (the only
# way buildah works here), with the uv cache and the host's CA bundle
# mounted into RUN steps (uv needs the host's trust store for HTTPS).
#
# Environment (defaults in brackets):
#   BENCH_DIR     work dir [/tmp/imgbuild-pybench]
#   REPEAT        repetitions of each scenario, median reported [3]
#   BASE_LAYOUT   OCI layout (tag latest) of a Debian bookworm + python3 base
#                 [the tests' cached one under target/test-cache, else made
#                 here with mmdebstrap and umoci into BENCH_DIR/base]
#   SKIP_BUILD    1 = do not run `cargo build --release` [0]
#   IMGBUILD      imgbuild binary [target/release/imgbuild]
#   RESULTS       Markdown report written at the end [benches/python-results.md]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

CONFIG_VARS=(BENCH_DIR REPEAT BASE_LAYOUT SKIP_BUILD IMGBUILD)
REPRO=""
for v in "${CONFIG_VARS[@]}"; do
    if [[ -n ${!v+x} ]]; then
        REPRO+="$v=$(printf '%q' "${!v}") "
    fi
done
REPRO+="bash benches/python.sh"

BENCH_DIR=${BENCH_DIR:-/tmp/imgbuild-pybench}
REPEAT=${REPEAT:-3}
SKIP_BUILD=${SKIP_BUILD:-0}
IMGBUILD=${IMGBUILD:-$REPO/target/release/imgbuild}
RESULTS=${RESULTS:-$REPO/benches/python-results.md}
BASE_VERSION=bookworm-python3-v1 # as in tests/support/pybase.rs
BASE_EPOCH=1700000000
BASE_PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '[python-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in buildah umoci uv python3 awk chroot; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ $(id -u) -eq 0 ]] || die "run as root (buildah chroot isolation, umoci unpack, chroot)"

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
LOGS="$BENCH_DIR/logs"
rm -rf "$LOGS"
mkdir -p "$LOGS"

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) exit; if (NR % 2) printf "%.3f\n", a[(NR + 1) / 2];
              else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ------------------------------------------------------------- imgbuild

if [[ $SKIP_BUILD != 1 ]]; then
    log "building imgbuild (cargo build --release)"
    (cd "$REPO" && cargo build --release >&2)
fi
[[ -x $IMGBUILD ]] || die "$IMGBUILD not found"
IMGBUILD_VERSION=$("$IMGBUILD" --version 2>/dev/null | head -1 || echo unknown)
GIT_REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)

# ----------------------------------------------------------------- base

if [[ -z ${BASE_LAYOUT:-} ]]; then
    cached="$REPO/target/test-cache/debian-python-base-$BASE_VERSION"
    if [[ -f $cached/index.json ]]; then
        BASE_LAYOUT=$cached
    else
        BASE_LAYOUT="$BENCH_DIR/base-$BASE_VERSION"
        if [[ ! -f $BASE_LAYOUT/index.json ]]; then
            command -v mmdebstrap >/dev/null || die "mmdebstrap not found (apt-get install mmdebstrap)"
            log "making the base with mmdebstrap and umoci (once)"
            rm -rf "$BASE_LAYOUT" "$BASE_LAYOUT.partial"
            mkdir -p "$BASE_LAYOUT.partial"
            SOURCE_DATE_EPOCH=$BASE_EPOCH mmdebstrap --variant=minbase \
                --include=python3,ca-certificates bookworm "$BASE_LAYOUT.partial/rootfs.tar" 2>"$LOGS/mmdebstrap.log"
            L="$BASE_LAYOUT.partial/layout"
            umoci init --layout "$L"
            umoci new --image "$L:latest"
            umoci config --image "$L:latest" --os linux --architecture amd64 --config.env "$BASE_PATH_ENV"
            umoci raw add-layer --image "$L:latest" "$BASE_LAYOUT.partial/rootfs.tar"
            mv "$L" "$BASE_LAYOUT"
            rm -rf "$BASE_LAYOUT.partial"
        fi
    fi
fi
BASE_LAYOUT=$(cd "$BASE_LAYOUT" && pwd)
log "base: oci:$BASE_LAYOUT:latest"

# -------------------------------------------------------------- project

PROJ="$BENCH_DIR/proj"   # imgbuild's definition folder
BCTX="$BENCH_DIR/bctx"   # buildah's context
rm -rf "$PROJ" "$BCTX"
mkdir -p "$PROJ" "$BCTX"
(cd "$REPO/testdata/python-e2e" && tar --exclude=uv.lock --exclude=.venv --exclude=dist \
    --exclude=imgbuild-out --exclude=__pycache__ -cf - .) | tar -xf - -C "$PROJ"
grep -q '^base = "oci:base:latest"$' "$PROJ/imgbuild.toml" || die "imgbuild.toml: no base placeholder"
sed -i "s|^base = \"oci:base:latest\"\$|base = \"oci:$BASE_LAYOUT:latest\"|" "$PROJ/imgbuild.toml"
log "uv lock"
(cd "$PROJ" && UV_PYTHON_DOWNLOADS=never uv lock --quiet)
cp -r "$PROJ/pyproject.toml" "$PROJ/uv.lock" "$PROJ/src" "$BCTX/"
cp "$(command -v uv)" "$BCTX/uv"
UV_VERSION=$(uv --version)
PYFILE=src/e2e_app/__init__.py
DEPS=$(awk '/^\[\[package\]\]/ { n++ } END { print n - 1 }' "$PROJ/uv.lock")

cat >"$BCTX/Dockerfile" <<'EOF'
FROM localhost/imgbuild-pybench-base:latest
COPY uv /usr/local/bin/uv
ENV VIRTUAL_ENV=/opt/venv \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON=/usr/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_LINK_MODE=copy \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN SSL_CERT_FILE=/etc/ssl/host-ca.crt uv sync --locked --no-dev --no-install-project
COPY src ./src
RUN SSL_CERT_FILE=/etc/ssl/host-ca.crt uv sync --locked --no-dev --no-editable
ENTRYPOINT ["/opt/venv/bin/e2e-app"]
EOF

# ------------------------------------------------------------- buildah

BUILDAH_VERSION=$(buildah --version | head -1)
BTPL="$BENCH_DIR/buildah-base"   # storage holding only the base
BROOT="$BENCH_DIR/buildah/root"
BRUN="$BENCH_DIR/buildah/runroot"
bah() { buildah --storage-driver vfs --root "$BROOT" --runroot "$BRUN" "$@"; }
if [[ ! -f $BTPL/stamp || $(<"$BTPL/stamp") != "$BASE_LAYOUT $(sha256sum "$BASE_LAYOUT/index.json")" ]]; then
    log "importing the base into buildah storage (once)"
    rm -rf "$BTPL"
    mkdir -p "$BTPL"
    id=$(buildah --storage-driver vfs --root "$BTPL/root" --runroot "$BTPL/runroot" \
        pull -q "oci:$BASE_LAYOUT:latest")
    buildah --storage-driver vfs --root "$BTPL/root" --runroot "$BTPL/runroot" \
        tag "$id" localhost/imgbuild-pybench-base:latest
    printf '%s\n' "$BASE_LAYOUT $(sha256sum "$BASE_LAYOUT/index.json")" >"$BTPL/stamp"
fi
fresh_buildah() {
    rm -rf "$BENCH_DIR/buildah"
    mkdir -p "$BRUN"
    cp -a "$BTPL/root" "$BROOT"
}
UVC_B="$BENCH_DIR/uv-cache-buildah"
UVC_I="$BENCH_DIR/uv-cache-imgbuild"
CACHE_I="$BENCH_DIR/imgbuild-cache"
OUT_I="$BENCH_DIR/imgbuild-out"

run_buildah() { # LOGNAME
    mkdir -p "$UVC_B"
    bah bud --isolation chroot --layers --pull=false -t imgbuild-pybench-app:latest \
        --volume "$UVC_B:/root/.cache/uv" \
        --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/host-ca.crt:ro \
        -f "$BCTX/Dockerfile" "$BCTX" >"$LOGS/$1.log" 2>&1
}
run_imgbuild() { # LOGNAME
    UV_CACHE_DIR=$UVC_I "$IMGBUILD" build "$PROJ" --cache-dir "$CACHE_I" \
        --output "oci:$OUT_I" --format json -q >"$LOGS/$1.json" 2>"$LOGS/$1.log"
}

declare -A TIMES=() FAILED=()
# timed ROW LOGNAME CMD...: appends the seconds to TIMES[ROW]
timed() {
    local row=$1 name=$2 t0 t1
    shift 2
    sync # start every run with no dirty pages from the previous one
    t0=$(now_ns)
    if "$@" "$name"; then
        t1=$(now_ns)
        TIMES[$row]+="$(secs "$t0" "$t1") "
        log "$name: $(secs "$t0" "$t1") s"
    else
        FAILED[$row]=1
        log "$name: FAILED (see $LOGS/$name.log)"
        tail -n 5 "$LOGS/$name.log" >&2 || true
    fi
}

edit_source() { # N
    local line="GREETING = \"hello from e2e-app (edit $1)\""
    for root in "$PROJ" "$BCTX"; do
        sed -i "s|^GREETING = .*|$line|" "$root/$PYFILE"
    done
}

for i in $(seq 1 "$REPEAT"); do
    log "cold $i/$REPEAT"
    rm -rf "$CACHE_I" "$UVC_I" "$OUT_I"
    timed cold_img "cold-imgbuild-$i" run_imgbuild
    fresh_buildah
    rm -rf "$UVC_B"
    timed cold_bah "cold-buildah-$i" run_buildah
done
for i in $(seq 1 "$REPEAT"); do
    log "warm $i/$REPEAT"
    timed warm_img "warm-imgbuild-$i" run_imgbuild
    timed warm_bah "warm-buildah-$i" run_buildah
done
for i in $(seq 1 "$REPEAT"); do
    log "source change $i/$REPEAT"
    edit_source "$i"
    timed src_img "source-imgbuild-$i" run_imgbuild
    timed src_bah "source-buildah-$i" run_buildah
done

# What a source-only change costs at least when the project's wheel is made
# by `uv build --wheel` (imgbuild's way), with the warm uv cache.
run_uv_build() { # LOGNAME
    rm -rf "$BENCH_DIR/uv-build-out"
    (cd "$PROJ" && UV_CACHE_DIR=$UVC_I uv build --wheel -q -o "$BENCH_DIR/uv-build-out" .) >"$LOGS/$1.log" 2>&1
}
for i in $(seq 1 "$REPEAT"); do
    timed uv_build "uv-build-$i" run_uv_build
done

# ------------------------------------------------- both images must work

check_img() {
    local rootfs
    rm -rf "$BENCH_DIR/bundle-img"
    umoci unpack --image "$OUT_I:latest" "$BENCH_DIR/bundle-img" >/dev/null
    rootfs="$BENCH_DIR/bundle-img/rootfs"
    chroot "$rootfs" /opt/venv/bin/e2e-app | head -1
}
check_bah() {
    local rootfs
    rm -rf "$BENCH_DIR/bah-oci" "$BENCH_DIR/bundle-bah"
    bah push -q imgbuild-pybench-app:latest "oci:$BENCH_DIR/bah-oci:latest" >/dev/null
    umoci unpack --image "$BENCH_DIR/bah-oci:latest" "$BENCH_DIR/bundle-bah" >/dev/null
    rootfs="$BENCH_DIR/bundle-bah/rootfs"
    chroot "$rootfs" /opt/venv/bin/e2e-app | head -1
}
WANT="hello from e2e-app (edit $REPEAT)"
RUN_IMG=$([[ -z ${FAILED[src_img]:-} ]] && check_img 2>&1 || echo "n/a")
RUN_BAH=$([[ -z ${FAILED[src_bah]:-} ]] && check_bah 2>&1 || echo "n/a")
log "imgbuild's image says: $RUN_IMG"
log "buildah's image says: $RUN_BAH"
[[ $RUN_IMG == "$WANT" ]] || log "warning: imgbuild's image does not print \"$WANT\""
[[ $RUN_BAH == "$WANT" ]] || log "warning: buildah's image does not print \"$WANT\""
IMG_LAYERS=$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(len(v["images"][0]["platforms"][0]["layers"]))' \
    "$LOGS/source-imgbuild-$REPEAT.json" 2>/dev/null || echo "n/a")
IMG_BUILT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers_built"])' \
    "$LOGS/source-imgbuild-$REPEAT.json" 2>/dev/null || echo "n/a")

# --------------------------------------------------------------- report

cell() { # ROW
    if [[ -n ${FAILED[$1]:-} ]]; then
        echo "failed"
    elif [[ -n ${TIMES[$1]:-} ]]; then
        # shellcheck disable=SC2086
        median ${TIMES[$1]}
    else
        echo "n/a"
    fi
}
ratio() { # BUILDAH IMGBUILD
    if [[ $1 =~ ^[0-9.]+$ && $2 =~ ^[0-9.]+$ ]]; then
        awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f×", a / b; else print "n/a" }'
    else
        echo "n/a"
    fi
}
extreme() { # ROW min|max
    if [[ -n ${FAILED[$1]:-} || -z ${TIMES[$1]:-} ]]; then
        echo "n/a"
    elif [[ $2 == min ]]; then
        # shellcheck disable=SC2086
        printf '%s\n' ${TIMES[$1]} | sort -g | head -1
    else
        # shellcheck disable=SC2086
        printf '%s\n' ${TIMES[$1]} | sort -g | tail -1
    fi
}
row() { # LABEL IMGROW BAHROW TARGET
    local i b
    i=$(cell "$2")
    b=$(cell "$3")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$1" "$i" "$b" "$(ratio "$b" "$i")" \
        "$(ratio "$(extreme "$3" min)" "$(extreme "$2" max)")" "$4"
}
runs() { # ROW
    echo "${TIMES[$1]:-–}" | sed 's/ *$//'
}
TABLE=$(
    echo '| scenario | imgbuild median s | buildah median s | buildah / imgbuild | worst case | target |'
    echo '| --- | ---: | ---: | ---: | ---: | ---: |'
    row 'cold: empty caches, every wheel downloaded' cold_img cold_bah '≥ 5×'
    row 'warm: nothing changed' warm_img warm_bah ''
    row 'source: one .py file changed' src_img src_bah '≥ 20×'
)
UV_BUILD_MEDIAN=$(cell uv_build)

REPORT=$(
    cat <<EOF
# imgbuild vs buildah: a uv project on Debian bookworm

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME")
- imgbuild: ${IMGBUILD_VERSION} (source ${GIT_REV}); ${BUILDAH_VERSION}; ${UV_VERSION}
- reproduce: \`${REPRO}\`
- project: testdata/python-e2e (httpx, pydantic, numpy: ${DEPS} locked packages, plus the
  project's own wheel) on a Debian bookworm minbase + python3 base (mmdebstrap, one layer)
- imgbuild: \`imgbuild build\` of the project's imgbuild.toml (\`uv_project\`, \`install_project = true\`),
  output an OCI layout; ${IMG_LAYERS} layers in the image, ${IMG_BUILT} built by a source-only change
- buildah: \`buildah --storage-driver vfs bud --isolation chroot --layers\` of the usual uv Dockerfile
  (below), output in buildah's storage; the uv cache is a volume, the host's CA bundle is mounted
  for uv's HTTPS
- cold: imgbuild with an empty \`--cache-dir\` and uv cache; buildah with storage holding only the
  base and an empty uv cache. Both download every wheel.
- medians of ${REPEAT} run(s), the two tools side by side in every repetition; \`sync\` before
  every timed run

${TABLE}

"worst case" is buildah's fastest run over imgbuild's slowest.

Runs (s): cold imgbuild $(runs cold_img) / buildah $(runs cold_bah); warm imgbuild
$(runs warm_img) / buildah $(runs warm_bah); source imgbuild $(runs src_img) / buildah $(runs src_bah).

Where the time goes: buildah runs on the vfs storage driver (the only one that works on this
machine); its working container is a full copy of the image's root file system, made at FROM
and removed at the end (~2 s each here), and every cached step still takes 0.5–1.3 s: that is
its warm time. For reference, \`uv build --wheel\` of the project on its own (warm uv cache)
takes ${UV_BUILD_MEDIAN} s median (runs $(runs uv_build)).

After the last run, \`e2e-app\` in imgbuild's image printed \`${RUN_IMG}\` and in buildah's
\`${RUN_BAH}\` (expected \`${WANT}\`).

The Dockerfile:

\`\`\`dockerfile
$(cat "$BCTX/Dockerfile")
\`\`\`
EOF
)

printf '%s\n' "$REPORT" >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
echo
printf '%s\n' "$TABLE"
log "report written to $RESULTS"
