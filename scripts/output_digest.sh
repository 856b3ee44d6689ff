#!/usr/bin/env bash
# Digest of every committed Parquet table of the four reference jobs (sample, 20newsgroups,
# 20newsgroups-merge, korean), one `sha256  table/partition` line per file. Two builds give
# byte-identical outputs exactly when their digests are equal; use it before and after a
# change that must not change results.
#
# usage: scripts/output_digest.sh [BINARY]   (default: target/release/textcluster)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/textcluster}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for job in sample 20newsgroups 20newsgroups-merge korean; do
  "$bin" -q run "jobs/$job.toml" --set "output.path=$out/$job" >/dev/null
  (cd "$out" && find "$job" -name '*.parquet' -not -path '*/_*' | sort | xargs sha256sum)
done
