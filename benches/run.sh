#!/usr/bin/env bash
# RUN step benchmark: imgbuild's namespace sandbox against buildah's chroot
# isolation, on the same Debian bookworm + python3 base.
#
# Usage:  bash benches/run.sh          (as root)
# Quick:  REPEAT=1 bash benches/run.sh
#
# Scenarios, each run REPEAT times with the two tools side by side:
#   noop     an image of the base plus one `RUN true` whose text changes every
#            repetition (a cache miss), the base already in each tool's store:
#            what one step costs beyond the command itself. imgbuild's root
#            filesystem cache is warm (the steady state of a CI runner); a
#            separate row gives imgbuild with an empty store.
#   spawn    one step that starts 2,000 processes and walks /usr (system
#            calls by the thousand), contained (the default: capabilities,
#            seccomp filter, masked /proc) and with `security = "insecure"`
#            (`--allow security.insecure`), side by side with buildah: what
#            containment costs a step.
#   apt      `apt-get install jq` in one step, from empty caches on both
#            sides (imgbuild: empty store; buildah: storage with only the
#            base), so both download the lists and packages.
#
# Environment (defaults in brackets):
#   BENCH_DIR     work dir [/tmp/imgbuild-runbench]
#   REPEAT        repetitions, median reported [5]
#   BASE_LAYOUT   OCI layout (tag latest) of the base [the tests' cached one
#                 under target/test-cache; run `cargo test --test run` once]
#   SKIP_BUILD    1 = do not run `cargo build --release` [0]
#   IMGBUILD      imgbuild binary [target/release/imgbuild]
#   RESULTS       Markdown report [benches/run-results.md]
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=${BENCH_DIR:-/tmp/imgbuild-runbench}
REPEAT=${REPEAT:-5}
SKIP_BUILD=${SKIP_BUILD:-0}
IMGBUILD=${IMGBUILD:-$REPO/target/release/imgbuild}
RESULTS=${RESULTS:-$REPO/benches/run-results.md}
BASE_LAYOUT=${BASE_LAYOUT:-$REPO/target/test-cache/debian-python-base-bookworm-python3-v1}

