"""The Python package as a user meets it: the wheel installed with pip, its `textcluster`
command and its `textcluster` module, on the sample in data/. Run by `cargo test` (tests/it/
python.rs) after it builds and installs the wheel; on its own: `pytest tests/python` with the
wheel installed."""

import json
import os
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import textcluster

from conftest import COMMAND, DAY_3, REPO, cli


def test_the_command_is_the_binary_in_the_wheel():
    assert cli("--version").strip() == f"textcluster {textcluster.__version__}"


def test_a_model_loads_from_its_registry_with_its_tables(fitted):
    summary, models, _, _ = fitted
    model = textcluster.Model.load(str(models))
    assert model.model_id == summary["model_id"]
    assert model.n_clusters == 20
    assert model.path == summary["path"]
    assert set(model.params) == {"vectorize", "cluster", "keywords"}
    assert model.params["cluster"]["k"] == 20
    assert model.header["model_id"] == model.model_id
    for table, column in [(model.centroids, "cluster"), (model.keywords, "cluster"),
                          (model.similarity, "cosine")]:
        assert isinstance(table, pa.Table) and table.num_rows > 0
        assert column in table.column_names, table.schema
    assert "Model(model_id=" in repr(model)


@pytest.mark.parametrize("source", ["pyarrow table", "pyarrow batch", "polars", "duckdb"])
def test_assign_gives_the_labels_the_command_wrote_from_any_arrow_source(fitted, source):
    _, models, want, _ = fitted
    model = textcluster.Model.load(str(models))
    day = pq.read_table(DAY_3)
    batch = {
        "pyarrow table": lambda: day,
        "pyarrow batch": lambda: day.combine_chunks().to_batches()[0],
        "polars": lambda: pl.from_arrow(day),
        "duckdb": lambda: duckdb.from_arrow(day),
    }[source]()
    got = model.assign(batch)
    assert isinstance(got, pa.RecordBatch)
    assert got.schema == want.schema
    assert pa.Table.from_batches([got]).equals(want.combine_chunks())


def test_assign_on_more_threads_gives_the_same_bits(fitted):
    _, models, want, _ = fitted
    model = textcluster.Model.load(str(models))
    got = model.assign(pq.read_table(DAY_3), threads=2)
    assert pa.Table.from_batches([got]).equals(want.combine_chunks())


def test_bad_batches_and_models_raise_input_errors_naming_the_culprit(fitted, tmp_path):
    _, models, _, _ = fitted
    model = textcluster.Model.load(str(models))
    day = pq.read_table(DAY_3)
    with pytest.raises(textcluster.InputError, match="no column `body`"):
        model.assign(day, text_column="body")
    numbers = pa.table({"doc_id": ["a", "b"], "text": [1, 2]})
    with pytest.raises(textcluster.InputError, match="column `text` of the batch is Int64"):
        model.assign(numbers)
    with pytest.raises(textcluster.InputError, match="expected an Arrow object"):
        model.assign({"text": ["x"]})
    missing = tmp_path / "nothing"
    with pytest.raises(textcluster.InputError, match=str(missing)):
        textcluster.Model.load(str(missing))
    # A model whose header was edited is corrupt: named, and nothing is written.
    copy = tmp_path / "copy"
    shutil.copytree(Path(model.path), copy)
    header = json.loads((copy / "model.json").read_text())
    header["cluster"]["k"] = 7
    (copy / "model.json").write_text(json.dumps(header))
    before = sorted((p.name, p.read_bytes()) for p in copy.iterdir())
    with pytest.raises(textcluster.InputError, match="model.json"):
        textcluster.Model.load(str(copy))
    assert sorted((p.name, p.read_bytes()) for p in copy.iterdir()) == before
    assert issubclass(textcluster.InputError, textcluster.Error)
    assert issubclass(textcluster.RetryableError, textcluster.Error)


def test_run_fit_and_assign_return_the_commands_summaries(fitted, tmp_path):
    summary, models, want, _ = fitted
    os.chdir(REPO)
    again = textcluster.fit("jobs/sample.toml", model=str(models),
                            partitions=["dt=2018-06-01", "dt=2018-06-02"])
    assert again["model_id"] == summary["model_id"] and again["fitted"] is False
    out = tmp_path / "out"
    assigned = textcluster.assign("jobs/sample.toml", model=str(models),
                                  overrides=[f"output.path={out}"], partitions=["dt=2018-06-03"])
    assert assigned["status"] == "succeeded" and assigned["model_id"] == summary["model_id"]
    assert pq.read_table(out / "labels/dt=2018-06-03/part-00000.parquet").equals(want)
    ran = textcluster.run("jobs/sample.toml", overrides=[f"output.path={tmp_path / 'run'}"],
                          partitions=["dt=2018-06-01"])
    assert ran["succeeded"] == 1 and ran["partitions"][0]["key"] == "dt=2018-06-01"
    with pytest.raises(textcluster.InputError, match="cluster.k"):
        textcluster.run("jobs/sample.toml", overrides=["cluster.k=0"])
