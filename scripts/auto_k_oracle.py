#!/usr/bin/env python3
"""How many topics can a merge find? An upper bound for `k = "auto"`.

`k = "auto"` over-clusters into pieces, then merges them. A merge can only keep topics that
own at least one piece, so the gold topics that are the majority of some piece bound the k a
correct merge can find. For each corpus and piece count, this runs `textcluster run` at
k = pieces (no merge) and reports: the pieces, the distinct majority topics among them, and
the NMI / ARI of the "oracle" merge that joins the pieces by their majority topic (the best
merge that keeps whole pieces, before refinement).

usage: scripts/auto_k_oracle.py reuters21578:75,182,300 bbc_news:44 [--seeds 0 1 2]
needs: numpy, scikit-learn and pyarrow (the peers' virtualenv, ../shared/peers/setup.sh)
"""

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "data"
BIN = REPO / "target" / "release" / "textcluster"
KOREAN = ["--set", "vectorize.tokenizer=korean_ngrams", "--set", "vectorize.ngram_max=4",
          "--set", "vectorize.min_df=5"]


def table(path, columns):
    return ds.dataset(path, format="parquet", partitioning="hive").to_table(columns=columns)


def one(corpus, pieces, seed, gold, tmp):
    out = Path(tmp) / f"{corpus}-{pieces}-{seed}"
    extra = KOREAN if corpus.startswith("ko_") else []
    subprocess.run([str(BIN), "-q", "run", str(REPO / "jobs" / "sample.toml"),
                    "--set", f"input.path={DATA / corpus}", "--set", f"output.path={out}",
                    "--set", "cluster.scope=global", "--set", f"cluster.k={pieces}",
                    "--set", f"cluster.seed={seed}", *extra],
                   check=True, stdout=subprocess.DEVNULL)
    labels = table(str(out / "labels"), ["doc_id", "cluster"]).to_pydict()
    piece = dict(zip(labels["doc_id"], labels["cluster"]))
    docs = [d for d in gold if piece.get(d, -1) >= 0]
    topics = {}
    for d in docs:
        topics.setdefault(piece[d], Counter())[gold[d]] += 1
    majority = {p: counts.most_common(1)[0][0] for p, counts in topics.items()}
    truth = [gold[d] for d in docs]
    oracle = [majority[piece[d]] for d in docs]
    return (len(majority), len(set(majority.values())),
            normalized_mutual_info_score(truth, oracle), adjusted_rand_score(truth, oracle))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+", help="corpus:pieces[,pieces...]")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    args = parser.parse_args()
    print("| corpus | gold topics | topics with ≥ 30 documents | pieces | seeds | "
          "topics owning a piece | oracle merge NMI | oracle merge ARI |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.specs:
            corpus, counts = spec.split(":")
            g = table(str(DATA / corpus), ["doc_id", "label"]).to_pydict()
            gold = dict(zip(g["doc_id"], g["label"]))
            sizes = Counter(gold.values())
            for pieces in (int(c) for c in counts.split(",")):
                rows = [one(corpus, pieces, s, gold, tmp) for s in args.seeds]
                owned = [r[1] for r in rows]
                print(f"| {corpus} | {len(sizes)} | {sum(1 for n in sizes.values() if n >= 30)} "
                      f"| {pieces} | {args.seeds[0]}-{args.seeds[-1]} | {min(owned)}-{max(owned)} "
                      f"| {np.mean([r[2] for r in rows]):.3f} | {np.mean([r[3] for r in rows]):.3f} |",
                      flush=True)


if __name__ == "__main__":
    sys.exit(main())
