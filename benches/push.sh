#!/usr/bin/env bash
# Push benchmark: imgbuild push vs skopeo copy of a multi-layer image from an
# OCI layout to a local registry (Debian's docker-registry, distribution 2.8),
# cold (empty registry) and warm (everything already there), side by side.
#
# Usage:  bash benches/push.sh
# Smoke:  LAYERS=2 LAYER_MB=20 REPEAT=1 bash benches/push.sh
#
# Environment (defaults in brackets):
#   BENCH_DIR     work dir: source trees, the OCI layout, imgbuild's store,
#                 registry storage while running [/tmp/imgbuild-push-bench]
#   LAYERS        number of layers [5]
#   LAYER_MB      size of each layer's source folder in MB (10^6 bytes) [100]
#   LAYER_FILES   regular files per layer [500]
#   SEED          generator seed of layer 1 (layer i uses SEED+i-1) [20240701]
#   REPEAT        repetitions of the cold and warm rows, median reported [3]
#   WARM_WARMUP   hyperfine warmup runs, warm imgbuild push [1]
#   WARM_RUNS     hyperfine runs, warm imgbuild push [10]
#   SKIP_BUILD    1 = do not run `cargo build --release` [0]
#   IMGBUILD      imgbuild binary [target/release/imgbuild]
#   REGISTRY_BIN  registry binary [docker-registry]
#   RESULTS       Markdown report written at the end [benches/push-results.md]
#
# The image (LAYERS gzip layers built by imgbuild from folders made by
# benches/gen_tree.py, each with its own seed so that no two layers share a
# blob) is built once into BENCH_DIR/layout, with BENCH_DIR/cache as imgbuild's
# store, and reused while its parameters (and the generator) are unchanged.
# The source trees are deleted once the layout is built. Registry storage is a
# fresh temp dir under BENCH_DIR for every cold repetition, removed at exit.
# `rm -rf "$BENCH_DIR"` removes everything.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GEN="$REPO/benches/gen_tree.py"

# remember the settings given on the command line, for the reproduce line
CONFIG_VARS=(BENCH_DIR LAYERS LAYER_MB LAYER_FILES SEED REPEAT WARM_WARMUP WARM_RUNS
    SKIP_BUILD IMGBUILD REGISTRY_BIN)
REPRO=""
for v in "${CONFIG_VARS[@]}"; do
    if [[ -n ${!v+x} ]]; then
        REPRO+="$v=$(printf '%q' "${!v}") "
    fi
done
REPRO+="bash benches/push.sh"

BENCH_DIR=${BENCH_DIR:-/tmp/imgbuild-push-bench}
LAYERS=${LAYERS:-5}
LAYER_MB=${LAYER_MB:-100}
LAYER_FILES=${LAYER_FILES:-500}
SEED=${SEED:-20240701}
REPEAT=${REPEAT:-3}
WARM_WARMUP=${WARM_WARMUP:-1}
WARM_RUNS=${WARM_RUNS:-10}
SKIP_BUILD=${SKIP_BUILD:-0}
IMGBUILD=${IMGBUILD:-$REPO/target/release/imgbuild}
REGISTRY_BIN=${REGISTRY_BIN:-docker-registry}
RESULTS=${RESULTS:-$REPO/benches/push-results.md}

# the targets the report is checked against
TARGET_COLD_SPEEDUP=1.5   # imgbuild cold push at least this much faster than skopeo
TARGET_WARM_S=0.3         # imgbuild warm push at most this many seconds

