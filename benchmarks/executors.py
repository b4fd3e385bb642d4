"""Local vs Ray executor: ``etl run --entity orders`` on the same data, one run, same machine.

    python benchmarks/executors.py --orders 1000000 --repeat 3

Both runs load a cold PostgreSQL target (the benchmark's own server) from the same generated
legacy database, at the default batch size and workers. The Ray run starts a local Ray
instance inside the tool (its start-up is part of the time, as it would be for a user); on one
machine the two executors share the same cores, so Ray can only add overhead here: it pays off
when nodes add cores (see docs/ray.md). Writes benchmarks/results/executors.json.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Bench, machine, median, save_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    figures: dict[str, dict[str, float]] = {}
    with Bench() as bench:
        source, _ = bench.legacy(args.orders)
        for executor in ("local", "ray"):
            seconds, rss = [], []
            for _ in range(args.repeat):
                with bench.cold_target(executor) as target:
                    run = bench.etl(source, target, "--executor", executor)
                if run.returncode != 0:
                    raise SystemExit(f"{executor} run failed: {run.stderr}")
                seconds.append(run.seconds)
                rss.append(run.peak_rss_mib)
            figures[executor] = {
                "seconds_median": median(seconds),
                "rows_per_s": args.orders / median(seconds),
                "driver_peak_rss_mib": median(rss),
                "runs": seconds,
            }
            print(
                f"{executor:>5}: {median(seconds):6.1f} s  {args.orders / median(seconds):10,.0f} "
                f"rows/s  driver peak RSS {median(rss):,.0f} MiB  (median of {args.repeat})"
            )
    ratio = figures["local"]["seconds_median"] / figures["ray"]["seconds_median"]
    print(f"ray / local throughput: {ratio:.2f}x")
    path = save_json(
        "executors",
        {**machine(), "orders": args.orders, "executors": figures, "ray_over_local": ratio},
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
