"""The benchmark scripts still run, end to end, on a few thousand orders.

They start their own PostgreSQL, as the commands in docs/benchmarks.md do; their figures go to a
temporary folder (BENCH_RESULTS), never over the committed ones. The figures themselves are
noise at this size: only their consistency is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _bench(script: str, results: Path, *args: str) -> str:
    env = {**os.environ, "BENCH_RESULTS": str(results)}
    done = subprocess.run(
        [sys.executable, f"benchmarks/{script}.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def _json(results: Path, name: str) -> dict[str, Any]:
    return json.loads((results / f"{name}.json").read_text())


def test_throughput_measures_each_way_and_the_work_floor(tmp_path: Path) -> None:
    committed = (ROOT / "benchmarks" / "results" / "throughput.json").read_text()
    out = _bench("throughput", tmp_path, "--orders", "3000", "--repeat", "1", "--sample", "300")
    result = _json(tmp_path, "throughput")
    m, floor, ratios = result["measurements"], result["work_floor"], result["ratios"]
    # The ceiling loads exactly the rows the tool left in its target.
    assert m["tool"]["rows"] == 3000
    assert m["load_ceiling"]["rows"] == m["tool"]["loaded"] > 0
    assert m["row_wise"]["rows"] == 300 and 0 < m["row_wise"]["valid_rows_loaded"] <= 300
    parts = ("load_ceiling_cpu_s", "extract_cpu_s", "transform_validate_cpu_s")
    assert all(floor[p] > 0 for p in parts)
    assert abs(floor["cpu_s"] - sum(floor[p] for p in parts)) < 1e-9
    assert floor["seconds"] == floor["cpu_s"] / floor["cores"]
    ceiling = m["load_ceiling"]["seconds"]
    assert abs(ratios["floor_time_over_ceiling"] - floor["seconds"] / ceiling) < 1e-9
    assert abs(ratios["tool_time_over_ceiling"] - m["tool"]["seconds"] / ceiling) < 1e-9
    assert "work floor:" in out and set(result["goals_met"]) == {
        "tool within 1.25x of the load ceiling",
        "at least 30x the row-wise baseline",
        "peak RSS under 1 GiB",
    }
    assert (ROOT / "benchmarks" / "results" / "throughput.json").read_text() == committed


def test_tune_picks_a_setting_it_measured(tmp_path: Path) -> None:
    args = ("--orders", "3000", "--batch-sizes", "1000", "2000", "--workers", "1", "2")
    _bench("tune", tmp_path, *args)
    result = _json(tmp_path, "tune")
    measured = {(s["batch_size"], s["workers"]) for s in result["settings"]}
    assert measured == {(1000, 1), (1000, 2), (2000, 1), (2000, 2)}
    assert (result["pick"]["batch_size"], result["pick"]["workers"]) in measured
    assert (tmp_path / "tune.csv").read_text().count("\n") == 5  # header and four settings


def test_scaling_reports_every_size(tmp_path: Path) -> None:
    _bench("scaling", tmp_path, "--orders", "2000", "3000")
    sizes = _json(tmp_path, "scaling")["sizes"]
    assert [s["orders"] for s in sizes] == [2000, 3000]
    assert all(s["loaded"] > 0 and s["peak_rss_mib"] > 0 for s in sizes)


def test_peers_measures_and_checks_every_tool_or_says_why_not(tmp_path: Path) -> None:
    # --no-install: no network here; a dlt virtualenv made before is used, else dlt is
    # reported as not installed, never left out.
    args = ("--orders", "2000", "--repeat", "1", "--warmup", "0", "--no-install")
    out = _bench("peers", tmp_path, *args)
    result = _json(tmp_path, "peers")
    peers = result["peers"]
    assert set(peers) == {"raw_copy", "dlt", "pgloader", "etl_identity", "etl_orders"}
    for key in ("raw_copy", "etl_identity", "etl_orders"):
        assert peers[key]["status"] == "ok", peers[key]
    # Each copy matched the source's row count and checksum, which the result records.
    source = result["source"].split(" (")[0]
    for key in ("raw_copy", "etl_identity"):
        assert peers[key]["check"] == f"ok: {source}"
        assert source.startswith("2000 rows, checksum ")
    assert peers["etl_orders"]["check"].startswith("ok: 2000 rows: loaded ")
    for key in ("dlt", "pgloader"):
        status = peers[key]["status"]
        assert status == "ok" or status.startswith("not installed"), status
        if status == "ok":
            assert peers[key]["check"] == f"ok: {source}"
        assert key in out
    raw = peers["raw_copy"]
    for p in peers.values():
        if "seconds" in p:
            assert p["rows_per_s"] == 2000 / p["seconds"] and p["peak_rss_mib"] > 0
            assert p["cpu_s"] > 0 and p["server_cpu_s"] > 0
            assert abs(p["time_over_raw_copy"] - p["seconds"] / raw["seconds"]) < 1e-9
    assert (tmp_path / "peers.png").exists() or "no chart" in out