log() { printf '[run-bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in buildah awk; do command -v "$tool" >/dev/null || die "$tool not found"; done
[[ $(id -u) -eq 0 ]] || die "run as root (buildah's chroot isolation)"
[[ -f $BASE_LAYOUT/index.json ]] || die "no base at $BASE_LAYOUT (run: cargo test --test run)"
BASE_LAYOUT=$(cd "$BASE_LAYOUT" && pwd)

if [[ $SKIP_BUILD != 1 ]]; then
    log "building imgbuild (cargo build --release)"
    (cd "$REPO" && cargo build --release >&2)
fi
[[ -x $IMGBUILD ]] || die "$IMGBUILD not found"

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

# buildah storage holding only the base, copied fresh where a run needs it.
BTPL="$BENCH_DIR/buildah-base"
BROOT="$BENCH_DIR/buildah/root"
BRUN="$BENCH_DIR/buildah/runroot"
bah() { buildah --storage-driver vfs --root "$BROOT" --runroot "$BRUN" "$@"; }
if [[ ! -f $BTPL/stamp || $(<"$BTPL/stamp") != "$(sha256sum "$BASE_LAYOUT/index.json")" ]]; then
    log "importing the base into buildah storage (once)"
    rm -rf "$BTPL"
    mkdir -p "$BTPL"
    id=$(buildah --storage-driver vfs --root "$BTPL/root" --runroot "$BTPL/runroot" \
        pull -q "oci:$BASE_LAYOUT:latest")
    buildah --storage-driver vfs --root "$BTPL/root" --runroot "$BTPL/runroot" \
        tag "$id" localhost/imgbuild-runbench-base:latest
    sha256sum "$BASE_LAYOUT/index.json" >"$BTPL/stamp"
fi
fresh_buildah() {
    rm -rf "$BENCH_DIR/buildah"
    mkdir -p "$BRUN"
    cp -a "$BTPL/root" "$BROOT"
}

CTX="$BENCH_DIR/ctx"
DEF="$BENCH_DIR/def"
CACHE_I="$BENCH_DIR/imgbuild-cache"
OUT_I="$BENCH_DIR/imgbuild-out"
mkdir -p "$CTX" "$DEF"

write_both() { # RUN-COMMAND [SECURITY]
    printf 'FROM localhost/imgbuild-runbench-base:latest\nRUN %s\n' "$1" >"$CTX/Dockerfile"
    cat >"$DEF/imgbuild.toml" <<EOF
[images.bench]
base = "oci:$BASE_LAYOUT:latest"

[[images.bench.layers]]
commands = [$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g; s/.*/"&"/')]
security = "${2:-sandbox}"
EOF
}
write_apt() {
    printf 'FROM localhost/imgbuild-runbench-base:latest\nRUN apt-get update && apt-get install -y --no-install-recommends jq\n' >"$CTX/Dockerfile"
    cat >"$DEF/imgbuild.toml" <<EOF
[images.bench]
base = "oci:$BASE_LAYOUT:latest"

[[images.bench.layers]]
apt_packages = ["jq"]
EOF
}
run_imgbuild() { "$IMGBUILD" build "$DEF" --cache-dir "$CACHE_I" --output "oci:$OUT_I" -q --allow security.insecure >"$LOGS/$1.log" 2>&1; }
run_buildah() { bah bud --isolation chroot --layers --pull=false -t bench:latest -f "$CTX/Dockerfile" "$CTX" >"$LOGS/$1.log" 2>&1; }

declare -A TIMES=()
timed() { # ROW NAME CMD...
    local row=$1 name=$2 t0 t1
    shift 2
    sync
    t0=$(now_ns)
    "$@" "$name" || { tail -n 20 "$LOGS/$name.log" >&2; die "$name failed"; }
    t1=$(now_ns)
    TIMES[$row]+="$(secs "$t0" "$t1") "
    log "$name: $(secs "$t0" "$t1") s"
}

# Warm-up: imgbuild's root filesystem cache and buildah's storage.
rm -rf "$CACHE_I" "$OUT_I"
write_both "true # warm-up"
run_imgbuild warmup-imgbuild
fresh_buildah
run_buildah warmup-buildah

for i in $(seq 1 "$REPEAT"); do
    write_both "true # run $i $$"
    timed noop_img "noop-imgbuild-$i" run_imgbuild
    timed noop_bah "noop-buildah-$i" run_buildah
    rm -rf "$BENCH_DIR/cold-cache"
    cold() { "$IMGBUILD" build "$DEF" --cache-dir "$BENCH_DIR/cold-cache" --output "oci:$OUT_I" -q >"$LOGS/$1.log" 2>&1; }
    timed noop_img_cold "noop-imgbuild-cold-$i" cold
done
SPAWN='i=0; while [ $i -lt 2000 ]; do /bin/true; i=$((i+1)); done; find /usr -xdev >/dev/null'
for i in $(seq 1 "$REPEAT"); do
    write_both "$SPAWN # run $i $$"
    timed spawn_img "spawn-imgbuild-$i" run_imgbuild
    write_both "$SPAWN # insecure run $i $$" insecure
    timed spawn_ins "spawn-imgbuild-insecure-$i" run_imgbuild
    write_both "$SPAWN # run $i $$"
    timed spawn_bah "spawn-buildah-$i" run_buildah
done
write_apt
for i in $(seq 1 "$REPEAT"); do
    rm -rf "$CACHE_I" "$OUT_I"
    timed apt_img "apt-imgbuild-$i" run_imgbuild
    fresh_buildah
    timed apt_bah "apt-buildah-$i" run_buildah
done
# The same with imgbuild's apt cache mounts warm (lists and .debs kept in
# its store), the usual case on a CI runner.
for i in $(seq 1 "$REPEAT"); do
    rm -rf "$CACHE_I/steps" "$OUT_I"
    timed apt_img_warm "apt-imgbuild-warm-$i" run_imgbuild
done

cell() { median ${TIMES[$1]}; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b / a }'; }
NI=$(cell noop_img)
NB=$(cell noop_bah)
NC=$(cell noop_img_cold)
AI=$(cell apt_img)
AB=$(cell apt_bah)
AW=$(cell apt_img_warm)
SI=$(cell spawn_img)
SN=$(cell spawn_ins)
SB=$(cell spawn_bah)
REPORT=$(
    cat <<EOF
# RUN steps: imgbuild vs buildah (chroot isolation)

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC'); nproc=$(nproc); $(buildah --version | head -1); imgbuild $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
- base: Debian bookworm minbase + python3 (mmdebstrap), one layer
- reproduce: \`bash benches/run.sh\` (REPEAT=$REPEAT), medians of interleaved runs, whole processes

| scenario | imgbuild s | buildah s | imgbuild / buildah | target |
| --- | ---: | ---: | ---: | --- |
| one no-op RUN step (cache miss), base in store | $NI | $NB | $(ratio "$NB" "$NI") | ≤ 0.33 |
| the same, imgbuild with an empty store | $NC | $NB | $(ratio "$NB" "$NC") | |
| 2,000 processes + a walk of /usr, contained (default) | $SI | $SB | $(ratio "$SB" "$SI") | |
| the same, \`security = "insecure"\` | $SN | $SB | $(ratio "$SB" "$SN") | |
| apt-get install jq, empty caches | $AI | $AB | $(ratio "$AB" "$AI") | ≤ 1 |
| apt-get install jq, imgbuild's apt cache warm | $AW | $AB | $(ratio "$AB" "$AW") | |

Runs (s): noop imgbuild ${TIMES[noop_img]}/ buildah ${TIMES[noop_bah]}/ imgbuild empty store ${TIMES[noop_img_cold]}; spawn imgbuild ${TIMES[spawn_img]}/ insecure ${TIMES[spawn_ins]}/ buildah ${TIMES[spawn_bah]}; apt imgbuild ${TIMES[apt_img]}/ buildah ${TIMES[apt_bah]}/ imgbuild warm ${TIMES[apt_img_warm]}
EOF
)
printf '%s\n' "$REPORT" | tee "$RESULTS"
