#!/usr/bin/env bash
# Makes sure the virtualenv for the Python tests exists and prints its python: maturin (builds
# the wheel), pytest, the Arrow libraries a user hands batches from (pyarrow, polars, DuckDB),
# kiwipiepy (the Korean analyzer of the tokens-column recipe), and PySpark with the Java it
# runs on (Debian's openjdk-17-jre-headless, installed when missing, as root or with
# passwordless sudo). Cached at $PYTHON_VENV, default
# ~/.cache/textcluster-python.
set -euo pipefail
venv=${PYTHON_VENV:-$HOME/.cache/textcluster-python}
if ! command -v java >/dev/null; then
  sudo=$([ "$(id -u)" = 0 ] && echo "" || echo "sudo -n")
  $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq openjdk-17-jre-headless >&2
fi
if ! "$venv/bin/python" -c "import maturin, pytest, pyarrow, polars, duckdb, pandas, pyspark, kiwipiepy" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "maturin==1.16.*" pytest "pyarrow>=16" polars duckdb "pandas>=2.2,<3" "pyspark==4.3.0" "kiwipiepy==0.24.*"
fi
echo "$venv/bin/python"
