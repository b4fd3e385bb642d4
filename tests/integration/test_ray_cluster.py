"""The Ray executor on a real multi-node cluster: a head and two worker nodes, separate
``ray start`` processes on this machine, every port on 127.0.0.1 (tests/raycluster.py).

The cluster needs root (a network namespace); without it these tests fail with the reason,
they do not skip. The target is the suite's PostgreSQL, reached from inside the cluster's
namespace through a forwarded port.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from columnar_etl import pipeline
from columnar_etl.config import DatabaseUrl
from columnar_etl.target import Target
from tests.helpers import OPTION_ENV, legacy_sqlite, pg_completed, run_snapshot
from tests.pgserver import PostgresServer
from tests.ray_driver import config
from tests.raycluster import CLIENT_ADDRESS, CLUSTER_ADDRESS, ROOT, LoopbackCluster

ROWS = 4_000
Popen = subprocess.Popen[str]


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, pg_server: PostgresServer
) -> Iterator[LoopbackCluster]:
    """Head + two worker nodes of one CPU each, the suite's PostgreSQL reachable inside."""
    cluster = LoopbackCluster(tmp_path_factory.mktemp("cluster"))
    try:
        assert pg_server.port is not None
        cluster.ns.forward(pg_server.port, cluster.folder)
        cluster.start(workers=2, cpus=1)
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> DatabaseUrl:
    return legacy_sqlite(tmp_path_factory.mktemp("legacy"), ROWS, seed=19)


@pytest.fixture(scope="module")
def reference(legacy: DatabaseUrl, pg_server: PostgresServer) -> Iterator[DatabaseUrl]:
    """The local executor's result, into a database of its own."""
    name = pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    url = pg_server.url(name)
    pipeline.run(config(str(legacy), url, None), "all")
    yield DatabaseUrl.parse(url, what="target")
    pg_server.drop_database(name)


@pytest.fixture
def target(pg_server: PostgresServer) -> Iterator[str]:
    name = pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    yield pg_server.url(name)
    pg_server.drop_database(name)


