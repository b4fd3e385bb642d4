"""What the throughput, tuning and scaling benchmarks share: a private PostgreSQL, generated
legacy databases, cold target databases, and running ``etl`` as a measured subprocess.

The server is the test suite's (tests/pgserver.py: fsync off, 64 MB shared buffers), started
for the benchmark and removed after it. Peak RSS is the tool process's own (see _LAUNCHER).
Figures go to benchmarks/results/, or to the folder named by ``BENCH_RESULTS`` (the test
that runs the benchmarks keeps the committed figures untouched that way).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.pgserver import PostgresServer

from columnar_etl.config import DatabaseUrl
from columnar_etl.legacy import write_legacy

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("BENCH_RESULTS") or ROOT / "benchmarks" / "results")

__all__ = [
    "RESULTS",
    "Bench",
    "EtlRun",
    "Measured",
    "etl_env",
    "machine",
    "measured",
    "median",
    "pyplot",
    "save_json",
]


def machine() -> dict[str, Any]:
    """Where a figure was measured."""
    return {
        "date": datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}",
        "load_average_at_end": os.getloadavg()[0],
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def pyplot() -> Any:
    """matplotlib's pyplot (headless), or None with a line saying how to get the charts."""
    try:
        import matplotlib
    except ImportError:
        print('no chart: matplotlib is not installed (pip install -e ".[bench]")')
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


@dataclass
class EtlRun:
    """One ``etl run`` subprocess: wall time, the process's peak RSS and CPU, its JSON output."""

    seconds: float
    peak_rss_mib: float
    client_cpu_s: float
    server_cpu_s: float
    returncode: int
    results: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""

    @property
    def counts(self) -> dict[str, int]:
        return self.results[0]["counts"] if self.results else {}


class Bench:
    """A PostgreSQL server for one benchmark, with helpers to make and drop databases."""

    def __init__(self) -> None:
        self.server = PostgresServer()

    def __enter__(self) -> Bench:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def url(self, database: str) -> DatabaseUrl:
        return DatabaseUrl.parse(self.server.url(database), what="benchmark")

    def legacy(self, orders: int, seed: int = 1) -> tuple[DatabaseUrl, float]:
        """A generated legacy database with ``orders`` orders; the seconds it took to write."""
        name = self.server.create_database(f"legacy_{orders}_{seed}")
        start = time.perf_counter()
        write_legacy(self.url(name), orders, seed=seed)
        # Vacuumed and analysed, as a live legacy database would be. One pass right after the
        # load left the visibility map empty here (relallvisible 0: every index scan of the
        # source still read the heap); a second pass sets it.
        for _ in range(2):
            self.server.psql("VACUUM (FREEZE, ANALYZE)", dbname=name)
        visible = self.server.psql(
            "SELECT relallvisible > 0 FROM pg_class WHERE relname = 'orders'", dbname=name
        )
        assert visible.strip() == "t", "the legacy orders table is still not all-visible"
        return self.url(name), time.perf_counter() - start

    @contextlib.contextmanager
    def cold_target(self, label: str) -> Iterator[DatabaseUrl]:
        """A new, empty database, dropped afterwards."""
        name = self.server.create_database(f"{label}_{uuid.uuid4().hex[:8]}")
        try:
            yield self.url(name)
        finally:
            self.server.drop_database(name)

    def server_cpu(self) -> float:
        """CPU seconds the server's processes have used so far (exited backends included)."""
        assert self.server.tmpdir is not None
        try:
            pid = int((self.server.datadir / "postmaster.pid").read_text().split()[0])
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            return float("nan")
        # utime, stime, cutime, cstime: the postmaster and every backend it has reaped.
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    def work(self) -> float:
        """CPU seconds used so far by this process (all its threads) and the server.

        Call it with no connection open: a backend's CPU reaches the postmaster's count when
        the backend exits and is reaped, a moment after its client closes it, so this waits
        for the count to stand still.
        """
        return time.process_time() + self.settled_server_cpu()

    def settled_server_cpu(self) -> float:
        """:meth:`server_cpu` once every closed connection's backend has been reaped."""
        server = self.server_cpu()
        for _ in range(20):
            time.sleep(0.05)
            again = self.server_cpu()
            if again == server:
                break
            server = again
        return server

    def etl(
        self,
        source: DatabaseUrl,
        target: DatabaseUrl,
        *args: str,
        src: Path = ROOT / "src",
        within: Sequence[str] = (),
        base_env: dict[str, str] | None = None,
    ) -> EtlRun:
        """``etl run --entity orders`` as a subprocess, measured; ``src``: the package's
        source folder to run (another revision's, for an A/B); ``within``: a command prefix
        the run goes through (a network namespace's nsenter), ``base_env`` the environment
        to start from instead of this process's."""
        command = [*within, sys.executable, "-m", "columnar_etl", "run", "--entity", "orders"]
        command += ["--source", source.url, "--target", target.url, "--json", *args]
        before = self.server_cpu()
        done = measured(command, etl_env(src, base_env))
        try:
            results = json.loads(done.stdout)
        except ValueError:
            results = []
        return EtlRun(
            seconds=done.seconds,
            peak_rss_mib=done.peak_rss_mib,
            client_cpu_s=done.cpu_s,
            server_cpu_s=self.server_cpu() - before,
            returncode=done.returncode,
            results=results if isinstance(results, list) else [],
            stderr=done.stderr[-2000:],
        )


def etl_env(src: Path = ROOT / "src", base: dict[str, str] | None = None) -> dict[str, str]:
    """This environment (or ``base``) for an ``etl`` subprocess: the package from ``src``,
    and no database URL or libpq setting of the caller's that could point it elsewhere."""
    env = {k: v for k, v in (base or os.environ).items() if not k.startswith(("PG", "LEGACY_"))}
    env.pop("DATABASE_URL", None)
    paths = [str(src), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


@dataclass(frozen=True)
class Measured:
    """One subprocess run: wall time, the peak RSS of the largest process in its tree, the CPU
    of the whole tree, its exit status and output."""

    seconds: float
    peak_rss_mib: float
    cpu_s: float
    returncode: int
    stdout: str
    stderr: str


def measured(command: Sequence[str], env: dict[str, str] | None = None) -> Measured:
    """Run ``command`` from the repository root through the small launcher below, timed.

    The peak RSS is ``wait4``'s: the largest of the process and every descendant reaped
    under it (a shell pipeline's, a tool's worker processes)."""
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r") as usage,
    ):
        start = time.perf_counter()
        launched = [sys.executable, "-c", _LAUNCHER, usage.name, *command]
        done = subprocess.run(launched, stdout=out, stderr=err, env=env, cwd=ROOT, check=False)
        seconds = time.perf_counter() - start
        figures = json.loads(usage.read() or "{}")
        out.seek(0)
        err.seek(0)
        return Measured(
            seconds=seconds,
            peak_rss_mib=figures.get("maxrss_kib", float("nan")) / 1024,
            cpu_s=figures.get("cpu_s", float("nan")),
            returncode=done.returncode,
            stdout=out.read().decode(errors="replace"),
            stderr=err.read().decode(errors="replace"),
        )


# Linux counts a child's peak RSS from the moment it is forked, with the parent's pages: a
# benchmark that generated millions of rows in-process would lend the tool its own footprint.
# This small launcher forks the tool instead and reports the tool's own figures (wait4).
_LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"maxrss_kib": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}, f)
sys.exit(os.waitstatus_to_exitcode(status))
"""
