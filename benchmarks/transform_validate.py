"""Transform + validate throughput: vectorized entities vs the row-wise oracle, in one run.

    python benchmarks/transform_validate.py --orders 1000000 --sample 50000 --repeat 3
    python benchmarks/transform_validate.py --entity customers --rows 200000

The oracle (the reference's per-record design) runs on a sample and is scaled; both figures
are medians of ``--repeat`` runs, the two alternating. Results go to
benchmarks/results/transform_validate.json (orders) or transform_validate_<entity>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import oracle

from columnar_etl import entities
from columnar_etl.contracts import in_memory_collects, split
from columnar_etl.generate import customers_table, generate, products_table, sizes_for

AS_OF = datetime(2026, 1, 1)
ORACLE = {"customers": oracle.customer, "products": oracle.product, "orders": oracle.order}


def legacy_rows(entity: str, rows: int) -> pl.DataFrame:
    """``rows`` generated legacy rows of ``entity`` (seed 1)."""
    if entity == "customers":
        return customers_table(1, rows)
    if entity == "products":
        return products_table(1, rows)
    return generate(rows, seed=1)["orders"]


class Timings:
    """Wall-clock and process CPU seconds of repeated runs."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def measure(self, run: Callable[[], None]) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(time.process_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--entity", choices=sorted(ORACLE), default="orders")
    parser.add_argument(
        "--rows",
        type=int,
        help="rows of --entity (default: as many as --orders orders come with)",
    )
    parser.add_argument("--sample", type=int, default=50_000, help="rows the oracle runs on")
    parser.add_argument("--batch", type=int, default=100_000, help="vectorized batch size")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    rows = args.rows or getattr(sizes_for(args.orders), args.entity)
    legacy = legacy_rows(args.entity, rows)
    entity = entities.get(args.entity)
    sample = legacy.head(args.sample).to_dicts()
    judge = ORACLE[args.entity]

    def vectorized() -> None:
        with in_memory_collects():  # as a run does
            for offset in range(0, legacy.height, args.batch):
                split(legacy.slice(offset, args.batch), entity, AS_OF)

    def row_wise() -> None:
        for record in sample:
            judge(record, AS_OF)

    # The two alternate, so that a change in the machine's load hits both alike.
    vector, oracle_ = Timings(), Timings()
    for _ in range(args.repeat):
        vector.measure(vectorized)
        oracle_.measure(row_wise)

    vector_rate = legacy.height / statistics.median(vector.wall)
    oracle_rate = len(sample) / statistics.median(oracle_.wall)
    result = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average_at_end": os.getloadavg()[0],
        "entity": args.entity,
        args.entity: legacy.height,
        "batch": args.batch,
        "oracle_sample": len(sample),
        "vectorized_rows_per_s": round(vector_rate),
        "oracle_rows_per_s": round(oracle_rate),
        "ratio": round(vector_rate / oracle_rate, 1),
        # Per CPU-second of this process (all threads): less sensitive to other load.
        "vectorized_rows_per_cpu_s": round(legacy.height / statistics.median(vector.cpu)),
        "oracle_rows_per_cpu_s": round(len(sample) / statistics.median(oracle_.cpu)),
    }
    print(f"{args.entity}: {legacy.height:,} rows in batches of {args.batch:,}")
    print(f"vectorized transform+validate: {vector_rate:12,.0f} rows/s (median of {args.repeat})")
    print(f"row-wise oracle (sample {len(sample):,}): {oracle_rate:9,.0f} rows/s")
    print(f"ratio: {result['ratio']}x")
    print(
        f"per CPU-second: vectorized {result['vectorized_rows_per_cpu_s']:,} rows, "
        f"oracle {result['oracle_rows_per_cpu_s']:,} rows"
    )
    suffix = "" if args.entity == "orders" else f"_{args.entity}"
    out = Path(__file__).parent / "results" / f"transform_validate{suffix}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
