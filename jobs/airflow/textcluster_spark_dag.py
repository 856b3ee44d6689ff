"""An Airflow DAG that fits and assigns with textcluster on Spark, through `spark-submit`.

textcluster_spark  `fit`: `spark-submit jobs/spark/textcluster_spark.py fit` fits on every
                   document of the input on the Spark cluster (the model is the one
                   `textcluster fit` writes, bit for bit) and publishes it; then `assign`:
                   `... assign` labels the input against the current model and writes the
                   labels with Spark's writer, partitioned by `dt`, overwriting only the
                   partitions it labels.

Both tasks are safe to retry: a fit on unchanged input returns the model it wrote, and the
assign overwrites its partitions whole. Each returns the application's JSON line as its XCom.

Configuration, by environment variable on the workers:
  TEXTCLUSTER_SPARK_SUBMIT  the spark-submit command (default: `spark-submit` on PATH)
  TEXTCLUSTER_SPARK_MASTER  `--master` (default: the cluster's own configuration)
  TEXTCLUSTER_SPARK_INPUT   the corpus, as Spark reads it (e.g. s3a://lake/corpus)
  TEXTCLUSTER_SPARK_OUTPUT  where the labels go
  TEXTCLUSTER_JOB, TEXTCLUSTER_MODEL, TEXTCLUSTER_WORKDIR  as for textcluster_dags.py
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import dag, task

SUBMIT = shlex.split(os.environ.get("TEXTCLUSTER_SPARK_SUBMIT", "spark-submit"))
MASTER = os.environ.get("TEXTCLUSTER_SPARK_MASTER")
INPUT = os.environ.get("TEXTCLUSTER_SPARK_INPUT", "data/sample")
OUTPUT = os.environ.get("TEXTCLUSTER_SPARK_OUTPUT", "out/spark-labels")
JOB = os.environ.get("TEXTCLUSTER_JOB", "jobs/sample.toml")
MODEL = os.environ.get("TEXTCLUSTER_MODEL", "models")
WORKDIR = os.environ.get("TEXTCLUSTER_WORKDIR", os.getcwd())
APP = str(Path(__file__).resolve().parents[1] / "spark" / "textcluster_spark.py")


def spark_submit(*args: str) -> dict:
    """Runs the application with `args`; returns the JSON line it printed last. The driver's
    output goes to the task log."""
    command = [*SUBMIT, *(["--master", MASTER] if MASTER else []), APP, *args]
    print("running:", shlex.join(command), flush=True)
    done = subprocess.run(command, cwd=WORKDIR, capture_output=True, text=True)
    print(done.stderr[-20000:], flush=True)
    if done.returncode != 0:
        raise RuntimeError(f"spark-submit exited with {done.returncode}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1])


@dag(
    dag_id="textcluster_spark",
    schedule=None,
    start_date=datetime(2018, 6, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["textcluster", "spark"],
)
def textcluster_spark():
    @task
    def fit() -> dict:
        return spark_submit("fit", "--spec", JOB, "--input", INPUT, "--model", MODEL)

    @task
    def assign(fitted: dict) -> dict:
        labelled = spark_submit("assign", "--input", INPUT, "--model", MODEL, "--output", OUTPUT)
        if labelled["model_id"] != fitted["model_id"]:
            raise RuntimeError(f"assigned with {labelled['model_id']}, fitted {fitted['model_id']}")
        return labelled

    assign(fit())


textcluster_spark()
