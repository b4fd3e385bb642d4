"""A migration of one's own (tests/library_migration.py), run end to end with the built-in
example's guarantees, into SQLite and into PostgreSQL."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
from pathlib import Path

import pytest

from columnar_etl.config import DatabaseUrl
from columnar_etl.target import Target
from tests.helpers import etl, start_and_stop

MIGRATION = str(Path(__file__).parent.parent / "library_migration.py")

MEMBERS = [
    (1, " Ada Lovelace ", "2020-01-05", "active"),
    (2, "Bo", "2021-02-30", "active"),  # no such day: a transformation_error
    (3, "X", "2019-03-01", "active"),  # too short a name: a validation_error
    (4, "Old Member", "2010-01-01", "deleted"),  # filtered
    (5, "Grace Hopper", None, "active"),
    (7, "Alan Turing", "2018-07-07", None),
]
BOOKS = [
    ("978-0262510875", " SICP ", "1985"),
    ("978-0201896831", "TAOCP", "1968"),
    ("978-0441013593", "Dune", "1965"),
    ("978-1853260001", "Emma", "18x5"),  # not a year: a transformation_error
    ("978-0141182803", "  ", "1922"),  # no title: a validation_error
    # Text keys the source orders by its own collation, whatever Python would say.
    ("b-lower", "Lowercase", None),
    ("B-upper", "Uppercase", None),
    ("é-accent", "Accented", "2001"),
]
SICP, TAOCP, DUNE, EMMA, ULYSSES = (book[0] for book in BOOKS[:5])
LOANS = [  # keyed by (member_no, isbn, loaned_on)
    (1, SICP, "2024-01-01", "1.50"),
    (5, TAOCP, "2024-01-02", "0"),
    (3, DUNE, "2024-01-03", "2.00"),  # its member was rejected: an orphan
    (9, EMMA, "2024-01-04", "1.00"),  # no member 9 in the source, its book rejected
    (4, ULYSSES, "2024-01-05", "1.00"),  # its member was filtered, its book rejected
    (7, SICP, "2024-01-06", "abc"),  # a transformation_error
    (7, TAOCP, "2024-01-07", "-1"),  # a validation_error
    (1, SICP, "2024-02-01", "0.50"),  # the same member and book, another day
    (1, "000-unknown", "2024-03-01", "0"),  # no such book in the source
]
VISITS = [  # no key at all: a repeated row is two visits
    (1, "2024-01-01", "hello"),
    (1, "2024-01-01", "hello"),
    (5, "2024-03-01", None),
    (2, "bad-date", "x"),  # a transformation_error
    (9, "2024-01-01", "ghost"),
]


def _loan_id(member_no: int, isbn: str, loaned_on: str) -> str:
    """A composite key as rejects (and this migration's legacy_id) name it."""
    key = {"member_no": member_no, "isbn": isbn, "loaned_on": loaned_on}
    return json.dumps(key, separators=(",", ":"), ensure_ascii=False)


REJECTS = sorted(
    [
        (_loan_id(7, SICP, "2024-01-06"), "transformation_error", "fee: not a number"),
        (_loan_id(7, TAOCP, "2024-01-07"), "validation_error", "fee: negative"),
        ("2", "transformation_error", "joined: not a date"),
        ("3", "validation_error", "name: at least 2 characters"),
        (EMMA, "transformation_error", "published: not a year"),
        (ULYSSES, "validation_error", "title: empty"),
        ("(no key)", "transformation_error", "visited: not a date"),
    ]
)
#: entity, extracted, loaded, rejected, filtered, skipped_existing: each row in one place.
JOBS = [
    ("members", 6, 3, 2, 1, 0),
    ("books", 8, 6, 2, 0, 0),
    ("loans", 9, 7, 2, 0, 0),
    ("visits", 5, 4, 1, 0, 0),
]


def _legacy(folder: Path) -> str:
    path = folder / "library.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE lib_members (member_no INTEGER PRIMARY KEY, full_name TEXT, "
            "joined TEXT, state TEXT)"
        )
        conn.execute("CREATE TABLE lib_books (isbn TEXT PRIMARY KEY, title TEXT, published TEXT)")
        conn.execute(
            "CREATE TABLE lib_loans (member_no INTEGER, isbn TEXT, loaned_on TEXT, fee TEXT, "
            "PRIMARY KEY (member_no, isbn, loaned_on))"
        )
        conn.execute("CREATE TABLE lib_visits (member_no INTEGER, visited TEXT, note TEXT)")
        conn.executemany("INSERT INTO lib_members VALUES (?, ?, ?, ?)", MEMBERS)
        conn.executemany("INSERT INTO lib_books VALUES (?, ?, ?)", BOOKS)
        conn.executemany("INSERT INTO lib_loans VALUES (?, ?, ?, ?)", LOANS)
        conn.executemany("INSERT INTO lib_visits VALUES (?, ?, ?)", VISITS)
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

    # Referenced entities run first; each row ends in one place, whatever the key's shape.
    jobs = _rows(
        empty_url,
        "SELECT entity, extracted, loaded, rejected, filtered, skipped_existing "
        "FROM migration_jobs ORDER BY id",
    )
    assert jobs == JOBS
    # Batches of 3 are key ranges: text and composite keys cut into several.
    batches = _rows(
        empty_url,
        "SELECT j.entity, COUNT(*) FROM migration_batches b "
        "JOIN migration_jobs j ON j.id = b.migration_job_id GROUP BY j.entity ORDER BY j.entity",
    )
    assert batches == [("books", 3), ("loans", 3), ("members", 2), ("visits", 1)]
    assert _rows(empty_url, "SELECT legacy_id, name FROM members ORDER BY legacy_id") == [
        ("1", "Ada Lovelace"),
        ("5", "Grace Hopper"),
        ("7", "Alan Turing"),
    ]
    books = _rows(empty_url, "SELECT legacy_id, title, published FROM books")
    assert sorted(books) == sorted(
        [
            (SICP, "SICP", 1985),
            (TAOCP, "TAOCP", 1968),
            (DUNE, "Dune", 1965),
            ("b-lower", "Lowercase", None),
            ("B-upper", "Uppercase", None),
            ("é-accent", "Accented", 2001),
        ]
    )
    # Both references are linked; the orphans keep a null link.
    links = _rows(
        empty_url,
        "SELECT l.member_legacy_id, l.isbn, l.loaned_on, m.legacy_id AS m, b.legacy_id AS b "
        "FROM loans l "
        "LEFT JOIN members m ON m.id = l.member_id LEFT JOIN books b ON b.id = l.book_id",
    )
    assert sorted(links, key=str) == sorted(
        [
            ("1", SICP, "2024-01-01", "1", SICP),
            ("5", TAOCP, "2024-01-02", "5", TAOCP),
            ("3", DUNE, "2024-01-03", None, DUNE),
            ("9", EMMA, "2024-01-04", None, None),
            ("4", ULYSSES, "2024-01-05", None, None),
            ("1", SICP, "2024-02-01", "1", SICP),
            ("1", "000-unknown", "2024-03-01", "1", None),
        ],
        key=str,
    )
    # The keyless log keeps its repeated row: two visits.
    visits = _rows(
        empty_url,
        "SELECT v.member_legacy_id, v.note, m.legacy_id AS m FROM visits v "
        "LEFT JOIN members m ON m.id = v.member_id",
    )
    assert sorted(visits, key=str) == sorted(
        [("1", "hello", "1"), ("1", "hello", "1"), ("5", None, "5"), ("9", "ghost", None)],
        key=str,
    )
    # Rejects keep their reason and their untouched source row; a composite key is named
    # by its columns.
    rejects = _rows(
        empty_url,
        "SELECT record_id, error_type, error_message, CAST(source_data AS TEXT) "
        "FROM migration_errors ORDER BY record_id",
    )
    assert sorted(r[:3] for r in rejects) == REJECTS
    by_id = {r[0]: json.loads(r[3]) for r in rejects}
    assert by_id["2"] == {
        "member_no": 2,
        "full_name": "Bo",
        "joined": "2021-02-30",
        "state": "active",
    }
    assert by_id["(no key)"] == {"member_no": 2, "visited": "bad-date", "note": "x"}
    loan = by_id[_loan_id(7, SICP, "2024-01-06")]
    assert loan == {"member_no": 7, "isbn": SICP, "loaned_on": "2024-01-06", "fee": "abc"}

    # verify passes, with the orphans by reason; it needs the migration that ran.
    checked = etl("verify", "--json", "--source", source, *where)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    orphans = {
        c["figures"]["reference"]: (c["figures"]["linked"], c["figures"]["orphans_by_reason"])
        for c in report["checks"]
        if c["name"] == "orphans"
    }
    member, book = "members.legacy_id", "books.legacy_id"
    assert orphans == {
        f"loans.member_legacy_id -> {member}": (4, _reasons(rejected=1, absent=1, unloaded=1)),
        f"loans.isbn -> {book}": (4, _reasons(rejected=2, absent=1, unloaded=0)),
        f"visits.member_legacy_id -> {member}": (3, _reasons(rejected=0, absent=1, unloaded=0)),
    }
    builtin = etl("verify", "--target", empty_url.url)
    assert builtin.returncode == 2 and "members" in builtin.stderr, builtin.stderr

    # Rolling back members is refused while loans point at them; a second run changes nothing.
    refused = etl("rollback", "--job", "1", *where)
    assert refused.returncode == 1 and "loaded loans point at its members" in refused.stderr
    again = etl(*run)
    assert again.returncode == 0, again.stderr
    second = _rows(
        empty_url,
        "SELECT entity, extracted, loaded, rejected, skipped_existing FROM migration_jobs "
        "WHERE id > 4 ORDER BY id",
    )
    # What was loaded is already there; the keyless log too (its rows have not changed).
    assert second == [
        (e, extracted, 0, rejected, loaded) for e, extracted, loaded, rejected, *_ in JOBS
    ]

    # Tampering is found: a loaded row gone; a source row added inside a text key's range.
    with Target(empty_url) as t:
        t.execute("DELETE FROM loans WHERE isbn = ?", (TAOCP,))
        t.commit()
    tampered = etl("verify", "--source", source, *where)
    assert tampered.returncode == 1, tampered.stdout
    with sqlite3.connect(source.removeprefix("sqlite://")) as conn:
        conn.execute("INSERT INTO lib_books VALUES ('978-0262510876', 'SICP 2', '1996')")
    added = etl("verify", "--json", "--source", source, *where)
    [books] = [
        c["figures"]
        for c in json.loads(added.stdout)["checks"]
        if c["name"] == "source_rows" and c["entity"] == "books" and c["status"] == "failed"
    ]
    assert [b["rows_now"] - b["rows_then"] for b in books["changed_batches"]] == [1]

    # The keyless log cannot be matched row by row: changed since, it is refused, not doubled.
    with sqlite3.connect(source.removeprefix("sqlite://")) as conn:
        conn.execute("INSERT INTO lib_visits VALUES (5, '2024-04-01', 'new')")
    refused = etl("run", "--entity", "visits", "--source", source, *where)
    assert refused.returncode == 1, refused.stderr
    assert "visits has no key, and job 4 loaded it from rows that have changed" in refused.stderr
    assert _rows(empty_url, "SELECT COUNT(*) FROM visits") == [(4,)]


