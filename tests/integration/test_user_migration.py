"""A migration of one's own (tests/library_migration.py), run end to end with the built-in
example's guarantees, into SQLite and into PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from columnar_etl.config import DatabaseUrl
from columnar_etl.target import Target
from tests.helpers import etl

MIGRATION = str(Path(__file__).parent.parent / "library_migration.py")

MEMBERS = [
    (1, " Ada Lovelace ", "2020-01-05", "active"),
    (2, "Bo", "2021-02-30", "active"),  # no such day: a transformation_error
    (3, "X", "2019-03-01", "active"),  # too short a name: a validation_error
    (4, "Old Member", "2010-01-01", "deleted"),  # filtered
    (5, "Grace Hopper", None, "active"),
    (7, "Alan Turing", "2018-07-07", None),
]
LOANS = [
    (10, 1, "SICP", "1.50"),
    (11, 5, "TAOCP", "0"),
    (12, 3, "Dune", "2.00"),  # its member was rejected: an orphan
    (13, 9, "Emma", "1.00"),  # no member 9 in the source: an orphan
    (14, 4, "Ulysses", "1.00"),  # its member was filtered: an orphan
    (15, 7, "Bad fee", "abc"),  # a transformation_error
    (16, 7, "Negative", "-1"),  # a validation_error
]
REJECTS = [
    ("15", "transformation_error", "fee: not a number"),
    ("16", "validation_error", "fee: negative"),
    ("2", "transformation_error", "joined: not a date"),
    ("3", "validation_error", "name: at least 2 characters"),
]


def _legacy(folder: Path) -> str:
    path = folder / "library.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE lib_members (member_no INTEGER PRIMARY KEY, full_name TEXT, "
            "joined TEXT, state TEXT)"
        )
        conn.execute(
            "CREATE TABLE lib_loans (loan_id INTEGER PRIMARY KEY, member_no INTEGER, "
            "title TEXT, fee TEXT)"
        )
        conn.executemany("INSERT INTO lib_members VALUES (?, ?, ?, ?)", MEMBERS)
        conn.executemany("INSERT INTO lib_loans VALUES (?, ?, ?, ?)", LOANS)
    return f"sqlite://{path}"


def _rows(url: DatabaseUrl, sql: str) -> list[tuple]:
    with Target(url) as t:
        return t.query(sql).rows()


def test_a_migration_of_one_s_own_runs_end_to_end(empty_url: DatabaseUrl, tmp_path: Path) -> None:
    source = _legacy(tmp_path)
    where = ("--migration", MIGRATION, "--target", empty_url.url)
    run = ("run", "--entity", "all", "--source", source, "--batch-size", "3", *where)
    done = etl(*run)
    assert done.returncode == 0, done.stderr

    # Members run first (loans reference them); each row ends in one place.
    jobs = _rows(
        empty_url,
        "SELECT entity, extracted, loaded, rejected, filtered, skipped_existing "
        "FROM migration_jobs ORDER BY id",
    )
    assert jobs == [("members", 6, 3, 2, 1, 0), ("loans", 7, 5, 2, 0, 0)]
    assert _rows(empty_url, "SELECT legacy_id, name FROM members ORDER BY legacy_id") == [
        ("1", "Ada Lovelace"),
        ("5", "Grace Hopper"),
        ("7", "Alan Turing"),
    ]
    # The reference is linked; the orphans keep a null link.
    links = _rows(
        empty_url,
        "SELECT l.legacy_id AS loan, m.legacy_id AS member FROM loans l "
        "LEFT JOIN members m ON m.id = l.member_id "
        "ORDER BY l.legacy_id",
    )
    assert links == [("10", "1"), ("11", "5"), ("12", None), ("13", None), ("14", None)]
    # Rejects keep their reason and their untouched source row.
    rejects = _rows(
        empty_url,
        "SELECT record_id, error_type, error_message, CAST(source_data AS TEXT) "
        "FROM migration_errors ORDER BY record_id",
    )
    assert [r[:3] for r in rejects] == REJECTS
    assert json.loads(rejects[2][3]) == {
        "member_no": 2,
        "full_name": "Bo",
        "joined": "2021-02-30",
        "state": "active",
    }

    # verify passes, with the orphans by reason; it needs the migration that ran.
    checked = etl("verify", "--json", "--source", source, *where)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    [orphans] = [c["figures"] for c in report["checks"] if c["name"] == "orphans"]
    assert (orphans["rows"], orphans["linked"], orphans["orphans"]) == (5, 2, 3)
    assert orphans["orphans_by_reason"] == {
        "referenced_rejected": 1,
        "referenced_not_in_source": 1,
        "referenced_not_loaded": 1,
    }
    builtin = etl("verify", "--target", empty_url.url)
    assert builtin.returncode == 2 and "members" in builtin.stderr, builtin.stderr

    # Rolling back members is refused while loans point at them; a second run changes nothing.
    refused = etl("rollback", "--job", "1", *where)
    assert refused.returncode == 1 and "2 loaded loans point at its members" in refused.stderr
    again = etl(*run)
    assert again.returncode == 0, again.stderr
    assert _rows(empty_url, "SELECT COUNT(*), CAST(SUM(loaded) AS BIGINT) FROM migration_jobs") == [
        (4, 8)
    ]

    # Tampering is found.
    with Target(empty_url) as t:
        t.execute("DELETE FROM loans WHERE legacy_id = '10'")
        t.commit()
    tampered = etl("verify", "--source", source, *where)
    assert tampered.returncode == 1, tampered.stdout


def test_the_python_call_returns_what_etl_run_json_prints(tmp_path: Path) -> None:
    """A notebook's or an orchestrator's call: the same options, the same answer."""
    from columnar_etl import migrate

    source = _legacy(tmp_path)
    printed = etl(
        "run", "--entity", "all", "--json", "--source", source, "--migration", MIGRATION,
        "--target", f"sqlite://{tmp_path / 'cli.db'}", "--batch-size", "3",
    )  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    returned = migrate(
        "all",
        source=source,
        target=f"sqlite://{tmp_path / 'api.db'}",
        migration=MIGRATION,
        batch_size=3,
    )
    assert returned == json.loads(printed.stdout)
    assert [job["counts"]["loaded"] for job in returned] == [3, 5]


#: The library migration with a source-side filter on members: deleted members are never read.
FILTERED_MIGRATION = """
import dataclasses

