#!/usr/bin/env bash
# Digest of every committed Parquet table of the four reference jobs (sample, 20newsgroups,
# 20newsgroups-merge, korean), one `sha256  table/partition` line per file. Two builds give
# byte-identical outputs exactly when their digests are equal; use it before and after a
# change that must not change results. The build hash in each file's `created_by` differs
# between builds by design, so it is masked before hashing.
#
# usage: scripts/output_digest.sh [BINARY]   (default: target/release/textcluster)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/release/textcluster}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for job in sample 20newsgroups 20newsgroups-merge korean; do
  "$bin" -q run "jobs/$job.toml" --set "output.path=$out/$job" >/dev/null
  (cd "$out" && find "$job" -name '*.parquet' -not -path '*/_*' | sort | python3 -c '
import hashlib, re, sys
for path in sys.stdin.read().split():
    data = re.sub(rb"\(build [^)]*\)", b"(build -)", open(path, "rb").read())
    print(hashlib.sha256(data).hexdigest() + "  " + path)')
done