log() { printf '[push] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for n in LAYERS LAYER_MB LAYER_FILES SEED REPEAT WARM_WARMUP WARM_RUNS; do
    [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a non-negative integer (got '${!n}')"
done
((LAYERS >= 1)) || die "LAYERS must be at least 1"
((REPEAT >= 1)) || die "REPEAT must be at least 1"
((WARM_RUNS >= 1)) || die "WARM_RUNS must be at least 1"

for tool in "$REGISTRY_BIN" skopeo hyperfine python3 curl awk sha256sum; do
    command -v "$tool" >/dev/null || die "$tool not found"
done

# ---------------------------------------------------------------- helpers

now_ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.4f", (b - a) / 1e9 }'; }

median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) exit; if (NR % 2) printf "%.4f\n", a[(NR + 1) / 2];
              else printf "%.4f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

hyperfine_median() {
    python3 -c 'import json, sys; print("%.4f" % json.load(open(sys.argv[1]))["results"][0]["median"])' "$1"
}

# write_if_changed DST < content: keep the file (and its mtime) when unchanged
write_if_changed() {
    local dst=$1 tmp
    tmp=$(mktemp "$dst.XXXXXX")
    cat >"$tmp"
    if [[ -f $dst ]] && cmp -s "$tmp" "$dst"; then
        rm -f "$tmp"
    else
        chmod 644 "$tmp"
        mv "$tmp" "$dst"
    fi
}

# ------------------------------------------------------------- imgbuild

if [[ $SKIP_BUILD != 1 ]]; then
    log "building imgbuild (cargo build --release)"
    (cd "$REPO" && cargo build --release >&2) || die "cargo build --release failed"
fi
[[ -x $IMGBUILD ]] || die "$IMGBUILD not found (build it with cargo build --release)"
IMGBUILD_VERSION=$("$IMGBUILD" --version 2>/dev/null | head -1 || true)
IMGBUILD_VERSION=${IMGBUILD_VERSION:-unknown}
GIT_REV=$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)
SKOPEO_VERSION=$(skopeo --version 2>/dev/null | head -1 || echo unknown)
HYPERFINE_VERSION=$(hyperfine --version 2>/dev/null | head -1 || echo unknown)
REGISTRY_VERSION=$("$REGISTRY_BIN" --version 2>/dev/null | head -1 || echo unknown)

# ------------------------------------------------------------------ image

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
LAYOUT="$BENCH_DIR/layout"
CACHE="$BENCH_DIR/cache"
SRC="$BENCH_DIR/src"
RUNS="$BENCH_DIR/runs"
rm -rf "$RUNS"
mkdir -p "$RUNS"

STAMP="layers=$LAYERS layer_mb=$LAYER_MB layer_files=$LAYER_FILES seed=$SEED gen=$(sha256sum "$GEN" | cut -c1-16)"
if [[ -f $LAYOUT/index.json && -f $BENCH_DIR/layout.stamp && $(<"$BENCH_DIR/layout.stamp") == "$STAMP" ]]; then
    log "reusing $LAYOUT ($STAMP)"
else
    rm -rf "$LAYOUT" "$CACHE" "$SRC" "$BENCH_DIR/layout.stamp"
    mkdir -p "$SRC" "$CACHE"
    log "generating $LAYERS source folders of $LAYER_MB MB in $SRC"
    t0=$(now_ns)
    for ((i = 1; i <= LAYERS; i++)); do
        python3 "$GEN" "$SRC/l$i" --files "$LAYER_FILES" --total-mb "$LAYER_MB" \
            --seed $((SEED + i - 1)) >&2
    done
    log "generated in $(secs "$t0" "$(now_ns)") s"
    {
        printf '[images.big]\nbase = "scratch"\ntag = "v1"\n'
        for ((i = 1; i <= LAYERS; i++)); do
            printf '\n[[images.big.layers]]\nsource_folder = "l%d"\ndst = "/l%d"\n' "$i" "$i"
        done
    } | write_if_changed "$SRC/imgbuild.toml"
    log "building the image into $LAYOUT (store $CACHE)"
    t0=$(now_ns)
    "$IMGBUILD" build "$SRC" --output "oci:$LAYOUT" --cache-dir "$CACHE" -q >&2 \
        || die "imgbuild build failed"
    [[ -f $LAYOUT/index.json ]] || die "imgbuild build made no $LAYOUT/index.json"
    log "built in $(secs "$t0" "$(now_ns)") s"
    printf '%s\n' "$STAMP" >"$BENCH_DIR/layout.stamp"
    # the layout and the store are all the rows need
    rm -rf "$SRC"
fi

