#!/usr/bin/env bash
# Flyte benchmark: an image built by Flyte's SDK through the imgbuild plugin
# (`flyte.build`, image.builder: imgbuild) against the Dockerfile route Flyte
# generates for docker, built by `buildah bud` (vfs, chroot isolation,
# --layers) and pushed with `buildah push`. Both push to Debian's
# docker-registry on 127.0.0.1, onto the same Debian bookworm + python3 base
# in that registry. The image: a uv project's locked dependencies (Flyte's
# default, dependencies only: `uv sync --active --inexact
# --no-install-project` in a RUN step for buildah), WORKDIR /root, and a
# source folder copied without its top folder.
#
# Usage:  bash benches/flyte.sh          (as root; after `cargo test --test flyte`,
#                                        which makes the flyte venv and the base)
#
#   cold     empty imgbuild store / buildah storage holding only the base,
#            no uv cache; a new image name each run, so nothing is in the registry.
#   source   one source file changed, caches warm: Flyte computes a new tag,
#            checks the registry, builds and pushes.
#
# Environment (defaults in brackets):
#   BENCH_DIR [/tmp/imgbuild-flytebench]  REPEAT [3]  SKIP_BUILD [0]
#   FLYTE_VENV [target/test-tools/flyte-2.12.1]  UV [uv on PATH]
#   BASE_LAYOUT [the tests' cached base under target/test-cache]
#   RESULTS [benches/flyte-results.md]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/imgbuild-flytebench}
REPEAT=${REPEAT:-3}
SKIP_BUILD=${SKIP_BUILD:-0}
FLYTE_VENV=${FLYTE_VENV:-$REPO/target/test-tools/flyte-2.12.1}
UV=${UV:-$(command -v uv || echo "$REPO/target/test-tools/uv/bin/uv")}
BASE_LAYOUT=${BASE_LAYOUT:-$REPO/target/test-cache/debian-python-base-bookworm-python3-v1}
RESULTS=${RESULTS:-$REPO/benches/flyte-results.md}

