#!/usr/bin/env bash
# k = "auto" against the gold k: for each shared corpus and seed, a global run at the gold k and
# one with `cluster.k = "auto"`, side by side; prints one markdown row per corpus and seed (k
# found, NMI, ARI, eval's mean NPMI of the top 10 keywords and their topic diversity, wall
# seconds of both), then per corpus the means, the k found against the gold count and the
# ratio of wall times. The Korean corpora use jobs/korean.toml's settings.
#
# usage: scripts/auto_k.sh [--set key=value ...]   (extra settings for the auto runs;
#        BIN=path: another build, not rebuilt; SEEDS="0 1"; CORPORA="bbc_news:5 ...")
set -euo pipefail
cd "$(dirname "$0")/.."
data=${DATA:-../shared/data}
seeds=${SEEDS:-"0 1 2 3 4"}
korean="--set vectorize.tokenizer=korean_ngrams --set vectorize.ngram_max=4 --set vectorize.min_df=5"
corpora=${CORPORA:-"20newsgroups:20 bbc_news:5 ag_news_test:4 reuters21578:66 ko_news_articles:8:k ko_petitions:17:k"}
if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${BIN:-target/release/textcluster}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Runs one clustering; prints "NMI ARI n_clusters wall NPMI diversity".
one() {
  local corpus=$1 k=$2
  shift 2
  rm -rf "$out/run"
  local start
  start=$(date +%s.%N)
  "$bin" -q run jobs/sample.toml --set "input.path=$data/$corpus" --set "output.path=$out/run" \
    --set cluster.scope=global --set "cluster.k=$k" "$@" >/dev/null
  local wall
  wall=$(echo "$(date +%s.%N) - $start" | bc)
  "$bin" eval "$out/run" --gold "$data/$corpus" --json | python3 -c '
import json, sys
e = json.load(sys.stdin)
s, l = e["summary"], e["labels"]
m = json.load(open(sys.argv[1]))["clusterings"][0]
print("%.4f %.4f %d %s %.4f %.2f" % (s["nmi"], s["ari"], m["n_clusters"], sys.argv[2],
                                     l["mean_npmi"], l["topic_diversity"]))' "$out/run/manifest.json" "$wall"
}
echo "| corpus | gold k | seed | NMI gold k | ARI gold k | NPMI gold k | diversity gold k | wall s | k found | NMI auto | ARI auto | NPMI auto | diversity auto | wall s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
rows=""
for spec in $corpora; do
  IFS=: read -r corpus k lang <<<"$spec"
  extra=""
  [ "${lang:-}" = k ] && extra=$korean
  for seed in $seeds; do
    # shellcheck disable=SC2086
    read -r nmi ari _ wall npmi div <<<"$(one "$corpus" "$k" --set "cluster.seed=$seed" $extra)"
    # shellcheck disable=SC2086
    read -r anmi aari found awall anpmi adiv <<<"$(one "$corpus" auto --set "cluster.seed=$seed" $extra "$@")"
    printf "| %s | %s | %s | %s | %s | %s | %s | %.2f | %s | %s | %s | %s | %s | %.2f |\n" "$corpus" "$k" "$seed" "$nmi" "$ari" "$npmi" "$div" "$wall" "$found" "$anmi" "$aari" "$anpmi" "$adiv" "$awall"
    rows="$rows$corpus $k $nmi $ari $wall $found $anmi $aari $awall $npmi $div $anpmi $adiv\n"
  done
done
printf "$rows" | python3 -c '
import sys, collections
by = collections.defaultdict(list)
for line in sys.stdin:
    c, k, *v = line.split()
    by[(c, int(k))].append([float(x) for x in v])
print()
print("| corpus | gold k | k found | NMI gold k | NMI auto | ARI gold k | ARI auto | NPMI gold k | NPMI auto | diversity gold k | diversity auto | wall auto / gold k |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for (c, k), v in by.items():
    n = len(v)
    mean = lambda i: sum(r[i] for r in v) / n
    found = sorted(int(r[3]) for r in v)
    print("| %s | %d | %d-%d | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.2f | %.2f | %.2f |" % (
        c, k, found[0], found[-1], mean(0), mean(4), mean(1), mean(5), mean(7), mean(9),
        mean(8), mean(10), mean(6) / mean(2)))'
