#!/usr/bin/env bash
# Quality table: runs textcluster (release build, global scope, the defaults plus the given
# --set options) on shared corpora for seeds 0-4 and prints one markdown row per corpus and seed
# with NMI, ARI, purity, the largest cluster, the rounds the fit took, the share of document
# scorings its bounds skipped (rounds 1-5 / 6 on) and its unsettled clusters, then the mean and
# min NMI per corpus.
#
# usage: scripts/quality.sh [--set key=value ...]   (BIN=path: another build, not rebuilt)
# corpora: CORPORA="20newsgroups:20 bbc_news:5 ag_news_test:4 ko_news_articles:8:char_ngrams"
#   (every shared corpus: CORPORA=all)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data}
corpora=${CORPORA:-"20newsgroups:20 bbc_news:5 ag_news_test:4 ko_news_articles:8:char_ngrams"}
if [ "$corpora" = all ]; then
  corpora="20newsgroups:20 bbc_news:5 ag_news_test:4 ko_news_articles:8:char_ngrams ko_petitions:17:char_ngrams reuters21578:66 sample:20"
fi
seeds=${SEEDS:-"0 1 2 3 4"}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${BIN:-target/release/textcluster}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| corpus | k | tokenizer | seed | NMI | ARI | purity | largest | rounds | skipped 1-5 / 6+ | unsettled | wall s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
summary=""
for spec in $corpora; do
  IFS=: read -r corpus k tokenizer <<<"$spec"
  tokenizer=${tokenizer:-word}
  # A fresh output per corpus: partitions of an earlier corpus must not stay behind for eval.
  rm -rf "$out/run"
  nmis=""
  for seed in $seeds; do
    start=$(date +%s.%N)
    "$bin" -q run jobs/sample.toml --set "input.path=$data/$corpus" --set "output.path=$out/run" \
      --set cluster.scope=global --set "cluster.k=$k" --set "cluster.seed=$seed" \
      --set "vectorize.tokenizer=$tokenizer" "$@" >/dev/null
    wall=$(echo "$(date +%s.%N) - $start" | bc)
    row=$("$bin" eval "$out/run" --gold "$data/$corpus" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)["summary"]
print("%.4f %.4f %.4f %d" % (s["nmi"], s["ari"], s["purity"], s["largest_cluster"]))')
    read -r nmi ari purity largest <<<"$row"
    fit=$(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["clusterings"][0]
s = c.get("skipped_share", {"rounds_1_5": 0, "rounds_6_on": 0})
n = sum(1 for r in c["clusters"] if r.get("unsettled"))
print("%d %.3f/%.3f %d" % (c["n_iter"], s["rounds_1_5"], s["rounds_6_on"], n))' "$out/run/manifest.json")
    read -r rounds skipped unsettled <<<"$fit"
    printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f |\n" "$corpus" "$k" "$tokenizer" "$seed" "$nmi" "$ari" "$purity" "$largest" "$rounds" "$skipped" "$unsettled" "$wall"
    nmis="$nmis $nmi"
  done
  summary="$summary$(python3 -c "import sys; v=[float(x) for x in sys.argv[2:]]; print('%s: mean NMI %.4f, min %.4f' % (sys.argv[1], sum(v)/len(v), min(v)))" "$corpus" $nmis)\n"
done
printf "\n$summary"
