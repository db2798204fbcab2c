#!/usr/bin/env bash
# End-to-end benchmark: imgbuild layer builds against tar + gzip/pigz/zstd
# pipelines on a large generated tree, and imgbuild vs buildah no-op rebuilds
# on a project-sized tree.
#
# Usage:  bash benches/e2e.sh
# Quick:  TREE_MB=50 TREE_FILES=2000 REPEAT=1 bash benches/e2e.sh
#
# Environment (defaults in brackets):
#   BENCH_DIR     work dir for trees, outputs, buildah storage [/tmp/imgbuild-bench]
#   REPEAT        repetitions of each cold-build row, median reported [3]
#   TREE_FILES    files in the big tree [50000]
#   TREE_MB       size of the big tree in MB (10^6 bytes) [1000]
#   PROJ_FILES    files in the project tree (no-op rebuilds) [10000]
#   PROJ_MB       size of the project tree in MB [100]
#   SEED          generator seed [20240601]
#   NOOP_WARMUP   hyperfine warmup runs for the imgbuild no-op rebuild [2]
#   NOOP_RUNS     hyperfine runs for the imgbuild no-op rebuild [20]
#   BUILDAH_RUNS  timed buildah no-op rebuilds [3]
#   SKIP_BUILD    1 = do not run `cargo build --release` [0]
#   IMGBUILD      imgbuild binary [target/release/imgbuild]
#   RESULTS       Markdown report written at the end [benches/results.md]
#
# Trees are generated once into BENCH_DIR and reused while their parameters
# (and the generator) are unchanged. `rm -rf "$BENCH_DIR"` removes everything.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GEN="$REPO/benches/gen_tree.py"

# remember the settings given on the command line, for the reproduce line
CONFIG_VARS=(BENCH_DIR REPEAT TREE_FILES TREE_MB PROJ_FILES PROJ_MB SEED NOOP_WARMUP
    NOOP_RUNS BUILDAH_RUNS SKIP_BUILD IMGBUILD)
REPRO=""
for v in "${CONFIG_VARS[@]}"; do
    if [[ -n ${!v+x} ]]; then
        REPRO+="$v=$(printf '%q' "${!v}") "
    fi
done
REPRO+="bash benches/e2e.sh"

BENCH_DIR=${BENCH_DIR:-/tmp/imgbuild-bench}
REPEAT=${REPEAT:-3}
TREE_FILES=${TREE_FILES:-50000}
TREE_MB=${TREE_MB:-1000}
PROJ_FILES=${PROJ_FILES:-10000}
PROJ_MB=${PROJ_MB:-100}
SEED=${SEED:-20240601}
NOOP_WARMUP=${NOOP_WARMUP:-2}
NOOP_RUNS=${NOOP_RUNS:-20}
BUILDAH_RUNS=${BUILDAH_RUNS:-3}
SKIP_BUILD=${SKIP_BUILD:-0}
IMGBUILD=${IMGBUILD:-$REPO/target/release/imgbuild}
RESULTS=${RESULTS:-$REPO/benches/results.md}

log() { printf '[e2e] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in tar gzip pigz zstd sha256sum hyperfine python3 awk find; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) not found"
HAVE_BUILDAH=1
command -v buildah >/dev/null || { HAVE_BUILDAH=0; log "buildah not found: its row is skipped"; }

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
RUNS="$BENCH_DIR/runs"
rm -rf "$RUNS"
mkdir -p "$RUNS"
trap 'rm -rf "$RUNS/out" "$RUNS/cache"' EXIT

# ---------------------------------------------------------------- helpers

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'; }

median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) exit; if (NR % 2) printf "%.4f\n", a[(NR + 1) / 2];
              else printf "%.4f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

tree_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { printf "%d", s }'; }

# ------------------------------------------------------------- imgbuild

IMGBUILD_OK=1
if [[ $SKIP_BUILD != 1 ]]; then
    log "building imgbuild (cargo build --release)"
    if ! (cd "$REPO" && cargo build --release >&2); then
        log "cargo build failed: imgbuild rows are skipped"
        IMGBUILD_OK=0
    fi
