#!/usr/bin/env bash
# Loads a `textcluster report --pyldavis` JSON into pyLDAvis's own viewer (ldavis.js and d3
# from the pyLDAvis package, installed from PyPI into a throwaway virtualenv that is deleted
# afterwards) and renders it headless with render.sh.
#
# usage: tests/report/ldavis.sh DATA.json OUT_DOM.html [OUT_SCREENSHOT.png]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
json=${1:?usage: ldavis.sh DATA.json OUT_DOM.html [OUT.png]}
dom=${2:?usage: ldavis.sh DATA.json OUT_DOM.html [OUT.png]}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --no-deps "pyLDAvis==3.4.*"
# Importing pyLDAvis needs its heavy dependencies; only its files are needed here.
js=$("$work/venv/bin/python" -c 'import importlib.util, os; s = importlib.util.find_spec("pyLDAvis"); print(os.path.join(os.path.dirname(s.origin), "js"))')
{
  echo '<!DOCTYPE html><html><head><meta charset="utf-8"><style>'
  cat "$js/ldavis.v1.0.0.css"
  echo '</style></head><body><ul id="errors"></ul><div id="ldavis"></div><script>'
  echo 'window.addEventListener("error", function (e) { var li = document.createElement("li"); li.textContent = e.message; document.getElementById("errors").appendChild(li); });'
  echo '</script><script>'
  cat "$js/d3.v5.min.js"
  echo '</script><script>'
  cat "$js/ldavis.v3.0.0.js"
  echo '</script><script>var data = '
  sed 's#</#<\\/#g' "$json"
  echo ';
new LDAvis("#ldavis", data);
document.body.setAttribute("data-ready", "1");
</script></body></html>'
} >"$work/ldavis.html"
"$here/render.sh" "$work/ldavis.html" "$dom" "${3:-}"
