#!/usr/bin/env bash
# Makes sure the virtualenv for the Python tests exists and prints its python: maturin (builds
# the wheel), pytest, and the Arrow libraries a user hands batches from (pyarrow, polars,
# DuckDB). Cached at $PYTHON_VENV, default ~/.cache/textcluster-python.
set -euo pipefail
venv=${PYTHON_VENV:-$HOME/.cache/textcluster-python}
if ! "$venv/bin/python" -c "import maturin, pytest, pyarrow, polars, duckdb" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "maturin==1.16.*" pytest "pyarrow>=16" polars duckdb
fi
echo "$venv/bin/python"
