#!/usr/bin/env bash
# Makes sure Azurite (the Azure Storage emulator, from the npm registry) is installed and prints
# the path of its blob server. Cached at $AZURITE_HOME, default ~/.cache/textcluster-azurite.
set -euo pipefail
home=${AZURITE_HOME:-$HOME/.cache/textcluster-azurite}
bin="$home/node_modules/.bin/azurite-blob"
if ! "$bin" --version >/dev/null 2>&1; then
  mkdir -p "$home"
  npm install --prefix "$home" --silent --no-audit --no-fund azurite@3.37 >&2
fi
echo "$bin"
