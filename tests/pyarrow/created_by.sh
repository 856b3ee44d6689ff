#!/usr/bin/env bash
# Reads Parquet files written by textcluster with pyarrow (installed into a cached virtualenv,
# $PYARROW_VENV, default ~/.cache/textcluster-pyarrow) and checks their `created_by` against
# parquet-mr's VersionParser pattern, which Spark uses to decide whether to trust min/max
# statistics: `<application> version <semver> (build <hash>)`.
#
# usage: tests/pyarrow/created_by.sh FILE.parquet...
set -euo pipefail
venv=${PYARROW_VENV:-$HOME/.cache/textcluster-pyarrow}
if ! "$venv/bin/python" -c "import pyarrow.parquet" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q pyarrow
fi
"$venv/bin/python" - "$@" <<'PY'
import re, sys
import pyarrow.parquet as pq

# parquet-mr org.apache.parquet.VersionParser.PATTERN, and the semver its SemanticVersion takes.
pattern = re.compile(r"(.*?)\s+version\s*(?:([^(]*?)\s*(?:\(\s*build\s*([^)]*?)\s*\))?)?")
semver = re.compile(r"(\d+)\.(\d+)\.(\d+)([-+].*)?")
for path in sys.argv[1:]:
    table = pq.read_table(path)
    created_by = pq.ParquetFile(path).metadata.created_by
    m = pattern.fullmatch(created_by)
    assert m, f"{path}: created_by {created_by!r} does not match VersionParser"
    app, version, build = m.groups()
    assert app == "textcluster", (path, app)
    assert version and semver.fullmatch(version), (path, version)
    assert build, (path, created_by)
    print(f"{path}: {table.num_rows} rows, created_by {created_by!r}: app {app}, version {version}, build {build}")
PY
