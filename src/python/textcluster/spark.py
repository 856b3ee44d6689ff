"""textcluster on Spark, through PySpark's public API only.

`fit(df, spec, model_uri)` fits the model `textcluster fit` fits on the same input and spec,
bit for bit, as MLlib's KMeans does its work: the sample and the df counts are computed by
Spark, the sample is clustered on the driver, and each refinement round is a `mapInArrow`
over cached rows that yields partial sums, which Spark adds up as int64.

`clusters(labels, model)` aggregates labels into the `clusters` table per partition and the
drift figures, as `textcluster assign` reports them.

`assign(df, model)` labels a DataFrame's documents on the executors with `mapInArrow`: each
Python worker loads the model once and labels each Arrow batch with `Model.assign` on one
thread, so the labels are the bits `textcluster assign` writes, however the DataFrame is
partitioned. Write them with Spark's own writer:

    labels = textcluster.spark.assign(spark.read.parquet("s3://lake/corpus"), "s3://lake/models")
    labels.write.mode("overwrite").partitionBy("dt").parquet("s3://lake/labels")
"""

from __future__ import annotations

from typing import Iterator

from . import EngineFit, InputError, Model, Round, Vectorizer, sample_rows

#: The `labels` table's columns, as Spark types (the Arrow types `Model.assign` returns).
LABELS_DDL = (
    "doc_id string, cluster int, similarity float, second_cluster int, "
    "second_similarity float, model_id string"
)

# Models loaded in this Python worker, by path: Spark reuses workers across tasks.
_loaded: dict[tuple[str, tuple], Model] = {}


def _model(path: str, storage_options: dict | None) -> Model:
    key = (path, tuple(sorted((storage_options or {}).items())))
    if key not in _loaded:
        _loaded[key] = Model.load(path, storage_options)
    return _loaded[key]


def _check_columns(df, columns):
    for column in columns:
        if column not in df.columns:
            raise InputError(
                f"the DataFrame has no column `{column}`; its columns are "
                + ", ".join(f"`{c}`" for c in df.columns)
            )


def assign(
    df,
    model,
    text_col: str = "text",
    id_col: str = "doc_id",
    keep: list[str] | None = None,
    storage_options: dict | None = None,
):
    """The labels of `df`'s documents as a DataFrame with the `labels` table's columns (the id
    column named `doc_id`), plus the columns named in `keep` (partition columns, say), which
    must not be named like a labels column. Rows with a null text are left out, as
    `textcluster assign` leaves them out.

    `model` is a `Model` or the URI of a model directory or registry; a registry is resolved
    through its `CURRENT` once, on the driver, so every executor uses the same model.
    """
    if not isinstance(model, Model):
        model = Model.load(str(model), storage_options)
    path = model.path
    keep = list(keep or [])
    _check_columns(df, [id_col, text_col, *keep])
    labels_columns = [c.split()[0] for c in LABELS_DDL.split(", ")]
    clash = [c for c in keep if c in labels_columns]
    if clash:
        raise InputError(f"`keep` names {clash}, which are columns of the labels table")
    kept_ddl = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in df.select(*keep).schema)
    ddl = LABELS_DDL + (", " + kept_ddl if kept_ddl else "")

    def labels(batches: Iterator) -> Iterator:
        import pyarrow as pa

        m = _model(path, storage_options)
        for batch in batches:
            got = m.assign(batch, text_column=text_col, id_column=id_col, threads=1)
            if keep:
                # The rows `assign` keeps: those with a text.
                rows = batch.filter(batch.column(text_col).is_valid())
                got = pa.RecordBatch.from_arrays(
                    got.columns + [rows.column(c) for c in keep],
                    names=got.schema.names + keep,
                )
            yield got

    return df.select(id_col, text_col, *keep).mapInArrow(labels, ddl)


def fit(
    df,
    spec,
    model_uri=None,
    overrides: list[str] | None = None,
    partitions: list[str] | None = None,
    publish: bool = True,
    storage_options: dict | None = None,
) -> str:
    """Fits the job at `spec` (a job-spec path) on `df`, the documents of the spec's input,
    writes the model to the registry `model_uri` (else the spec's `[model] path`), publishes
    it unless `publish` is false, and returns its model_id: the id `textcluster fit` gives on
    the same input and spec, however `df` is partitioned.

    The driver lists the spec's input (its footers give the fit's key), so `df` must hold
    exactly those documents, for instance `spark.read.parquet(<input.path>)`; a row count
    that differs from the footers' is an `InputError`. `overrides` and `partitions` are as
    for `textcluster.fit`; `storage_options` are `[storage]` options for listing an input on
    an object store. The registry is a local (or mounted) directory of the driver. Rows with
    a null text are left out, as `fit` leaves them out.
    """
    engine = EngineFit(
        str(spec),
        None if model_uri is None else str(model_uri),
        overrides,
        partitions,
        storage_options=storage_options,
    )
    id_col, text_col = engine.columns
    _check_columns(df, [id_col, text_col])
    reused = engine.reusable()
    if reused is not None:
        if publish:
            engine.publish(reused)
        return reused
    docs = df.select(id_col, text_col)
    n_rows, want = docs.count(), engine.input_rows
    if n_rows != want:
        raise InputError(
            f"the DataFrame holds {n_rows} rows and the spec's input {want}: "
            "pass the documents of the spec's input, all of them"
        )
    from pyspark.sql import functions as F

    seed, fraction = engine.sample_rule

    def sampled(batches: Iterator) -> Iterator:
        for batch in batches:
            yield sample_rows(batch, id_col, text_col, seed, fraction)

    ddl = f"`{id_col}` string, `{text_col}` string"
    engine.set_sample(docs.mapInArrow(sampled, ddl).toArrow())

    if engine.needs_whole_df:
        state = engine.vectorizer()

        def df_counts(batches: Iterator) -> Iterator:
            yield Vectorizer(state).df_counts(batches, text_col)

        counts = docs.mapInArrow(df_counts, "term int, count long")
        engine.set_whole_df(counts.groupBy("term").agg(F.sum("count").alias("count")).toArrow())
    engine.cluster()

    first = engine.round()
    if first is not None:
        state = engine.vectorizer()

        def vectorized(batches: Iterator) -> Iterator:
            vectorizer = Vectorizer(state)
            for batch in batches:
                yield vectorizer.rows(batch, text_col)

        rows = docs.mapInArrow(vectorized, "indices array<int>, values array<float>").cache()
        try:
            round_state = first
            while round_state is not None:
                def partial_sums(batches: Iterator, round_state=round_state) -> Iterator:
                    yield Round(round_state).partial_sums(batches)

                partials = rows.mapInArrow(partial_sums, "cluster int, term int, value long")
                summed = partials.groupBy("cluster", "term").agg(F.sum("value").alias("value"))
                engine.end_round(summed.toArrow())
                round_state = engine.round()
        finally:
            rows.unpersist()
    return engine.finish(publish)["model_id"]


