"""Transform + validate throughput: vectorized entities vs the row-wise oracle, in one run.

    python benchmarks/transform_validate.py --orders 1000000 --sample 50000 --repeat 3

The oracle (the reference's per-record design) runs on a sample and is scaled; both figures
are medians of ``--repeat`` runs. Results go to benchmarks/results/transform_validate.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import oracle

from columnar_etl import entities
from columnar_etl.contracts import split
from columnar_etl.generate import generate

AS_OF = datetime(2026, 1, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--sample", type=int, default=50_000, help="rows the oracle runs on")
    parser.add_argument("--batch", type=int, default=100_000, help="vectorized batch size")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    orders = generate(args.orders, seed=1)["orders"]
    entity = entities.get("orders")
    vector_times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        for offset in range(0, orders.height, args.batch):
            split(orders.slice(offset, args.batch), entity, AS_OF)
        vector_times.append(time.perf_counter() - start)
    sample = orders.head(args.sample).to_dicts()
    oracle_times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        for record in sample:
            oracle.order(record, AS_OF)
        oracle_times.append(time.perf_counter() - start)

    vector_rate = orders.height / statistics.median(vector_times)
    oracle_rate = len(sample) / statistics.median(oracle_times)
    result = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "orders": orders.height,
        "oracle_sample": len(sample),
        "vectorized_rows_per_s": round(vector_rate),
        "oracle_rows_per_s": round(oracle_rate),
        "ratio": round(vector_rate / oracle_rate, 1),
    }
    print(f"vectorized transform+validate: {vector_rate:12,.0f} rows/s (median of {args.repeat})")
    print(f"row-wise oracle (sample {len(sample):,}): {oracle_rate:9,.0f} rows/s")
    print(f"ratio: {result['ratio']}x")
    out = Path(__file__).parent / "results" / "transform_validate.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
