"""Hostile options and environment: one clear line, a non-zero exit, no traceback, no secret."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from columnar_etl.config import DatabaseUrl
from columnar_etl.legacy import write_legacy
from columnar_etl.target import Target
from tests.helpers import etl, legacy_sqlite

SECRET = "hunter2-Zz"
UNREACHABLE = f"postgresql://etl:{SECRET}@127.0.0.1:1/legacy"


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(legacy_sqlite(tmp_path_factory.mktemp("misuse"), 300, seed=1))


def run_args(legacy: str, *extra: str) -> tuple[str, ...]:
    return ("run", "--entity", "orders", "--source", legacy, *extra)


# (id, argv builder, environment)
CASES = [
    ("sql-in-entity", lambda s, t: ("run", "--entity", "orders; DROP TABLE orders", "--source", s)),
    ("empty-entity", lambda s, t: ("run", "--entity", "", "--source", s)),
    ("path-entity", lambda s, t: ("run", "--entity", "../../etc/passwd", "--source", s)),
    ("no-source", lambda s, t: ("run", "--entity", "orders")),
    ("empty-source", lambda s, t: ("run", "--entity", "orders", "--source", "")),
    ("mysql-source", lambda s, t: run_args(f"mysql://root:{SECRET}@db/x")),
    ("no-host", lambda s, t: run_args(f"postgresql://etl:{SECRET}@/legacy")),
    ("bad-port", lambda s, t: run_args(f"postgresql://etl:{SECRET}@127.0.0.1:99999/x")),
    ("unreachable", lambda s, t: run_args(UNREACHABLE, "--target", t)),
    ("param-password", lambda s, t: run_args(f"postgresql://127.0.0.1:1/x?password={SECRET}")),
    ("not-a-database", lambda s, t: run_args("sqlite:///etc/passwd", "--target", t)),
    ("missing-file", lambda s, t: run_args("sqlite:///nonexistent/legacy.db", "--target", t)),
    ("newline-path", lambda s, t: run_args("sqlite:///tmp/a\nb.db", "--target", t)),
    ("target-is-dir", lambda s, t: run_args(s, "--target", "sqlite:///tmp")),
    ("target-unreachable", lambda s, t: run_args(s, "--target", UNREACHABLE)),
    ("batch-zero", lambda s, t: run_args(s, "--batch-size", "0")),
    ("batch-negative", lambda s, t: run_args(s, "--batch-size", "-5")),
    ("batch-text", lambda s, t: run_args(s, "--batch-size", "1; DROP")),
    ("batch-huge", lambda s, t: run_args(s, "--batch-size", "99999999999999999999999")),
    ("batch-too-big", lambda s, t: run_args(s, "--batch-size", "10000001")),
    ("workers-zero", lambda s, t: run_args(s, "--workers", "0")),
    ("workers-huge", lambda s, t: run_args(s, "--workers", "100000")),
    ("retries-negative", lambda s, t: run_args(s, "--max-retries", "-1")),
    ("log-level", lambda s, t: run_args(s, "--log-level", "'; rm -rf /")),
    ("on-conflict", lambda s, t: run_args(s, "--on-conflict", "replace")),
    ("unknown-option", lambda s, t: run_args(s, f"--password={SECRET}")),
    ("unknown-command", lambda s, t: ("drop-everything",)),
    ("status-missing", lambda s, t: ("status", "--target", t)),
    ("rejects-missing-job", lambda s, t: ("rejects", "--job", "-1", "--target", t)),
    ("rejects-bad-out", lambda s, t: ("rejects", "--job", "1", "--target", t, "--out", "x.exe")),
    ("generate-zero", lambda s, t: ("generate", "--rows", "0", "--out", t)),
    ("generate-huge", lambda s, t: ("generate", "--rows", "10000000000000", "--out", t)),
    (
        "generate-negative-seed",
        lambda s, t: ("generate", "--rows", "10", "--seed", "-1", "--out", t),
    ),
    ("generate-over-data", lambda s, t: ("generate", "--rows", "10", "--out", s)),
    ("demo-rows", lambda s, t: ("demo", "--rows", "-3")),
]
ENV_CASES = [
    ("env-batch", {"MIGRATION_BATCH_SIZE": "-1"}),
    ("env-workers", {"MAX_CONCURRENT_BATCHES": "lots"}),
    ("env-retries", {"MAX_RETRIES": "-2"}),
    ("env-log-level", {"LOG_LEVEL": "$(reboot)"}),
    ("env-target", {"DATABASE_URL": f"oracle://sys:{SECRET}@h/x"}),
    ("env-source", {"LEGACY_DATABASE_URL": f"postgresql://etl:{SECRET}@127.0.0.1:1/x"}),
]


def assert_one_clear_line(done: subprocess.CompletedProcess[str]) -> None:
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    assert SECRET not in output, output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr


@pytest.mark.parametrize(("name", "argv"), [(c[0], c[1]) for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_options(name: str, argv, legacy: str, tmp_path: Path) -> None:
    target = f"sqlite://{tmp_path / 'target.db'}"
    done = etl(*argv(legacy, target), cwd=tmp_path)
    assert_one_clear_line(done)
    # Refused before anything was written.
    assert not (tmp_path / "target.db").exists()


@pytest.mark.parametrize(("name", "env"), ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_hostile_environment(name: str, env: dict[str, str], legacy: str, tmp_path: Path) -> None:
    args = ("run", "--entity", "orders")
    if "LEGACY_DATABASE_URL" not in env:
        args = (*args, "--source", legacy)
    assert_one_clear_line(etl(*args, env=env, cwd=tmp_path))


def test_password_never_reaches_output_logs_or_ledger(pg_server, tmp_path: Path) -> None:
    """A full run between two password-protected databases, with debug logs and a failure."""
    names = [pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)]
    try:
        source, target = (pg_server.url(n) for n in names)
        password = pg_server.url(names[0]).split(":")[2].split("@")[0]
        assert password and password in source
        write_legacy(DatabaseUrl.parse(source, what="source"), 2_000, seed=4)
        env = {"LEGACY_DATABASE_URL": source, "DATABASE_URL": target, "LOG_LEVEL": "DEBUG"}
        done = etl("run", "--entity", "all", "--batch-size", "500", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        # A failing run too: its error lands in the ledger and in the output.
        with Target(DatabaseUrl.parse(target, what="t")) as t:
            t.execute(
                "ALTER TABLE migration_batches ADD CONSTRAINT no_done "
                "CHECK (status <> 'completed') NOT VALID"
            )
            t.commit()
        failed = etl(
            "run", "--entity", "orders", "--fresh", "--max-retries", "0", env=env, cwd=tmp_path
        )
        assert failed.returncode != 0
        outputs = [done.stdout, done.stderr, failed.stdout, failed.stderr]
        for command in (("status",), ("rejects", "--job", "3")):
            shown = etl(*command, env=env, cwd=tmp_path)
            assert shown.returncode == 0, shown.stderr
            outputs += [shown.stdout, shown.stderr]
        with Target(DatabaseUrl.parse(target, what="t")) as t:
            for table in ("migration_jobs", "migration_batches", "migration_errors"):
                rows = t.query(f"SELECT row_to_json(r)::text AS r FROM {table} r")
                outputs.append("\n".join(rows["r"]))
        ledger = outputs[-3]
        assert "127.0.0.1" in ledger and "***" in ledger  # the redacted URL is there
        assert "no_done" in outputs[-2]  # the failure is in the batch's ledger row
        for text in outputs:
            assert password not in text
    finally:
        for name in names:
            pg_server.drop_database(name)
