"""Throughput against its physical ceiling: raw pipe, load ceiling, this tool, row-wise baseline.

    python benchmarks/throughput.py --orders 2000000 --repeat 3

One run, one private PostgreSQL (tests/pgserver.py), one generated legacy database; every
measurement loads a cold (new, empty) target database, and repeats are interleaved so drift
hits all of them alike. Reported: the median of ``--repeat`` runs of each.

* raw pipe: legacy ``orders`` as is, binary COPY out -> Arrow -> binary COPY in (ADBC,
  streamed) into an unindexed table of the legacy column types: the cost of moving the bytes.
* load ceiling: this tool's final rows (read back from its target), already in memory, loaded
  into the real ``orders`` table by binary COPY (items as JSON text the server parses),
  (a) one COPY with every index present, (b) one COPY into the bare table, building the
  primary key and the indexes afterwards, (c) as (b) with the rows split over two COPY
  sessions at once. The issue defines the ceiling as the faster of (a) and (b); (c) is
  reported beside it, since the tool commits on two connections on this path. Index builds
  run one after the other, in the tool as here.
* this tool: ``etl run --entity orders`` end to end as a subprocess, at its default settings
  unless ``--batch-size``/``--workers`` are given; peak RSS is that process's own.
* row-wise baseline: the reference's design on the first ``--sample`` orders: rows fetched
  through the driver, tests/oracle.py's per-record transform and validation, valid rows
  INSERTed 1000 per executemany and commit through the same ADBC driver (rejects are not
  even written, which flatters it). Its rate is scaled to ``--orders``.
* work floor: the CPU the tool cannot avoid, each part measured apart: the ceiling's own
  load (this process and the server, for the way the ceiling took), reading the source as a
  run does, and transforming and validating it. Spread over every core with none idle, that
  is the least time any run could take on this machine; the tool does more (rejects, ledger,
  checks, start-up), so it can only be slower.

Writes benchmarks/results/throughput.json and throughput.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import RESULTS, Bench, EtlRun, machine, median, pyplot, save_json
from tests import oracle

from columnar_etl import entities
from columnar_etl.config import DEFAULT_BATCH_SIZE, DEFAULT_WORKERS, DatabaseUrl
from columnar_etl.contracts import in_memory_collects, split
from columnar_etl.extract import Source
from columnar_etl.target import Target

AS_OF = datetime(2026, 1, 1)
ORDER_COLUMNS = (
    "legacy_id",
    "customer_legacy_id",
    "order_number",
    "total",
    "status",
    "order_date",
    "items",
    "etl_job_id",
)
SECONDARY = ("idx_orders_customer_id", "idx_orders_order_date", "idx_orders_etl_job_id")


def raw_pipe(source: DatabaseUrl, target: DatabaseUrl) -> float:
    """Seconds to stream the legacy orders table, as is, into an unindexed table."""
    import adbc_driver_postgresql.dbapi as driver

    with driver.connect(source.url) as src, driver.connect(target.url) as dst:
        start = time.perf_counter()
        with src.cursor() as read, dst.cursor() as write:
            read.execute("SELECT * FROM orders")
            write.adbc_ingest("raw_orders", read.fetch_record_batch(), mode="create")
        dst.commit()
        return time.perf_counter() - start


def final_rows(target: DatabaseUrl) -> pl.DataFrame:
    """The rows a tool run left in ``orders``, as the ceiling loads them (JSON as text)."""
    columns = ", ".join("items::text AS items" if c == "items" else c for c in ORDER_COLUMNS)
    with Target(target) as t:
        return t.query(f"SELECT {columns} FROM orders ORDER BY id")


#: The ways the ceiling loads: (label, bare table, COPY sessions).
CEILING_WAYS = {
    "ceiling_indexed": ("one COPY with indexes present", False, 1),
    "ceiling_bare": ("one COPY into the bare table, indexes built after", True, 1),
    "ceiling_bare_2": ("two COPY sessions into the bare table, indexes built after", True, 2),
}


def _copy(target: DatabaseUrl, rows: pl.DataFrame) -> None:
    with Target(target) as t:
        t.append("orders", rows, json_columns=("items",))
        t.commit()


def load_ceiling(
    bench: Bench, rows: pl.DataFrame, target: DatabaseUrl, *, bare: bool, sessions: int
) -> tuple[float, float]:
    """Seconds for binary COPY of ``rows`` into the real table (plus index builds), and the
    CPU seconds (this process and the server) the timed part used."""
    with Target(target) as t:
        t.apply_schema()
        if bare:
            t.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
            for name in ("idx_orders_legacy_id", *SECONDARY):
                t.execute(f"DROP INDEX {name}")
            t.commit()
    size = -(-rows.height // sessions)
    parts = [rows.slice(i * size, size) for i in range(sessions)]
    work = bench.work()
    with Target(target) as t:
        start = time.perf_counter()
        if sessions == 1:
            t.append("orders", rows, json_columns=("items",))
            t.commit()
        else:
            with ThreadPoolExecutor(sessions) as pool:
                list(pool.map(lambda part: _copy(target, part), parts))
        if bare:
            t.execute("ALTER TABLE orders ADD PRIMARY KEY (id)")
            t.apply_schema()  # CREATE [UNIQUE] INDEX IF NOT EXISTS: the four dropped above
        seconds = time.perf_counter() - start
    work = bench.work() - work
    with Target(target) as t:
        assert int(t.scalar("SELECT COUNT(*) FROM orders")) == rows.height
    return seconds, work


def extract_and_split(bench: Bench, source: DatabaseUrl) -> tuple[float, float]:
    """CPU seconds the tool's own extra work takes, measured apart: reading the legacy orders
    as a run does (this process and the server), then transforming and validating them."""
    entity = entities.get("orders")
    reader = Source(source)
    batches = reader.plan(entity.source, DEFAULT_BATCH_SIZE)
    work = bench.work()
    frames = [frame for _, frame in reader.stream(entity.source, batches)]
    extract = bench.work() - work
    started = time.process_time()
    with in_memory_collects():
        for frame in frames:
            split(frame, entity, AS_OF)
    return extract, time.process_time() - started


def row_wise(source: DatabaseUrl, target: DatabaseUrl, sample: int) -> tuple[float, int]:
    """Seconds for the reference's per-record design on ``sample`` orders; valid rows."""
    import adbc_driver_postgresql.dbapi as driver

    with Target(target) as t:
        t.apply_schema()
    insert = (
        f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)"
    )
    valid = 0
    with driver.connect(source.url) as src, driver.connect(target.url) as dst:
        start = time.perf_counter()
        with src.cursor() as cur:
            cur.execute(f"SELECT * FROM orders ORDER BY order_id LIMIT {int(sample)}")
            names = [d[0] for d in cur.description]
            records = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        pending: list[tuple[Any, ...]] = []
        with dst.cursor() as cur:
            for record in records:
                outcome = oracle.order(record, AS_OF)
                if outcome.kind != "valid":
                    continue
                row = outcome.row
                assert row is not None
                pending.append(
                    (
                        row["legacy_id"],
                        row["customer_legacy_id"],
                        row["order_number"],
                        row["total"],
                        row["status"],
                        row["order_date"],
                        json.dumps(row["items"]),
                        1,
                    )
                )
                if len(pending) == 1000:
                    cur.executemany(insert, pending)
                    dst.commit()
                    valid += len(pending)
                    pending = []
            if pending:
                cur.executemany(insert, pending)
                dst.commit()
                valid += len(pending)
        return time.perf_counter() - start, valid


