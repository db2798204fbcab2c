#!/usr/bin/env bash
# Fills fuzz/corpus/<target>/ with seed inputs: the small hand-made seeds of
# fuzz/seeds/<target>/, the matching files of testdata/ and fixtures/, and a
# few generated archives (.deb packages, base layer tars). Files already in
# a corpus (what earlier runs found) stay.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
root=..
corpus=corpus

add() { # add TARGET FILE...
    local t=$1
    shift
    mkdir -p "$corpus/$t"
    local f
    for f in "$@"; do
        [[ -f $f ]] || continue
        # Named by content, so reseeding adds no duplicates.
        cp "$f" "$corpus/$t/seed-$(sha1sum "$f" | cut -c1-16)"
    done
}

for d in seeds/*/; do
    t=$(basename "$d")
    add "$t" "$d"*
done

mapfile -t dockerfiles < <(find "$root/testdata" "$root/fixtures" -type f \( -name 'Dockerfile*' -o -name '*.Dockerfile' \) | sort)
add dockerfile "${dockerfiles[@]}" "$root/testdata/dockerfiles/malformed.txt"
mapfile -t tomls < <(find "$root/testdata/definitions" "$root/fixtures" "$root/testdata/python-e2e" -type f -name '*.toml' ! -name pyproject.toml | sort)
add definition_toml "${tomls[@]}"
mapfile -t ignores < <(find "$root/testdata" "$root/fixtures" -type f -name '.dockerignore' | sort)
add dockerignore "${ignores[@]}"
mapfile -t locks < <(find "$root/testdata" "$root/fixtures" -type f -name 'uv.lock' | sort)
add uv_lock "${locks[@]}"
mapfile -t reqs < <(find "$root/testdata" "$root/fixtures" -type f -name 'requirements*.txt' | sort)
add requirements "${reqs[@]}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# JSON definitions: the TOML fixtures converted.
for f in "${tomls[@]}"; do
    out=$tmp/$(basename "$(dirname "$f")")-$(basename "$f" .toml).json
    python3 -c 'import json, sys, tomllib; print(json.dumps(tomllib.load(open(sys.argv[1], "rb"))))' "$f" >"$out" 2>/dev/null || continue
    add definition_json "$out"
done

# Base layer tars: plain files, links, a whiteout, an opaque folder, a
# sparse file, in GNU and PAX formats.
mkdir -p "$tmp/tree/etc/app" "$tmp/tree/usr/bin" "$tmp/tree/var/lib"
echo 'key = value' >"$tmp/tree/etc/app/conf"
echo '#!/bin/sh' >"$tmp/tree/usr/bin/tool"
chmod 755 "$tmp/tree/usr/bin/tool"
ln -s ../bin/tool "$tmp/tree/usr/bin/link"
ln "$tmp/tree/etc/app/conf" "$tmp/tree/etc/app/hard"
: >"$tmp/tree/etc/.wh.removed"
: >"$tmp/tree/var/lib/.wh..wh..opq"
truncate -s 64K "$tmp/tree/var/lib/sparse"
printf 'data' | dd of="$tmp/tree/var/lib/sparse" bs=1 seek=32768 conv=notrunc status=none
for fmt in gnu pax ustar; do
    tar --format=$fmt --sparse -C "$tmp/tree" -cf "$tmp/layer-$fmt.tar" . 2>/dev/null || continue
    add base_layer_tar "$tmp/layer-$fmt.tar"
done

# Layers an SBOM reads: a dpkg status, a machine-readable copyright file,
# a dist-info METADATA, and a whiteout of another.
sp=$tmp/sbom/opt/venv/lib/python3.11/site-packages
mkdir -p "$tmp/sbom/var/lib/dpkg" "$tmp/sbom/usr/share/doc/jq" "$sp/httpx-0.27.0.dist-info"
printf 'Package: jq\nStatus: install ok installed\nArchitecture: amd64\nSource: jq (1.6-2.1)\nVersion: 1.6-2.1\nDepends: libjq1 (= 1.6-2.1), libc6 (>= 2.34)\n\nPackage: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9\n' >"$tmp/sbom/var/lib/dpkg/status"
printf 'Format: copyright-format/1.0/\n\nFiles: *\nLicense: MIT\n' >"$tmp/sbom/usr/share/doc/jq/copyright"
printf 'Metadata-Version: 2.1\nName: httpx\nVersion: 0.27.0\nLicense-Expression: BSD-3-Clause\nRequires-Dist: idna\n\nbody\n' >"$sp/httpx-0.27.0.dist-info/METADATA"
: >"$sp/.wh.old-1.0.dist-info"
tar --format=pax -C "$tmp/sbom" -cf "$tmp/sbom-layer.tar" . 2>/dev/null && add sbom_layer "$tmp/sbom-layer.tar"

# .deb packages, made by dpkg-deb when it is there.
if command -v dpkg-deb >/dev/null; then
    mkdir -p "$tmp/deb/DEBIAN" "$tmp/deb/usr/share/doc/hello" "$tmp/deb/etc"
    printf 'Package: hello\nVersion: 1.0-1\nArchitecture: all\nMaintainer: A <a@example.org>\nDescription: greets\n more\n' >"$tmp/deb/DEBIAN/control"
    echo '/etc/hello.conf' >"$tmp/deb/DEBIAN/conffiles"
    echo 'x' >"$tmp/deb/etc/hello.conf"
    echo 'hi' >"$tmp/deb/usr/share/doc/hello/README"
    for z in gzip xz none; do
        dpkg-deb --root-owner-group -Z$z --build "$tmp/deb" "$tmp/hello-$z.deb" >/dev/null 2>&1 || continue
        add deb_package "$tmp/hello-$z.deb"
    done
fi

for d in "$corpus"/*/; do
    printf '%-20s %s seeds\n' "$(basename "$d")" "$(find "$d" -type f | wc -l)"
done