fi
if [[ $IMGBUILD_OK == 1 && ! -x $IMGBUILD ]]; then
    log "$IMGBUILD not found: imgbuild rows are skipped"
    IMGBUILD_OK=0
fi
IMGBUILD_VERSION="n/a"
if [[ $IMGBUILD_OK == 1 ]]; then
    IMGBUILD_VERSION=$("$IMGBUILD" --version 2>/dev/null | head -1 || true)
    IMGBUILD_VERSION=${IMGBUILD_VERSION:-unknown}
fi
GIT_REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)

# ------------------------------------------------------------------ trees

# ensure_tree NAME FILES MB: BENCH_DIR/NAME/{tree/, imgbuild.toml, Dockerfile}
ensure_tree() {
    local name=$1 files=$2 mb=$3
    local ctx="$BENCH_DIR/$name"
    local stamp
    stamp="files=$files mb=$mb seed=$SEED gen=$(sha256sum "$GEN" | cut -c1-16)"
    mkdir -p "$ctx"
    if [[ -d $ctx/tree && -f $ctx/tree.stamp && $(<"$ctx/tree.stamp") == "$stamp" ]]; then
        log "reusing $ctx/tree ($stamp)"
    else
        rm -rf "$ctx/tree" "$ctx/tree.partial" "$ctx/tree.stamp"
        log "generating $ctx/tree ($stamp)"
        local t0 t1
        t0=$(now_ns)
        python3 "$GEN" "$ctx/tree.partial" --files "$files" --total-mb "$mb" --seed "$SEED"
        t1=$(now_ns)
        mv "$ctx/tree.partial" "$ctx/tree"
        printf '%s\n' "$stamp" >"$ctx/tree.stamp"
        log "generated in $(secs "$t0" "$t1") s"
    fi
    write_if_changed "$ctx/imgbuild.toml" <<'EOF'
[images.bench]
base = "scratch"
tag = "latest"
[[images.bench.layers]]
source_folder = "tree"
dst = "/data"
copy_contents_only = true
EOF
    write_if_changed "$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY tree/ /data/
EOF
}

# keep mtimes stable so that no-op rebuilds stay no-ops across script runs
write_if_changed() {
    local dst=$1 tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if [[ -f $dst ]] && cmp -s "$tmp" "$dst"; then
        rm -f "$tmp"
    else
        mv "$tmp" "$dst"
        chmod 644 "$dst"
    fi
}

# read every file once so all rows start from the same (warm) page cache
warm_cache() { tar -cf - -C "$1" . | cat >/dev/null; }

ensure_tree big "$TREE_FILES" "$TREE_MB"
ensure_tree proj "$PROJ_FILES" "$PROJ_MB"
BIG="$BENCH_DIR/big"
PROJ="$BENCH_DIR/proj"
BIG_BYTES=$(tree_bytes "$BIG/tree")
PROJ_BYTES=$(tree_bytes "$PROJ/tree")
describe_tree() {
    local t=$1/tree
    printf '%s files, %s symlinks, %s dirs, %s bytes' \
        "$(find "$t" -type f | wc -l)" "$(find "$t" -type l | wc -l)" \
        "$(find "$t" -type d | wc -l)" "$2"
}
BIG_DESC=$(describe_tree "$BIG" "$BIG_BYTES")
PROJ_DESC=$(describe_tree "$PROJ" "$PROJ_BYTES")
log "big tree: $BIG_DESC"
log "project tree: $PROJ_DESC"

# ----------------------------------------------------- cold layer builds