def work_floor(works: dict[str, list[float]], ceiling_way: str) -> dict[str, Any]:
    """The least time the tool could take here: the CPU it cannot avoid (the ceiling's own
    load, plus reading and transforming the source, each measured apart, medians) spread
    over every core with none ever idle. Ledger, rejects, checks and start-up are left out,
    so the tool can only be slower than this."""
    parts = {
        "load_ceiling_cpu_s": median(works[ceiling_way]),
        "extract_cpu_s": median(works["extract"]),
        "transform_validate_cpu_s": median(works["split"]),
    }
    cpu = sum(parts.values())
    cores = os.cpu_count() or 1
    return {**parts, "cpu_s": cpu, "cores": cores, "seconds": cpu / cores}


def chart(result: dict[str, Any]) -> None:
    plt = pyplot()
    if plt is None:
        return

    m = result["measurements"]
    labels = [
        "raw pipe\n(COPY out, COPY in)",
        "load ceiling\n(final rows, COPY)",
        "this tool\n(etl run, end to end)",
        "row-wise baseline\n(oracle + 1000-row inserts)",
    ]
    keys = ["raw_pipe", "load_ceiling", "tool", "row_wise"]
    rates = [m[k]["rows_per_s"] for k in keys]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    bars = ax.barh(labels[::-1], rates[::-1], color=["#999", "#d62", "#27b", "#888"][::-1])
    ax.set_xscale("log")
    ax.set_xlabel("rows per second (log scale)")
    for bar, key in zip(bars, keys[::-1], strict=True):
        text = f" {m[key]['rows_per_s']:,.0f} rows/s, {m[key]['seconds']:.1f} s"
        if key == "row_wise":
            text += " (scaled)"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, text, va="center")
    r = result["ratios"]
    ax.set_title(
        f"{result['orders']:,} orders, PostgreSQL, {result['repeat']} runs (median): "
        f"tool/ceiling time {r['tool_time_over_ceiling']:.2f}x, "
        f"{r['tool_over_row_wise']:.0f}x row-wise, peak RSS {m['tool']['peak_rss_mib']:.0f} MiB",
        fontsize=9,
    )
    ax.set_xlim(right=max(rates) * 8)
    fig.tight_layout()
    fig.savefig(RESULTS / "throughput.png", dpi=120)
    print(f"wrote {RESULTS / 'throughput.png'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--sample", type=int, default=20_000, help="orders the row-wise run takes")
    parser.add_argument("--batch-size", type=int, help=f"default: {DEFAULT_BATCH_SIZE}")
    parser.add_argument("--workers", type=int, help=f"default: {DEFAULT_WORKERS}")
    args = parser.parse_args()
    tool_args = []
    if args.batch_size:
        tool_args += ["--batch-size", str(args.batch_size)]
    if args.workers:
        tool_args += ["--workers", str(args.workers)]

    times: dict[str, list[float]] = {"raw_pipe": [], **{way: [] for way in CEILING_WAYS}}
    works: dict[str, list[float]] = {way: [] for way in (*CEILING_WAYS, "extract", "split")}
    tool_runs: list[EtlRun] = []
    row_wise_runs: list[tuple[float, int]] = []
    with Bench() as bench:
        source, generated = bench.legacy(args.orders)
        print(f"generated {args.orders:,} legacy orders in {generated:.1f} s")
        rows: pl.DataFrame | None = None
        for attempt in range(args.repeat):
            with bench.cold_target("tool") as target:
                run = bench.etl(source, target, *tool_args)
                if run.returncode != 0 or not run.results:
                    raise SystemExit(f"etl run failed ({run.returncode}):\n{run.stderr}")
                if rows is None:
                    rows = final_rows(target)
            tool_runs.append(run)
            with bench.cold_target("raw") as target:
                times["raw_pipe"].append(raw_pipe(source, target))
            for way, (_, bare, sessions) in CEILING_WAYS.items():
                with bench.cold_target("ceiling") as target:
                    seconds, work = load_ceiling(bench, rows, target, bare=bare, sessions=sessions)
                times[way].append(seconds)
                works[way].append(work)
            extract, transform = extract_and_split(bench, source)
            works["extract"].append(extract)
            works["split"].append(transform)
            with bench.cold_target("rowwise") as target:
                row_wise_runs.append(row_wise(source, target, args.sample))
            print(
                f"run {attempt + 1}: tool {run.seconds:.1f} s ({run.peak_rss_mib:.0f} MiB), "
                f"raw {times['raw_pipe'][-1]:.1f} s, ceiling "
                + " / ".join(f"{times[way][-1]:.1f}" for way in CEILING_WAYS)
                + f" s, row-wise {row_wise_runs[-1][0]:.1f} s on {args.sample:,}"
            )
    assert rows is not None
    loaded = rows.height
    tool_s = median([r.seconds for r in tool_runs])
    ceilings = {way: median(times[way]) for way in CEILING_WAYS}
    # The ceiling is one COPY session (a or b); two sessions (c) is reported beside it.
    ceiling_way = min(("ceiling_indexed", "ceiling_bare"), key=ceilings.__getitem__)
    ceiling_s = ceilings[ceiling_way]
    raw_s = median(times["raw_pipe"])
    floor = work_floor(works, ceiling_way)
    sample_s = median([s for s, _ in row_wise_runs])
    row_wise_rate = args.sample / sample_s
    measurements = {
        "raw_pipe": {"rows": args.orders, "seconds": raw_s, "rows_per_s": args.orders / raw_s},
        "load_ceiling": {
            "rows": loaded,
            "seconds": ceiling_s,
            "rows_per_s": loaded / ceiling_s,
            "way": CEILING_WAYS[ceiling_way][0],
            **{f"{way}_seconds": ceilings[way] for way in CEILING_WAYS},
        },
        "tool": {
            "rows": args.orders,
            "loaded": tool_runs[0].counts.get("loaded"),
            "seconds": tool_s,
            "rows_per_s": args.orders / tool_s,
            "peak_rss_mib": max(r.peak_rss_mib for r in tool_runs),
            "client_cpu_s": median([r.client_cpu_s for r in tool_runs]),
            "server_cpu_s": median([r.server_cpu_s for r in tool_runs]),
            "settings": " ".join(tool_args)
            or f"defaults (--batch-size {DEFAULT_BATCH_SIZE} --workers {DEFAULT_WORKERS})",
            "all_seconds": [round(r.seconds, 2) for r in tool_runs],
        },
        "row_wise": {
            "rows": args.sample,
            "valid_rows_loaded": row_wise_runs[0][1],
            "sample_seconds": sample_s,
            "seconds": args.orders / row_wise_rate,
            "rows_per_s": row_wise_rate,
            "scaled": f"measured on the first {args.sample:,} orders, scaled to {args.orders:,}",
        },
    }
    ratios = {
        "tool_time_over_ceiling": tool_s / ceiling_s,
        "floor_time_over_ceiling": floor["seconds"] / ceiling_s,
        "tool_cpu_over_floor_cpu": (
            measurements["tool"]["client_cpu_s"] + measurements["tool"]["server_cpu_s"]
        )
        / floor["cpu_s"],
        "tool_time_over_two_session_ceiling": tool_s / ceilings["ceiling_bare_2"],
        "tool_time_over_raw_pipe": tool_s / raw_s,
        "tool_over_row_wise": (args.orders / tool_s) / row_wise_rate,
    }
    goals = {
        "tool within 1.25x of the load ceiling": ratios["tool_time_over_ceiling"] <= 1.25,
        "at least 30x the row-wise baseline": ratios["tool_over_row_wise"] >= 30,
        "peak RSS under 1 GiB": measurements["tool"]["peak_rss_mib"] < 1024,
    }
    result = {
        **machine(),
        "command": f"python benchmarks/throughput.py --orders {args.orders} --repeat "
        f"{args.repeat} --sample {args.sample}" + "".join(f" {a}" for a in tool_args),
        "orders": args.orders,
        "repeat": args.repeat,
        "measurements": measurements,
        "work_floor": floor,
        "ratios": ratios,
        "goals_met": goals,
    }
    print(f"\n{'':28}{'rows':>12}{'seconds':>10}{'rows/s':>14}")
    for key, m in measurements.items():
        print(f"{key:28}{m['rows']:>12,}{m['seconds']:>10.2f}{m['rows_per_s']:>14,.0f}")
    print(
        f"\nload ceiling: {measurements['load_ceiling']['way']} ("
        + ", ".join(f"{CEILING_WAYS[w][0]}: {ceilings[w]:.2f} s" for w in CEILING_WAYS)
        + ")"
    )
    print(f"row-wise: {measurements['row_wise']['scaled']}")
    print(
        f"tool: peak RSS {measurements['tool']['peak_rss_mib']:.0f} MiB, CPU client "
        f"{measurements['tool']['client_cpu_s']:.1f} s + server "
        f"{measurements['tool']['server_cpu_s']:.1f} s"
    )
    print(f"tool time / ceiling time: {ratios['tool_time_over_ceiling']:.2f}x (goal <= 1.25)")
    print(
        f"work floor: loading as the ceiling does {floor['load_ceiling_cpu_s']:.1f} + reading "
        f"the source {floor['extract_cpu_s']:.1f} + transform and validation "
        f"{floor['transform_validate_cpu_s']:.1f} = {floor['cpu_s']:.1f} CPU-s; on "
        f"{floor['cores']} cores, every one busy from start to end: {floor['seconds']:.2f} s, "
        f"{ratios['floor_time_over_ceiling']:.2f}x the ceiling time"
    )
    print(
        f"tool CPU / work floor CPU: {ratios['tool_cpu_over_floor_cpu']:.2f}x (the rest: rejects, "
        "ledger, checks, start-up)"
    )
    print(
        f"tool time / two-session ceiling time: {ratios['tool_time_over_two_session_ceiling']:.2f}x"
    )
    print(f"tool time / raw pipe time: {ratios['tool_time_over_raw_pipe']:.2f}x")
    print(f"tool rows/s / row-wise rows/s: {ratios['tool_over_row_wise']:.0f}x (goal >= 30)")
    for goal, met in goals.items():
        print(f"  {'met    ' if met else 'NOT met'}  {goal}")
    print(f"wrote {save_json('throughput', result)}")
    chart(result)


if __name__ == "__main__":
    main()