# IMAGE_INFO: "<manifest digest> <layers> <compressed bytes> <media type>" of tag v1
IMAGE_INFO=$(python3 - "$LAYOUT" <<'EOF'
import json, os, sys
root = sys.argv[1]
idx = json.load(open(os.path.join(root, "index.json")))
mans = idx.get("manifests", [])
sel = [m for m in mans
       if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "v1"]
if not sel:
    sys.exit("index.json has no manifest tagged v1")
d = sel[0]
algo, hexd = d["digest"].split(":", 1)
man = json.load(open(os.path.join(root, "blobs", algo, hexd)))
layers = man.get("layers", [])
size = sum(l["size"] for l in layers) + man["config"]["size"] + d["size"]
print(d["digest"], len(layers), size, d.get("mediaType", "?"))
EOF
) || die "cannot read the manifest tagged v1 from $LAYOUT/index.json"
read -r LAYOUT_DIGEST IMAGE_LAYERS IMAGE_BYTES IMAGE_MEDIATYPE <<<"$IMAGE_INFO"
IMAGE_MB=$(awk -v b="$IMAGE_BYTES" 'BEGIN { printf "%.1f", b / 1e6 }')
log "image: $IMAGE_LAYERS layers, $IMAGE_MB MB to push (compressed), manifest $LAYOUT_DIGEST"

