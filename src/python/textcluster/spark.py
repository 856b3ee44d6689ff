"""textcluster on Spark, through PySpark's public API only.

`assign(df, model)` labels a DataFrame's documents on the executors with `mapInArrow`: each
Python worker loads the model once and labels each Arrow batch with `Model.assign` on one
thread, so the labels are the bits `textcluster assign` writes, however the DataFrame is
partitioned. Write them with Spark's own writer:

    labels = textcluster.spark.assign(spark.read.parquet("s3://lake/corpus"), "s3://lake/models")
    labels.write.mode("overwrite").partitionBy("dt").parquet("s3://lake/labels")
"""

from __future__ import annotations

from typing import Iterator

from . import InputError, Model

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
    for column in [id_col, text_col, *keep]:
        if column not in df.columns:
            raise InputError(
                f"the DataFrame has no column `{column}`; its columns are "
                + ", ".join(f"`{c}`" for c in df.columns)
            )
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
