#!/usr/bin/env bash
# Accuracy of sampled fits: for each seed, fits 20 Newsgroups (k = 20) on all documents and
# on samples of 30% and 10% (`fit.sample`), assigns every document with each model, and
# prints the NMI and ARI of the assigned labels against the gold groups, then the mean per
# sample size and its difference from the full fit.
#
# usage: scripts/sampled_fit.sh   (BIN=path: another build, not rebuilt; SEEDS="0 1 2 3 4";
#                                  FRACTIONS="1.0 0.3 0.1"; DATA=../shared/data;
#                                  FIT_ARGS="--set fit.refine=0": more arguments to fit
#                                  and assign)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data}
seeds=${SEEDS:-"0 1 2 3 4"}
fractions=${FRACTIONS:-"1.0 0.3 0.1"}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${BIN:-target/release/textcluster}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
corpus=$data/20newsgroups
echo "| sample | seed | fitted docs | NMI | ARI | fit s | assign s |"
echo "|---|---|---|---|---|---|---|"
for fraction in $fractions; do
  for seed in $seeds; do
    rm -rf "$work/out" "$work/models"
    set_sample=()
    [ "$fraction" = 1.0 ] || set_sample=(--set "fit.sample=$fraction")
    start=$(date +%s.%N)
    fitted=$("$bin" -q fit jobs/20newsgroups.toml --model "$work/models" --set "input.path=$corpus" \
      --set cluster.k=20 --set "cluster.seed=$seed" "${set_sample[@]}" ${FIT_ARGS:-} \
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["n_docs"])')
    mid=$(date +%s.%N)
    "$bin" -q assign jobs/20newsgroups.toml --model "$work/models" --set "input.path=$corpus" \
      --set "output.path=$work/out" ${FIT_ARGS:-} >/dev/null
    end=$(date +%s.%N)
    "$bin" eval "$work/out" --gold "$corpus" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)["summary"]
f, seed, n, fit_s, assign_s = sys.argv[1:]
nmi, ari = s["nmi"], s["ari"]
print(f"| {f} | {seed} | {n} | {nmi:.4f} | {ari:.4f} | {float(fit_s):.2f} | {float(assign_s):.2f} |")
' "$fraction" "$seed" "$fitted" "$(echo "$mid - $start" | bc)" "$(echo "$end - $mid" | bc)"
  done
done | tee "$work/rows"
python3 - "$work/rows" <<'EOF'
import collections, sys
nmi = collections.defaultdict(list)
for line in open(sys.argv[1]):
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    nmi[cells[0]].append(float(cells[3]))
full = sum(nmi["1.0"]) / len(nmi["1.0"]) if "1.0" in nmi else None
print()
print("| sample | mean NMI | min NMI | vs full fit |")
print("|---|---|---|---|")
for f, values in nmi.items():
    mean = sum(values) / len(values)
    delta = f"{mean - full:+.4f}" if full is not None else "n/a"
    print(f"| {f} | {mean:.4f} | {min(values):.4f} | {delta} |")
EOF
