"""Airflow DAGs that run textcluster: one for each day, one to backfill a range of days.

textcluster_daily     runs the logical date's partition (`--partition dt={{ ds }}`), with
                      retries, in `skip_existing` mode so a retry redoes only what is missing.
textcluster_backfill  lists the input's partitions with `textcluster plan`, keeps those between
                      the `start` and `end` params, and maps one task per partition (dynamic
                      task mapping), so Airflow workers spread a large backfill across machines.
                      textcluster locks each output partition, so tasks on different days share
                      one output path safely.

Exit codes decide retries: 1 (bad spec or input) raises AirflowFailException, which Airflow
never retries; 2 (environmental) and 3 (some partitions failed) raise an ordinary error, which
is retried.

Configuration, by environment variable on the workers:
  TEXTCLUSTER_BIN      the binary (default: `textcluster` on PATH)
  TEXTCLUSTER_JOB      the job spec (default: jobs/sample.toml)
  TEXTCLUSTER_WORKDIR  working directory for relative paths in the spec (default: cwd)
  TEXTCLUSTER_ARGS     extra arguments, e.g. `--set output.path=s3-mount/out`
The partition key is assumed to be `dt` with values `YYYY-MM-DD`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from datetime import datetime, timedelta

from airflow.exceptions import AirflowFailException
from airflow.sdk import Param, dag, task

TEXTCLUSTER = os.environ.get("TEXTCLUSTER_BIN", "textcluster")
JOB = os.environ.get("TEXTCLUSTER_JOB", "jobs/sample.toml")
WORKDIR = os.environ.get("TEXTCLUSTER_WORKDIR", os.getcwd())
EXTRA = shlex.split(os.environ.get("TEXTCLUSTER_ARGS", ""))

EXIT_USER_ERROR = 1

DEFAULT_ARGS = {"retries": 3, "retry_delay": timedelta(minutes=5)}


def textcluster(*args: str) -> str:
    """Runs textcluster with JSON logs; maps its exit code to Airflow's retry semantics."""
    command = [TEXTCLUSTER, *args, *EXTRA, "--log-format", "json"]
    print("running:", shlex.join(command))
    proc = subprocess.run(command, cwd=WORKDIR, capture_output=True, text=True)
    # textcluster logs one JSON object per line on stderr; pass them on to the task log.
    for line in proc.stderr.splitlines():
        print(line)
    if proc.returncode == 0:
        return proc.stdout
    message = f"textcluster exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}"
    if proc.returncode == EXIT_USER_ERROR:
        raise AirflowFailException(message)  # bad spec or input: retrying cannot help
    raise RuntimeError(message)  # environmental (2) or partial (3): a retry may help


def run_partition(partition: str) -> str:
    return textcluster("run", JOB, "--partition", partition, "--set", "output.mode=skip_existing")


@dag(
    dag_id="textcluster_daily",
    schedule="@daily",
    start_date=datetime(2018, 6, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["textcluster"],
)
def textcluster_daily():
    @task
    def cluster_day(ds: str | None = None) -> str:
        return run_partition(f"dt={ds}")

    cluster_day()


@dag(
    dag_id="textcluster_backfill",
    schedule=None,
    start_date=datetime(2018, 6, 1),
    catchup=False,
    default_args=DEFAULT_ARGS,
    params={
        "start": Param("2018-06-01", type="string", description="first dt, inclusive"),
        "end": Param("2018-06-30", type="string", description="last dt, inclusive"),
    },
    tags=["textcluster"],
)
def textcluster_backfill():
    @task
    def list_partitions(params: dict | None = None) -> list[str]:
        plan = json.loads(textcluster("plan", JOB))
        keys = [p["key"] for p in plan["input"]["partitions"]]
        chosen = [k for k in keys if params["start"] <= k.split("=", 1)[1] <= params["end"]]
        if not chosen:
            raise AirflowFailException(f"no partition between {params['start']} and {params['end']}")
        return chosen

    @task(max_active_tis_per_dagrun=16)
    def cluster_partition(partition: str) -> str:
        return run_partition(partition)

    cluster_partition.expand(partition=list_partitions())


textcluster_daily()
textcluster_backfill()
