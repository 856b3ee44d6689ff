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
from conftest import DAY_3, REPO


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
    _, models, want, _ = fitted
    df = spark.read.parquet(str(DAY_3)).repartition(n_partitions)
    assert df.rdd.getNumPartitions() == n_partitions
    labels = textcluster.spark.assign(df, str(models))
    got = labels.toArrow()
    assert got.column_names == want.column_names
    got, want = by_id(got), by_id(want)
    for name in want.column_names:
        assert got.column(name).combine_chunks().cast(want.schema.field(name).type).equals(
            want.column(name).combine_chunks()
        ), name


def test_spark_assign_keeps_the_columns_asked_for(spark, fitted):
    _, models, want, _ = fitted
    from pyspark.sql import functions

    df = spark.read.parquet(str(DAY_3)).withColumn("dt", functions.lit("2018-06-03"))
    labels = textcluster.spark.assign(df, textcluster.Model.load(str(models)), keep=["dt"])
    assert labels.columns == want.column_names + ["dt"]
    assert labels.filter("dt = '2018-06-03'").count() == want.num_rows


def test_a_dataframe_without_the_id_column_raises_an_input_error_naming_it(spark, fitted):
    _, models, _, _ = fitted
    df = spark.read.parquet(str(DAY_3)).drop("doc_id")
    with pytest.raises(textcluster.InputError, match="no column `doc_id`"):
        textcluster.spark.assign(df, str(models))
    with pytest.raises(textcluster.InputError, match="no column `body`"):
        textcluster.spark.assign(spark.read.parquet(str(DAY_3)), str(models), text_col="body")


@pytest.fixture(scope="module")
def command_fits(tmp_path_factory):
    """The model_id `textcluster fit` gives on the whole sample: with a refined 50% sample, and
    on every document; each also with `k = "auto"`."""
    import json

    from conftest import cli

    root = tmp_path_factory.mktemp("command-fits")
    ids = {}
    auto = ["--set", "cluster.k=auto"]
    for name, sets in [
        ("sampled", ["--set", "fit.sample=0.5"]),
        ("whole", []),
        ("auto-sampled", ["--set", "fit.sample=0.5", *auto]),
        ("auto-whole", auto),
    ]:
        summary = json.loads(cli("fit", "jobs/sample.toml", "--model", str(root / name), *sets))
        ids[name] = summary["model_id"]
    return ids


SAMPLE = REPO / "data/sample"


@pytest.mark.parametrize("n_partitions", [1, 3, 8])
def test_spark_fit_writes_the_commands_model_bit_for_bit(
    spark, command_fits, tmp_path, monkeypatch, n_partitions
):
    monkeypatch.chdir(REPO)  # the spec's input path is relative, as for the command
    df = spark.read.parquet(str(SAMPLE)).repartition(n_partitions)
    assert df.rdd.getNumPartitions() == n_partitions
    models = tmp_path / "models"
    got = textcluster.spark.fit(df, REPO / "jobs/sample.toml", models, overrides=["fit.sample=0.5"])
    assert got == command_fits["sampled"]
    # Published, and loadable as `assign` loads it.
    assert textcluster.Model.load(str(models)).model_id == got
    header = textcluster.Model.load(str(models)).header
    assert header["refine_rounds"] >= 2 and header["sample_fraction"] == 0.5


@pytest.mark.parametrize("name", ["auto-sampled", "auto-whole"])
def test_a_spark_fit_with_k_auto_writes_the_commands_model(
    spark, command_fits, tmp_path, monkeypatch, name
):
    monkeypatch.chdir(REPO)
    df = spark.read.parquet(str(SAMPLE)).repartition(3)
    models = tmp_path / "models"
    overrides = ["cluster.k=auto"] + (["fit.sample=0.5"] if name == "auto-sampled" else [])
    got = textcluster.spark.fit(df, REPO / "jobs/sample.toml", models, overrides=overrides)
    assert got == command_fits[name]
    header = textcluster.Model.load(str(models)).header
    assert header["cluster"]["k"] == "auto", header["cluster"]


def test_spark_fit_on_every_document_and_again_reuses_the_model(
    spark, command_fits, tmp_path, monkeypatch
):
    monkeypatch.chdir(REPO)
    df = spark.read.parquet(str(SAMPLE)).repartition(3)
    models = tmp_path / "models"
    got = textcluster.spark.fit(df, REPO / "jobs/sample.toml", models)
    assert got == command_fits["whole"]
    written = sorted(p.name for p in models.iterdir())
    # A rerun finds the model of the same fit and writes nothing new.
    assert textcluster.spark.fit(df, REPO / "jobs/sample.toml", models) == got
    assert sorted(p.name for p in models.iterdir()) == written


