#!/usr/bin/env bash
# Scale past memory: fit on a sample, assign everything. Generates (once) a corpus of 3,000,000
# documents in 300 daily partitions and one single-partition corpus of 1,000,000 documents
# from 20 Newsgroups (examples/generate.rs), then measures with `/usr/bin/time -v`:
#   1. `fit` on a 300,000-document sample, k = 100 (peak RSS, wall);
#   2. `assign` of the first 30, 100 and all 300 partitions (300k, 1M and 3M documents);
#   3. `run` in partition scope (k = 100, a fit per partition) on the same 100 partitions
#      (1M documents), right after assigning them;
#   4. `assign` of the single 1,000,000-document partition.
# Prints one Markdown row per step. Steps run one after the other: run nothing else meanwhile.
#
# usage: scripts/scale.sh [WORK]   (default /tmp/textcluster-scale; the corpora are kept there
#                                   and reused; BIN=path: another build, not rebuilt;
#                                   N_DOCS=3000000 N_PARTS=300 SAMPLE=300000 K=100 SINGLE=1000000;
#                                   MODELS=path: assign with the current model of this
#                                   registry instead of fitting one)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data}
work=${1:-/tmp/textcluster-scale}
n_docs=${N_DOCS:-3000000}
n_parts=${N_PARTS:-300}
sample=${SAMPLE:-300000}
k=${K:-100}
single=${SINGLE:-1000000}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin textcluster --example generate
fi
bin=${BIN:-target/release/textcluster}
gen=${GEN:-target/release/examples/generate}
mkdir -p "$work"
corpus=$work/corpus-$n_docs-$n_parts
one=$work/single-$single
[ -d "$corpus" ] || "$gen" "$data/20newsgroups" "$corpus" "$n_docs" "$n_parts" >&2
[ -d "$one" ] || "$gen" "$data/20newsgroups" "$one" "$single" 1 >&2
rm -rf "$work"/out-*
models=${MODELS:-$work/models}

mapfile -t days < <(ls "$corpus" | grep '^dt=' | sort)
# --partition flags for the first $1 partitions.
first() { local i; for ((i = 0; i < $1; i++)); do printf -- '--partition\n%s\n' "${days[i]}"; done; }
per_part=$((n_docs / n_parts))

# measure NAME DOCS CMD...: runs CMD under /usr/bin/time -v, prints a row.
measure() {
  local name=$1 docs=$2
  shift 2
  /usr/bin/time -v "$@" 2>"$work/time.txt" >/dev/null || { cat "$work/time.txt" >&2; exit 1; }
  python3 - "$name" "$docs" "$work/time.txt" <<'EOF'
import sys
name, docs, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t = {}
for line in open(path):
    key, _, value = line.strip().rpartition(": ")
    t[key] = value
rss = int(t["Maximum resident set size (kbytes)"]) / 1024
parts = t["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":")
wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(parts)))
print(f"| {name} | {docs:,} | {wall:.1f} s | {rss:.0f} MB | {docs / wall:,.0f} | {wall / docs * 1e6:.1f} µs |")
EOF
}

echo "| step | documents | wall | peak RSS | docs/s | time per doc |"
echo "|---|---|---|---|---|---|"
if [ -z "${MODELS:-}" ]; then
  rm -rf "$models"
  measure "fit, sample of $sample, k = $k" "$n_docs" \
    "$bin" -q fit jobs/sample.toml --model "$models" --set "input.path=$corpus" \
    --set "cluster.k=$k" --set "fit.sample=$sample"
fi
for n in 30 100 "$n_parts"; do
  mapfile -t flags < <(first "$n")
  measure "assign, $n partitions" $((n * per_part)) \
    "$bin" -q assign jobs/sample.toml --model "$models" --set "input.path=$corpus" \
    --set "output.path=$work/out-assign-$n" "${flags[@]}"
  if [ "$n" = 100 ]; then
    measure "run (partition scope, k = $k), $n partitions" $((n * per_part)) \
      "$bin" -q run jobs/sample.toml --set "input.path=$corpus" --set "cluster.k=$k" \
      --set "output.path=$work/out-run-$n" "${flags[@]}"
  fi
done
measure "assign, one partition of $single" "$single" \
  "$bin" -q assign jobs/sample.toml --model "$models" --set "input.path=$one" \
  --set "output.path=$work/out-single"
