#!/usr/bin/env bash
# Runs the Airflow DAGs in jobs/airflow/ for real against the sample in data/:
# installs Apache Airflow 3 into a virtualenv (tests/airflow/venv.sh: cached at $AIRFLOW_VENV, default
# ~/.cache/textcluster-airflow; created from scratch on a clean machine), uses a throwaway
# AIRFLOW_HOME with SQLite, and
#   1. refits: `airflow dags test textcluster_refit` fits a model on two days and publishes it
#      (CURRENT), streaming textcluster's log lines while it runs;
#   2. assigns one day: `textcluster_assign_daily` for the run of 2018-06-03 labels the data
#      interval [2018-06-02, 2018-06-03), that is dt=2018-06-02, and no other day;
#   3. backfills: `textcluster_backfill` over three days with the LocalExecutor (an API server
#      on a free loopback port), so the three mapped assign tasks run at the same time;
#   4. fails without retry: a missing model is exit 1, which must raise AirflowFailException.
#
# usage: tests/airflow/run.sh TEXTCLUSTER_BINARY
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:?usage: run.sh TEXTCLUSTER_BINARY}
venv=$(bash "$repo/tests/airflow/venv.sh")
work=$(mktemp -d)
api_pid=
cleanup() {
  [[ -n "$api_pid" ]] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
py="$venv/bin/python"
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AIRFLOW_HOME="$work/airflow"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_FOLDER="$repo/jobs/airflow"
export AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT="$port"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$port/execution/"
export AIRFLOW__API_AUTH__JWT_SECRET="textcluster-test-$port"
export TEXTCLUSTER_BIN="$bin" TEXTCLUSTER_JOB="$repo/jobs/sample.toml" TEXTCLUSTER_WORKDIR="$repo"
export TEXTCLUSTER_MODEL="$work/models"
export TEXTCLUSTER_ARGS="--set output.path=$work/out --set input.path=$repo/data/sample"
airflow="$venv/bin/airflow"
"$airflow" db migrate >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log"; exit 1; }

fail() { echo "$1"; [[ -n "${2:-}" ]] && tail -40 "$2"; exit 1; }
# with_executor LOG DAG_ID ARGS...: `airflow dags test --use-executor`, waiting for the run to
# finish; the LocalExecutor sometimes waits forever for an idle worker at shutdown, so the
# command is stopped once the run is finished. Fails unless the run succeeded.
with_executor() {
  local log=$1; shift
  setsid "$airflow" dags test "$@" --use-executor >"$log" 2>&1 &
  local pid=$! deadline=$((SECONDS + 600))
  until grep -q "DagRun Finished" "$log" || ! kill -0 "$pid" 2>/dev/null; do
    ((SECONDS < deadline)) || { kill -- -"$pid"; fail "$1 did not finish in 600 s" "$log"; }
    sleep 1
  done
  sleep 1
  kill -- -"$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  grep -q "DagRun Finished: dag_id=$1,.*state=success" "$log" || fail "$1 failed" "$log"
}
check() {  # check PARTITION...: each committed, with its commit record
  for p in "$@"; do
    [[ -s "$work/out/labels/$p/part-00000.parquet" ]] || fail "missing labels for $p"
    [[ -s "$work/out/clusters/$p/part-00000.parquet" ]] || fail "missing clusters for $p"
    [[ -s "$work/out/_commits/$p/commit.json" ]] || fail "missing commit record for $p"
  done
}

# The LocalExecutor runs tasks through the API server, on a free loopback port.
"$airflow" api-server --host 127.0.0.1 --port "$port" >"$work/api.log" 2>&1 &
api_pid=$!
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/api/v2/monitor/health" >/dev/null && break
  sleep 1
done
curl -sf "http://127.0.0.1:$port/api/v2/monitor/health" >/dev/null || fail "the API server did not start" "$work/api.log"

# 1. Refit on two days; the model is published as current.
with_executor "$work/refit.log" textcluster_refit 2018-06-03 -c '{"start": "2018-06-01", "end": "2018-06-02"}'
[[ -s "$work/models/CURRENT" ]] || fail "refit published no model" "$work/refit.log"
model_id=$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["model_id"])' "$work/models/CURRENT")
grep -q "Returned value was: {.*'model_id': '$model_id'" "$work/refit.log" || fail "no JSON summary as the XCom" "$work/refit.log"
# Log lines reach the task log while textcluster runs, not all at its exit: the executor
# stamps each line when it arrives, which is within a second of textcluster's own timestamp,
# and the first arrives well before the task returns.
"$py" - "$work/refit.log" <<'EOF' || fail "textcluster's log lines were not streamed" "$work/refit.log"
import json, re, sys
from datetime import datetime
def stamp(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00").replace(" ", "T"))
arrived, done = [], None
for line in open(sys.argv[1]):
    m = re.match(r"(\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|\+00:00)) \[\w+ *\] (.*)", line)
    if not m:
        continue
    if m.group(2).startswith('{"timestamp"'):
        own = json.JSONDecoder().raw_decode(m.group(2))[0]["timestamp"]
        arrived.append((stamp(m.group(1)), stamp(own)))
    elif "Returned value was" in m.group(2):
        done = stamp(m.group(1))
assert arrived and done, "no relayed textcluster lines"
lag = max((a - own).total_seconds() for a, own in arrived)
lead = (done - arrived[0][0]).total_seconds()
print(f"{len(arrived)} lines, each relayed within {lag:.2f} s; the first {lead:.2f} s before the task returned")
sys.exit(0 if lag < 1.0 and lead > 1.0 else 1)
EOF

# 2. The daily assign labels the data interval's day only, with the current model.
"$airflow" dags test textcluster_assign_daily 2018-06-03 >"$work/daily.log" 2>&1 \
  || fail "daily DAG failed" "$work/daily.log"
check dt=2018-06-02
[[ ! -e "$work/out/labels/dt=2018-06-03" ]] || fail "the daily run labelled the day that has just begun"
[[ ! -e "$work/out/labels/dt=2018-06-01" ]] || fail "the daily run touched another day"
grep -q "Returned value was: {.*'model_id': '$model_id'" "$work/daily.log" || fail "daily XCom lacks the model" "$work/daily.log"

# 3. Backfill with the LocalExecutor: three mapped assign tasks at the same time.
with_executor "$work/backfill.log" textcluster_backfill 2018-06-04 -c '{"start": "2018-06-01", "end": "2018-06-03"}'
check dt=2018-06-01 dt=2018-06-02 dt=2018-06-03
run_id=$(grep -o -m1 "run_id=manual__[^,]*" "$work/backfill.log" | sed -n 1p | cut -d= -f2)
"$airflow" tasks states-for-dag-run textcluster_backfill "$run_id" -o json 2>/dev/null | tail -1 >"$work/states.json"
"$py" - "$work/states.json" <<'EOF' || fail "the mapped assign tasks did not overlap" "$work/backfill.log"
import json, sys
from datetime import datetime
tis = [t for t in json.load(open(sys.argv[1])) if t["task_id"] == "assign"]
assert len(tis) == 3 and all(t["state"] == "success" for t in tis), tis
spans = [(datetime.fromisoformat(t["start_date"]), datetime.fromisoformat(t["end_date"])) for t in tis]
overlapping = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
print(f"{overlapping} mapped assign tasks running at once")
sys.exit(0 if overlapping >= 2 else 1)
EOF

# 4. Exit code 1 (here: no model at the path) ends the task without retries.
if TEXTCLUSTER_MODEL="$work/no-such-model" "$airflow" dags test textcluster_assign_daily 2018-06-04 \
  >"$work/bad.log" 2>&1; then
  fail "a missing model did not fail the DAG"
fi
grep -q "AirflowFailException" "$work/bad.log" || fail "exit 1 was not mapped to AirflowFailException" "$work/bad.log"
echo "airflow DAGs ok: refit published $model_id; the daily assign labelled its data interval; the backfill's mapped assigns overlapped; a missing model fails without retry"
