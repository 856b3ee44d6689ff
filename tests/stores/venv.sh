#!/usr/bin/env bash
# Makes sure the virtualenv for the object-store tests exists and prints its python: moto (an S3
# API server) and gcp-storage-emulator (a GCS JSON API server), run on 127.0.0.1 by the tests;
# pyarrow to put corpora in, fetch outputs and read them as a third-party reader would. Cached
# at $STORES_VENV, default ~/.cache/textcluster-stores; created from scratch on a clean machine.
set -euo pipefail
venv=${STORES_VENV:-$HOME/.cache/textcluster-stores}
if ! "$venv/bin/python" -c "import moto.server, gcp_storage_emulator, pyarrow.fs" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "moto[server]==5.*" "gcp-storage-emulator==2026.7.19" "pyarrow>=16"
fi
echo "$venv/bin/python"
