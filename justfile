# Common tasks (https://just.systems); each recipe is a plain command you can also run by hand.

# Build the full-build fixture into ./imgbuild-out/full-build (no registry, no daemon).
demo:
    cargo run --release -- build fixtures/full-build

# Every test (installs skopeo and umoci when missing).
test:
    ./scripts/test.sh

# Formatting and lints, as required before each commit.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# Kernel benchmarks (criterion).
bench:
    cargo bench --bench pipeline

# End-to-end comparison with tar|gzip, tar|pigz, tar|zstd and buildah; writes benches/results.md.
e2e:
    bash benches/e2e.sh

# RUN steps (no-op and apt) against buildah's chroot isolation; writes benches/run-results.md.
bench-run:
    bash benches/run.sh

# Dockerfile fixture builds against buildah bud; writes benches/dockerfile-results.md.
bench-dockerfile:
    bash benches/dockerfile.sh

# Fuzz every parser for `seconds` each (cargo-fuzz; fails on a crash, kept in fuzz/artifacts/).
fuzz seconds="60":
    bash scripts/fuzz.sh {{seconds}}
