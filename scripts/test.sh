#!/usr/bin/env bash
# Runs every test. Installs the real servers and clients the tests use
# (Debian's docker-registry, skopeo, umoci, mmdebstrap, openssl, htpasswd,
# newuidmap, buildah, git, ssh-agent, tmux, strace) when
# missing, and uv (from its Python package, into target/test-tools/uv) when
# there is no `uv` on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v skopeo >/dev/null || need+=(skopeo)
command -v umoci >/dev/null || need+=(umoci)
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v openssl >/dev/null || need+=(openssl)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v curl >/dev/null || need+=(curl)
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v newuidmap >/dev/null || need+=(uidmap)
command -v buildah >/dev/null || need+=(buildah)
command -v git >/dev/null || need+=(git)
command -v ssh-agent >/dev/null || need+=(openssh-client)
command -v tmux >/dev/null || need+=(tmux)
command -v strace >/dev/null || need+=(strace)
UV_VERSION=0.13.9
UV_VENV=$PWD/target/test-tools/uv
if ! command -v uv >/dev/null && [[ ! -x $UV_VENV/bin/uv ]] && ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    need+=(python3-venv)
fi
if ((${#need[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    elif command -v sudo >/dev/null; then
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    else
        echo "missing: ${need[*]} (install them: apt-get install ${need[*]})" >&2
        exit 1
    fi
fi

# uv for the Python end-to-end tests (tests/python_e2e.rs).
if ! command -v uv >/dev/null; then
    if [[ ! -x $UV_VENV/bin/uv ]]; then
        rm -rf "$UV_VENV"
        python3 -m venv "$UV_VENV"
        "$UV_VENV/bin/python" -m pip install -q "uv==$UV_VERSION"
    fi
    export PATH="$UV_VENV/bin:$PATH"
fi

# The library example is run by tests/registry.rs as a program; `cargo test
# --all-targets` builds examples as test harnesses only, so build it plainly.
cargo build --locked --examples
cargo test --locked --all-targets

# Then every parser is fuzzed briefly (scripts/fuzz.sh, FUZZ_SECONDS per
# target, 30 by default; 0 skips it for a quicker local run): an input that
# crashes one fails the run.
if [[ ${FUZZ_SECONDS:-30} != 0 ]]; then
    bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi
