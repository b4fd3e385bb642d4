"""Local vs Ray executor: ``etl run --entity orders`` on the same data, one run, same machine.

    python benchmarks/executors.py --orders 1000000 --repeat 3
    python benchmarks/executors.py --orders 200000 --repeat 1 --cluster   # as root

Both runs load a cold PostgreSQL target (the benchmark's own server) from the same generated
legacy database, at the default batch size and workers. Without ``--cluster`` the Ray run
starts a local Ray instance inside the tool (its start-up is part of the time, as it would be
for a user). With ``--cluster`` it runs on a multi-node cluster on loopback (a head and two
worker nodes of one CPU each, separate ``ray start`` processes: tests/raycluster.py) through
the Ray Client, and both runs go through the cluster's network namespace and its forward to
the database, so that they pay the same path. On one machine the executors share the same
cores, so Ray can only add overhead here: it pays off when nodes add cores (see docs/ray.md).
Writes benchmarks/results/executors.json (executors_cluster.json with ``--cluster``).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Bench, EtlRun, machine, median, save_json
from tests.raycluster import CLIENT_ADDRESS, ClusterUnavailable, LoopbackCluster

from columnar_etl.config import DatabaseUrl

#: Nodes of the loopback cluster (the head and the worker nodes) and CPUs of each.
NODES, CPUS = 3, 1


class Runner:
    """Runs ``etl run`` for the benchmark: here, or inside a loopback cluster's namespace."""

    def __init__(self, bench: Bench, cluster: LoopbackCluster | None) -> None:
        self.bench, self.cluster = bench, cluster

    def run(self, executor: str, source: DatabaseUrl, target: DatabaseUrl) -> EtlRun:
        """One measured run of ``executor``."""
        if self.cluster is None:
            return self.bench.etl(source, target, "--executor", executor)
        ray = ["--ray-address", CLIENT_ADDRESS] if executor == "ray" else []
        return self.bench.etl(
            source, target, "--executor", executor, *ray,
            within=self.cluster.ns.command([]), base_env=self.cluster.env(),
        )  # fmt: skip


@contextlib.contextmanager
def loopback(bench: Bench) -> Iterator[LoopbackCluster]:
    """The cluster, with the benchmark's PostgreSQL forwarded into it; stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="bench-cluster") as folder:
        try:
            cluster = LoopbackCluster(Path(folder))
        except ClusterUnavailable as exc:
            raise SystemExit(f"error: --cluster: {exc}") from None
        try:
            assert bench.server.port is not None
            cluster.ns.forward(bench.server.port, Path(folder))
            cluster.start(workers=NODES - 1, cpus=CPUS)
            yield cluster
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cluster", action="store_true", help="Ray on a three-node loopback cluster (root)"
    )
    args = parser.parse_args()

    figures: dict[str, dict[str, float]] = {}
    with Bench() as bench, contextlib.ExitStack() as stack:
        cluster = stack.enter_context(loopback(bench)) if args.cluster else None
        runner = Runner(bench, cluster)
        source, _ = bench.legacy(args.orders)
        for executor in ("local", "ray"):
            seconds, rss = [], []
            for _ in range(args.repeat):
                with bench.cold_target(executor) as target:
                    run = runner.run(executor, source, target)
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
    where = {"ray_on": f"{NODES}-node loopback cluster, {CPUS} CPU each"} if args.cluster else {}
    path = save_json(
        "executors_cluster" if args.cluster else "executors",
        {
            **machine(),
            "orders": args.orders,
            **where,
            "executors": figures,
            "ray_over_local": ratio,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
