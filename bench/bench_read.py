"""Benchmark: `read_bytes` against a bare `polars.read_csv` of the same 1M-row, 30-column CSV.

Run: `.venv/bin/python bench/bench_read.py [--rows N]`. Target: ratio (read_bytes / bare) <= 1.3.
The file is generated once under bench/data/ and reused.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from snapmap_pipeline.core.read import read_bytes
from snapmap_pipeline.settings import Settings

DATA_DIR = Path(__file__).resolve().parent / "data"
COLUMNS = 30


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write an HR-looking CSV: ids, names with accents, emails, dates, numbers, flags, free text."""
    rng = np.random.default_rng(seed)
    first = np.array(["José", "Müller", "Zoë", "Anna", "Li", "Øystein", "Chloé", "Sam", "Ngozi", "Kai"])
    cols: dict[str, object] = {}
    for i in range(COLUMNS):
        kind = i % 6
        name = f"Field {i + 1}"
        if kind == 0:
            cols[name] = np.char.add("E", rng.integers(100_000, 999_999, rows).astype(str))
        elif kind == 1:
            cols[name] = first[rng.integers(0, len(first), rows)]
        elif kind == 2:
            cols[name] = np.char.add(rng.integers(1, 99_999, rows).astype(str), "@acme.com")
        elif kind == 3:
            days = rng.integers(0, 20_000, rows).astype("timedelta64[D]") + np.datetime64("1970-01-01")
            cols[name] = days.astype(str)
        elif kind == 4:
            cols[name] = np.round(rng.random(rows) * 100_000, 2).astype(str)
        else:
            cols[name] = np.array(["Yes", "No", "", "Sales, EMEA"])[rng.integers(0, 4, rows)]
    pl.DataFrame(cols).write_csv(path)


def interleaved_medians(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Alternate the contenders so machine noise and cache warmth hit both alike; median per contender."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"employees_{args.rows}x{COLUMNS}.csv"
    if not path.exists():
        generate(path, args.rows)
    data = path.read_bytes()
    settings = Settings(max_file_bytes=max(len(data) + 1, Settings().max_file_bytes))

    pl.read_csv(data, infer_schema=False)  # warm-up: page cache, thread pool
    medians = interleaved_medians(
        {
            "bare": lambda: pl.read_csv(data, infer_schema=False),
            "ours": lambda: read_bytes(data, path.name, settings=settings),
        },
        args.repeat,
    )
    bare, ours = medians["bare"], medians["ours"]
    df, report = read_bytes(data, path.name, settings=settings)
    print(f"file: {path.name} ({len(data) / 1e6:.1f} MB, {report.rows} rows x {len(report.columns)} columns)")
    print(f"bare pl.read_csv : {bare:.3f} s (median of {args.repeat})")
    print(f"read_bytes       : {ours:.3f} s (median of {args.repeat})")
    print(f"ratio            : {ours / bare:.2f} (target <= 1.30)")


if __name__ == "__main__":
    main()
