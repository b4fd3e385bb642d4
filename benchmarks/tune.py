"""Tuning sweep: ``etl run --entity orders`` over batch size x workers, rows/s and peak RSS.

    python benchmarks/tune.py --orders 2000000

Each setting runs end to end as a subprocess into a cold PostgreSQL target (the benchmark's
own server, tests/pgserver.py), in a shuffled order so the machine's drift does not favour
one corner of the grid; with ``--repeat`` the median counts. The recommendation is the
fastest setting whose peak RSS stays under ``--rss-budget`` (headroom below the 1 GiB goal:
memory must also hold at 10M orders). DEFAULT_BATCH_SIZE / DEFAULT_WORKERS in
src/columnar_etl/config.py are set from it by hand.

Writes benchmarks/results/tune.csv, tune.json and tune.png (two heatmaps).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, Bench, machine, median, pyplot, save_json

from columnar_etl.config import DEFAULT_BATCH_SIZE, DEFAULT_WORKERS

BATCH_SIZES = (10_000, 25_000, 50_000, 100_000, 250_000, 500_000)
WORKERS = (1, 2, 4)


def heatmaps(rows: list[dict[str, Any]], path: Path, orders: int) -> None:
    plt = pyplot()
    if plt is None:
        return
    import numpy as np

    sizes = sorted({r["batch_size"] for r in rows})
    workers = sorted({r["workers"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    panels = (("rows_per_s", "rows/s (end to end)", "viridis", "{:,.0f}"),
              ("peak_rss_mib", "peak RSS (MiB)", "magma_r", "{:,.0f}"))  # fmt: skip
    for ax, (key, title, cmap, fmt) in zip(axes, panels, strict=True):
        grid = np.full((len(workers), len(sizes)), np.nan)
        for r in rows:
            grid[workers.index(r["workers"]), sizes.index(r["batch_size"])] = r[key]
        image = ax.imshow(grid, cmap=cmap, aspect="auto")
        ax.set_xticks(range(len(sizes)), [f"{s // 1000}k" for s in sizes])
        ax.set_yticks(range(len(workers)), [str(w) for w in workers])
        ax.set_xlabel("batch size")
        ax.set_ylabel("workers")
        ax.set_title(title)
        for (i, j), value in np.ndenumerate(grid):
            if not np.isnan(value):
                ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=8,
                        bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0})  # fmt: skip
        fig.colorbar(image, ax=ax)
    fig.suptitle(f"etl run --entity orders, {orders:,} orders into PostgreSQL", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each setting (median)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKERS))
    parser.add_argument("--rss-budget", type=float, default=768.0, help="MiB, for the pick")
    parser.add_argument("--name", default="tune", help="results file names (a focused re-run)")
    args = parser.parse_args()

    grid = [(b, w) for b in args.batch_sizes for w in args.workers] * args.repeat
    random.Random(7).shuffle(grid)
    seconds: dict[tuple[int, int], list[float]] = defaultdict(list)
    rss: dict[tuple[int, int], list[float]] = defaultdict(list)
    with Bench() as bench:
        source, generated = bench.legacy(args.orders)
        print(f"generated {args.orders:,} legacy orders in {generated:.1f} s")
        for n, (batch_size, workers) in enumerate(grid, 1):
            with bench.cold_target("tune") as target:
                run = bench.etl(
                    source, target, "--batch-size", str(batch_size), "--workers", str(workers)
                )
            if run.returncode != 0:
                raise SystemExit(f"etl run failed ({run.returncode}):\n{run.stderr}")
            seconds[batch_size, workers].append(run.seconds)
            rss[batch_size, workers].append(run.peak_rss_mib)
            print(
                f"[{n}/{len(grid)}] batch {batch_size:>7,} workers {workers}: "
                f"{run.seconds:6.1f} s, {args.orders / run.seconds:>9,.0f} rows/s, "
                f"peak RSS {run.peak_rss_mib:5.0f} MiB",
                flush=True,
            )
    rows = [
        {
            "batch_size": b,
            "workers": w,
            "seconds": round(median(seconds[b, w]), 2),
            "rows_per_s": round(args.orders / median(seconds[b, w])),
            "peak_rss_mib": round(max(rss[b, w])),
            "runs": len(seconds[b, w]),
        }
        for b, w in sorted(seconds)
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / f"{args.name}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fitting = [r for r in rows if r["peak_rss_mib"] < args.rss_budget]
    best = max(fitting or rows, key=lambda r: r["rows_per_s"])
    print(f"\n{'batch':>8} {'workers':>7} {'seconds':>8} {'rows/s':>10} {'peak RSS':>9}")
    for r in rows:
        mark = "  <- pick" if r is best else ""
        print(
            f"{r['batch_size']:>8,} {r['workers']:>7} {r['seconds']:>8.1f} "
            f"{r['rows_per_s']:>10,} {r['peak_rss_mib']:>6} MiB{mark}"
        )
    print(
        f"\npick (fastest under {args.rss_budget:.0f} MiB): --batch-size {best['batch_size']} "
        f"--workers {best['workers']}; current defaults: {DEFAULT_BATCH_SIZE} / {DEFAULT_WORKERS}"
    )
    save_json(
        args.name,
        {
            **machine(),
            "command": "python benchmarks/tune.py " + " ".join(sys.argv[1:]),
            "orders": args.orders,
            "rss_budget_mib": args.rss_budget,
            "pick": {"batch_size": best["batch_size"], "workers": best["workers"]},
            "settings": rows,
        },
    )
    heatmaps(rows, RESULTS / f"{args.name}.png", args.orders)
    print(f"wrote {RESULTS / args.name}.csv and .json")


if __name__ == "__main__":
    main()
