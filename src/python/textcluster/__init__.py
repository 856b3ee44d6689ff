"""textcluster: cluster text documents kept as hive-partitioned Parquet.

`Model.load` opens a fitted model and `Model.assign` labels Arrow batches with it; `run`, `fit`
and `assign` run a job spec as the `textcluster` command does. `textcluster.spark` runs them
on Spark.
"""

from ._native import (
    Error,
    InputError,
    Model,
    RetryableError,
    __version__,
    assign,
    fit,
    run,
)

__all__ = ["Error", "InputError", "Model", "RetryableError", "__version__", "assign", "fit", "run"]