ROWS=(gzip pigz zstd img_gzip img_zstd)
declare -A LABEL=(
    [gzip]='tar --sort=name \| gzip -1 \| sha256sum'
    [pigz]='tar --sort=name \| pigz -1 -p 2 \| sha256sum'
    [zstd]='tar --sort=name \| zstd -3 -T2 \| sha256sum'
    [img_gzip]='imgbuild build, gzip, cold cache'
    [img_zstd]='imgbuild build --compression zstd, cold cache'
    [noop_img]='imgbuild no-op rebuild (project tree)'
    [noop_buildah]='buildah bud --layers no-op rebuild (project tree)'
)
declare -A REF=(
    [gzip]=img_gzip [pigz]=img_gzip [zstd]=img_zstd
    [img_gzip]=img_gzip [img_zstd]=img_zstd
    [noop_img]=noop_img [noop_buildah]=noop_img
)
declare -A TIMES=()   # row -> space separated seconds
declare -A STATUS=()  # row -> ok | failed | skipped
declare -A MEDIAN=()
declare -A BYTES=()
RSS_GZIP=()
RSS_ZSTD=()

TAR="tar --sort=name -cf - -C $(printf '%q' "$BIG/tree") ."
declare -A PIPE=(
    [gzip]="$TAR | gzip -1 | sha256sum"
    [pigz]="$TAR | pigz -1 -p 2 | sha256sum"
    [zstd]="$TAR | zstd -3 -T2 | sha256sum"
)

for r in "${ROWS[@]}"; do
    STATUS[$r]=ok
    BYTES[$r]=$BIG_BYTES
done
if [[ $IMGBUILD_OK != 1 ]]; then
    STATUS[img_gzip]=skipped
    STATUS[img_zstd]=skipped
fi

# run_imgbuild ROW REP: one cold build with a fresh output and cache dir
run_imgbuild() {
    local row=$1 rep=$2 out="$RUNS/out" cache="$RUNS/cache" extra=()
    [[ $row == img_zstd ]] && extra=(--compression zstd)
    rm -rf "$out" "$cache"
    mkdir -p "$cache"
    sync
    local t0 t1 rc=0
    t0=$(now_ns)
    /usr/bin/time -v -o "$RUNS/$row.$rep.time" \
        "$IMGBUILD" build "$BIG" --output "oci:$out" --cache-dir "$cache" "${extra[@]}" \
        >"$RUNS/$row.$rep.log" 2>&1 || rc=$?
    t1=$(now_ns)
    if [[ $rc == 0 && ! -f $out/index.json ]]; then
        echo "(exit 0 but no $out/index.json)" >>"$RUNS/$row.$rep.log"
        rc=missing-output
    fi
    if [[ $rc != 0 ]]; then
        log "$row: imgbuild failed ($rc), row skipped; last lines of its output:"
        tail -n 15 "$RUNS/$row.$rep.log" | sed 's/^/    /' >&2
        STATUS[$row]=failed
        return 0
    fi
    local s kb
    s=$(secs "$t0" "$t1")
    TIMES[$row]+="$s "
    kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$RUNS/$row.$rep.time")
    if [[ $row == img_gzip ]]; then RSS_GZIP+=("$kb"); else RSS_ZSTD+=("$kb"); fi
    log "$row rep $rep: $s s, peak RSS $((kb / 1024)) MiB, output $(du -sm "$out" | cut -f1) MiB"
    rm -rf "$out" "$cache"
}

run_pipe() {
    local row=$1 rep=$2 t0 t1 rc=0 s
    sync
    t0=$(now_ns)
    bash -c "set -o pipefail; ${PIPE[$row]}" >"$RUNS/$row.$rep.sha" 2>"$RUNS/$row.$rep.log" || rc=$?
    t1=$(now_ns)
    if [[ $rc != 0 ]]; then
        log "$row failed (exit $rc):"
        sed 's/^/    /' "$RUNS/$row.$rep.log" >&2
        STATUS[$row]=failed
        return 0
    fi
    s=$(secs "$t0" "$t1")
    TIMES[$row]+="$s "
    log "$row rep $rep: $s s"
}

