"""Airflow DAGs that run textcluster around one saved model.

textcluster_assign_daily  labels the day that has just ended against the current model
                          (`textcluster assign`): no refit, so cluster ids mean the same every
                          day. The partition is the run's data interval start
                          (`dt=<data_interval_start>`); the schedule is a
                          CronDataIntervalTimetable, so the run of 2018-06-03T00:00 covers the
                          interval [2018-06-02, 2018-06-03) and labels dt=2018-06-02. (With
                          Airflow 3's default `@daily`, a CronTriggerTimetable, `ds` would be the
                          day that has just begun, whose data is not complete yet.)
textcluster_refit         fits a new model on a window of days (`start`, `end` params, default:
                          the 28 days before the data interval) and publishes it as the
                          registry's current model: `textcluster fit` writes the model under
                          `<registry>/model_id=<id>/` and then replaces `<registry>/CURRENT` in
                          one atomic write, so a daily assign sees the old model or the new one.
textcluster_backfill      lists the input's partitions with `textcluster plan`, keeps those
                          between the `start` and `end` params, and maps one `assign` task per
                          partition (dynamic task mapping), so workers that share only the
                          object store spread a backfill; each output partition is locked, so
                          tasks on different days share one output path safely.

Every task streams textcluster's JSON log lines into the task log as they come, and returns
textcluster's JSON summary (status, partitions, drift, model id) as its XCom.

Exit codes decide retries: 1 (bad spec, input or model) raises AirflowFailException, which
Airflow never retries; 2 (environmental) and 3 (some partitions failed) raise an ordinary
error, which is retried. Assign and fit are safe to retry: assign runs in `skip_existing`
mode, and a fit on unchanged input reuses the model it wrote.

Configuration, by environment variable on the workers:
  TEXTCLUSTER_BIN      the binary (default: `textcluster` on PATH)
  TEXTCLUSTER_JOB      the job spec (default: jobs/sample.toml)
  TEXTCLUSTER_MODEL    the model registry (default: `[model] path` of the spec)
  TEXTCLUSTER_WORKDIR  working directory for relative paths in the spec (default: cwd)
  TEXTCLUSTER_ARGS     extra arguments, e.g. `--set output.path=s3://lake/clusters`
The partition key is assumed to be `dt` with values `YYYY-MM-DD`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import threading
from datetime import datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

TEXTCLUSTER = os.environ.get("TEXTCLUSTER_BIN", "textcluster")
JOB = os.environ.get("TEXTCLUSTER_JOB", "jobs/sample.toml")
MODEL = os.environ.get("TEXTCLUSTER_MODEL")
WORKDIR = os.environ.get("TEXTCLUSTER_WORKDIR", os.getcwd())
EXTRA = shlex.split(os.environ.get("TEXTCLUSTER_ARGS", ""))

EXIT_USER_ERROR = 1

DEFAULT_ARGS = {"retries": 3, "retry_delay": timedelta(minutes=5)}


def textcluster(*args: str) -> str:
    """Runs textcluster with JSON logs, streaming its log lines to the task log while it runs.

    Returns its stdout. Exit 1 raises AirflowFailException (no retry), any other failure an
    ordinary error (retried).
    """
    command = [TEXTCLUSTER, "--log-format", "json", *args, *EXTRA]
    print("running:", shlex.join(command), flush=True)
    proc = subprocess.Popen(
        command, cwd=WORKDIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    stdout: list[str] = []
    # stdout is drained on its own thread, so a large plan cannot fill its pipe while the
    # log lines are being read.
    reader = threading.Thread(target=lambda: stdout.append(proc.stdout.read()))
    reader.start()
    tail: list[str] = []
    for line in proc.stderr:
        line = line.rstrip("\n")
        print(line, flush=True)
        tail = (tail + [line])[-20:]
    code = proc.wait()
    reader.join()
    if code == 0:
        return "".join(stdout)
    message = f"textcluster exited with {code}: " + "\n".join(tail)[-2000:]
    if code == EXIT_USER_ERROR:
        raise AirflowFailException(message)  # bad spec, input or model: retrying cannot help
    raise RuntimeError(message)  # environmental (2) or partial (3): a retry may help


def summary(stdout: str) -> dict:
    """textcluster's one-line JSON summary (its last stdout line), for the XCom."""
    return json.loads(stdout.strip().splitlines()[-1])


def partitions_between(start: str, end: str) -> list[str]:
    """The input's partitions (from `textcluster plan`) whose dt is in [start, end]."""
    plan = json.loads(textcluster("plan", JOB))
    keys = [p["key"] for p in plan["input"]["partitions"]]
    chosen = [k for k in keys if start <= k.split("=", 1)[1] <= end]
    if not chosen:
        raise AirflowFailException(f"no partition between {start} and {end}")
    return chosen


def model_args() -> list[str]:
    return ["--model", MODEL] if MODEL else []


def assign_partition(partition: str) -> dict:
    return summary(
        textcluster(
            "assign",
            JOB,
            *model_args(),
            "--partition",
            partition,
            "--set",
            "output.mode=skip_existing",
        )
    )


@dag(
    dag_id="textcluster_assign_daily",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2018, 6, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["textcluster"],
)
def textcluster_assign_daily():
    @task
    def assign_day(data_interval_start=None) -> dict:
        return assign_partition(f"dt={data_interval_start.strftime('%Y-%m-%d')}")

    assign_day()


@dag(
    dag_id="textcluster_refit",
    schedule=None,
    start_date=datetime(2018, 6, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params={
        "start": Param(None, type=["null", "string"], description="first dt, inclusive"),
        "end": Param(None, type=["null", "string"], description="last dt, inclusive"),
        "window_days": Param(28, type="integer", description="days fitted when start is not set"),
    },
    tags=["textcluster"],
)
def textcluster_refit():
    @task
    def fit_window(params: dict | None = None, data_interval_start=None) -> dict:
        end = params["end"] or (data_interval_start - timedelta(days=1)).strftime("%Y-%m-%d")
        start = params["start"] or (
            datetime.strptime(end, "%Y-%m-%d") - timedelta(days=params["window_days"] - 1)
        ).strftime("%Y-%m-%d")
        selection = [arg for day in partitions_between(start, end) for arg in ("--partition", day)]
        # `fit` publishes the model as current (an atomic write of CURRENT) once it is
        # written whole.
        return summary(textcluster("fit", JOB, *model_args(), *selection))

    fit_window()


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
        return partitions_between(params["start"], params["end"])

    @task(max_active_tis_per_dagrun=16)
    def assign(partition: str) -> dict:
        return assign_partition(partition)

    assign.expand(partition=list_partitions())


textcluster_assign_daily()
textcluster_refit()
textcluster_backfill()