def clusters(labels, model, by: list[str] | tuple[str, ...] = ("dt",), storage_options=None):
    """The `clusters` table of each partition of `labels` (a DataFrame from `assign` with the
    partition columns `by` kept) and each partition's drift figures, aggregated by Spark; a
    pair of DataFrames.

    - clusters: `by`..., `cluster`, `n_docs`, `mean_similarity`, `share_below_fit_p05`,
      `model_id`: one row per cluster of the model and partition, as `textcluster assign`
      writes it (`mean_similarity` may differ in the last bit: Spark sums in its own order).
    - drift: `by`..., `n_docs`, `share_no_known_term`, `share_below_fit_p05`, `js_divergence`,
      as in `textcluster assign`'s manifest. The out-of-vocabulary token rate needs the tokens,
      which labels do not carry; the command reports it.
    """
    from pyspark.sql import functions as F

    if not isinstance(model, Model):
        model = Model.load(str(model), storage_options)
    by = list(by)
    _check_columns(labels, [*by, "cluster", "similarity"])
    spark = labels.sparkSession
    fit = spark.createDataFrame(
        [(c["cluster"], float(c["similarity_quantiles"][0]), float(c["share"]))
         for c in model.header["clusters"]],
        "cluster int, p05 double, fit_share double",
    ).withColumn("p05", F.col("p05").cast("float"))  # the fit's f32 quantile, exactly
    known = labels.filter(F.col("cluster") >= 0).join(F.broadcast(fit), "cluster")
    below = (F.col("similarity") < F.col("p05")).cast("long")
    per_cluster = known.groupBy(*by, "cluster").agg(
        F.count(F.lit(1)).alias("n_docs"),
        F.avg("similarity").cast("float").alias("mean_similarity"),
        F.sum(below).alias("n_below"),
    )
    grid = labels.select(*by).distinct().crossJoin(F.broadcast(fit))
    table = (
        grid.join(per_cluster, [*by, "cluster"], "left")
        .fillna(0, ["n_docs", "n_below"])
        .fillna(0.0, ["mean_similarity"])
    )
    out = table.select(
        *by,
        "cluster",
        "n_docs",
        "mean_similarity",
        F.when(F.col("n_docs") > 0, F.col("n_below") / F.col("n_docs"))
        .otherwise(0.0)
        .cast("float")
        .alias("share_below_fit_p05"),
        F.lit(model.model_id).alias("model_id"),
    ).orderBy(*by, "cluster")

    totals = labels.groupBy(*by).agg(
        F.count(F.lit(1)).alias("n_docs"),
        F.sum((F.col("cluster") < 0).cast("long")).alias("n_no_term"),
    )
    known_totals = table.groupBy(*by).agg(
        F.sum("n_docs").alias("n_known"), F.sum("n_below").alias("n_below")
    )
    p = F.col("n_docs") / F.col("n_known")
    q = F.col("fit_share")
    m = (p + q) / 2
    js_terms = table.join(known_totals.select(*by, "n_known"), by).withColumn(
        "term",
        F.when(p > 0, 0.5 * p * F.log2(p / m)).otherwise(0.0)
        + F.when(q > 0, 0.5 * q * F.log2(q / m)).otherwise(0.0),
    )
    js = js_terms.groupBy(*by).agg(F.sum("term").alias("js"), F.first("n_known").alias("n_known"))
    drift = (
        totals.join(known_totals, by)
        .join(js.select(*by, "js"), by)
        .select(
            *by,
            "n_docs",
            F.when(F.col("n_docs") > 0, F.col("n_no_term") / F.col("n_docs"))
            .otherwise(0.0)
            .alias("share_no_known_term"),
            F.when(F.col("n_known") > 0, F.col("n_below") / F.col("n_known"))
            .otherwise(0.0)
            .alias("share_below_fit_p05"),
            F.when(F.col("n_known") > 0, F.least(F.greatest(F.col("js"), F.lit(0.0)), F.lit(1.0)))
            .otherwise(0.0)
            .alias("js_divergence"),
        )
        .orderBy(*by)
    )
    return out, drift
