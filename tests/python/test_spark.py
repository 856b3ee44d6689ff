"""`textcluster.spark` in a local[2] Spark session (one per module): labels equal, bit for bit
and row for row by doc_id, to the ones `textcluster assign` writes, however the DataFrame is
partitioned."""

import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import textcluster
import textcluster.spark
from conftest import DAY_3


@pytest.fixture(scope="module")
def spark():
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("textcluster-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .getOrCreate()
    )
    yield session
    session.stop()


def by_id(table):
    return table.sort_by("doc_id")


@pytest.mark.parametrize("n_partitions", [1, 3, 8])
def test_spark_assign_gives_the_commands_labels_bit_for_bit(spark, fitted, n_partitions):
    _, models, want = fitted
    df = spark.read.parquet(str(DAY_3)).repartition(n_partitions)
    assert df.rdd.getNumPartitions() == n_partitions
    labels = textcluster.spark.assign(df, str(models))
    got = pa.Table.from_batches(labels._collect_as_arrow())
    assert got.column_names == want.column_names
    got, want = by_id(got), by_id(want)
    for name in want.column_names:
        assert got.column(name).combine_chunks().cast(want.schema.field(name).type).equals(
            want.column(name).combine_chunks()
        ), name


def test_spark_assign_keeps_the_columns_asked_for(spark, fitted):
    _, models, want = fitted
    from pyspark.sql import functions

    df = spark.read.parquet(str(DAY_3)).withColumn("dt", functions.lit("2018-06-03"))
    labels = textcluster.spark.assign(df, textcluster.Model.load(str(models)), keep=["dt"])
    assert labels.columns == want.column_names + ["dt"]
    assert labels.filter("dt = '2018-06-03'").count() == want.num_rows


def test_a_dataframe_without_the_id_column_raises_an_input_error_naming_it(spark, fitted):
    _, models, _ = fitted
    df = spark.read.parquet(str(DAY_3)).drop("doc_id")
    with pytest.raises(textcluster.InputError, match="no column `doc_id`"):
        textcluster.spark.assign(df, str(models))
    with pytest.raises(textcluster.InputError, match="no column `body`"):
        textcluster.spark.assign(spark.read.parquet(str(DAY_3)), str(models), text_col="body")
