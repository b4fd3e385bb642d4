"""Side by side with dlt and pgloader: the same legacy orders table copied by each tool.

    python benchmarks/peers.py --orders 2000000

One run, one private PostgreSQL (tests/pgserver.py), one legacy database written by the
generator and left with its ``orders`` table only, so that every tool copies the same rows:

* **raw COPY**: ``psql ... COPY orders TO STDOUT (FORMAT binary) | psql ... COPY orders FROM
  STDIN (FORMAT binary)`` into a table made by ``pg_dump --schema-only``: the same columns and
  the same primary key, present during the COPY;
* **dlt**: its fastest documented path, ``sql_table`` with the connectorx backend and
  ``arrow_stream``, parquet loader files, loaded through ADBC (benchmarks/peers_dlt.py), run
  from its own virtualenv, benchmarks/.venv-peers (made here unless ``--no-install``);
* **pgloader**: the Debian package, ``LOAD DATABASE ... WITH prefetch rows = 25000``;
* **etl identity**: ``etl init --source ... --out DIR`` (once, timed apart), then
  ``etl run --migration DIR --entity all``;
* **etl orders**: the built-in example's full orders migration, ``etl run --entity orders``
  (transform, validation, rejects, four indexes, the ledger: more work than a copy).

Each from a new, empty target database, ``--warmup`` runs (not counted) then ``--repeat``
measured runs, interleaved so drift hits every tool alike; medians. Wall time and peak RSS
(the largest process in the tool's process tree, ``wait4``) are each tool's whole command;
beside them the CPU of that process tree and of the server (source and target backends),
which move less than wall time on a shared machine.
Every copy is checked after each run: its row count and a content checksum of the source
columns against the source's (the full migration changes the rows on purpose: there the check
is its own accounting, every extracted row loaded, rejected or filtered). A tool that cannot
be installed, or fails, or fails the check, is reported as such.

Writes benchmarks/results/peers.json and peers.png.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (
    RESULTS,
    ROOT,
    Bench,
    Measured,
    etl_env,
    machine,
    measured,
    median,
    pyplot,
    save_json,
)
from tests.pgserver import ETL_PASSWORD, ETL_USER, find_bindir

from columnar_etl.config import DatabaseUrl

TABLE = "orders"
VENV = ROOT / "benchmarks" / ".venv-peers"
#: What the dlt peer installs into its virtualenv: the versions measured.
DLT_PACKAGES = (
    "dlt[postgres,parquet,sql-database]==1.31.0",
    "connectorx==0.4.6",
    "adbc-driver-postgresql==1.13.0",
)
DLT_DATASET = "peers"
BASELINE = "raw_copy"
#: The identity copy ``etl init`` writes for the legacy orders, for revisions without it.
HAND_WRITTEN = ROOT / "benchmarks" / "identity_orders.py"


@dataclass(frozen=True)
class Peer:
    """One tool: how to run it into a target, and where its copy lands (None: the run checks
    itself by its own accounting)."""

    key: str
    label: str
    command: Callable[[DatabaseUrl, Path], list[str]]
    table: str | None


@dataclass
class Outcome:
    """Every measured run of one peer, or why it could not run."""

    peer: Peer
    runs: list[Measured] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    """The server's CPU seconds during each run (its backends, source and target)."""
    checks: list[str] = field(default_factory=list)
    unavailable: str | None = None
    failure: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def dbname(url: DatabaseUrl) -> str:
    """The database a PostgreSQL URL names."""
    return urlsplit(url.url).path.lstrip("/")


def only_orders(bench: Bench, source: DatabaseUrl) -> None:
    """Leave the legacy database with the orders table alone (no foreign key points at it)."""
    bench.server.psql("DROP TABLE customers, products", dbname=dbname(source))


def columns(bench: Bench, source: DatabaseUrl) -> list[str]:
    """The legacy orders table's columns, in order."""
    listed = bench.server.psql(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
        f"AND table_name = '{TABLE}' ORDER BY ordinal_position",
        dbname=dbname(source),
    )
    return listed.split()


