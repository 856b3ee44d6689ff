#!/usr/bin/env bash
# Runs the Airflow DAGs in jobs/airflow/ for real against the sample in data/:
# installs Apache Airflow 3 into a virtualenv (cached at $AIRFLOW_VENV, default
# ~/.cache/textcluster-airflow; created from scratch on a clean machine), uses a throwaway
# AIRFLOW_HOME with SQLite, runs `airflow dags test` for the daily DAG and the backfill DAG,
# and checks that the partitions were committed.
#
# usage: tests/airflow/run.sh TEXTCLUSTER_BINARY
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:?usage: run.sh TEXTCLUSTER_BINARY}
venv=${AIRFLOW_VENV:-$HOME/.cache/textcluster-airflow}
if ! "$venv/bin/python" -c "import airflow.sdk" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "apache-airflow==3.*"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export AIRFLOW_HOME="$work/airflow"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$repo/jobs/airflow"
export TEXTCLUSTER_BIN="$bin" TEXTCLUSTER_JOB="$repo/jobs/sample.toml" TEXTCLUSTER_WORKDIR="$repo"
export TEXTCLUSTER_ARGS="--set output.path=$work/out --set input.path=$repo/data/sample"
airflow="$venv/bin/airflow"
"$airflow" db migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log"; exit 1; }

check() {  # check PARTITION...: each committed, with its commit record
  for p in "$@"; do
    [[ -s "$work/out/labels/$p/part-00000.parquet" ]] || { echo "missing labels for $p"; exit 1; }
    [[ -s "$work/out/_commits/$p/commit.json" ]] || { echo "missing commit record for $p"; exit 1; }
  done
}

"$airflow" dags test textcluster_daily 2018-06-02 >"$work/daily.log" 2>&1 || { tail -50 "$work/daily.log"; exit 1; }
check dt=2018-06-02
[[ ! -e "$work/out/labels/dt=2018-06-01" ]] || { echo "daily run touched another day"; exit 1; }

"$airflow" dags test textcluster_backfill 2018-06-04 -c '{"start": "2018-06-01", "end": "2018-06-03"}' \
  >"$work/backfill.log" 2>&1 || { tail -50 "$work/backfill.log"; exit 1; }
check dt=2018-06-01 dt=2018-06-02 dt=2018-06-03
grep -q "cluster_partition" "$work/backfill.log" || { echo "no mapped task ran"; exit 1; }
# Exit code 1 (bad spec) must end the task without retries.
if TEXTCLUSTER_ARGS="$TEXTCLUSTER_ARGS --set cluster.k=0" "$airflow" dags test textcluster_daily 2018-06-03 \
  >"$work/bad.log" 2>&1; then
  echo "a bad spec did not fail the DAG"; exit 1
fi
grep -q "AirflowFailException" "$work/bad.log" || { tail -30 "$work/bad.log"; echo "exit 1 was not mapped to AirflowFailException"; exit 1; }
echo "airflow DAGs ok: daily and backfill committed their partitions; a bad spec fails without retry"
