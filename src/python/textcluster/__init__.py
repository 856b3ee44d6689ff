"""textcluster: cluster text documents kept as hive-partitioned Parquet.

`Model.load` opens a fitted model and `Model.assign` labels Arrow batches with it; `run`, `fit`
and `assign` run a job spec as the `textcluster` command does. `textcluster.spark` runs them
on Spark. `EngineFit`, `sample_rows`, `Vectorizer` and `Round` are the steps of a fit that an
engine runs (`textcluster.spark.fit` is one such engine).
"""

from ._native import (
    EngineFit,
    Error,
    InputError,
    Model,
    RetryableError,
    Round,
    Vectorizer,
    __version__,
    assign,
    fit,
    run,
    sample_rows,
)

__all__ = [
    "EngineFit",
    "Error",
    "InputError",
    "Model",
    "RetryableError",
    "Round",
    "Vectorizer",
    "__version__",
    "assign",
    "fit",
    "run",
    "sample_rows",
]
