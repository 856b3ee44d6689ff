"""textcluster.spark against Spark MLlib's own pipeline, side by side in one Spark session.

usage (from the repository, with the test venv and a release wheel installed in it):

    PY=$(bash tests/python/venv.sh)
    $PY -m pip install --force-reinstall --no-deps $(scripts/build_wheel.sh release)
    $PY scripts/spark_bench.py --spec jobs/20newsgroups.toml --seeds 0 1 2 3 4 \
        --out /tmp/spark-bench.json

For each seed, alternating: MLlib (RegexTokenizer, StopWordsRemover, CountVectorizer, IDF,
Normalizer, KMeans with the cosine distance, k from the spec) and textcluster.spark (fit, then
assign), each from `spark.read.parquet` to the labels collected on the driver. Reports wall
time, NMI against the input's `label` column, and the peak RSS of the executor side (the JVM
and its Python workers: in local mode the executor lives in the JVM), sampled every 0.1 s.

`--scaling` instead times one refinement round (the partial sums over cached rows, added up by
Spark) with local[1] and with local[2].
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import tomllib
from pathlib import Path


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class PeakRss:
    """The peak of the summed RSS of this process's descendants (the JVM, Python workers)."""

    def __init__(self):
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(rss_mb(p) for p in descendants(os.getpid())))
            time.sleep(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def nmi(a, b) -> float:
    """Normalized mutual information, arithmetic mean (scikit-learn's default)."""
    import numpy as np

    _, a = np.unique(np.asarray(a), return_inverse=True)
    _, b = np.unique(np.asarray(b), return_inverse=True)
    n = len(a)
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)
    pa, pb, pab = table.sum(1) / n, table.sum(0) / n, table / n
    nz = pab > 0
    mi = (pab[nz] * np.log(pab[nz] / np.outer(pa, pb)[nz])).sum()
    h = lambda p: -(p[p > 0] * np.log(p[p > 0])).sum()  # noqa: E731
    denom = (h(pa) + h(pb)) / 2
    return float(mi / denom) if denom > 0 else 1.0


def score(pred, gold) -> float:
    """NMI of the predicted clusters (doc_id, cluster) against gold (doc_id, label)."""
    want = dict(zip(gold.column("doc_id").to_pylist(), gold.column("label").to_pylist()))
    ids, clusters = pred.column("doc_id").to_pylist(), pred.column("cluster").to_pylist()
    return nmi(clusters, [want[i] for i in ids])


def mllib(spark, path: str, spec: dict, seed: int):
    from pyspark.ml import Pipeline
    from pyspark.ml.clustering import KMeans
    from pyspark.ml.feature import IDF, CountVectorizer, Normalizer, RegexTokenizer, StopWordsRemover

    v, c = spec.get("vectorize", {}), spec.get("cluster", {})
    df = spark.read.parquet(path).select("doc_id", "text")
    stages = [
        RegexTokenizer(inputCol="text", outputCol="tokens", pattern=r"(?U)\w\w+", gaps=False),
        StopWordsRemover(inputCol="tokens", outputCol="words"),
        CountVectorizer(
            inputCol="words", outputCol="tf", minDF=float(v.get("min_df", 1)),
            maxDF=float(v.get("max_df", 1.0)) if float(v.get("max_df", 1.0)) < 1 else 2.0**62,
        ),
        IDF(inputCol="tf", outputCol="tfidf"),
        Normalizer(inputCol="tfidf", outputCol="features", p=2.0),
        KMeans(k=int(c.get("k", 20)), seed=seed, distanceMeasure="cosine", featuresCol="features",
               predictionCol="cluster"),
    ]
    model = Pipeline(stages=stages).fit(df)
    return model.transform(df).select("doc_id", "cluster").toArrow()


def textcluster_spark(spark, path: str, spec_path: str, seed: int, registry: Path):
    import textcluster.spark

    df = spark.read.parquet(path)
    textcluster.spark.fit(df, spec_path, registry, overrides=[f"cluster.seed={seed}"])
    return textcluster.spark.assign(df, str(registry)).select("doc_id", "cluster").toArrow()