log "warming the page cache with the big tree"
warm_cache "$BIG/tree"
for ((rep = 1; rep <= REPEAT; rep++)); do
    for row in "${ROWS[@]}"; do
        [[ ${STATUS[$row]} == ok ]] || continue
        case $row in
            img_*) run_imgbuild "$row" "$rep" ;;
            *) run_pipe "$row" "$rep" ;;
        esac
    done
done

# -------------------------------------------------------- no-op rebuilds

hyperfine_median() {
    python3 -c 'import json, sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"
}

STATUS[noop_img]=skipped
STATUS[noop_buildah]=skipped
BYTES[noop_img]=$PROJ_BYTES
BYTES[noop_buildah]=$PROJ_BYTES
NOOP="$BENCH_DIR/noop"
warm_cache "$PROJ/tree"

if [[ $IMGBUILD_OK == 1 ]]; then
    rm -rf "$NOOP"
    mkdir -p "$NOOP/cache"
    IMG_NOOP_CMD=("$IMGBUILD" build "$PROJ" --output "oci:$NOOP/out" --cache-dir "$NOOP/cache")
    log "imgbuild: warm build of the project tree"
    t0=$(now_ns)
    if "${IMG_NOOP_CMD[@]}" >"$RUNS/noop_img.warm.log" 2>&1 && [[ -f $NOOP/out/index.json ]]; then
        log "imgbuild: warm build took $(secs "$t0" "$(now_ns)") s"
        log "imgbuild: no-op rebuilds (hyperfine --warmup $NOOP_WARMUP --runs $NOOP_RUNS)"
        if hyperfine -N --style basic --warmup "$NOOP_WARMUP" --runs "$NOOP_RUNS" \
            --export-json "$NOOP/imgbuild.json" --command-name 'imgbuild no-op' \
            "$(printf '%q ' "${IMG_NOOP_CMD[@]}")" >&2; then
            MEDIAN[noop_img]=$(hyperfine_median "$NOOP/imgbuild.json")
            STATUS[noop_img]=ok
        else
            log "imgbuild no-op rebuild failed"
            STATUS[noop_img]=failed
        fi
    else
        log "imgbuild warm build failed; last lines of its output:"
        tail -n 15 "$RUNS/noop_img.warm.log" | sed 's/^/    /' >&2
        STATUS[noop_img]=failed
    fi
fi

BUILDAH_VERSION="n/a"
if [[ $HAVE_BUILDAH == 1 ]]; then
    BUILDAH_VERSION=$(buildah --version | head -1)
    BROOT="$BENCH_DIR/buildah/root"
    BRUN="$BENCH_DIR/buildah/runroot"
    BUILDAH=(buildah --storage-driver vfs --root "$BROOT" --runroot "$BRUN")
    # start from empty storage so that the warm build below is the first one
    "${BUILDAH[@]}" rm --all >/dev/null 2>&1 || true
    "${BUILDAH[@]}" rmi --all --force >/dev/null 2>&1 || true
    rm -rf "$BENCH_DIR/buildah"
    mkdir -p "$BROOT" "$BRUN" "$NOOP"
    BUD_CMD=("${BUILDAH[@]}" bud --isolation chroot --layers -t imgbuild-bench-proj:latest
        -f "$PROJ/Dockerfile" "$PROJ")
    log "buildah: warm build of the project tree"
    t0=$(now_ns)
    if "${BUD_CMD[@]}" >"$RUNS/noop_buildah.warm.log" 2>&1; then
        log "buildah: warm build took $(secs "$t0" "$(now_ns)") s"
        log "buildah: no-op rebuilds (hyperfine --runs $BUILDAH_RUNS)"
        if hyperfine -N --style basic --runs "$BUILDAH_RUNS" \
            --export-json "$NOOP/buildah.json" --command-name 'buildah no-op' \
            "$(printf '%q ' "${BUD_CMD[@]}")" >&2; then
            MEDIAN[noop_buildah]=$(hyperfine_median "$NOOP/buildah.json")
            STATUS[noop_buildah]=ok
        else
            log "buildah no-op rebuild failed"
            STATUS[noop_buildah]=failed
        fi
    else
        log "buildah warm build failed; last lines of its output:"
        tail -n 15 "$RUNS/noop_buildah.warm.log" | sed 's/^/    /' >&2
        STATUS[noop_buildah]=failed
    fi
