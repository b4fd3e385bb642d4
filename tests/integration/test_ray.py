"""The Ray executor on a local Ray instance (2 CPUs): same results as the local executor, and
Ctrl-C or SIGTERM stop it as they stop the local one. A node lost mid-run is
test_ray_cluster.py's, on a real multi-node cluster."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import ray  # the dev extra installs it: a missing Ray fails here, loudly

from columnar_etl import pipeline
from columnar_etl.config import DatabaseUrl, RunConfig
from columnar_etl.target import Target
from tests.helpers import etl, legacy_sqlite, run_snapshot, start_and_stop

AS_OF = datetime(2026, 1, 1)
ROWS = 3_000


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> DatabaseUrl:
    return legacy_sqlite(tmp_path_factory.mktemp("ray"), ROWS, seed=13)


@pytest.fixture(params=["sqlite", "postgresql"])
def targets(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[DatabaseUrl]]:
    """Two empty targets of one dialect: one per executor."""
    if request.param == "sqlite":
        yield [
            DatabaseUrl.parse(f"sqlite://{tmp_path / f'{n}.db'}", what="target")
            for n in ("local", "ray")
        ]
        return
    server = request.getfixturevalue("pg_server")
    names = [server.create_database(f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)]
    yield [DatabaseUrl.parse(server.url(n), what="target") for n in names]
    for name in names:
        server.drop_database(name)


def test_ray_executor_gives_the_local_result(
    local_ray: None, legacy: DatabaseUrl, targets: list[DatabaseUrl]
) -> None:
    base = {"source": legacy, "batch_size": 400, "workers": 2, "as_of": AS_OF}
    local = pipeline.run(RunConfig(target=targets[0], **base), "all")  # type: ignore[arg-type]
    remote = pipeline.run(RunConfig(target=targets[1], executor="ray", **base), "all")  # type: ignore[arg-type]
    assert [r.status for r in remote] == ["completed"] * 3
    assert [r.counts for r in remote] == [r.counts for r in local]
    assert remote.links is not None and local.links is not None
    assert [r.linked for r in remote.links] == [r.linked for r in local.links]
    a, b = run_snapshot(targets[0]), run_snapshot(targets[1])
    for name in a:
        assert a[name].equals(b[name]), name
    # Duplicates happened, and the lower legacy id won them under Ray too.
    assert remote[0].rejected_by_type.get("duplicate", 0) > 0


def test_missing_ray_address_is_one_clear_line(legacy: DatabaseUrl, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "columnar_etl", "run", "--entity", "orders", "--executor", "ray",
         "--ray-address", "127.0.0.1:1", "--source", str(legacy),
         "--target", f"sqlite://{tmp_path / 't.db'}"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Ray" in errors[0] and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("sig", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl_c", "sigterm"]
)
def test_ctrl_c_under_ray_marks_the_job_interrupted_and_it_resumes(
    legacy: DatabaseUrl, tmp_path: Path, sig: signal.Signals, exit_code: int
) -> None:
    """SIGTERM too: ray.init installs its own SIGTERM handler, which exits at once."""
    clean = DatabaseUrl.parse(f"sqlite://{tmp_path / 'clean.db'}", what="target")
    pipeline.run(RunConfig(source=legacy, target=clean, batch_size=100, as_of=AS_OF), "orders")
    target = tmp_path / "ray.db"
    args = ["run", "--entity", "orders", "--executor", "ray", "--source", str(legacy),
            "--target", f"sqlite://{target}", "--batch-size", "100", "--workers", "2"]  # fmt: skip
    code, stderr = start_and_stop(args, target, 3, sig)
    assert code == exit_code, stderr[-2000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    with sqlite3.connect(target) as conn:
        [(status,)] = conn.execute("SELECT status FROM migration_jobs").fetchall()
        loaded = conn.execute(
            "SELECT COALESCE(SUM(loaded), 0) FROM migration_batches WHERE status = 'completed'"
        ).fetchone()[0]
        rows = conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    assert status == "interrupted" and rows == loaded
    resumed = etl(*args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    with Target(DatabaseUrl.parse(f"sqlite://{target}", what="t")) as t:
        got = t.query("SELECT legacy_id FROM orders ORDER BY legacy_id")
        jobs = t.scalar("SELECT COUNT(*) FROM migration_jobs")
    with Target(clean) as t:
        expected = t.query("SELECT legacy_id FROM orders ORDER BY legacy_id")
    assert jobs == 1 and got.equals(expected)
