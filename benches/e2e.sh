#!/usr/bin/env bash
# End-to-end benchmark: imgbuild layer builds against tar + gzip/pigz/zstd
# pipelines on a large generated tree and on a tree of 200k tiny files, each
# row with its peak RSS; no-op rebuilds of a project-sized tree (imgbuild vs
# buildah) and of the tiny-file tree.
#
# Usage:  bash benches/e2e.sh
# Quick:  TREE_MB=50 TREE_FILES=2000 SMALL=40x500 REPEAT=1 bash benches/e2e.sh
#
# Environment (defaults in brackets):
#   BENCH_DIR     work dir for trees, outputs, buildah storage [/tmp/imgbuild-bench]
#   REPEAT        repetitions of each cold-build row, median reported [3]
#   TREE_FILES    files in the big tree [50000]
#   TREE_MB       size of the big tree in MB (10^6 bytes) [1000]
#   SMALL         the tiny-file tree: FOLDERSxFILES [400x500]
#   SMALL_BYTES   average size of its files [40]
#   PROJ_FILES    files in the project tree (no-op rebuilds) [16000]
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
CONFIG_VARS=(BENCH_DIR REPEAT TREE_FILES TREE_MB SMALL SMALL_BYTES PROJ_FILES PROJ_MB SEED NOOP_WARMUP
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
SMALL=${SMALL:-400x500}
SMALL_BYTES=${SMALL_BYTES:-40}
PROJ_FILES=${PROJ_FILES:-16000}
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
trap 'rm -rf "$RUNS/out" "$RUNS/cache" "$RUNS/noop"' EXIT

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

# ensure_tree NAME GEN-ARGS...: BENCH_DIR/NAME/{tree/, imgbuild.toml, Dockerfile}
ensure_tree() {
    local name=$1
    shift
    local ctx="$BENCH_DIR/$name"
    local stamp
    stamp="$* seed=$SEED gen=$(sha256sum "$GEN" | cut -c1-16)"
    mkdir -p "$ctx"
    if [[ -d $ctx/tree && -f $ctx/tree.stamp && $(<"$ctx/tree.stamp") == "$stamp" ]]; then
        log "reusing $ctx/tree ($stamp)"
    else
        rm -rf "$ctx/tree" "$ctx/tree.partial" "$ctx/tree.stamp"
        log "generating $ctx/tree ($stamp)"
        local t0 t1
        t0=$(now_ns)
        python3 "$GEN" "$ctx/tree.partial" "$@" --seed "$SEED"
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

ensure_tree big --files "$TREE_FILES" --total-mb "$TREE_MB"
ensure_tree small --small "$SMALL" --file-bytes "$SMALL_BYTES"
ensure_tree proj --files "$PROJ_FILES" --total-mb "$PROJ_MB"
declare -A TREE_BYTES=() TREE_DESC=()
describe_tree() {
    local t=$1/tree
    printf '%s files, %s symlinks, %s dirs, %s bytes' \
        "$(find "$t" -type f | wc -l)" "$(find "$t" -type l | wc -l)" \
        "$(find "$t" -type d | wc -l)" "$2"
}
for t in big small proj; do
    TREE_BYTES[$t]=$(tree_bytes "$BENCH_DIR/$t/tree")
    TREE_DESC[$t]=$(describe_tree "$BENCH_DIR/$t" "${TREE_BYTES[$t]}")
    log "$t tree: ${TREE_DESC[$t]}"
done

# ----------------------------------------------------- cold layer builds

# Rows are TREE.KIND; every row gets a median time and a median peak RSS.
KINDS=(gzip pigz zstd img_gzip img_zstd)
declare -A KIND_LABEL=(
    [gzip]='tar --sort=name \| gzip -1 \| sha256sum'
    [pigz]='tar --sort=name \| pigz -1 -p 2 \| sha256sum'
    [zstd]='tar --sort=name \| zstd -3 -T2 \| sha256sum'
    [img_gzip]='imgbuild build, gzip, cold cache'
    [img_zstd]='imgbuild build --compression zstd, cold cache'
)
declare -A KIND_REF=([gzip]=img_gzip [pigz]=img_gzip [zstd]=img_zstd
    [img_gzip]=img_gzip [img_zstd]=img_zstd)
declare -A LABEL=() REF=() TREE_OF=()
ROWS=()
for t in big small; do
    for k in "${KINDS[@]}"; do
        ROWS+=("$t.$k")
        LABEL[$t.$k]=${KIND_LABEL[$k]}
        REF[$t.$k]=$t.${KIND_REF[$k]}
        TREE_OF[$t.$k]=$t
    done
done
NOOP_ROWS=(noop_img noop_small noop_buildah)
LABEL[noop_img]='imgbuild no-op rebuild'
LABEL[noop_small]='imgbuild no-op rebuild'
LABEL[noop_buildah]='buildah bud --layers no-op rebuild'
REF[noop_img]=noop_img
REF[noop_small]=noop_small
REF[noop_buildah]=noop_img
TREE_OF[noop_img]=proj
TREE_OF[noop_small]=small
TREE_OF[noop_buildah]=proj

declare -A TIMES=()   # row -> space separated seconds
declare -A RSSKB=()   # row -> space separated peak RSS, KiB
declare -A STATUS=()  # row -> ok | failed | skipped
declare -A MEDIAN=()

for r in "${ROWS[@]}"; do
    STATUS[$r]=ok
done
if [[ $IMGBUILD_OK != 1 ]]; then
    for r in "${ROWS[@]}"; do
        [[ $r == *.img_* ]] && STATUS[$r]=skipped
    done
fi

pipe_cmd() {
    local tree=$1 kind=$2 tar
    tar="tar --sort=name -cf - -C $(printf '%q' "$BENCH_DIR/$tree/tree") ."
    case $kind in
        gzip) echo "$tar | gzip -1 | sha256sum" ;;
        pigz) echo "$tar | pigz -1 -p 2 | sha256sum" ;;
        zstd) echo "$tar | zstd -3 -T2 | sha256sum" ;;
    esac
}

