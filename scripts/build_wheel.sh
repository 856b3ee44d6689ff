#!/usr/bin/env bash
# Builds the Python wheel: the `textcluster` module (src/python.rs, built by maturin with the
# `python` feature) with the `textcluster` binary in its scripts. Prints the wheel's path.
#
# usage: scripts/build_wheel.sh [PROFILE]     (default release; the tests use wheel-test)
#        PYTHON=path/to/python with maturin (default: the venv of tests/python/venv.sh)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
profile=${1:-release}
python=${PYTHON:-$(bash tests/python/venv.sh)}
target=${CARGO_TARGET_DIR:-$repo/target}
cargo build --quiet --profile "$profile" --bin textcluster
case "$profile" in dev | test) dir=debug ;; bench) dir=release ;; *) dir=$profile ;; esac
# The path pyproject.toml names, whatever the target directory.
rm -rf "$repo/target/wheel-data"
mkdir -p "$repo/target/wheel-data/scripts"
cp "$target/$dir/textcluster" "$repo/target/wheel-data/scripts/textcluster"
out=$(mktemp -d)
"$python" -m maturin build --quiet --profile "$profile" --out "$out" --interpreter "$python" >&2
mkdir -p "$target/wheels"
wheel=$(ls "$out"/*.whl)
mv "$wheel" "$target/wheels/"
rmdir "$out"
echo "$target/wheels/$(basename "$wheel")"