def _drive(cluster: LoopbackCluster, legacy: DatabaseUrl, target: str, address: str) -> Popen:
    """tests/ray_driver.py on the cluster, from inside its namespace (as on a cluster machine)."""
    return subprocess.Popen(
        cluster.ns.command(
            [sys.executable, "-m", "tests.ray_driver", str(legacy), target, address]
        ),
        env=cluster.env(),
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(driver: Popen, cluster: LoopbackCluster) -> list[str]:
    """The statuses of the driver's jobs, once it exited 0 (its output and the cluster's
    client server logs in the failure else)."""
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, f"{out[-2000:]}\n{err[-4000:]}\n{cluster.log_tails()}"
    return next(line.split()[1:] for line in out.splitlines() if line.startswith("jobs: "))


def _same_result(got: str, expected: DatabaseUrl) -> None:
    a, b = run_snapshot(DatabaseUrl.parse(got, what="target")), run_snapshot(expected)
    for name in b:
        assert a[name].equals(b[name]), name


def test_every_port_of_the_cluster_is_on_loopback(cluster: LoopbackCluster) -> None:
    assert len(cluster.raylets()) == 3
    assert cluster.ns.listening(), "nothing listens: the check would pass on an empty cluster"
    assert cluster.not_loopback() == []


def test_a_migration_through_three_nodes_gives_the_local_result(
    cluster: LoopbackCluster, legacy: DatabaseUrl, reference: DatabaseUrl, target: str
) -> None:
    """Through the Ray Client address (ray://), as from a driver outside the cluster."""
    driver = _drive(cluster, legacy, target, CLIENT_ADDRESS)
    busy: set[int] = set()
    while driver.poll() is None:
        busy |= cluster.busy_raylets()
        time.sleep(0.01)
    assert _finish(driver, cluster) == ["completed"] * 3
    _same_result(target, reference)
    assert len(busy) >= 2, "the batches did not spread over the cluster's nodes"
    assert cluster.not_loopback() == []


def test_a_driver_without_the_token_is_refused_in_one_line(
    cluster: LoopbackCluster, legacy: DatabaseUrl, tmp_path: Path
) -> None:
    """The cluster checks the token; Ray's own words do not say so, ours do."""
    env = {k: v for k, v in cluster.env(tmp_path, token=False).items() if k not in OPTION_ENV}
    done = cluster.ns.run(
        [sys.executable, "-m", "columnar_etl", "run", "--entity", "orders", "--executor", "ray",
         "--ray-address", CLUSTER_ADDRESS, "--source", str(legacy),
         "--target", f"sqlite://{tmp_path / 't.db'}"],
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Authentication token is missing or incorrect" in done.stderr  # the cluster's refusal
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr
    assert "RAY_AUTH_MODE=token" in errors[0] and "docs/ray.md" in errors[0]


def test_a_worker_node_lost_mid_run_costs_no_row_and_no_duplicate(
    cluster: LoopbackCluster, legacy: DatabaseUrl, reference: DatabaseUrl, target: str
) -> None:
    """Kills a worker node's raylet while it runs a batch (last: the cluster loses a node).

    Through the cluster address (host:6379), as from a driver on a machine of the cluster.
    """
    raylets = cluster.raylets()
    driver = _drive(cluster, legacy, target, CLUSTER_ADDRESS)
    victim = None
    while driver.poll() is None and victim is None:
        held = cluster.busy_raylets() & set(raylets[1:])  # a worker node, not the head
        if held and pg_completed(target) >= 2:
            victim = held.pop()
            os.kill(victim, signal.SIGKILL)
        time.sleep(0.01)
    jobs = _finish(driver, cluster)
    assert victim is not None, "the run finished before a worker node could be killed"
    assert victim not in cluster.raylets()
    assert jobs == ["completed"] * 3
    _same_result(target, reference)
    with Target(DatabaseUrl.parse(target, what="target")) as t:
        ledger_loaded = t.scalar(
            "SELECT SUM(loaded) FROM migration_batches WHERE status = 'completed'"
        )
        rows = t.scalar(
            "SELECT (SELECT COUNT(*) FROM customers) + (SELECT COUNT(*) FROM products) "
            "+ (SELECT COUNT(*) FROM orders)"
        )
    assert int(ledger_loaded) == rows  # each batch counted once, as loaded once


GUIDE = ROOT / "docs" / "ray.md"


def guide(role: str) -> str:
    """The commands of docs/ray.md's block marked ``<!-- cluster-guide: ROLE``, for a cluster
    whose head node is 127.0.0.1."""
    lines = [line.strip() for line in GUIDE.read_text(encoding="utf-8").splitlines()]
    start = lines.index(next(ln for ln in lines if ln.startswith(f"<!-- cluster-guide: {role}")))
    fence = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    end = next(i for i in range(fence + 1, len(lines)) if lines[i].startswith("```"))
    return "\n".join(lines[fence + 1 : end]).replace("HEAD_IP", "127.0.0.1")


def test_the_cluster_guide_word_for_word_on_loopback(
    tmp_path: Path, pg_server: PostgresServer, legacy: DatabaseUrl
) -> None:
    """Each machine of docs/ray.md is a home directory of its own in the cluster's namespace;
    handing out the token is the copy of a file between them."""
    cluster = LoopbackCluster(tmp_path)
    names = [pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)]
    home = {m: tmp_path / m for m in ("head", "worker1", "worker2", "driver", "stranger")}

    def follow(role: str, machine: str, **env: str) -> subprocess.CompletedProcess[str]:
        clean = cluster.env(home[machine], token=False)
        return cluster.ns.run(
            ["bash", "-euc", guide(role)],
            env={k: v for k, v in clean.items() if k not in OPTION_ENV} | env,
            cwd=home[machine],
        )

    try:
        assert pg_server.port is not None
        cluster.ns.forward(pg_server.port, tmp_path)
        started = follow("head", "head")
        assert started.returncode == 0, started.stdout + started.stderr
        token = home["head"] / ".ray" / "auth_token"
        cluster.token = token.read_text().strip()
        refused = follow("worker", "stranger")
        assert refused.returncode != 0 and "token" in refused.stdout + refused.stderr
        for machine in ("worker1", "worker2", "driver"):
            (home[machine] / ".ray").mkdir(parents=True)
            shutil.copy(token, home[machine] / ".ray" / "auth_token")
        for machine in ("worker1", "worker2"):
            joined = follow("worker", machine)
            assert joined.returncode == 0, joined.stdout + joined.stderr
        cluster.wait_for_nodes(3)
        assert cluster.not_loopback() == []
        # The Ray Client address from the driver; the cluster address on the head node.
        runs = (("driver", "driver", names[0]), ("on-cluster", "head", names[1]))
        for role, machine, name in runs:
            ran = follow(role, machine, LEGACY_DATABASE_URL=str(legacy),
                         DATABASE_URL=pg_server.url(name))  # fmt: skip
            assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-4000:]
        assert cluster.not_loopback() == []
    finally:
        cluster.stop()
    a, b = (run_snapshot(DatabaseUrl.parse(pg_server.url(n), what="target")) for n in names)
    for name in names:
        pg_server.drop_database(name)
    assert a["orders"].height > 0
    for table in b:
        assert a[table].equals(b[table]), table
