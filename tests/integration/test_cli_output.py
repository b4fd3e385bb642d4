"""What ``etl`` prints for a person fits a 100-column terminal and reads like a CLI's help."""

from __future__ import annotations

import json
import re

import pytest
import typer._click as click
from typer.main import get_command

from columnar_etl.cli import app
from columnar_etl.config import DatabaseUrl
from columnar_etl.target import Target
from tests.helpers import etl, legacy_sqlite

WIDTH = 100


def _too_long(printed: str) -> list[str]:
    return [line for line in printed.splitlines() if len(line) > WIDTH]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A small legacy SQLite database migrated into an SQLite target under a long path (so the
    title and the verdict must wrap too); then one order deleted, so some checks fail."""
    folder = tmp_path_factory.mktemp("render") / ("a-folder-with-a-long-name-" * 3)
    folder.mkdir()
    source = legacy_sqlite(folder, 2_000, seed=3)
    target = f"sqlite://{folder / 'target.db'}"
    done = etl("run", "--entity", "all", "--source", source.url, "--target", target)
    assert done.returncode == 0, done.stderr
    with Target(DatabaseUrl.parse(target, what="target")) as t:
        t.execute("DELETE FROM orders WHERE id = (SELECT MIN(id) FROM orders)")
        t.commit()
    return source.url, target


def test_verify_fits_100_columns_and_json_keeps_every_figure(migrated: tuple[str, str]) -> None:
    source, target = migrated
    args = ("verify", "--source", source, "--target", target)
    human = etl(*args, env={"COLUMNS": str(WIDTH)})
    assert human.returncode == 1, human.stderr
    assert _too_long(human.stdout) == [], human.stdout
    assert re.search(r"^verify: failed \(\d+ checks, [1-9]\d* failed", human.stdout, re.M)
    for check in ("integrity", "row_count", "conservation", "source_rows", "orphans"):
        assert re.search(rf"^\s+{check}\s", human.stdout, re.M), check
    # The status column is as wide as its widest word shown, not as its colour's markup.
    [header] = [line for line in human.stdout.splitlines() if " status " in line]
    assert re.search(r" status {3,4}figures", header), header
    # What the table abridges, --json holds whole: every orphan's legacy id.
    report = json.loads(etl(*args, "--json", env={"COLUMNS": str(WIDTH)}).stdout)
    assert {tuple(c) for c in report["checks"]} == {
        ("name", "entity", "job_id", "status", "passed", "figures", "reason")
    }
    [orphans] = [c["figures"] for c in report["checks"] if c["name"] == "orphans"]
    assert len(orphans["orphan_legacy_ids"]) == orphans["orphans"] > 5
    assert "--json lists all" in human.stdout


def test_status_fits_100_columns_and_json_has_every_job(migrated: tuple[str, str]) -> None:
    _, target = migrated
    human = etl("status", "--target", target, env={"COLUMNS": str(WIDTH)})
    assert human.returncode == 0, human.stderr
    assert _too_long(human.stdout) == [], human.stdout
    rows = [line.split() for line in human.stdout.splitlines() if re.match(r"\s+\d+\s", line)]
    assert [row[1:4] for row in rows] == [
        ["customers", "completed", "100.0%"],
        ["products", "completed", "100.0%"],
        ["orders", "completed", "100.0%"],
    ]
    jobs = json.loads(etl("status", "--target", target, "--json").stdout)
    assert [(j["id"], j["entity"]) for j in jobs] == [
        (1, "customers"),
        (2, "products"),
        (3, "orders"),
    ]
    assert all(j["percent"] == 100.0 and j["batches_completed"] >= 1 for j in jobs)


@pytest.mark.parametrize("columns", ["80", "40"])
def test_a_narrow_screen_never_cuts_a_value_short(migrated: tuple[str, str], columns: str) -> None:
    """Narrower than a table, rich cut its numbers with an ellipsis (16538 as 165…) and
    wrapped headers a letter per line: the table keeps its width and the screen wraps."""
    source, target = migrated
    jobs = json.loads(etl("status", "--target", target, "--json").stdout)
    human = etl("status", "--target", target, env={"COLUMNS": columns})
    assert human.returncode == 0, human.stderr
    assert "…" not in human.stdout, human.stdout
    header = human.stdout.splitlines()[0].split()
    assert header[:3] == ["job", "entity", "status"] and "loaded" in header, human.stdout
    rows = [line.split() for line in human.stdout.splitlines() if re.match(r"\s+\d+\s", line)]
    at = header.index("loaded") + 1  # "batches" shows two words: "1 done"
    assert [(r[1], int(r[at])) for r in rows] == [(j["entity"], j["loaded"]) for j in jobs]
    report = etl("verify", "--source", source, "--target", target, env={"COLUMNS": columns})
    assert "…" not in report.stdout and "integrity" in report.stdout, report.stdout


def _commands() -> list[str]:
    group = get_command(app)
    return group.list_commands(click.Context(group))


@pytest.mark.parametrize("command", [(), *((name,) for name in _commands())], ids=str)
def test_help_uses_conventional_metavars(command: tuple[str, ...]) -> None:
    shown = etl(*command, "--help", env={"COLUMNS": str(WIDTH)})
    assert shown.returncode == 0, shown.stderr
    assert re.findall(r"<\w[\w ]*>", shown.stdout) == [], shown.stdout
    help_line = next(line for line in shown.stdout.splitlines() if "--help" in line)
    assert re.search(r"--help\s+Show this message", help_line), help_line
    if command == ("run",):  # the conventional names, where typer printed Python's
        for option, metavar in (("--source", "URL"), ("--batch-size", "INTEGER"),
                                ("--log-level", "TEXT"), ("--lock-timeout", "FLOAT")):  # fmt: skip
            assert re.search(rf"{option}\s+{metavar}\s", shown.stdout), option