from tests.library_migration import MEMBERS, loans, members

members = dataclasses.replace(
    members,
    source=dataclasses.replace(
        MEMBERS,
        where="(state IS NULL OR state <> :gone) AND full_name <> :hostile",
        params={"gone": "deleted", "hostile": "x' OR 1=1; DROP TABLE lib_loans; --\\\\"},
    ),
)
ENTITIES = [members, loans]
"""


def test_a_source_filter_excludes_rows_before_they_are_read(
    empty_url: DatabaseUrl, tmp_path: Path
) -> None:
    """The reference's ``filters={"active": 1}``: rows the filter leaves out are never
    extracted (not counted as filtered), its values are bound, not pasted (a value that would
    end a string literal is only a value), and verify's source checks apply it too."""
    migration = tmp_path / "filtered.py"
    migration.write_text(FILTERED_MIGRATION)
    source = _legacy(tmp_path)
    where = ("--migration", str(migration), "--target", empty_url.url)
    done = etl("run", "--entity", "all", "--source", source, *where)
    assert done.returncode == 0, done.stderr
    jobs = _rows(
        empty_url,
        "SELECT entity, extracted, loaded, rejected, filtered FROM migration_jobs ORDER BY id",
    )
    assert jobs == [("members", 5, 3, 2, 0), ("loans", 7, 5, 2, 0)]
    checked = etl("verify", "--json", "--source", source, *where)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    [orphans] = [c["figures"] for c in report["checks"] if c["name"] == "orphans"]
    # Member 4 is outside the filter: for the migration it is not in the source.
    assert orphans["orphans_by_reason"]["referenced_not_in_source"] == 2
    with sqlite3.connect(source.removeprefix("sqlite://")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM lib_loans").fetchone() == (7,)