# record ROW REP T0 T1 TIMEFILE: one successful run's time and peak RSS
record() {
    local row=$1 rep=$2 s kb
    s=$(secs "$3" "$4")
    kb=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$5")
    TIMES[$row]+="$s "
    RSSKB[$row]+="$kb "
    log "$row rep $rep: $s s, peak RSS $((kb / 1024)) MiB"
}

# run_imgbuild ROW REP: one cold build with a fresh output and cache dir
run_imgbuild() {
    local row=$1 rep=$2 out="$RUNS/out" cache="$RUNS/cache" extra=()
    local tree=${TREE_OF[$row]}
    [[ $row == *.img_zstd ]] && extra=(--compression zstd)
    rm -rf "$out" "$cache"
    mkdir -p "$cache"
    sync
    local t0 t1 rc=0
    t0=$(now_ns)
    /usr/bin/time -v -o "$RUNS/$row.$rep.time" \
        "$IMGBUILD" build "$BENCH_DIR/$tree" --output "oci:$out" --cache-dir "$cache" "${extra[@]}" \
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
    record "$row" "$rep" "$t0" "$t1" "$RUNS/$row.$rep.time"
    rm -rf "$out" "$cache"
}

run_pipe() {
    local row=$1 rep=$2 t0 t1 rc=0
    sync
    t0=$(now_ns)
    /usr/bin/time -v -o "$RUNS/$row.$rep.time" \
        bash -c "set -o pipefail; $(pipe_cmd "${TREE_OF[$row]}" "${row#*.}")" \
        >"$RUNS/$row.$rep.sha" 2>"$RUNS/$row.$rep.log" || rc=$?
    t1=$(now_ns)
    if [[ $rc != 0 ]]; then
        log "$row failed (exit $rc):"
        sed 's/^/    /' "$RUNS/$row.$rep.log" >&2
        STATUS[$row]=failed
        return 0
    fi
    record "$row" "$rep" "$t0" "$t1" "$RUNS/$row.$rep.time"
}

for t in big small; do
    log "warming the page cache with the $t tree"
    warm_cache "$BENCH_DIR/$t/tree"
    for ((rep = 1; rep <= REPEAT; rep++)); do
        for row in "${ROWS[@]}"; do
            [[ ${TREE_OF[$row]} == "$t" && ${STATUS[$row]} == ok ]] || continue
            case $row in
                *.img_*) run_imgbuild "$row" "$rep" ;;
                *) run_pipe "$row" "$rep" ;;
            esac
        done
    done
done

# -------------------------------------------------------- no-op rebuilds

hyperfine_median() {
    python3 -c 'import json, sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"
}

