#!/usr/bin/env bash
# Korean quality table: runs jobs/korean.toml (release build, global scope) on the Korean
# articles (k = 8) and petitions (k = 17) for seeds 0-4 and prints one markdown row per corpus
# and seed with NMI, ARI and eval's mean NPMI, then the means. For the articles it also checks
# every cluster's top-10 keywords: a keyword that is another top-10 keyword of the cluster plus
# a particle or an ending (`북한이` beside `북한`), and a word of the Korean stop list.
#
# usage: scripts/korean_quality.sh [--set key=value ...]   (BIN=path: another build, not
#        rebuilt; SPEC=path: another job spec; SEEDS="0 1": other seeds)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data}
seeds=${SEEDS:-"0 1 2 3 4"}
spec=${SPEC:-jobs/korean.toml}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${BIN:-target/release/textcluster}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "| corpus | k | seed | NMI | ARI | mean NPMI | keywords with a particle of another | stop words in a top 10 |"
echo "|---|---|---|---|---|---|---|---|"
rows=""
for corpus_k in ko_news_articles:8 ko_petitions:17; do
  IFS=: read -r corpus k <<<"$corpus_k"
  for seed in $seeds; do
    rm -rf "$out/run"
    "$bin" -q run "$spec" --set "input.path=$data/$corpus" --set "output.path=$out/run" \
      --set cluster.scope=global --set "cluster.k=$k" --set "cluster.seed=$seed" "$@" >/dev/null
    row=$("$bin" eval "$out/run" --gold "$data/$corpus" --json | python3 -c '
import json, sys
endings, stop, noun = set(), set(), True
for line in open("src/text/korean/endings.txt", encoding="utf-8"):
    line = line.strip()
    if line and not line.startswith(("#", "[")):
        endings.add(line)
for line in open("src/text/korean/stopwords.txt", encoding="utf-8"):
    line = line.strip()
    if line and not line.startswith("#"):
        stop.add(line)
d = json.load(sys.stdin)
s, labels = d["summary"], d["labels"]
attached, stopped = [], []
for c in labels["clusters"]:
    top = c["keywords"][:10]
    for w in top:
        if any(w != v and w.startswith(v) and w[len(v):] in endings for v in top):
            attached.append(w)
        if w in stop:
            stopped.append(w)
print("%.4f %.4f %.4f %d %d %s" % (s["nmi"], s["ari"], labels["mean_npmi"], len(attached), len(stopped), ",".join(attached + stopped) or "-"))')
    read -r nmi ari npmi n_attached n_stop which <<<"$row"
    printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n" "$corpus" "$k" "$seed" "$nmi" "$ari" "$npmi" "$n_attached" "$n_stop"
    [ "$which" = "-" ] || echo "  ($corpus seed $seed: $which)" >&2
    rows="$rows$corpus $nmi $ari $npmi\n"
  done
done
printf "$rows" | python3 -c '
import sys, collections
by = collections.defaultdict(list)
for line in sys.stdin:
    c, *v = line.split()
    by[c].append([float(x) for x in v])
print()
for c, v in by.items():
    n = len(v)
    print("%s: mean NMI %.4f (min %.4f), mean ARI %.4f, mean NPMI %.4f" % (
        c, sum(r[0] for r in v) / n, min(r[0] for r in v), sum(r[1] for r in v) / n, sum(r[2] for r in v) / n))'
