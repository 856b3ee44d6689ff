#!/usr/bin/env bash
# Renders an HTML file in headless Chromium, as a person's browser would, and writes the DOM
# after scripts ran (and, optionally, a screenshot). Installs Debian's `chromium` if missing.
# Fails if the page logged an uncaught script error to the console.
#
# usage: tests/report/render.sh PAGE.html OUT_DOM.html [OUT_SCREENSHOT.png]
set -euo pipefail
page=$(realpath "${1:?usage: render.sh PAGE.html OUT_DOM.html [OUT.png]}")
dom=${2:?usage: render.sh PAGE.html OUT_DOM.html [OUT.png]}
shot=${3:-}
if ! command -v chromium >/dev/null; then
  sudo_=""
  [[ $(id -u) -eq 0 ]] || sudo_="sudo -n"
  $sudo_ apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq chromium >/dev/null
fi
profile=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$profile" "$log"' EXIT
flags=(--headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking
  --user-data-dir="$profile" --hide-scrollbars --virtual-time-budget=5000
  --enable-logging=stderr --v=0)
timeout 120 chromium "${flags[@]}" --dump-dom "file://$page" >"$dom" 2>"$log"
if grep -q 'Uncaught' "$log"; then
  echo "script errors in $page:" >&2
  grep 'CONSOLE' "$log" >&2
  exit 1
fi
if [[ -n "$shot" ]]; then
  rm -rf "$profile" && mkdir -p "$profile"
  timeout 120 chromium "${flags[@]}" --window-size=1280,2300 --screenshot="$(realpath -m "$shot")" \
    "file://$page" >/dev/null 2>>"$log"
  [[ -s "$shot" ]] || { echo "no screenshot written" >&2; exit 1; }
fi
