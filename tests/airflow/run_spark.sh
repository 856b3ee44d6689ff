#!/usr/bin/env bash
# Runs the textcluster_spark DAG (jobs/airflow/textcluster_spark_dag.py) for real on the sample:
# Airflow 3 from the virtualenv run.sh uses, `spark-submit` from the Python test virtualenv
# with the textcluster wheel installed (Spark in local[2] mode), a throwaway AIRFLOW_HOME.
# Checks that the fit task published the model `textcluster fit` writes on the same input, bit
# for bit (the same model_id), and that the assign task wrote every document's label with
# Spark's writer, partitioned by dt.
#
# usage: tests/airflow/run_spark.sh PYTHON   (the test venv's python, with textcluster and pyspark)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
python=${1:?usage: run_spark.sh PYTHON}
bin=$(dirname "$python")
venv=$(bash "$repo/tests/airflow/venv.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "$1"; [[ -n "${2:-}" ]] && tail -60 "$2"; exit 1; }

export AIRFLOW_HOME="$work/airflow"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$repo/jobs/airflow"
export TEXTCLUSTER_SPARK_SUBMIT="$bin/spark-submit --conf spark.ui.enabled=false --conf spark.sql.shuffle.partitions=4"
export TEXTCLUSTER_SPARK_MASTER="local[2]"
export PYSPARK_PYTHON="$python" PYSPARK_DRIVER_PYTHON="$python"
export TEXTCLUSTER_SPARK_INPUT="$repo/data/sample" TEXTCLUSTER_SPARK_OUTPUT="$work/labels"
export TEXTCLUSTER_JOB="$repo/jobs/sample.toml" TEXTCLUSTER_MODEL="$work/models" TEXTCLUSTER_WORKDIR="$repo"
airflow="$venv/bin/airflow"
"$airflow" db migrate >"$work/migrate.log" 2>&1 || fail "airflow db migrate failed" "$work/migrate.log"

"$airflow" dags test textcluster_spark 2018-06-03 >"$work/spark.log" 2>&1 \
  || fail "the textcluster_spark DAG failed" "$work/spark.log"
grep -q "DagRun Finished: dag_id=textcluster_spark,.*state=success" "$work/spark.log" \
  || fail "the textcluster_spark DAG did not succeed" "$work/spark.log"

want=$(cd "$repo" && "$bin/textcluster" fit jobs/sample.toml --model "$work/command-models" \
  --set input.path="$repo/data/sample" | "$python" -c 'import json, sys; print(json.load(sys.stdin)["model_id"])')
got=$("$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_id"])' "$work/models/CURRENT")
[[ "$got" == "$want" ]] || fail "Spark fit published $got, textcluster fit wrote $want" "$work/spark.log"
grep -q "Returned value was: {.*'model_id': '$got'" "$work/spark.log" || fail "no model_id in the XComs" "$work/spark.log"

"$python" - "$work/labels" "$got" <<'PY' || fail "the labels are not every document's" "$work/spark.log"
import sys
import pyarrow.dataset as ds
labels = ds.dataset(sys.argv[1], partitioning="hive").to_table()
days = sorted(set(labels.column("dt").to_pylist()))
ids = labels.column("doc_id").to_pylist()
assert labels.num_rows == 2000 and len(set(ids)) == 2000, labels.num_rows
assert set(labels.column("model_id").to_pylist()) == {sys.argv[2]}
assert [str(d) for d in days] == ["2018-06-01", "2018-06-02", "2018-06-03"], days
print(f"{labels.num_rows} labels in {len(days)} dt partitions")
PY
echo "airflow Spark DAG ok: spark fit published $got (= textcluster fit); spark assign labelled every document"