def _reasons(rejected: int, absent: int, unloaded: int) -> dict[str, int]:
    return {
        "referenced_rejected": rejected,
        "referenced_not_in_source": absent,
        "referenced_not_loaded": unloaded,
    }


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
    assert [job["counts"]["loaded"] for job in returned] == [job[2] for job in JOBS]


#: The library migration with a source-side filter on members: deleted members are never read.
FILTERED_MIGRATION = """
import dataclasses

from tests.library_migration import MEMBERS, books, loans, members

members = dataclasses.replace(
    members,
    source=dataclasses.replace(
        MEMBERS,
        where="(state IS NULL OR state <> :gone) AND full_name <> :hostile",
        params={"gone": "deleted", "hostile": "x' OR 1=1; DROP TABLE lib_loans; --\\\\"},
    ),
)
ENTITIES = [members, books, loans]
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
    assert jobs == [("members", 5, 3, 2, 0), ("books", 8, 6, 2, 0), ("loans", 9, 7, 2, 0)]
    checked = etl("verify", "--json", "--source", source, *where)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    [orphans] = [
        c["figures"]
        for c in report["checks"]
        if c["name"] == "orphans" and c["figures"]["reference"].endswith("members.legacy_id")
    ]
    # Member 4 is outside the filter: for the migration it is not in the source.
    assert orphans["orphans_by_reason"]["referenced_not_in_source"] == 2
    with sqlite3.connect(source.removeprefix("sqlite://")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM lib_loans").fetchone() == (len(LOANS),)


def _big_legacy(folder: Path, seed: int = 7) -> str:
    """The library at a size where a run takes many batches: text keys of mixed case and
    script, composite keys, a keyless log, with dirty values sprinkled in."""
    rng = random.Random(seed)
    members = [
        (n, f"Member {n}", "2020-02-30" if n % 97 == 0 else "2020-01-01", None)
        for n in range(1, 1501)
    ]
    letters = "abcXYZéß"
    isbns = sorted({"".join(rng.choice(letters) for _ in range(6)) for _ in range(1200)})
    books = [
        (isbn, "" if i % 89 == 0 else f"Title {i}", str(1900 + i % 120))
        for i, isbn in enumerate(isbns)
    ]
    loans = {
        (rng.randint(1, 1600), rng.choice(isbns), f"2024-{rng.randint(1, 12):02}-01"): None
        for _ in range(4000)
    }
    loan_rows = [(*key, "-1" if i % 71 == 0 else "1.00") for i, key in enumerate(loans)]
    visits = [
        (rng.randint(1, 1600), "2024-01-01", rng.choice(["a", "b", None])) for _ in range(900)
    ]
    path = folder / "big_library.db"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE lib_members (member_no INTEGER PRIMARY KEY, full_name TEXT, "
            "joined TEXT, state TEXT)"
        )
        conn.execute("CREATE TABLE lib_books (isbn TEXT PRIMARY KEY, title TEXT, published TEXT)")
        conn.execute(
            "CREATE TABLE lib_loans (member_no INTEGER, isbn TEXT, loaned_on TEXT, fee TEXT, "
            "PRIMARY KEY (member_no, isbn, loaned_on))"
        )
        conn.execute("CREATE TABLE lib_visits (member_no INTEGER, visited TEXT, note TEXT)")
        conn.executemany("INSERT INTO lib_members VALUES (?, ?, ?, ?)", members)
        conn.executemany("INSERT INTO lib_books VALUES (?, ?, ?)", books)
        conn.executemany("INSERT INTO lib_loans VALUES (?, ?, ?, ?)", loan_rows)
        conn.executemany("INSERT INTO lib_visits VALUES (?, ?, ?)", visits)
    return f"sqlite://{path}"


#: What a run leaves, besides ids: every table's rows, the rejects, the jobs' counts.
OUTCOME = (
    "SELECT legacy_id, name, joined_at FROM members",
    "SELECT legacy_id, title, published FROM books",
    "SELECT l.legacy_id, l.fee, m.legacy_id, b.legacy_id FROM loans l "
    "LEFT JOIN members m ON m.id = l.member_id LEFT JOIN books b ON b.id = l.book_id",
    "SELECT v.member_legacy_id, v.visited_on, v.note, m.legacy_id FROM visits v "
    "LEFT JOIN members m ON m.id = v.member_id",
    # A rerun of --entity all runs the entities that had completed again (as new jobs, which
    # load nothing and reject the same rows again): compared as sets, and the rows loaded.
    "SELECT DISTINCT record_id, error_type, error_message FROM migration_errors",
    "SELECT entity, SUM(loaded) FROM migration_jobs GROUP BY entity",
)


def _outcome(path: Path) -> list[list[tuple]]:
    with sqlite3.connect(path) as conn:
        return [sorted(conn.execute(sql).fetchall(), key=repr) for sql in OUTCOME]


def test_kill_9_mid_run_then_rerun_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    """Text, composite and keyless keys resume exactly: killed at random points, the rerun
    ends equal to one uninterrupted run, and a run after that changes nothing."""
    source = _big_legacy(tmp_path)

    def args(target: Path) -> tuple[str, ...]:
        return ("run", "--entity", "all", "--source", source, "--migration", MIGRATION,
                "--target", f"sqlite://{target}", "--batch-size", "100")  # fmt: skip

    clean = tmp_path / "clean.db"
    assert etl(*args(clean)).returncode == 0
    killed = tmp_path / "killed.db"
    for after in (3, 20, 35):  # into members, books and loans
        code, _ = start_and_stop(args(killed), killed, after, signal.SIGKILL)
        assert code == -signal.SIGKILL
    assert etl(*args(killed)).returncode == 0
    assert _outcome(killed) == _outcome(clean)
    with sqlite3.connect(killed) as conn:
        duplicates = "SELECT COUNT(*) - COUNT(DISTINCT legacy_id) FROM loans"
        assert conn.execute(duplicates).fetchone() == (0,)
    verified = etl(
        "verify", "--source", source, "--migration", MIGRATION, "--target", f"sqlite://{killed}"
    )
    assert verified.returncode == 0, verified.stdout
    again = etl(*args(killed))
    assert again.returncode == 0 and _outcome(killed)[:5] == _outcome(clean)[:5]


#: The library's books, read from a table in another schema of a PostgreSQL source.
QUALIFIED_MIGRATION = """
import dataclasses