# read every blob once so that all rows start from the same (warm) page cache
cat "$LAYOUT"/blobs/*/* >/dev/null
[[ -d $CACHE ]] && find "$CACHE" -type f -size +1M -exec cat {} + >/dev/null

# --------------------------------------------------------------- registry

REG_PID=""
REG_DIR=""
PORT=""

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

stop_registry() {
    if [[ -n $REG_PID ]]; then
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
        REG_PID=""
    fi
    if [[ -n $REG_DIR ]]; then
        rm -rf "$REG_DIR"
        REG_DIR=""
    fi
}

cleanup() {
    stop_registry
    rm -rf "$BENCH_DIR"/registry.*
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_registry: a new registry with empty storage on a free loopback port
start_registry() {
    stop_registry
    REG_DIR=$(mktemp -d "$BENCH_DIR/registry.XXXXXX")
    mkdir -p "$REG_DIR/storage"
    local try
    for try in 1 2 3; do
        PORT=$(free_port)
        cat >"$REG_DIR/config.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $REG_DIR/storage}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$PORT}
EOF
        "$REGISTRY_BIN" serve "$REG_DIR/config.yml" >>"$REG_DIR/registry.log" 2>&1 &
        REG_PID=$!
        local i
        for ((i = 0; i < 100; i++)); do
            if curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/"; then
                return 0
            fi
            kill -0 "$REG_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill "$REG_PID" 2>/dev/null || true
        wait "$REG_PID" 2>/dev/null || true
        REG_PID=""
        log "registry did not answer on 127.0.0.1:$PORT (try $try)"
    done
    log "registry log:"
    sed 's/^/    /' "$REG_DIR/registry.log" >&2 || true
    die "cannot start $REGISTRY_BIN"
}

# ------------------------------------------------------------------- rows

ROWS=(cold_skopeo cold_img warm_skopeo warm_img warm_img_hf)
declare -A LABEL=(
    [cold_skopeo]='skopeo copy, cold (empty registry)'
    [cold_img]='imgbuild push, cold (empty registry)'
    [warm_skopeo]='skopeo copy, warm (image already pushed)'
    [warm_img]='imgbuild push, warm (image already pushed)'
    [warm_img_hf]="imgbuild push, warm, hyperfine --warmup $WARM_WARMUP --runs $WARM_RUNS"
)
declare -A REF=(
    [cold_skopeo]=cold_img [cold_img]=cold_img
    [warm_skopeo]=warm_img_hf [warm_img]=warm_img_hf [warm_img_hf]=warm_img_hf
)
declare -A TIMES=()   # row -> space separated seconds
declare -A STATUS=()  # row -> ok | failed
declare -A MEDIAN=()
for r in "${ROWS[@]}"; do STATUS[$r]=ok; done
IMG_ERRORS=""         # exact output of failed imgbuild pushes, for the report
DIGEST_NOTES=()       # one line per verification

push_cmd() { # ROW -> the command, in the array CMD
    case $1 in
        *skopeo) CMD=(skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:v1"
            "docker://127.0.0.1:$PORT/bench/skopeo:v1") ;;
        *) CMD=("$IMGBUILD" push "oci:$LAYOUT:v1" "127.0.0.1:$PORT/bench/img:v1"
            --cache-dir "$CACHE") ;;
    esac
}

# run_row ROW REP: one timed push; on failure, log its output and mark the row
run_row() {
    local row=$1 rep=$2 out="$RUNS/$1.$2.log" rc=0 t0 t1 s
    [[ ${STATUS[$row]} == ok ]] || return 1
    push_cmd "$row"
    sync
    t0=$(now_ns)
    "${CMD[@]}" >"$out" 2>&1 || rc=$?
    t1=$(now_ns)
    if [[ $rc != 0 ]]; then
        log "$row rep $rep: FAILED (exit $rc): $(printf '%q ' "${CMD[@]}")"
        sed 's/^/    /' "$out" >&2
        STATUS[$row]=failed
        if [[ $row == *img* ]]; then
            IMG_ERRORS+="\$ $(printf '%q ' "${CMD[@]}")"$'\n'"$(cat "$out")"$'\n'"(exit status $rc)"$'\n\n'
        fi
        return 1
    fi
    s=$(secs "$t0" "$t1")
    TIMES[$row]+="$s "
    log "$row rep $rep: $s s"
}

# remote_digest REPO: manifest digest of REPO:v1 in the registry
remote_digest() {
    skopeo inspect --tls-verify=false --raw "docker://127.0.0.1:$PORT/$1:v1" | sha256sum |
        awk '{ print "sha256:" $1 }'
}

# verify WHAT REPO: compare the pushed manifest's digest with the layout's
verify() {
    local what=$1 repo=$2 d
    if ! d=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' \
        "docker://127.0.0.1:$PORT/$repo:v1" 2>"$RUNS/inspect.err"); then
        DIGEST_NOTES+=("$what: skopeo inspect failed: $(tr '\n' ' ' <"$RUNS/inspect.err")")
        log "${DIGEST_NOTES[-1]}"
        return 0
    fi
    local raw
    raw=$(remote_digest "$repo" 2>/dev/null || echo "?")
    if [[ $d == "$LAYOUT_DIGEST" && $raw == "$LAYOUT_DIGEST" ]]; then
        DIGEST_NOTES+=("$what: $d, same as the layout")
    else
        DIGEST_NOTES+=("$what: DIFFERENT from the layout ($LAYOUT_DIGEST): inspect $d, sha256 of the raw manifest $raw")
    fi
    log "${DIGEST_NOTES[-1]}"
}

for ((rep = 1; rep <= REPEAT; rep++)); do
    # skopeo: cold into an empty registry, then warm into the same one
    if [[ ${STATUS[cold_skopeo]} == ok ]]; then
        start_registry
        log "rep $rep: registry on 127.0.0.1:$PORT, storage $REG_DIR/storage"
        if run_row cold_skopeo "$rep"; then
            ((rep == 1)) && verify "skopeo (cold, rep 1)" bench/skopeo
            run_row warm_skopeo "$rep" || true
        else
            STATUS[warm_skopeo]=failed
        fi
    fi
    # imgbuild: the same, against a new empty registry
    if [[ ${STATUS[cold_img]} == ok ]]; then
        start_registry
        log "rep $rep: registry on 127.0.0.1:$PORT, storage $REG_DIR/storage"
        if run_row cold_img "$rep"; then
            verify "imgbuild cold push, rep $rep" bench/img
            if run_row warm_img "$rep"; then
                verify "imgbuild warm push, rep $rep" bench/img
            fi
        else
            STATUS[warm_img]=failed
        fi
    fi
done

# warm imgbuild push with hyperfine, against the registry of the last repetition
if [[ ${STATUS[cold_img]} == ok && ${STATUS[warm_img]} == ok && -n $REG_PID ]]; then
    push_cmd warm_img_hf
    log "warm imgbuild push: hyperfine --warmup $WARM_WARMUP --runs $WARM_RUNS"
    if hyperfine -N --style basic --warmup "$WARM_WARMUP" --runs "$WARM_RUNS" \
        --export-json "$RUNS/warm_img.json" --command-name 'imgbuild push (warm)' \
        --output "$RUNS/warm_img_hf.out" \
        "$(printf '%q ' "${CMD[@]}")" >&2 2>"$RUNS/warm_img_hf.err"; then
        MEDIAN[warm_img_hf]=$(hyperfine_median "$RUNS/warm_img.json")
        verify "imgbuild after the hyperfine runs" bench/img
    else
        log "hyperfine of the warm imgbuild push failed:"
        cat "$RUNS/warm_img_hf.err" "$RUNS/warm_img_hf.out" 2>/dev/null | sed 's/^/    /' >&2 || true
        IMG_ERRORS+="\$ hyperfine … $(printf '%q ' "${CMD[@]}")"$'\n'"$(cat "$RUNS/warm_img_hf.err" "$RUNS/warm_img_hf.out" 2>/dev/null)"$'\n\n'
        STATUS[warm_img_hf]=failed
    fi
else
    STATUS[warm_img_hf]=failed
fi
stop_registry

# ----------------------------------------------------------------- report

for row in "${ROWS[@]}"; do
    if [[ ${STATUS[$row]} == ok && -z ${MEDIAN[$row]:-} && -n ${TIMES[$row]:-} ]]; then
        # shellcheck disable=SC2086
        MEDIAN[$row]=$(median ${TIMES[$row]})
    fi
done

runs_of() {
    case $1 in
        warm_img_hf) echo "$WARM_RUNS" ;;
        *) echo "$REPEAT" ;;
    esac
}

fmt_row() {
    local row=$1 med ref ratio
    med=${MEDIAN[$row]:-}
    if [[ -z $med ]]; then
        printf '| %s | %s | – |\n' "${LABEL[$row]}" "${STATUS[$row]}"
        return
    fi
    ref=${MEDIAN[${REF[$row]}]:-}
    if [[ -n $ref ]]; then
        ratio=$(awk -v a="$med" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')
    else
        ratio="n/a"
    fi
    printf '| %s | %.3f | %s |\n' "${LABEL[$row]}" "$med" "$ratio"
}

TABLE=$(
    echo '| what | median s | ratio vs imgbuild |'
    echo '| --- | ---: | ---: |'
    for row in "${ROWS[@]}"; do fmt_row "$row"; done
)

target_lines() {
    local c_s=${MEDIAN[cold_skopeo]:-} c_i=${MEDIAN[cold_img]:-}
    local w_hf=${MEDIAN[warm_img_hf]:-} w_i=${MEDIAN[warm_img]:-} sp verdict
    if [[ -n $c_s && -n $c_i ]]; then
        sp=$(awk -v a="$c_s" -v b="$c_i" 'BEGIN { printf "%.2f", a / b }')
        verdict=$(awk -v s="$sp" -v t="$TARGET_COLD_SPEEDUP" 'BEGIN { print (s >= t) ? "met" : "NOT met" }')
        printf -- '- cold push, imgbuild ≥ %s× faster than skopeo: **%s** (%s×: %.3f s vs %.3f s)\n' \
            "$TARGET_COLD_SPEEDUP" "$verdict" "$sp" "$c_i" "$c_s"
    else
        printf -- '- cold push, imgbuild ≥ %s× faster than skopeo: n/a (a row failed)\n' "$TARGET_COLD_SPEEDUP"
    fi
    if [[ -n $w_hf ]]; then
        verdict=$(awk -v s="$w_hf" -v t="$TARGET_WARM_S" 'BEGIN { print (s <= t) ? "met" : "NOT met" }')
        printf -- '- warm push, imgbuild ≤ %s s: **%s** (hyperfine median %.3f s' "$TARGET_WARM_S" "$verdict" "$w_hf"
        [[ -n $w_i ]] && printf '; median of the %s timed runs %.3f s' "$REPEAT" "$w_i"
        printf ')\n'
    else
        printf -- '- warm push, imgbuild ≤ %s s: n/a (the row failed)\n' "$TARGET_WARM_S"
    fi
}

RUN_TIMES=$(
    for row in "${ROWS[@]}"; do
        [[ -n ${TIMES[$row]:-} ]] || continue
        printf -- '- %s: %s\n' "$row" "$(echo "${TIMES[$row]}" | sed 's/ *$//; s/ / s, /g') s"
    done
)

REPORT=$(
    echo "# imgbuild push vs skopeo copy (local registry)"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "- machine: nproc $(nproc), $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), $(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown OS}"), kernel $(uname -r)"
    echo "- imgbuild: $IMGBUILD_VERSION (git $GIT_REV)"
    echo "- skopeo: $SKOPEO_VERSION"
    echo "- registry: $REGISTRY_VERSION, filesystem storage, on 127.0.0.1"
    echo "- hyperfine: $HYPERFINE_VERSION"
    echo "- image: $IMAGE_LAYERS gzip layers built by imgbuild from folders of $LAYER_MB MB /" \
        "$LAYER_FILES files each (benches/gen_tree.py, seeds $SEED..$((SEED + LAYERS - 1)))," \
        "$IMAGE_MB MB to push (blobs + manifest), manifest $LAYOUT_DIGEST ($IMAGE_MEDIATYPE)"
    echo "- reproduce: \`$REPRO\`"
    echo
    echo "$TABLE"
    echo
    echo "Median of $REPEAT repetition(s) per row (the hyperfine row: median of $WARM_RUNS runs after" \
        "$WARM_WARMUP warmup). Ratio = the row's time / imgbuild's time for the same case (cold rows vs" \
        "imgbuild cold, warm rows vs imgbuild warm hyperfine), so a skopeo ratio of 2.00 means imgbuild" \
        "is twice as fast."
    echo
    echo "## Targets"
    echo
    target_lines
    echo
    echo "## Method"
    echo
    echo "- cold: every repetition restarts the registry on a new free port with a new, empty storage dir" \
        "(a new repository name would not do: distribution can mount blobs across repositories), then" \
        "pushes the whole image: \`skopeo copy --dest-tls-verify=false oci:LAYOUT:v1 docker://127.0.0.1:PORT/bench/skopeo:v1\`" \
        "resp. \`imgbuild push oci:LAYOUT:v1 127.0.0.1:PORT/bench/img:v1 --cache-dir STORE\`."
    echo "- warm: the same command again right after its cold push, nothing changed (blobs and manifest already there)."
    echo "- imgbuild's store (--cache-dir) already holds the image's blobs from the build that made the layout:" \
        "that is the normal situation when pushing after a build; skopeo reads the blobs from the layout." \
        "The layout's blobs are read once before the rows so the page cache is warm for both tools; \`sync\` runs before every timed push."
    echo "- imgbuild pushes with its default parallelism (-j 4); skopeo with its own default."
    echo "- times are wall clock of the whole command, registry start-up not included."
    echo
    echo "## Digest checks"
    echo
    echo "Manifest digest in the registry (\`skopeo inspect --tls-verify=false docker://…:v1\`, and sha256 of" \
        "\`skopeo inspect --raw\`) compared with the layout's (\`index.json\`, tag v1):"
    echo
    if ((${#DIGEST_NOTES[@]})); then printf -- '- %s\n' "${DIGEST_NOTES[@]}"; else echo "- (none ran)"; fi
    echo
    echo "## All timed runs (s)"
    echo
    echo "$RUN_TIMES"
    if [[ -n $IMG_ERRORS ]]; then
        echo
        echo "## imgbuild push errors"
        echo
        echo '```'
        printf '%s' "$IMG_ERRORS"
        echo '```'
    fi
)

printf '%s\n' "$REPORT" >"$RESULTS"
echo
echo "$TABLE"
echo
target_lines
if ((${#DIGEST_NOTES[@]})); then
    echo
    printf -- '- %s\n' "${DIGEST_NOTES[@]}"
fi
if [[ -n $IMG_ERRORS ]]; then
    echo
    echo "imgbuild push failed:"
    printf '%s' "$IMG_ERRORS"
fi
log "report written to $RESULTS"
if [[ -n $IMG_ERRORS ]]; then
    exit 1
fi
