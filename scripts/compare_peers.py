#!/usr/bin/env python3
"""Side-by-side timing: textcluster against scikit-learn on the same corpus, alternating runs.

Runs `textcluster run` (release build, global scope, the given k) and the scikit-learn engine
of ../shared/peers/peers.py (TfidfVectorizer + KMeans, min_df=2, max_df=0.5, same k and
max_iter) one after the other, RUNS times, and writes a markdown table of medians (wall time,
peak RSS, NMI) with the ratios to benchmarks/<date>-<corpus>.md, with the machine described.

textcluster's time is the wall time of the whole process (read, vectorise, cluster, keywords,
write), measured with /usr/bin/time; scikit-learn's is its `pipeline_s` (read + vectorise +
cluster, without interpreter start-up and imports): the comparison least favourable to textcluster.

usage: scripts/compare_peers.py [--corpus 20newsgroups] [--k 20] [--runs 5] [--seed 0]
needs: ../shared/peers/setup.sh --no-spark (the peers' virtualenv)
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO.parent / "shared" / "peers"
DATA = REPO.parent / "shared" / "data"


def timed(command, **kwargs):
    """Runs `command` under /usr/bin/time; returns (wall seconds, peak RSS MB)."""
    with tempfile.NamedTemporaryFile("r") as t:
        subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", t.name, *command], check=True, **kwargs)
        wall, rss_kb = t.read().split()[-2:]
    return float(wall), int(rss_kb) / 1024


def textcluster_run(binary, corpus, k, seed, out, sets=()):
    extra = [arg for key_value in sets for arg in ("--set", key_value)]
    wall, rss = timed(
        [binary, "-q", "run", "jobs/sample.toml", "--set", f"input.path={DATA / corpus}",
         "--set", f"output.path={out}", "--set", "cluster.scope=global", "--set", f"cluster.k={k}",
         "--set", f"cluster.seed={seed}", *extra],
        cwd=REPO, stdout=subprocess.DEVNULL,
    )
    scores = json.loads(subprocess.run(
        [binary, "eval", str(out), "--gold", str(DATA / corpus), "--json"],
        cwd=REPO, check=True, capture_output=True, text=True).stdout)
    return {"wall_s": wall, "peak_rss_mb": rss, "nmi": scores["summary"]["nmi"]}


def sklearn_run(python, corpus, k, seed, out_json):
    subprocess.run(
        [python, str(PEERS / "peers.py"), "--input", str(DATA / corpus), "--text-col", "text",
         "--label-col", "label", "--k", str(k), "--max-iter", "10", "--seed", str(seed),
         "--engine", "sklearn", "--min-df", "2", "--max-df", "0.5", "--out", str(out_json)],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    r = json.loads(Path(out_json).read_text())
    return {"wall_s": r["timings"]["pipeline_s"], "process_wall_s": r["timings"]["process_wall_s"],
            "peak_rss_mb": r["peak_rss_mb"], "nmi": r["quality"]["nmi"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default="20newsgroups")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    python = Path(os.environ.get("PEERS_VENV", Path.home() / ".cache/textcluster-peers")) / "bin/python"
    if not python.exists():
        sys.exit(f"no peers virtualenv at {python}; run ../shared/peers/setup.sh --no-spark")
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
    binary = str(REPO / "target/release/textcluster")

    # The defaults (10 screened starts) are what the targets are about; one start is the
    # clustering work scikit-learn does (n_init=1), shown for comparison.
    variants = {"textcluster": (), "textcluster, 1 start": ("cluster.n_init=1",)}
    rows = {name: [] for name in (*variants, "scikit-learn")}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for name, sets in variants.items():
                rows[name].append(textcluster_run(binary, args.corpus, args.k, args.seed, Path(tmp) / "out", sets))
            rows["scikit-learn"].append(sklearn_run(python, args.corpus, args.k, args.seed, Path(tmp) / "sk.json"))
            print(f"run {i + 1}/{args.runs}: " + ", ".join(f"{name} {r[-1]['wall_s']:.2f} s" for name, r in rows.items()),
                  file=sys.stderr)

    med = {name: {key: statistics.median(r[key] for r in runs) for key in ("wall_s", "peak_rss_mb", "nmi")}
           for name, runs in rows.items()}
    sk = med["scikit-learn"]
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), platform.processor())
    date = datetime.date.today().isoformat()
    lines = [
        f"# textcluster against scikit-learn: {args.corpus}, k = {args.k}, seed {args.seed}",
        "",
        f"{date}; {os.cpu_count()} cores ({cpu}); {args.runs} alternating runs each, medians.",
        "textcluster: whole `textcluster run` process (global scope, defaults: 10 screened starts),",
        "/usr/bin/time; \"1 start\" adds `--set cluster.n_init=1`, the clustering work scikit-learn does.",
        "scikit-learn: `pipeline_s` of ../shared/peers/peers.py (read + TfidfVectorizer + KMeans,",
        "min_df=2, max_df=0.5, max_iter=10, n_init=1), its own peak RSS.",
        "",
        "| engine | wall s | peak RSS MB | NMI |",
        "|---|---|---|---|",
        *(f"| {name} | {m['wall_s']:.2f} | {m['peak_rss_mb']:.0f} | {m['nmi']:.4f} |" for name, m in med.items()),
        *(f"| ratio (scikit-learn / {name}) | {sk['wall_s'] / med[name]['wall_s']:.1f}× faster | "
          f"{sk['peak_rss_mb'] / med[name]['peak_rss_mb']:.1f}× less memory | "
          f"{med[name]['nmi'] - sk['nmi']:+.4f} NMI |" for name in variants),
        "",
        "All runs (wall s):",
        "",
        "| run | " + " | ".join(rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    for i, walls in enumerate(zip(*rows.values()), 1):
        lines.append(f"| {i} | " + " | ".join(f"{r['wall_s']:.2f}" for r in walls) + " |")
    out = REPO / "benchmarks" / f"{date}-{args.corpus}-k{args.k}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten to {out.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    main()
