"""One clock per job: verdicts that depend on the time do not depend on the host's time zone,
follow the declared zone of the legacy timestamps, and stay the job's own when it resumes."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from columnar_etl.config import DatabaseUrl
from columnar_etl.target import Target
from tests.helpers import etl, legacy_sqlite, start_and_stop

#: Orders of the generated legacy database: 1,000 customers go with them.
ROWS = 5_000
HOST_ZONES = ("UTC", "Pacific/Kiritimati", "America/Los_Angeles")
CUSTOMERS = (
    "SELECT legacy_id, name, email, phone, address, status, created_at, updated_at FROM customers"
)
REJECTS = "SELECT record_id, error_type, error_message FROM migration_errors"
FUTURE = "created_at cannot be in the future"


def _wall_clock(moment: datetime) -> str:
    """``moment`` as a legacy timestamp: wall-clock text with no zone."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _plant(legacy: DatabaseUrl, created: dict[int, datetime]) -> None:
    """Make each customer of ``created`` valid in every other way, created at its time."""
    with sqlite3.connect(legacy.path) as conn:
        for customer_id, moment in created.items():
            conn.execute(
                "UPDATE customers SET customer_name = 'Clock Test', email_address = ?, "
                "phone_number = '5551234567', status_code = 'A', active = 1, "
                "created_date = ?, last_modified = NULL WHERE customer_id = ?",
                (f"clock{customer_id}@example.com", _wall_clock(moment), customer_id),
            )


def _run(legacy: DatabaseUrl, target: str, host_zone: str, *more: str) -> None:
    args = ("run", "--entity", "customers", "--source", str(legacy), "--target", target)
    done = etl(*args, "--batch-size", "100", *more, env={"TZ": host_zone})
    assert done.returncode == 0, done.stderr


def _outcome(target: DatabaseUrl) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The target's customers and rejects, sorted."""
    with Target(target) as t:
        return (
            t.query(CUSTOMERS).sort("legacy_id"),
            t.query(REJECTS).sort("record_id", "error_type", "error_message"),
        )


def _verdict(outcome: tuple[pl.DataFrame, pl.DataFrame], customer_id: int) -> str:
    """``loaded``, or the reject's message, of one customer."""
    rows, rejects = outcome
    if str(customer_id) in rows["legacy_id"].to_list():
        return "loaded"
    messages = rejects.filter(pl.col("record_id") == str(customer_id))["error_message"]
    return "; ".join(messages.to_list()) or "missing"


def _stored_clock(target: Path) -> list[tuple[str, str]]:
    """Each job's stored (as_of, source_timezone)."""
    with sqlite3.connect(target) as conn:
        rows = conn.execute("SELECT configuration FROM migration_jobs ORDER BY id").fetchall()
    return [(c["as_of"], c.get("source_timezone")) for c in (json.loads(r[0]) for r in rows)]


def test_the_host_time_zone_changes_no_verdict(tmp_path: Path) -> None:
    """Customers created 6 hours ago and in 6 hours (UTC wall-clock, the default source zone)
    are loaded and rejected alike under three host zones, 22 hours apart; the targets are equal."""
    legacy = legacy_sqlite(tmp_path, ROWS, seed=3)
    now = datetime.now(UTC)
    _plant(legacy, {1000: now - timedelta(hours=6), 999: now + timedelta(hours=6)})
    outcomes = []
    for zone in HOST_ZONES:
        path = tmp_path / f"{zone.replace('/', '_')}.db"
        target = DatabaseUrl.parse(f"sqlite://{path}", what="target")
        _run(legacy, target.url, zone)
        outcome = _outcome(target)
        assert _verdict(outcome, 1000) == "loaded", zone
        assert _verdict(outcome, 999) == FUTURE, zone
        outcomes.append(outcome)
    for rows, rejects in outcomes[1:]:
        assert rows.equals(outcomes[0][0]) and rejects.equals(outcomes[0][1])
    for zone in HOST_ZONES:
        [(as_of, source_zone)] = _stored_clock(tmp_path / f"{zone.replace('/', '_')}.db")
        assert datetime.fromisoformat(as_of).utcoffset() == timedelta(0) and source_zone == "UTC"


def test_the_verdict_follows_the_declared_source_time_zone(
    empty_url: DatabaseUrl, tmp_path: Path
) -> None:
    """Legacy timestamps written in Los Angeles: an hour ago there is loaded, an hour ahead
    there is in the future (though it is 7 hours ago in UTC), on a host in Kiritimati."""
    legacy = legacy_sqlite(tmp_path, ROWS, seed=3)
    there = datetime.now(ZoneInfo("America/Los_Angeles"))
    _plant(legacy, {1000: there - timedelta(hours=1), 999: there + timedelta(hours=1)})
    zone = ("--source-timezone", "America/Los_Angeles")
    _run(legacy, empty_url.url, "Pacific/Kiritimati", *zone)
    outcome = _outcome(empty_url)
    assert _verdict(outcome, 1000) == "loaded"
    assert _verdict(outcome, 999) == FUTURE
    # The stored value is the legacy wall-clock text, not shifted to another zone.
    created = outcome[0].filter(pl.col("legacy_id") == "1000")["created_at"].item()
    created = datetime.fromisoformat(created) if isinstance(created, str) else created
    assert created == (there - timedelta(hours=1)).replace(tzinfo=None, microsecond=0)
    with Target(empty_url) as t:
        stored = json.loads(t.scalar("SELECT CAST(configuration AS TEXT) FROM migration_jobs"))
    assert stored["source_timezone"] == "America/Los_Angeles"


def test_a_resumed_job_keeps_the_clock_it_was_created_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed mid-run, then resumed on a host in another zone after a customer's creation
    time has passed: the job's stored clock (UTC, unchanged) still finds it in the future."""
    legacy = legacy_sqlite(tmp_path, ROWS, seed=3)
    target = tmp_path / "target.db"
    args = ("run", "--entity", "customers", "--source", str(legacy), "--target",
            f"sqlite://{target}", "--batch-size", "50")  # fmt: skip
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    code, stderr = start_and_stop(args, target, 2, signal.SIGKILL)
    assert code == -signal.SIGKILL, stderr
    [created] = _stored_clock(target)
    # The last customer (a batch not committed yet) is created after the job's clock was read
    # and before the resumed run starts: a clock read on resume would find it in the past.
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    _plant(legacy, {1000: moment})
    time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()) + 1.5)
    _run(legacy, f"sqlite://{target}", "UTC")
    assert _verdict(_outcome(DatabaseUrl.parse(f"sqlite://{target}", what="t")), 1000) == FUTURE
    assert _stored_clock(target) == [created]
    assert datetime.fromisoformat(created[0]).utcoffset() == timedelta(0)


def test_an_unknown_source_time_zone_is_one_line_and_exit_2(tmp_path: Path) -> None:
    for option, env in (
        (("--source-timezone", "Mars/Olympus"), {}),
        ((), {"LEGACY_TIMEZONE": "../x"}),
    ):
        done = etl("run", "--entity", "customers", "--source", f"sqlite://{tmp_path}/l.db",
                   "--target", f"sqlite://{tmp_path}/t.db", *option, env=env)  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and "IANA time zone" in done.stderr, done.stderr
    assert not (tmp_path / "t.db").exists()
