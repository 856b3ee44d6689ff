#!/usr/bin/env bash
# The cost of the remote path: one job with input and output on a local moto S3 server against
# the same job on local disk, run alternately ROUNDS times in one session; prints the median
# wall times, their ratio, and the S3 requests one remote run made (from moto's request log).
#
# usage: scripts/remote_cost.sh [JOB] [ROUNDS]     (default jobs/20newsgroups.toml, 5)
#        BIN=path/to/textcluster to use another binary (default target/release/textcluster)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
job=${1:-jobs/20newsgroups.toml}
rounds=${2:-5}
bin=${BIN:-target/release/textcluster}
python=$(bash tests/stores/venv.sh)
work=$(mktemp -d)
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$python" -m moto.server -H 127.0.0.1 -p "$port" >"$work/moto.log" 2>&1 &
moto=$!
trap 'kill $moto 2>/dev/null; rm -rf "$work"' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ALLOW_HTTP=true AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
for _ in $(seq 100); do "$python" -c "import socket; socket.create_connection(('127.0.0.1',$port))" 2>/dev/null && break; sleep 0.1; done
input=$("$bin" plan "$job" | "$python" -c 'import json,sys; print(json.load(sys.stdin)["input"]["root"])')
"$python" tests/stores/storeutil.py mkbucket s3://cost-bench
"$python" tests/stores/storeutil.py upload "$input" s3://cost-bench/in
requests() { grep -cE '" [2345][0-9][0-9] ' "$work/moto.log" || true; }
timed() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
local_times=() remote_times=() per_run=0
for i in $(seq "$rounds"); do
  rm -rf "$work/out"
  local_times+=("$(timed "$bin" -q run "$job" --set "output.path=$work/out")")
  before=$(requests)
  remote_times+=("$(timed "$bin" -q run "$job" --set input.path=s3://cost-bench/in --set "output.path=s3://cost-bench/out-$i")")
  per_run=$(( $(requests) - before ))
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
l=$(median "${local_times[@]}"); r=$(median "${remote_times[@]}")
echo "job $job, $rounds rounds alternating"
echo "local disk: median ${l} s (${local_times[*]})"
echo "moto s3:    median ${r} s (${remote_times[*]})"
echo "ratio s3/local: $(echo "scale=2; $r / $l" | bc)"
echo "requests per s3 run: $per_run"
"$python" - "$work/moto.log" <<'PY'
import collections, re, sys
counts = collections.Counter()
for line in open(sys.argv[1]):
    m = re.search(r'"(GET|PUT|POST|HEAD|DELETE) (\S+)', line)
    if m:
        counts[m.group(1)] += 1
print("requests by method over the whole session (upload and", "all runs):", dict(counts))
PY
