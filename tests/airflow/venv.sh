#!/usr/bin/env bash
# The virtualenv with Apache Airflow 3 that the Airflow tests run (cached at $AIRFLOW_VENV,
# default ~/.cache/textcluster-airflow; created from scratch on a clean machine, under a lock,
# since two tests may ask for it at once). Prints its path.
set -euo pipefail
venv=${AIRFLOW_VENV:-$HOME/.cache/textcluster-airflow}
mkdir -p "$(dirname "$venv")"
(
  flock 9
  if ! "$venv/bin/python" -c "import airflow.sdk" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q "apache-airflow==3.*" >&2
  fi
) 9>"$venv.lock"
echo "$venv"
