#!/usr/bin/env bash
# Is memory bounded by what it should be, not by the partition's size? Generates two
# one-partition corpora from 20 Newsgroups, SMALL and 10 × SMALL documents
# (examples/generate.rs), then measures peak RSS (`/usr/bin/time -v`) of:
#   - `fit` on a sample of a fixed 20,000 documents of each (k = 20): its memory should
#     follow the sample, not the partition it is drawn from;
#   - `assign` of each with the small corpus's model: its memory should follow one batch.
# Prints a table and exits 1 when the larger partition raises either peak by more than 20%.
#
# usage: scripts/memory.sh [SMALL]   (default 50000; BIN=path: another build, not rebuilt;
#                                     DATA=../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data}
small=${1:-50000}
large=$((small * 10))
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet --bin textcluster --example generate
fi
bin=${BIN:-target/release/textcluster}
gen=${GEN:-target/release/examples/generate}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$gen" "$data/20newsgroups" "$work/small" "$small" 1 >/dev/null
"$gen" "$data/20newsgroups" "$work/large" "$large" 1 >/dev/null
measure() {  # peak RSS in MB and wall time of the command "$@" (its output dropped)
  /usr/bin/time -v "$@" 2>"$work/time" >/dev/null || { cat "$work/time" >&2; exit 1; }
  local kb wall
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time")
  echo "$((kb / 1024)) $wall"
}
fit() {  # fit on a 20,000-document sample of corpus $1, into registry models-$1
  measure "$bin" -q fit jobs/sample.toml --model "$work/models-$1" \
    --set "input.path=$work/$1" --set cluster.k=20 --set fit.sample=20000
}
assign() {  # assign corpus $1 with the small corpus's model
  measure "$bin" -q assign jobs/sample.toml --model "$work/models-small" \
    --set "input.path=$work/$1" --set "output.path=$work/out-$1"
}
read -r fit_small_mb fit_small_wall < <(fit small)
read -r fit_large_mb fit_large_wall < <(fit large)
read -r small_mb small_wall < <(assign small)
read -r large_mb large_wall < <(assign large)
echo "| step | partition | documents | peak RSS | wall |"
echo "|---|---|---|---|---|"
echo "| fit, sample of 20,000 | small | $small | $fit_small_mb MB | $fit_small_wall |"
echo "| fit, sample of 20,000 | large | $large | $fit_large_mb MB | $fit_large_wall |"
echo "| assign | small | $small | $small_mb MB | $small_wall |"
echo "| assign | large | $large | $large_mb MB | $large_wall |"
python3 -c "
ok = True
for step, r in (('fit', $fit_large_mb / $fit_small_mb), ('assign', $large_mb / $small_mb)):
    bounded = r <= 1.2
    ok = ok and bounded
    print(f'{step}: ratio {r:.2f}: ' + ('bounded' if bounded else 'NOT bounded (more than 20% higher)'))
raise SystemExit(0 if ok else 1)
"