def fingerprint(bench: Bench, url: DatabaseUrl, table: str, cols: list[str]) -> str:
    """Row count and an order-free checksum of ``cols`` (each row's text form, hashed)."""
    quote = url.sql_dialect.quote
    row = ", ".join(quote(c) for c in cols)
    sql = (
        f"SELECT count(*) || ' rows, checksum ' || coalesce(sum(('x' || left(md5(ROW({row})::text)"
        f", 15))::bit(60)::bigint), 0) FROM {quote(table)}"
    )
    return bench.server.psql(sql, dbname=dbname(url)).strip()


# -- the peers' commands -------------------------------------------------------------------


def raw_copy(source: DatabaseUrl) -> Callable[[DatabaseUrl, Path], list[str]]:
    """The raw binary COPY pipe, psql to psql, into a keyed copy of the source table."""
    bindir = find_bindir()

    def command(target: DatabaseUrl, _: Path) -> list[str]:
        # The table, with its primary key, exists before the timed COPY: what is timed is
        # moving the rows into a keyed table.
        ddl = subprocess.run(
            [str(bindir / "pg_dump"), "--schema-only", "--no-owner", "-t", TABLE, source.url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        psql = [str(bindir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", target.url]
        subprocess.run(psql, input=ddl, capture_output=True, text=True, check=True)
        pipe = (
            f'"$1" -X -q -d "$2" -c "COPY {TABLE} TO STDOUT (FORMAT binary)" | '
            f'"$1" -X -q -v ON_ERROR_STOP=1 -d "$3" -c "COPY {TABLE} FROM STDIN (FORMAT binary)"'
        )
        return [
            "bash",
            "-o",
            "pipefail",
            "-c",
            pipe,
            "raw",
            str(bindir / "psql"),
            source.url,
            target.url,
        ]

    return command


def venv_python() -> Path:
    """The interpreter of the dlt peer's own virtualenv."""
    return VENV / "bin" / "python"


def install_dlt() -> str | None:
    """Make the dlt virtualenv if it is missing; None when it is ready, else why not."""
    probe = [str(venv_python()), "-c", "import dlt, sqlalchemy, connectorx, adbc_driver_postgresql"]
    if venv_python().exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return None
    steps = {
        f"python -m venv {VENV}": [sys.executable, "-m", "venv", str(VENV)],
        f"pip install {' '.join(DLT_PACKAGES)}": [
            str(venv_python()),
            "-m",
            "pip",
            "install",
            "-q",
            *DLT_PACKAGES,
        ],
    }
    for what, step in steps.items():
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or ["no output"])[-1]
            return f"not installed: {what} failed: {said}"
    done = subprocess.run(probe, capture_output=True, text=True)
    return None if done.returncode == 0 else f"not installed: {done.stderr.strip()[-300:]}"


def dlt(source: DatabaseUrl) -> Callable[[DatabaseUrl, Path], list[str]]:
    """dlt's fastest documented path (benchmarks/peers_dlt.py), in its own virtualenv."""
    script = ROOT / "benchmarks" / "peers_dlt.py"

    def command(target: DatabaseUrl, scratch: Path) -> list[str]:
        args = [source.url, target.url, TABLE, DLT_DATASET, str(scratch)]
        return [str(venv_python()), str(script), *args]

    return command


def pgloader_url(url: DatabaseUrl) -> str:
    """``url`` as pgloader spells a PostgreSQL connection."""
    parts = urlsplit(url.url)
    auth = f"{quote(ETL_USER, safe='')}:{quote(ETL_PASSWORD, safe='')}"
    return f"pgsql://{auth}@{parts.hostname}:{parts.port}/{dbname(url)}"


def pgloader(source: DatabaseUrl) -> Callable[[DatabaseUrl, Path], list[str]]:
    """pgloader, database to database, with ``prefetch rows = 25000``."""

    def command(target: DatabaseUrl, scratch: Path) -> list[str]:
        load = scratch / "orders.load"
        load.write_text(
            f"LOAD DATABASE\n  FROM {pgloader_url(source)}\n  INTO {pgloader_url(target)}\n"
            "  WITH prefetch rows = 25000;\n"
        )
        return ["pgloader", "--root-dir", str(scratch / "pgloader"), str(load)]

    return command


def etl(*args: str) -> list[str]:
    """The ``etl`` command of this checkout, with ``args``."""
    return [sys.executable, "-m", "columnar_etl", *args]


def etl_identity(source: DatabaseUrl, migration: Path) -> Callable[[DatabaseUrl, Path], list[str]]:
    """``etl run`` of the identity copy ``etl init`` wrote into ``migration``."""

    def command(target: DatabaseUrl, _: Path) -> list[str]:
        where = ["--source", source.url, "--target", target.url]
        return etl("run", "--migration", str(migration), "--entity", "all", *where, "--json")

    return command


def etl_orders(source: DatabaseUrl) -> Callable[[DatabaseUrl, Path], list[str]]:
    """``etl run`` of the built-in example's full orders migration."""

    def command(target: DatabaseUrl, _: Path) -> list[str]:
        where = ["--source", source.url, "--target", target.url]
        return etl("run", "--entity", "orders", *where, "--json")

    return command


def init_migration(source: DatabaseUrl, out: Path) -> tuple[str | None, Measured | None]:
    """``etl init`` into ``out``: None and its run, or why the identity copy cannot run."""
    done = measured(etl("init", "--source", source.url, "--out", str(out)), etl_env())
    if done.returncode == 0:
        return None, done
    said = (done.stderr.strip().splitlines() or ["no output"])[-1]
    if "No such command" in done.stderr:
        return "not available: this revision has no `etl init`", None
    return f"failed: etl init exited {done.returncode}: {said}", None


def versions() -> dict[str, str]:
    """The peers' versions, as each reports it (or why not)."""
    probes = {
        "dlt": [str(venv_python()), "-c", "import dlt; print(dlt.__version__)"],
        "pgloader": ["pgloader", "--version"],
        "postgresql": [str(find_bindir() / "postgres"), "--version"],
    }
    found = {}
    for name, probe in probes.items():
        try:
            done = subprocess.run(probe, capture_output=True, text=True, timeout=60)
            found[name] = (done.stdout.strip().splitlines() or ["?"])[0]
        except OSError as exc:
            found[name] = f"not installed: {exc.strerror}"
    return found


# -- running and checking -----------------------------------------------------------------


def accounting(run: Measured, rows: int) -> str:
    """The full migration's own check: every extracted row accounted for, the job completed."""
    try:
        jobs = json.loads(run.stdout)
    except ValueError:
        return "failed: no JSON from etl run"
    counts = jobs[0]["counts"]
    extracted = int(counts.get("extracted", rows))
    kinds = ("loaded", "rejected", "filtered", "skipped_existing")
    settled = sum(int(counts.get(k) or 0) for k in kinds)
    summary = ", ".join(f"{k} {counts.get(k) or 0}" for k in kinds)
    if jobs[0]["status"] != "completed" or extracted != rows or settled != rows:
        return f"failed: job {jobs[0]['status']}, {rows} source rows, {summary}"
    return f"ok: {rows} rows: {summary}"


def run_once(
    bench: Bench, outcome: Outcome, source: DatabaseUrl, expected: str, cols: list[str], rows: int
) -> None:
    """One run of ``outcome``'s tool into a new target, measured, then its copy checked
    against the source (``expected``); a failed run ends the tool's runs."""
    peer = outcome.peer
    with bench.cold_target(peer.key) as target, tempfile.TemporaryDirectory() as scratch:
        command = peer.command(target, Path(scratch))
        env = etl_env() | {"RUNTIME__DLTHUB_TELEMETRY": "false"}
        before = bench.settled_server_cpu()
        run = measured(command, env)
        server_cpu = bench.settled_server_cpu() - before
        if run.returncode != 0:
            said = (run.stderr.strip() or run.stdout.strip()).splitlines()[-3:]
            outcome.failure = f"failed: exited {run.returncode}: {' | '.join(said)[-600:]}"
            return
        if peer.table is None:
            check = accounting(run, rows)
        else:
            got = fingerprint(bench, target, peer.table, cols)
            check = "ok: " + got if got == expected else f"failed: {got}, source {expected}"
        outcome.runs.append(run)
        outcome.server_cpu.append(server_cpu)
        outcome.checks.append(check)
        if peer.key == "dlt" and run.stdout.strip():
            outcome.extra["dlt_says"] = json.loads(run.stdout.strip().splitlines()[-1])


def summary(outcome: Outcome, rows: int, measured_from: int) -> dict[str, Any]:
    """The medians of ``outcome``'s measured runs (the first ``measured_from`` are warm-ups),
    or its status when it has none."""
    counted = outcome.runs[measured_from:]
    checks = outcome.checks[measured_from:]
    if outcome.unavailable or outcome.failure or not counted:
        status = outcome.unavailable or outcome.failure or "failed: no measured run"
        return {"label": outcome.peer.label, "status": status, **outcome.extra}
    failed = [c for c in outcome.checks if not c.startswith("ok")]
    seconds = median([r.seconds for r in counted])
    return {
        "label": outcome.peer.label,
        "status": failed[0] if failed else "ok",
        "check": failed[0] if failed else checks[-1],
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "peak_rss_mib": max(r.peak_rss_mib for r in counted),
        "cpu_s": median([r.cpu_s for r in counted]),
        "server_cpu_s": median(outcome.server_cpu[measured_from:]),
        "all_seconds": [round(r.seconds, 2) for r in counted],
        **outcome.extra,
    }


def ratios(peers: dict[str, dict[str, Any]]) -> None:
    """Each peer's time and peak RSS over raw COPY's and dlt's, where both were measured."""
    for base in (BASELINE, "dlt"):
        b = peers.get(base, {})
        for p in peers.values():
            if "seconds" in p and "seconds" in b:
                p[f"time_over_{base}"] = p["seconds"] / b["seconds"]
                p[f"rss_over_{base}"] = p["peak_rss_mib"] / b["peak_rss_mib"]


def goals(peers: dict[str, dict[str, Any]]) -> dict[str, bool | None]:
    """The issue's goals for the identity copy; None where a figure is missing."""
    i = peers["etl_identity"]
    ok = i.get("status") == "ok"
    faster = "time_over_dlt" in i and ok and peers["dlt"].get("status") == "ok"
    return {
        "identity copy faster than dlt": (i["time_over_dlt"] < 1) if faster else None,
        "identity copy at most half dlt's peak RSS": (i["rss_over_dlt"] <= 0.5) if faster else None,
        "identity copy within 2x raw COPY keyed": (
            (i["time_over_raw_copy"] <= 2) if ok and "time_over_raw_copy" in i else None
        ),
    }


def chart(result: dict[str, Any]) -> None:
    """Seconds and peak RSS of each measured tool, side by side, into peers.png."""
    plt = pyplot()
    if plt is None:
        return
    shown = [(k, p) for k, p in result["peers"].items() if "seconds" in p]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    labels = [p["label"] + ("" if p["status"] == "ok" else "\n(check failed)") for _, p in shown]
    colors = ["#27b" if k.startswith("etl") else "#999" for k, _ in shown]
    left.barh(labels[::-1], [p["seconds"] for _, p in shown][::-1], color=colors[::-1])
    left.set_xlabel("seconds (median)")
    right.barh(labels[::-1], [p["peak_rss_mib"] for _, p in shown][::-1], color=colors[::-1])
    right.set_xlabel("peak RSS, MiB (largest process)")
    for ax, key, unit in ((left, "seconds", "s"), (right, "peak_rss_mib", "MiB")):
        for i, (_, p) in enumerate(shown[::-1]):
            ax.text(p[key], i, f" {p[key]:,.1f} {unit}", va="center", fontsize=8)
        ax.set_xlim(right=max(p[key] for _, p in shown) * 1.3)
    missing = [p["label"] for p in result["peers"].values() if "seconds" not in p]
    title = f"{result['orders']:,} legacy orders into PostgreSQL, median of {result['repeat']}"
    if missing:
        title += "; not measured: " + ", ".join(missing)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(RESULTS / "peers.png", dpi=120)
    print(f"wrote {RESULTS / 'peers.png'}")


def report(result: dict[str, Any]) -> None:
    """The figures as a table on stdout, and the goals."""
    head = ("seconds", "rows/s", "RSS MiB", "CPU tool", "server", "/raw", "/dlt")
    print("\n" + " " * 16 + "".join(f"{h:>10}" for h in head) + "  check")
    for key, p in result["peers"].items():
        if "seconds" not in p:
            print(f"{key:16}{p['status']}")
            continue
        over = "".join(
            f"{p[k]:>10.2f}" if k in p else f"{'-':>10}"
            for k in ("time_over_raw_copy", "time_over_dlt")
        )
        print(
            f"{key:16}{p['seconds']:>10.2f}{p['rows_per_s']:>10,.0f}{p['peak_rss_mib']:>10.0f}"
            f"{p['cpu_s']:>10.2f}{p['server_cpu_s']:>10.2f}{over}  {p['check']}"
        )
    for goal, met in result["goals_met"].items():
        print(f"  {'not measured' if met is None else 'met' if met else 'NOT met':12}  {goal}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="measured runs of each tool")
    parser.add_argument("--warmup", type=int, default=1, help="runs of each tool not counted")
    parser.add_argument(
        "--no-install", action="store_true", help="never make the dlt virtualenv (offline)"
    )
    args = parser.parse_args()

    with Bench() as bench, tempfile.TemporaryDirectory() as scratch:
        source, generated = bench.legacy(args.orders)
        only_orders(bench, source)
        print(f"generated {args.orders:,} legacy orders in {generated:.1f} s")
        cols = columns(bench, source)
        expected = fingerprint(bench, source, f"public.{TABLE}", cols)
        migration = Path(scratch) / "identity"
        peers = {
            "raw_copy": Outcome(
                Peer("raw_copy", "raw binary COPY pipe, keyed", raw_copy(source), f"public.{TABLE}")
            ),
            "dlt": Outcome(
                Peer(
                    "dlt",
                    "dlt (connectorx arrow_stream, parquet, ADBC)",
                    dlt(source),
                    f"{DLT_DATASET}.{TABLE}",
                )
            ),
            "pgloader": Outcome(
                Peer(
                    "pgloader",
                    "pgloader (prefetch rows 25000)",
                    pgloader(source),
                    f"public.{TABLE}",
                )
            ),
            "etl_identity": Outcome(
                Peer(
                    "etl_identity",
                    "etl init identity copy",
                    etl_identity(source, migration),
                    f"public.{TABLE}",
                )
            ),
            "etl_orders": Outcome(
                Peer("etl_orders", "etl full orders migration", etl_orders(source), None)
            ),
        }
        if args.no_install and not venv_python().exists():
            peers["dlt"].unavailable = f"not installed: no {VENV} and --no-install"
        elif not args.no_install:
            peers["dlt"].unavailable = install_dlt()
        if shutil.which("pgloader") is None:
            peers["pgloader"].unavailable = "not installed: no pgloader (apt-get install pgloader)"
        why, init = init_migration(source, migration)
        identity = peers["etl_identity"]
        if init is not None:
            identity.extra["init_seconds"] = round(init.seconds, 2)
            identity.extra["migration"] = "etl init --source ... --out DIR"
        elif why and why.startswith("not available"):
            # Until `etl init` lands, the copy it would write, by hand, said in the figures.
            shutil.copy(HAND_WRITTEN, migration.with_suffix(".py"))
            migration = migration.with_suffix(".py")
            identity.peer = replace(
                identity.peer,
                label="etl identity copy (hand-written)",
                command=etl_identity(source, migration),
            )
            missing = why.removeprefix("not available: ")
            identity.extra["migration"] = f"benchmarks/{HAND_WRITTEN.name} ({missing})"
        else:
            identity.unavailable = why
        for attempt in range(args.warmup + args.repeat):
            for outcome in peers.values():
                if outcome.unavailable is None and outcome.failure is None:
                    run_once(bench, outcome, source, expected, cols, args.orders)
            done = {k: f"{o.runs[-1].seconds:.1f}" for k, o in peers.items() if o.runs}
            kind = "warm-up" if attempt < args.warmup else "run"
            print(f"{kind} {attempt + 1}: " + ", ".join(f"{k} {s} s" for k, s in done.items()))
    results = {k: summary(o, args.orders, args.warmup) for k, o in peers.items()}
    ratios(results)
    result = {
        **machine(),
        "command": f"python benchmarks/peers.py --orders {args.orders} --repeat {args.repeat} "
        f"--warmup {args.warmup}",
        "orders": args.orders,
        "repeat": args.repeat,
        "warmup": args.warmup,
        "source": f"{expected} (the legacy orders table, columns {', '.join(cols)})",
        "versions": versions(),
        "peers": results,
        "goals_met": goals(results),
    }
    report(result)
    print(f"wrote {save_json('peers', result)}")
    chart(result)


if __name__ == "__main__":
    main()