def session(cores: int):
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return (
        SparkSession.builder.master(f"local[{cores}]")
        .appName("textcluster-bench")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "6g")
        .config("spark.sql.shuffle.partitions", str(2 * cores))
        .getOrCreate()
    )


def compare(args, spec: dict) -> dict:
    import pyarrow.dataset as ds

    path = spec["input"]["path"]
    gold = ds.dataset(path, partitioning="hive").to_table(columns=["doc_id", "label"])
    spark = session(2)
    # One warm-up of each: JVM class loading and the Python workers' first imports.
    with tempfile.TemporaryDirectory() as tmp:
        mllib(spark, path, spec, 0)
        textcluster_spark(spark, path, args.spec, 0, Path(tmp) / "warm")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for engine in ["mllib", "textcluster"]:
                with PeakRss() as peak:
                    t = time.perf_counter()
                    if engine == "mllib":
                        pred = mllib(spark, path, spec, seed)
                    else:
                        pred = textcluster_spark(spark, path, args.spec, seed, Path(tmp) / f"m{seed}")
                    wall = time.perf_counter() - t
                run = {"engine": engine, "seed": seed, "wall_s": wall, "nmi": score(pred, gold),
                       "executor_peak_rss_mb": peak.peak, "n_labelled": pred.num_rows}
                print(json.dumps(run), flush=True)
                runs.append(run)
    spark.stop()
    return {"runs": runs}


def scaling(args, spec: dict) -> dict:
    """One refinement round's time (partial sums over cached rows + Spark's sum) with
    local[1] and local[2], on the spec's input with `fit.sample` as given."""
    import textcluster
    from pyspark.sql import functions as F

    out = {}
    for cores in [1, 2]:
        spark = session(cores)
        with tempfile.TemporaryDirectory() as tmp:
            engine = textcluster.EngineFit(args.spec, tmp, [f"fit.sample={args.sample}"])
            id_col, text_col = engine.columns
            docs = spark.read.parquet(spec["input"]["path"]).select(id_col, text_col)
            docs = docs.repartition(4 * cores).cache()
            docs.count()
            seed, fraction = engine.sample_rule

            def sampled(batches):
                for b in batches:
                    yield textcluster.sample_rows(b, id_col, text_col, seed, fraction)

            engine.set_sample(docs.mapInArrow(sampled, f"{id_col} string, {text_col} string").toArrow())
            state = engine.vectorizer()

            def counts(batches):
                yield textcluster.Vectorizer(state).df_counts(batches, text_col)

            summed = docs.mapInArrow(counts, "term int, count long").groupBy("term").agg(
                F.sum("count").alias("count"))
            engine.set_whole_df(summed.toArrow())
            engine.cluster()
            state = engine.vectorizer()

            def rows(batches):
                v = textcluster.Vectorizer(state)
                for b in batches:
                    yield v.rows(b, text_col)

            cached = docs.mapInArrow(rows, "indices array<int>, values array<float>").cache()
            cached.count()
            round_state = engine.round()
            times = []
            for _ in range(args.repeats):
                def partial(batches, r=round_state):
                    yield textcluster.Round(r).partial_sums(batches)

                t = time.perf_counter()
                parts = cached.mapInArrow(partial, "cluster int, term int, value long")
                parts.groupBy("cluster", "term").agg(F.sum("value").alias("value")).toArrow()
                times.append(time.perf_counter() - t)
            out[f"local[{cores}]"] = sorted(times)[len(times) // 2]
            print(json.dumps({"cores": cores, "round_s": times}), flush=True)
        spark.stop()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spec", default="jobs/20newsgroups.toml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--scaling", action="store_true")
    ap.add_argument("--sample", type=float, default=0.25)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(args.spec, "rb") as f:
        spec = tomllib.load(f)
    result = scaling(args, spec) if args.scaling else compare(args, spec)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