fi

# ----------------------------------------------------------------- report

for row in "${ROWS[@]}"; do
    if [[ ${STATUS[$row]} == ok && -n ${TIMES[$row]:-} ]]; then
        # shellcheck disable=SC2086
        MEDIAN[$row]=$(median ${TIMES[$row]})
    fi
done

fmt_row() {
    local row=$1 med mbs ratio ref
    med=${MEDIAN[$row]:-}
    if [[ -z $med ]]; then
        printf '| %s | %s | – | – |\n' "${LABEL[$row]}" "${STATUS[$row]} (see log)"
        return
    fi
    mbs=$(awk -v b="${BYTES[$row]}" -v s="$med" 'BEGIN { printf "%.1f", b / 1e6 / s }')
    ref=${MEDIAN[${REF[$row]}]:-}
    if [[ -n $ref ]]; then
        ratio=$(awk -v a="$med" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')
    else
        ratio="n/a"
    fi
    printf '| %s | %.3f | %s | %s |\n' "${LABEL[$row]}" "$med" "$mbs" "$ratio"
}

rss_line() {
    local name=$1; shift
    if (($# == 0)); then
        printf -- '- peak RSS, imgbuild %s cold build: n/a\n' "$name"
        return
    fi
    local med max
    med=$(median "$@")
    max=$(printf '%s\n' "$@" | sort -g | tail -1)
    printf -- '- peak RSS, imgbuild %s cold build: **%.1f MiB** median (max %.1f MiB) over %d run(s)\n' \
        "$name" "$(awk -v k="$med" 'BEGIN { print k / 1024 }')" \
        "$(awk -v k="$max" 'BEGIN { print k / 1024 }')" "$#"
}

TABLE=$(
    echo '| what | median s | MB/s | ratio |'
    echo '| --- | ---: | ---: | ---: |'
    for row in "${ROWS[@]}" noop_img noop_buildah; do fmt_row "$row"; done
)
RSS=$(
    rss_line gzip "${RSS_GZIP[@]}"
    rss_line zstd "${RSS_ZSTD[@]}"
)

REPORT=$(
    cat <<EOF
# imgbuild end-to-end benchmark

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME")
- imgbuild: ${IMGBUILD_VERSION} (source ${GIT_REV})
- reproduce: \`${REPRO}\`
- big tree (cold builds): ${BIG_DESC}
- project tree (no-op rebuilds): ${PROJ_DESC}
- cold rows: median of ${REPEAT} run(s), rows interleaved, warm page cache; imgbuild gets a fresh
  empty \`--cache-dir\` and a fresh \`--output oci:DIR\` every run
- no-op rows: after one warm build, imgbuild: \`hyperfine --warmup ${NOOP_WARMUP} --runs ${NOOP_RUNS}\`,
  buildah (vfs, chroot isolation, \`--layers\`): \`hyperfine --runs ${BUILDAH_RUNS}\`; medians

${TABLE}

${RSS}

MB/s = regular-file bytes of the tree (10^6 bytes) / median seconds. ratio = median time /
median time of the matching imgbuild row (gzip and pigz vs imgbuild gzip, zstd vs imgbuild zstd,
buildah vs imgbuild no-op): above 1 means slower than imgbuild. The tar rows only hash the
compressed stream; imgbuild writes a complete OCI layout to disk.

Tools: $(tar --version | head -1); gzip $(gzip --version | head -1 | awk '{ print $2 }'); $(pigz --version 2>&1 | head -1); zstd $(zstd --version | grep -o 'v[0-9.]*' | head -1); $(hyperfine --version); ${BUILDAH_VERSION}.
EOF
)

printf '%s\n' "$REPORT" >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
echo
printf '%s\n\n%s\n' "$TABLE" "$RSS"
log "report written to $RESULTS"