from tests.library_migration import BOOKS, books

books = dataclasses.replace(books, source=dataclasses.replace(BOOKS, table="legacy.lib_books"))
ENTITIES = [books]
"""


def test_a_schema_qualified_source_table_with_a_text_key(pg_url: str, tmp_path: Path) -> None:
    """``legacy.lib_books`` in a PostgreSQL source: found in its schema (not the search
    path's, which holds a decoy of the same name), planned and verified by its text key."""
    with Target(DatabaseUrl.parse(pg_url, what="test")) as t:
        t.execute("CREATE SCHEMA legacy")
        for table in ("legacy.lib_books", "public.lib_books"):
            t.execute(f"CREATE TABLE {table} (isbn text PRIMARY KEY, title text, published text)")
        for book in BOOKS:
            t.execute("INSERT INTO legacy.lib_books VALUES (?, ?, ?)", book)
        t.execute("INSERT INTO public.lib_books VALUES ('decoy', 'Decoy', '2000')")
        t.commit()
    migration = tmp_path / "qualified.py"
    migration.write_text(QUALIFIED_MIGRATION)
    target = tmp_path / "target.db"
    where = ("--source", pg_url, "--migration", str(migration), "--target", f"sqlite://{target}")
    done = etl("run", "--entity", "books", "--batch-size", "3", *where)
    assert done.returncode == 0, done.stderr
    loaded = _rows(
        DatabaseUrl.parse(f"sqlite://{target}", what="test"), "SELECT legacy_id FROM books"
    )
    assert sorted(isbn for (isbn,) in loaded) == sorted(
        isbn for isbn, title, _ in BOOKS if title.strip() and isbn != EMMA
    )
    checked = etl("verify", *where)
    assert checked.returncode == 0, checked.stdout + checked.stderr


#: An identity copy, as ``etl init`` writes one: source columns keep their names (``id``
#: among them, so the table's own key is ``etl_id``), a foreign key stays the link itself
#: (``sets=None``), and a column connectorx would not carry exactly is read as text.
IDENTITY_MIGRATION = """
import pandera.polars as pa
import polars as pl

from columnar_etl import FILTERED, TRANSFORM_ERRORS, Entity, Reference, SourceSpec, carry_row_id

PEOPLE = SourceSpec("people", "id", {"id": pl.Int64, "name": pl.String})
PETS = SourceSpec(
    "pets",
    "id",
    {"id": pl.Int64, "owner_id": pl.Int64, "weight": pl.String},
    read_as={"weight": "CAST({} AS TEXT)"},
)


def copy(spec):
    def transform(lf):
        return lf.select(
            carry_row_id(),
            *spec.columns,
            spec.record_id().alias("legacy_id"),
            **{FILTERED: pl.lit(False), TRANSFORM_ERRORS: pl.lit(None, pl.String)},
        )
    return transform


def contract(columns):
    return lambda as_of: pa.DataFrameSchema(
        {"legacy_id": pa.Column(pl.String)}
        | {name: pa.Column(dtype, nullable=True) for name, dtype in columns.items()}
    )


people = Entity("people", PEOPLE, copy(PEOPLE), contract(PEOPLE.schema), "people",
                surrogate_key="etl_id")
pets = Entity("pets", PETS, copy(PETS), contract(PETS.schema), "pets", surrogate_key="etl_id",
              references=(Reference("owner_id", to="people.id"),))
"""


def test_an_identity_copy_keeps_ids_and_foreign_keys_as_they_are(
    empty_url: DatabaseUrl, tmp_path: Path
) -> None:
    legacy = tmp_path / "pets.db"
    with sqlite3.connect(legacy) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("CREATE TABLE pets (id INTEGER PRIMARY KEY, owner_id INTEGER, weight REAL)")
        conn.executemany("INSERT INTO people VALUES (?, ?)", [(1, "Ann"), (2, "Bob")])
        pets = [(10, 1, 4.25), (11, 2, 0.1), (12, 3, None), (13, None, 7.0)]
        conn.executemany("INSERT INTO pets VALUES (?, ?, ?)", pets)
    migration = tmp_path / "identity.py"
    migration.write_text(IDENTITY_MIGRATION)
    where = ("--source", f"sqlite://{legacy}", "--migration", str(migration))
    done = etl("run", "--entity", "all", *where, "--target", empty_url.url)
    assert done.returncode == 0, done.stderr
    rows = _rows(empty_url, "SELECT id, owner_id, weight FROM pets ORDER BY id")
    assert rows == [(10, 1, "4.25"), (11, 2, "0.1"), (12, 3, None), (13, None, "7.0")]
    report = json.loads(etl("verify", "--json", *where, "--target", empty_url.url).stdout)
    assert report["passed"], report
    [orphans] = [c["figures"] for c in report["checks"] if c["name"] == "orphans"]
    # Owner 3 is nowhere; a pet without an owner points nowhere and is no orphan.
    assert (orphans["rows"], orphans["linked"], orphans["orphans"]) == (3, 2, 1)
    assert orphans["orphan_legacy_ids"] == ["12"]
    refused = etl(
        "rollback", "--job", "1", "--migration", str(migration), "--target", empty_url.url
    )
    assert refused.returncode == 1 and "2 loaded pets point at its people" in refused.stderr


#: A column of a type no rule carries (a composite type of the source's own).
UNCARRIED_MIGRATION = """
import dataclasses

from tests.library_migration import BOOKS, books

books = dataclasses.replace(books, source=dataclasses.replace(BOOKS, table="odd_books"))
ENTITIES = [books]
"""


def test_a_type_the_tool_cannot_carry_is_refused_before_loading(
    pg_url: str, tmp_path: Path
) -> None:
    with Target(DatabaseUrl.parse(pg_url, what="test")) as t:
        t.execute("CREATE TYPE edition AS (year int, printing int)")
        t.execute("CREATE TABLE odd_books (isbn text PRIMARY KEY, title edition, published text)")
        t.execute("INSERT INTO odd_books VALUES ('1', ROW(1999, 2), '1999')")
        t.commit()
    migration = tmp_path / "uncarried.py"
    migration.write_text(UNCARRIED_MIGRATION)
    target = tmp_path / "target.db"
    done = etl(
        "run", "--entity", "books", "--source", pg_url, "--migration", str(migration),
        "--target", f"sqlite://{target}",
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "source table 'odd_books', column 'title'" in line and "edition" in line, line
    assert not target.exists()  # refused before the target was even opened


BROKEN_CONTRACT = """
import dataclasses

import pandera.polars as pa
import polars as pl

from tests.library_migration import members, members_contract


def contract(as_of):
    columns = dict(members_contract(as_of).columns)
    columns[{column!r}] = pa.Column({dtype}, nullable=True)
    return pa.DataFrameSchema(columns)


ENTITIES = [dataclasses.replace(members, contract=contract)]
"""


@pytest.mark.parametrize(
    ("column", "dtype", "said"),
    [
        ("joined_at", "pl.Int64", "joined_at: dtype('Int64'), got Datetime"),
        ("joined_on", "pl.Date", "the contract's columns 'joined_on' are not in the transform's"),
    ],
)
def test_a_contract_the_transform_cannot_meet_stops_before_any_table(
    tmp_path: Path, column: str, dtype: str, said: str
) -> None:
    """Found on no rows, before the target table is made from the contract (which later
    runs then refused as not declared), once, not after retries, naming the column."""
    source = _legacy(tmp_path)
    migration = tmp_path / "broken.py"
    migration.write_text(BROKEN_CONTRACT.format(column=column, dtype=dtype))
    target = f"sqlite://{tmp_path / 'target.db'}"
    where = ("--migration", str(migration), "--source", source, "--target", target)
    for dry in ((), ("--dry-run",)):
        done = etl("run", "--entity", "members", *where, *dry)
        assert done.returncode == 1, done.stdout + done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith("error: members: ") and said in line, line
    assert not (tmp_path / "target.db").exists()
