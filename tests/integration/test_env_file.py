"""A .env file in the working directory configures a run, as the reference's migration.env."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pgserver import ETL_PASSWORD, PostgresServer
from tests.helpers import etl, legacy_sqlite

ROWS = 1_000


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(legacy_sqlite(tmp_path_factory.mktemp("env_file"), ROWS, seed=11))


def _batches(target: Path) -> int:
    with sqlite3.connect(target) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM migration_batches").fetchone()[0])


def _write_env(folder: Path, legacy: str, target: str, **more: str) -> None:
    lines = [
        "# cp migration.env .env",
        f"LEGACY_DATABASE_URL={legacy}",
        f"DATABASE_URL='{target}'",
        "MIGRATION_BATCH_SIZE=100",
        "MAX_CONCURRENT_BATCHES=2",
        "MAX_RETRIES=1",
        "ENABLE_PROGRESS_TRACKING=false  # no progress lines",
        "LOG_LEVEL=INFO",
        *(f"{name}={value}" for name, value in more.items()),
    ]
    (folder / ".env").write_text("\n".join(lines) + "\n")


def test_a_dotenv_file_drives_a_run(legacy: str, tmp_path: Path) -> None:
    target = tmp_path / "target.db"
    _write_env(tmp_path, legacy, f"sqlite://{target}")
    run = etl("run", "--entity", "orders", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert _batches(target) == ROWS // 100  # MIGRATION_BATCH_SIZE
    assert "rows/s" not in run.stderr  # ENABLE_PROGRESS_TRACKING=false
    assert " INFO " in run.stderr  # LOG_LEVEL=INFO
    status = etl("status", cwd=tmp_path)  # DATABASE_URL serves every command
    assert status.returncode == 0 and "orders" in status.stdout, status.stderr


def test_the_environment_wins_over_the_file(legacy: str, tmp_path: Path) -> None:
    target = tmp_path / "target.db"
    _write_env(tmp_path, legacy, f"sqlite://{target}")
    env = {"MIGRATION_BATCH_SIZE": "500", "ENABLE_PROGRESS_TRACKING": "true"}
    run = etl("run", "--entity", "orders", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert _batches(target) == ROWS // 500
    assert "rows/s" in run.stderr


def test_a_malformed_line_is_one_line_and_exit_2(legacy: str, tmp_path: Path) -> None:
    _write_env(tmp_path, legacy, "sqlite:///unused.db")
    with (tmp_path / ".env").open("a") as env:
        env.write(f"postgresql://etl:{ETL_PASSWORD}@host/db\n")  # a URL pasted without a name
    run = etl("run", "--entity", "orders", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.splitlines() == ["error: .env line 9: expected NAME=VALUE"], run.stderr
    assert ETL_PASSWORD not in run.stdout + run.stderr


def test_a_password_from_the_file_is_never_printed(
    legacy: str, tmp_path: Path, pg_server: PostgresServer, pg_database: str
) -> None:
    _write_env(tmp_path, legacy, pg_server.url(pg_database))
    run = etl("run", "--entity", "orders", cwd=tmp_path, env={"LOG_LEVEL": "DEBUG"})
    assert run.returncode == 0, run.stderr
    status = etl("status", cwd=tmp_path)
    # The server refuses an unknown database, and the message names the URL.
    _write_env(tmp_path, legacy, pg_server.url("no_such_database"))
    refused = etl("run", "--entity", "orders", cwd=tmp_path)
    assert refused.returncode != 0 and "***" in refused.stderr, refused.stderr
    for out in (run, status, refused):
        assert ETL_PASSWORD not in out.stdout + out.stderr
