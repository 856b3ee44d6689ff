#!/usr/bin/env bash
# Label quality table: runs textcluster (release build, global scope, seed 0, the defaults plus
# the given --set options) on shared corpora and prints, per corpus, NMI and the keyword
# metrics of `textcluster eval` (mean NPMI of the top 10, median coverage and precision, topic
# diversity, clusters naming their majority group).
#
# usage: scripts/labels.sh [--set key=value ...]
# RUN_BIN=path runs another build, EVAL_BIN=path evaluates with another (the metrics need an eval
# that has them, and one that reads that build's tables)
# corpora: CORPORA="20newsgroups:20 bbc_news:5 ag_news_test:4 ko_news_articles:8:char_ngrams"
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data}
corpora=${CORPORA:-"20newsgroups:20 bbc_news:5 ag_news_test:4 ko_news_articles:8:char_ngrams"}
cargo build --release --quiet
bin=target/release/textcluster
run_bin=${RUN_BIN:-$bin}
eval_bin=${EVAL_BIN:-$bin}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| corpus | k | NMI | mean NPMI | median coverage | median precision | diversity | naming group |"
echo "|---|---|---|---|---|---|---|---|"
for spec in $corpora; do
  IFS=: read -r corpus k tokenizer <<<"$spec"
  tokenizer=${tokenizer:-word}
  "$run_bin" -q run jobs/sample.toml --set "input.path=$data/$corpus" --set "output.path=$out/$corpus" \
    --set cluster.scope=global --set "cluster.k=$k" --set cluster.seed=0 \
    --set "vectorize.tokenizer=$tokenizer" "$@" >/dev/null
  "$eval_bin" eval "$out/$corpus" --gold "$data/$corpus" --json 2>/dev/null | python3 -c '
import json, sys
e = json.load(sys.stdin); s, l = e["summary"], e["labels"]
print("| %s | %s | %.4f | %.3f | %.3f | %.3f | %.3f | %d of %d |" % (sys.argv[1], sys.argv[2], s["nmi"],
      l["mean_npmi"], l["median_coverage"], l["median_precision"], l["topic_diversity"],
      l["n_naming_group"], l["n_clusters"]))' "$corpus" "$k"
done