# noop_imgbuild ROW: a warm build of the row's tree, hyperfine over no-op
# rebuilds, then one more no-op under /usr/bin/time for its peak RSS
noop_imgbuild() {
    local row=$1 tree=${TREE_OF[$1]} dir="$RUNS/noop/$1"
    rm -rf "$dir"
    mkdir -p "$dir/cache"
    local cmd=("$IMGBUILD" build "$BENCH_DIR/$tree" --output "oci:$dir/out" --cache-dir "$dir/cache")
    warm_cache "$BENCH_DIR/$tree/tree"
    log "$row: warm build of the $tree tree"
    local t0
    t0=$(now_ns)
    if ! "${cmd[@]}" >"$RUNS/$row.warm.log" 2>&1 || [[ ! -f $dir/out/index.json ]]; then
        log "$row: warm build failed; last lines of its output:"
        tail -n 15 "$RUNS/$row.warm.log" | sed 's/^/    /' >&2
        STATUS[$row]=failed
        return 0
    fi
    log "$row: warm build took $(secs "$t0" "$(now_ns)") s"
    log "$row: no-op rebuilds (hyperfine --warmup $NOOP_WARMUP --runs $NOOP_RUNS)"
    if ! hyperfine -N --style basic --warmup "$NOOP_WARMUP" --runs "$NOOP_RUNS" \
        --export-json "$RUNS/$row.json" --command-name "$row" \
        "$(printf '%q ' "${cmd[@]}")" >&2; then
        log "$row: no-op rebuild failed"
        STATUS[$row]=failed
        return 0
    fi
    MEDIAN[$row]=$(hyperfine_median "$RUNS/$row.json")
    /usr/bin/time -v -o "$RUNS/$row.time" "${cmd[@]}" >/dev/null 2>&1
    RSSKB[$row]=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$RUNS/$row.time")
    STATUS[$row]=ok
    rm -rf "$dir"
}

for row in "${NOOP_ROWS[@]}"; do
    STATUS[$row]=skipped
done
if [[ $IMGBUILD_OK == 1 ]]; then
    noop_imgbuild noop_img
    noop_imgbuild noop_small
fi

BUILDAH_VERSION="n/a"
NOOP="$BENCH_DIR/noop"
PROJ="$BENCH_DIR/proj"
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
    local row=$1 med mbs ratio ref rss tree=${TREE_OF[$1]}
    med=${MEDIAN[$row]:-}
    if [[ -z $med ]]; then
        printf '| %s | %s | %s | – | – | – |\n' "$tree" "${LABEL[$row]}" "${STATUS[$row]} (see log)"
        return
    fi
    mbs=$(awk -v b="${TREE_BYTES[$tree]}" -v s="$med" 'BEGIN { printf "%.1f", b / 1e6 / s }')
    ref=${MEDIAN[${REF[$row]}]:-}
    if [[ -n $ref ]]; then
        ratio=$(awk -v a="$med" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')
    else
        ratio="n/a"
    fi
    rss="–"
    if [[ -n ${RSSKB[$row]:-} ]]; then
        # shellcheck disable=SC2086
        rss=$(awk -v k="$(median ${RSSKB[$row]})" 'BEGIN { printf "%.0f", k / 1024 }')
    fi
    printf '| %s | %s | %.3f | %s | %s | %s |\n' "$tree" "${LABEL[$row]}" "$med" "$mbs" "$rss" "$ratio"
}

TABLE=$(
    echo '| tree | what | median s | MB/s | peak RSS MiB | ratio |'
    echo '| --- | --- | ---: | ---: | ---: | ---: |'
    for row in "${ROWS[@]}" "${NOOP_ROWS[@]}"; do fmt_row "$row"; done
)

REPORT=$(
    cat <<EOF
# imgbuild end-to-end benchmark

- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')
- machine: nproc=$(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release && echo "$PRETTY_NAME")
- imgbuild: ${IMGBUILD_VERSION} (source ${GIT_REV})
- reproduce: \`${REPRO}\`
- big tree (cold builds): ${TREE_DESC[big]}
- small tree (cold builds, no-op rebuild): ${TREE_DESC[small]}
- proj tree (no-op rebuilds): ${TREE_DESC[proj]}
- cold rows: median of ${REPEAT} run(s), rows interleaved per tree, warm page cache; imgbuild
  gets a fresh empty \`--cache-dir\` and a fresh \`--output oci:DIR\` every run
- no-op rows: after one warm build, imgbuild: \`hyperfine --warmup ${NOOP_WARMUP} --runs ${NOOP_RUNS}\`,
  buildah (vfs, chroot isolation, \`--layers\`): \`hyperfine --runs ${BUILDAH_RUNS}\`; medians
- peak RSS: \`/usr/bin/time -v\` (for a pipeline, its largest process), median over the runs
  (no-op rows: one extra run)

${TABLE}

MB/s = regular-file bytes of the tree (10^6 bytes) / median seconds. ratio = median time /
median time of the matching imgbuild row of the same tree (gzip and pigz vs imgbuild gzip, zstd
vs imgbuild zstd, buildah vs imgbuild no-op): above 1 means slower than imgbuild. The tar rows
only hash the compressed stream; imgbuild writes a complete OCI layout to disk.

Tools: $(tar --version | head -1); gzip $(gzip --version | head -1 | awk '{ print $2 }'); $(pigz --version 2>&1 | head -1); zstd $(zstd --version | grep -o 'v[0-9.]*' | head -1); $(hyperfine --version); ${BUILDAH_VERSION}.
EOF
)

printf '%s\n' "$REPORT" >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
echo
printf '%s\n' "$TABLE"
log "report written to $RESULTS"