log() { printf '[flyte-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
command -v buildah >/dev/null || die "buildah not found"
command -v docker-registry >/dev/null || die "docker-registry not found"
[[ $(id -u) -eq 0 ]] || die "run as root (buildah's chroot isolation)"
[[ -x $FLYTE_VENV/bin/python ]] || die "no flyte venv at $FLYTE_VENV (run: cargo test --test flyte)"
[[ -x $UV ]] || die "no uv (set UV)"
[[ -f $BASE_LAYOUT/index.json ]] || die "no base at $BASE_LAYOUT (run: cargo test --test flyte)"
if [[ $SKIP_BUILD != 1 ]]; then
    (cd "$REPO" && cargo build --release >&2)
    # From a copy: pip's build writes build/ and *.egg-info beside the sources.
    PLUGIN_COPY=$(mktemp -d)
    cp -r "$REPO/python/imgbuild-flyte" "$PLUGIN_COPY/"
    "$FLYTE_VENV/bin/python" -m pip install -q --no-deps --force-reinstall "$PLUGIN_COPY/imgbuild-flyte"
    rm -rf "$PLUGIN_COPY"
fi
export IMGBUILD_BIN=$REPO/target/release/imgbuild

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR/logs" "$BENCH_DIR/reg"
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$PORT
cat >"$BENCH_DIR/reg/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $BENCH_DIR/reg/data
http:
  addr: $REG
EOF
docker-registry serve "$BENCH_DIR/reg/config.yml" >"$BENCH_DIR/logs/registry.log" 2>&1 &
REG_PID=$!
trap 'kill $REG_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://$REG/v2/" >/dev/null && break; sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci:$BASE_LAYOUT:latest" "docker://$REG/base/python:3.11"
BASE=$REG/base/python:3.11

# The project: a uv project with a realistic dependency set, and sources.
W=$BENCH_DIR/work
mkdir -p "$W/proj/src/demo_pkg" "$W/src/app"
cat >"$W/proj/pyproject.toml" <<'EOF'
[project]
name = "demo-pkg"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["httpx==0.28.1", "pydantic==2.10.6", "pyyaml==6.0.2", "rich==13.9.4"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"
EOF
echo 'VALUE = 1' >"$W/proj/src/demo_pkg/__init__.py"
(cd "$W/proj" && UV_PYTHON_DOWNLOADS=never "$UV" lock --quiet)
echo 'print("app")' >"$W/src/app/main.py"
echo 'X = 1' >"$W/src/app/util.py"
printf 'image:\n  builder: imgbuild\n  registry: %s/flyte\n' "$REG" >"$W/config.yaml"
cat >"$W/driver.py" <<'EOF'
import sys
from pathlib import Path
import flyte

work = Path(sys.argv[1])
flyte.init_from_config(str(work / "config.yaml"), root_dir=work)
img = (
    flyte.Image.from_base(sys.argv[2])
    .clone(name=sys.argv[3], extendable=True, python_version=(3, 11))
    .with_uv_project(work / "proj" / "pyproject.toml")
    .with_workdir("/root")
    .with_source_folder(Path("src"), copy_contents_only=True)
)
print(flyte.build(img).uri)
EOF

# The Dockerfile route: what Flyte's docker builder writes for this image
# (uv copied in rather than taken from its image, the host's CA for uv;
# buildah 1.28 wants absolute mount targets: WORKDIR is / there).
B=$BENCH_DIR/bctx
mkdir -p "$B/uvbin"
cp -r "$W/proj" "$W/src" "$B/"
cp "$UV" "$B/uvbin/uv"
cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$B/uvbin/ca.pem"
cat >"$B/Dockerfile" <<EOF
FROM $BASE
USER root
COPY uvbin/uv /usr/bin/uv
COPY uvbin/ca.pem /etc/host-ca.pem
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy VIRTUALENV=/opt/venv UV_PYTHON=/opt/venv/bin/python SSL_CERT_FILE=/etc/host-ca.pem
RUN if [ ! -f "\$UV_PYTHON" ]; then uv venv \$VIRTUALENV --python=3.11; fi
ENV PATH="/opt/venv/bin:\$PATH"
RUN --mount=type=cache,target=/root/.cache/uv,id=uv --mount=type=bind,target=/uv.lock,src=proj/uv.lock --mount=type=bind,target=/pyproject.toml,src=proj/pyproject.toml VIRTUAL_ENV=/opt/venv uv sync --active --inexact --no-install-project
WORKDIR /root
COPY src .
EOF

BTPL=$BENCH_DIR/buildah-base
BROOT=$BENCH_DIR/buildah/root
BRUN=$BENCH_DIR/buildah/runroot
bah() { buildah --storage-driver vfs --root "$BROOT" --runroot "$BRUN" "$@"; }
log "importing the base into buildah storage"
buildah --storage-driver vfs --root "$BTPL/root" --runroot "$BTPL/runroot" \
    pull -q --tls-verify=false "docker://$BASE" >/dev/null
fresh_buildah() {
    rm -rf "$BENCH_DIR/buildah" /var/tmp/buildah-cache-0 /var/tmp/buildah-cache
    mkdir -p "$BRUN"
    cp -a "$BTPL/root" "$BROOT"
}

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR % 2) printf "%.3f\n", a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
NAME=bench
run_plugin() {
    rm -rf "$W/local-cache"
    (cd "$W" && IMGBUILD_CACHE_DIR=$BENCH_DIR/imgbuild-cache "$FLYTE_VENV/bin/python" driver.py "$W" "$BASE" "$NAME") \
        >"$BENCH_DIR/logs/$1.log" 2>&1
}
run_buildah() {
    bah bud --isolation chroot --layers --tls-verify=false -t "$REG/buildah/$NAME:latest" \
        -f "$B/Dockerfile" "$B" >"$BENCH_DIR/logs/$1.log" 2>&1 &&
        bah push --tls-verify=false "$REG/buildah/$NAME:latest" >>"$BENCH_DIR/logs/$1.log" 2>&1
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
    NAME=cold$i
    rm -rf "$BENCH_DIR/imgbuild-cache"
    timed cold_i "cold-plugin-$i" run_plugin
    fresh_buildah
    timed cold_b "cold-buildah-$i" run_buildah
done
for i in $(seq 1 "$REPEAT"); do
    printf 'print("edit %s")\n' "$i" | tee "$W/src/app/main.py" >"$B/src/app/main.py"
    timed src_i "source-plugin-$i" run_plugin
    timed src_b "source-buildah-$i" run_buildah
done
CI_=$(median ${T[cold_i]}); CB=$(median ${T[cold_b]}); SI=$(median ${T[src_i]}); SB=$(median ${T[src_b]})
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f×", a / b }'; }
REPORT=$(cat <<EOM
# Flyte images: the imgbuild plugin vs Flyte's Dockerfile route built by buildah

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); nproc=$(nproc); $(buildah --version | head -1); flyte $("$FLYTE_VENV/bin/python" -c 'import flyte; print(flyte.__version__)'); imgbuild $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
- image: uv project (httpx, pydantic, pyyaml, rich; dependencies only) + WORKDIR /root + source folder, on Debian bookworm + python3, pushed to docker-registry on 127.0.0.1
- plugin: \`flyte.build\` with image.builder imgbuild (whole Python process: SDK import, existence check, build, push)
- buildah: \`buildah bud --layers\` of the Dockerfile Flyte generates (uv sync in a RUN step) + \`buildah push\`
- reproduce: \`bash benches/flyte.sh\` (REPEAT=$REPEAT), medians of interleaved runs

| scenario | plugin s | buildah s | buildah / plugin |
| --- | ---: | ---: | ---: |
| cold (empty caches, base in the registry) | $CI_ | $CB | $(ratio "$CB" "$CI_") |
| one source file changed, warm caches | $SI | $SB | $(ratio "$SB" "$SI") |

Runs (s): cold plugin ${T[cold_i]}/ buildah ${T[cold_b]}; source plugin ${T[src_i]}/ buildah ${T[src_b]}
EOM
)
printf '%s\n' "$REPORT" | tee "$RESULTS"
