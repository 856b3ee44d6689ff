#!/usr/bin/env bash
# Is assign's memory bounded? Generates two one-partition corpora from 20 Newsgroups, SMALL
# and 10 × SMALL documents (examples/generate.rs), fits one model on a sample of the small
# one, assigns each corpus with it, and prints the peak RSS of each assign process
# (`/usr/bin/time -v`). Exits 1 when the larger partition raises peak RSS by more than 20%.
#
# usage: scripts/assign_memory.sh [SMALL]   (default 50000; BIN=path: another build, not
#                                            rebuilt; DATA=../shared/data)
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
"$bin" -q fit jobs/sample.toml --model "$work/models" --set "input.path=$work/small" \
  --set cluster.k=20 --set fit.sample=20000 >/dev/null
peak() {  # peak RSS in MB and wall seconds of `assign` on corpus $1
  /usr/bin/time -v "$bin" -q assign jobs/sample.toml --model "$work/models" \
    --set "input.path=$work/$1" --set "output.path=$work/out-$1" 2>"$work/time-$1" >/dev/null
  local kb wall
  kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time-$1")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time-$1")
  echo "$((kb / 1024)) $wall"
}
read -r small_mb small_wall < <(peak small)
read -r large_mb large_wall < <(peak large)
echo "| partition | documents | peak RSS | wall |"
echo "|---|---|---|---|"
echo "| small | $small | $small_mb MB | $small_wall |"
echo "| large | $large | $large_mb MB | $large_wall |"
python3 -c "
r = $large_mb / $small_mb
print(f'ratio {r:.2f}: ' + ('bounded' if r <= 1.2 else 'NOT bounded (more than 20% higher)'))
raise SystemExit(0 if r <= 1.2 else 1)
"
