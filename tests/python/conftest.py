"""What the Python tests share: the repository, the wheel's command, and one model fitted by
that command with the labels its `assign` wrote."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

REPO = Path(__file__).resolve().parents[2]
DAY_3 = REPO / "data/sample/dt=2018-06-03/part-00000.parquet"
COMMAND = Path(sys.executable).with_name("textcluster")


def cli(*args):
    """The wheel's `textcluster` command, run in the repository; returns stdout."""
    done = subprocess.run([str(COMMAND), *args], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="session")
def fitted(tmp_path_factory):
    """A model fitted by the command on days 1 and 2: its summary, its registry, the labels its
    `assign` wrote for day 3, and that assign's output directory."""
    root = tmp_path_factory.mktemp("fitted")
    models, out = root / "models", root / "out"
    summary = json.loads(
        cli("fit", "jobs/sample.toml", "--model", str(models),
            "--partition", "dt=2018-06-01", "--partition", "dt=2018-06-02")
    )
    cli("assign", "jobs/sample.toml", "--model", str(models), "--set", f"output.path={out}",
        "--partition", "dt=2018-06-03")
    labels = pq.read_table(out / "labels/dt=2018-06-03/part-00000.parquet")
    return summary, models, labels, out


