#!/usr/bin/env bash
# Makes sure the virtualenv for the S3 tests exists and prints its python: moto (an S3 API
# server, run on 127.0.0.1 by the tests), boto3 to upload and download, pyarrow to read the
# outputs as a third-party reader would. Cached at $MOTO_VENV, default
# ~/.cache/textcluster-moto; created from scratch on a clean machine.
set -euo pipefail
venv=${MOTO_VENV:-$HOME/.cache/textcluster-moto}
if ! "$venv/bin/python" -c "import moto.server, boto3, pyarrow.fs" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "moto[server]==5.*" boto3 "pyarrow>=15"
fi
echo "$venv/bin/python"
