"""Scaling: ``etl run --entity orders`` end to end at growing sizes, time and peak RSS.

    python benchmarks/scaling.py --orders 1000000 2000000 3000000 10000000

Each size gets its own generated legacy database and a cold PostgreSQL target (the
benchmark's own server, tests/pgserver.py); the tool runs at its default settings as a
subprocess. Goals: peak RSS under 1 GiB at every size, and 10M orders in at most 5.5x the
time of 2M.

Writes benchmarks/results/scaling.json and scaling.png.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, Bench, machine, median, pyplot, save_json

from columnar_etl.config import DEFAULT_BATCH_SIZE, DEFAULT_WORKERS

SIZES = (1_000_000, 2_000_000, 3_000_000, 10_000_000)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    plt = pyplot()
    if plt is None:
        return

    orders = [r["orders"] / 1e6 for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(orders, [r["seconds"] for r in rows], "o-", label="measured")
    base = min(rows, key=lambda r: r["orders"])
    linear = [base["seconds"] * r["orders"] / base["orders"] for r in rows]
    left.plot(orders, linear, "--", color="gray", label=f"linear from {base['orders'] / 1e6:g}M")
    left.set_xlabel("orders (millions)")
    left.set_ylabel("seconds, end to end")
    left.legend()
    for r in rows:
        left.annotate(f"{r['rows_per_s']:,.0f}/s", (r["orders"] / 1e6, r["seconds"]), fontsize=8,
                      textcoords="offset points", xytext=(4, -10))  # fmt: skip
    right.plot(orders, [r["peak_rss_mib"] for r in rows], "o-", color="#d62")
    right.axhline(1024, color="gray", linestyle="--", label="1 GiB goal")
    right.set_ylim(0, 1200)
    right.set_xlabel("orders (millions)")
    right.set_ylabel("peak RSS (MiB)")
    right.legend()
    fig.suptitle(
        f"etl run --entity orders into PostgreSQL, defaults (--batch-size {DEFAULT_BATCH_SIZE} "
        f"--workers {DEFAULT_WORKERS})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (median)")
    args = parser.parse_args()
    rows = []
    with Bench() as bench:
        for orders in sorted(args.orders):
            source, generated = bench.legacy(orders)
            runs = []
            for _ in range(args.repeat):
                with bench.cold_target("scale") as target:
                    run = bench.etl(source, target)
                if run.returncode != 0:
                    raise SystemExit(f"etl run failed ({run.returncode}):\n{run.stderr}")
                runs.append(run)
            seconds = median([r.seconds for r in runs])
            rows.append(
                {
                    "orders": orders,
                    "seconds": round(seconds, 2),
                    "rows_per_s": round(orders / seconds),
                    "peak_rss_mib": round(max(r.peak_rss_mib for r in runs)),
                    "client_cpu_s": round(median([r.client_cpu_s for r in runs]), 1),
                    "server_cpu_s": round(median([r.server_cpu_s for r in runs]), 1),
                    "loaded": runs[0].counts.get("loaded"),
                }
            )
            print(
                f"{orders:>12,} orders: {seconds:7.1f} s, {orders / seconds:>9,.0f} rows/s, "
                f"peak RSS {rows[-1]['peak_rss_mib']} MiB (generated in {generated:.0f} s)",
                flush=True,
            )
            bench.server.drop_database(source.url.rsplit("/", 1)[1])
    by_size = {r["orders"]: r for r in rows}
    goals: dict[str, Any] = {"peak RSS under 1 GiB at every size": all(
        r["peak_rss_mib"] < 1024 for r in rows)}  # fmt: skip
    if 2_000_000 in by_size and 10_000_000 in by_size:
        ratio = by_size[10_000_000]["seconds"] / by_size[2_000_000]["seconds"]
        goals["10M time at most 5.5x the 2M time"] = ratio <= 5.5
        print(f"10M / 2M time: {ratio:.2f}x (goal <= 5.5)")
    for goal, met in goals.items():
        print(f"  {'met    ' if met else 'NOT met'}  {goal}")
    save_json(
        "scaling",
        {
            **machine(),
            "command": "python benchmarks/scaling.py " + " ".join(sys.argv[1:]),
            "settings": f"defaults: --batch-size {DEFAULT_BATCH_SIZE} --workers {DEFAULT_WORKERS}",
            "sizes": rows,
            "goals_met": goals,
        },
    )
    plot(rows, RESULTS / "scaling.png")
    print(f"wrote {RESULTS / 'scaling.json'}")


if __name__ == "__main__":
    main()
