"""`make bench`: timed runs of SnapMap against the floor and the naive baseline, in one run.

Each measured run is a fresh subprocess (cold start included: interpreter, imports, model), timed by
wall clock; it reports its own peak RSS. Medians of N runs. Results go to bench/results/latest.json and a
table on stdout.

    python -m bench                      # 100K and 1M rows, 5 runs each (naive: 3 at 1M)
    python -m bench --sizes 100000 --runs 3
    python -m bench --many-files --files 200  # many dropped files through the daemon (bench/many_files.py)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
kind, src, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
if kind == "ours":
    from bench.ours import run
elif kind == "ours_streamed":
    from bench.ours import run_streamed as run
elif kind == "naive":
    from bench.naive import run
elif kind == "floor":
    from bench.floor import run
elif kind == "read_floor":
    from bench.floor import read_only
    run = lambda s, o: read_only(s)
elif kind == "read_ours":
    from snapmap_pipeline.core.read import read_bytes
    run = lambda s, o: {"rows": read_bytes(s.read_bytes(), s.name)[0].height}
res = run(src, out)
res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
# the largest child (the quality worker in memory, the mapping process when streamed): it runs beside
res["peak_rss_child_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
sys.stdout.write("\n@@" + json.dumps(res) + "\n")
"""


def measure(kind: str, src: Path, runs: int) -> dict:
    walls, rss, last = [], [], {}
    env = {
        "SNAPMAP_MAX_FILE_BYTES": str(8 << 30),  # the bench files are larger than the 200 MB default
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "LANCE_LOG": "error",
    }
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / ("out" if kind.startswith("ours") else "out.xml")
            t0 = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-c", CHILD, kind, str(src), str(out)],
                capture_output=True,
                text=True,
                cwd=HERE.parent,
                env=env,
                check=False,
            )
            wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"bench {kind} failed:\n{proc.stderr[-3000:]}")
        last = json.loads(proc.stdout.rsplit("@@", 1)[1])
        walls.append(wall)
        rss.append(last["peak_rss_mb"])
    return {
        "kind": kind,
        "runs": runs,
        "median_s": round(statistics.median(walls), 3),
        "walls": [round(w, 3) for w in walls],
        "peak_rss_mb": round(max(rss)),
        "last": last,
    }


def main() -> None:
    if (
        "--many-files" in sys.argv[1:]
    ):  # sensor → queued runs throughput; its own options (bench/many_files.py)
        from bench.many_files import main as many_files

        sys.exit(many_files([arg for arg in sys.argv[1:] if arg != "--many-files"]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--naive-runs-large", type=int, default=3, help="naive runs at >= 1M rows (slow)")
    ap.add_argument("--skip-naive", action="store_true")
    a = ap.parse_args()
    from bench.generate import write

    results = []
    for size in (int(s) for s in a.sizes.split(",")):
        src = write(size, DATA / f"employees_{size}.csv")
        row = {"rows": size, "file_mb": round(src.stat().st_size / 1e6, 1)}
        for kind in ("read_floor", "read_ours", "floor", "ours", "ours_streamed"):
            row[kind] = measure(kind, src, a.runs)
        if not a.skip_naive:
            row["naive"] = measure("naive", src, a.runs if size < 1_000_000 else a.naive_runs_large)
        results.append(row)
        _print_row(row)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    sys.stdout.write(f"\nwritten {RESULTS / 'latest.json'}\n")


def _print_row(row: dict) -> None:
    ours, floor, rd, rf = row["ours"], row["floor"], row["read_ours"], row["read_floor"]
    st = row["ours_streamed"]
    lines = [
        f"\n## {row['rows']:,} rows ({row['file_mb']} MB)",
        "| run | median s | peak RSS MB | ratio |",
        "|---|---|---|---|",
        f"| read: bare polars.read_csv | {rf['median_s']} | {rf['peak_rss_mb']} | 1.00 |",
        f"| read: snapmap read_bytes | {rd['median_s']} | {rd['peak_rss_mb']} | "
        f"{rd['median_s'] / rf['median_s']:.2f}× floor |",
        f"| floor: read + plain XML write | {floor['median_s']} | {floor['peak_rss_mb']} | 1.00 |",
        f"| snapmap end to end | {ours['median_s']} | {ours['peak_rss_mb']} | "
        f"{ours['median_s'] / floor['median_s']:.2f}× floor |",
        f"| snapmap streamed (bounded memory) | {st['median_s']} | {st['peak_rss_mb']} | "
        f"{st['median_s'] / floor['median_s']:.2f}× floor |",
    ]
    if "naive" in row:
        n = row["naive"]
        lines.append(
            f"| naive pandas + apply + ElementTree | {n['median_s']} | {n['peak_rss_mb']} | "
            f"snapmap is {n['median_s'] / ours['median_s']:.1f}× faster "
            f"(streamed {n['median_s'] / st['median_s']:.1f}×) |"
        )
    lines.append(f"stages (last snapmap run): {ours['last'].get('stages')}")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