def test_a_korean_spark_fit_writes_the_commands_model_and_its_word_table(
    spark, tmp_path, monkeypatch
):
    """The driver learns the word table from the input, the executors split words with it: the
    sampled, refined fit is the command's, bit for bit."""
    import json

    from conftest import cli

    monkeypatch.chdir(REPO)
    sets = ["input.path=data/ko_sample", "cluster.k=6", "fit.sample=0.5"]
    overrides = [x for s in sets for x in ("--set", s)]
    summary = json.loads(cli("fit", "jobs/korean.toml", "--model", str(tmp_path / "cmd"),
                             *overrides))
    df = spark.read.parquet(str(REPO / "data/ko_sample")).repartition(3)
    models = tmp_path / "models"
    got = textcluster.spark.fit(df, REPO / "jobs/korean.toml", models, overrides=sets)
    assert got == summary["model_id"]
    header = textcluster.Model.load(str(models)).header
    assert header["format_version"] == 2 and "words.json" in header["files"]


def test_a_spark_fit_on_a_tokens_column_writes_the_commands_model(spark, tmp_path, monkeypatch):
    """Tokens made upstream (`list<string>`) reach the executors as the command reads them."""
    import json

    import pyarrow.compute as pc

    from conftest import cli

    monkeypatch.chdir(REPO)
    corpus = tmp_path / "tokens"
    for day in ["2019-04-01", "2019-05-01"]:
        part = REPO / f"data/ko_sample/dt={day}/part-00000.parquet"
        table = pq.read_table(part, columns=["doc_id", "text"])
        table = table.append_column("tokens", pc.utf8_split_whitespace(table.column("text")))
        (corpus / f"dt={day}").mkdir(parents=True)
        pq.write_table(table, corpus / f"dt={day}/part-00000.parquet")
    sets = [f"input.path={corpus}", "vectorize.tokenizer=column", "input.tokens_column=tokens",
            "cluster.k=5", "fit.sample=0.5"]
    overrides = [x for s in sets for x in ("--set", s)]
    summary = json.loads(cli("fit", "jobs/korean.toml", "--model", str(tmp_path / "cmd"),
                             *overrides))
    df = spark.read.parquet(str(corpus)).repartition(3)
    got = textcluster.spark.fit(df, REPO / "jobs/korean.toml", tmp_path / "models",
                                overrides=sets)
    assert got == summary["model_id"]


def test_spark_fit_refuses_a_dataframe_that_is_not_the_specs_input(spark, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    models = tmp_path / "models"
    spec = REPO / "jobs/sample.toml"
    one_day = spark.read.parquet(str(DAY_3))
    with pytest.raises(textcluster.InputError, match="holds 697 rows and the spec.s input 2000"):
        textcluster.spark.fit(one_day, spec, models)
    with pytest.raises(textcluster.InputError, match="no column `doc_id`"):
        textcluster.spark.fit(spark.read.parquet(str(SAMPLE)).drop("doc_id"), spec, models)
    assert not models.exists() or not any(models.iterdir())


def test_spark_clusters_and_drift_match_what_the_command_wrote(spark, fitted):
    import json

    from pyspark.sql import functions

    _, models, _, out = fitted
    df = spark.read.parquet(str(DAY_3)).withColumn("dt", functions.lit("2018-06-03"))
    labels = textcluster.spark.assign(df, str(models), keep=["dt"])
    table, drift = textcluster.spark.clusters(labels, str(models), by=["dt"])
    want = pq.read_table(out / "clusters/dt=2018-06-03/part-00000.parquet")
    got = table.drop("dt").toArrow()
    assert got.column_names == want.column_names
    for name in ["cluster", "n_docs", "share_below_fit_p05", "model_id"]:
        assert got.column(name).cast(want.schema.field(name).type).to_pylist() == want.column(
            name
        ).to_pylist(), name
    # Spark sums the similarities in its own order: equal to f32 rounding.
    for a, b in zip(got.column("mean_similarity").to_pylist(), want.column("mean_similarity").to_pylist()):
        assert abs(a - b) <= 1e-6 * max(1.0, abs(b))
    manifest = json.loads((out / "manifest.json").read_text())
    (partition,) = [p for p in manifest["partitions"] if p["key"] == "dt=2018-06-03"]
    (row,) = drift.collect()
    for name in ["share_no_known_term", "share_below_fit_p05", "js_divergence"]:
        assert abs(row[name] - partition["drift"][name]) < 1e-12, name
    assert row["n_docs"] == labels.count()
    assert row["js_divergence"] > 0
