"""The migration ``etl init`` writes, from catalogs stated by hand: names, keys, order, and
Python that loads and that ruff leaves as it is."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from columnar_etl.introspect import ForeignKey, SourceColumn, SourceIndex, SourceTable
from columnar_etl.migration import load_migration
from columnar_etl.scaffold import choose_key, describe, plan, py_string, render, sql_name
from columnar_etl.typemap import ColumnType, carry, sqlite_type


def column(name: str, declared: str = "INTEGER", not_null: bool = False) -> SourceColumn:
    """An SQLite column declared ``declared``."""
    typed = sqlite_type(declared)
    return SourceColumn(name, typed, carry("sqlite", typed), not_null)


def table(
    name: str,
    columns: list[SourceColumn],
    indexes: tuple[SourceIndex, ...] = (),
    foreign_keys: tuple[ForeignKey, ...] = (),
    rows: int | None = 5,
) -> SourceTable:
    return SourceTable(name, tuple(columns), indexes, foreign_keys, rows)


def pk(*columns: str) -> SourceIndex:
    return SourceIndex("pk", "primary", columns)


def unique(*columns: str) -> SourceIndex:
    return SourceIndex("u_" + "_".join(columns), "unique", columns)


#: The project's ruff rules; a line a source name alone makes too long is left so by ruff
#: format too (it cannot cut a string), so E501 is checked where names are of usual lengths.
RULES = "E,F,W,I,B,UP,SIM,RUF"


def written(tmp_path: Path, tables: list[SourceTable], name: str = "m", ignore: str = "") -> Path:
    """The migration of ``tables`` written into ``tmp_path/name``, checked by ruff."""
    folder = tmp_path / name
    folder.mkdir()
    (folder / "migration.py").write_text(render(plan(tables), "SQLite"), encoding="utf-8")
    ruff = shutil.which("ruff")
    assert ruff, "ruff is a dev dependency"
    ignored = ["--ignore", ignore] if ignore else []
    for args in (["check", "--select", RULES, *ignored], ["format", "--check"]):
        done = subprocess.run(
            [ruff, *args, "--isolated", "."], capture_output=True, text=True, cwd=folder
        )
        assert done.returncode == 0, done.stdout + done.stderr
    return folder


ODD = [
    'He said "hi"',
    "it's",
    "back\\slash",
    "new\nline",
    "Zoë 🦀",
    "select",
    "1st",
    "legacy_id",
    "_private",
    "Été",
    "ete",
    "x" * 80,
    "tab\there",
    "`tick`",
]


def test_odd_names_give_plain_sql_names_and_python_ruff_leaves_alone(tmp_path: Path) -> None:
    odd = table("Odd \"Table\" 'x'", [column("id"), *(column(n, "TEXT") for n in ODD)], (pk("id"),))
    other = table("select", [column("n", "INTEGER", not_null=True)], (unique("n"),))
    folder = written(tmp_path, [odd, other], ignore="E501")
    long = table("t" * 50, [column("c" * 50, "numeric(10,2)"), column("x" * 50)], (pk("x" * 50),))
    written(tmp_path, [long], "long")
    migration = load_migration(str(folder))
    entities = {e.name: e for e in migration.entities}
    assert set(entities) == {"odd_table_x", "select_"}
    loaded = entities["odd_table_x"]
    assert loaded.source.table == "Odd \"Table\" 'x'"
    assert loaded.source.columns == ("id", *ODD)
    # The key column is the record key and the primary key: no legacy_id, no generated key.
    assert (loaded.record_key, loaded.surrogate_key, loaded.primary_key) == ("id", None, "id")
    assert loaded.target_columns == (
        "id",
        "he_said_hi",
        "it_s",
        "back_slash",
        "new_line",
        "zoe",
        "select_",
        "c_1st",
        "legacy_id_2",
        "private",
        "ete",
        "ete_2",
        "x" * 54 + "_9a163175",  # cut to 63 characters, a hash of the whole kept
        "tab_here",
        "tick",
    )
    assert entities["select_"].source.key == "n"


@given(st.text())
def test_a_python_string_literal_reads_back_the_same(text: str) -> None:
    assert eval(py_string(text)) == text  # the literal, and nothing else, is evaluated


def test_sql_names_avoid_what_is_taken() -> None:
    assert sql_name("Order Details") == "order_details"
    assert sql_name("order") == "order_"
    assert sql_name("order", {"order_"}) == "order__2"
    assert sql_name("🦀") == "column_"  # the fallback is a reserved word
    assert sql_name("9lives", fallback="table") == "t_9lives"
    long = sql_name("a" * 100)
    assert len(long) == 63 and long != sql_name("a" * 99)


def test_the_key_is_the_primary_key_else_a_unique_not_null_key_else_none() -> None:
    composite = table("t", [column("a"), column("b", "TEXT")], (pk("a", "b"),))
    assert choose_key(composite) == (("a", "b"), "primary key")
    # A date is read as text: the primary key cannot be ranged, the unique key can.
    dated = table(
        "t",
        [column("day", "date"), column("code", "TEXT", not_null=True), column("x", "TEXT")],
        (pk("day"), unique("x"), unique("code")),
    )
    assert choose_key(dated) == (("code",), "unique, not null")
    nullable = table("t", [column("code", "TEXT")], (unique("code"),))
    key, note = choose_key(nullable)
    assert key == () and note.startswith("keyless: no primary key")
    only_dated = table("t", [column("day", "date")], (pk("day"),))
    assert choose_key(only_dated) == ((), "keyless: primary key (day): day read as text")


def test_entities_follow_their_references_and_what_cannot_be_declared_is_said(
    tmp_path: Path,
) -> None:
    loans = table(
        "loans",
        [column("id"), column("member"), column("book"), column("parent"), column("a")],
        (pk("id"),),
        (
            ForeignKey("f1", ("member",), "members", ("id",)),
            ForeignKey("f2", ("book",), "books", ()),  # SQLite: the primary key
            ForeignKey("f3", ("parent",), "loans", ("id",)),
            ForeignKey("f4", ("a", "member"), "members", ("id", "id")),
            ForeignKey("f5", ("a",), "elsewhere", ("id",)),
        ),
    )
    members = table("members", [column("id"), column("best")], (pk("id"),))
    books = table(
        "books",
        [column("isbn", "TEXT"), column("fan")],
        (pk("isbn"),),
        (ForeignKey("f6", ("fan",), "members", ("id",)),),
    )
    chicken = table("chicken", [column("id"), column("egg")], (pk("id"),))
    egg = table(
        "egg",
        [column("id"), column("chicken")],
        (pk("id"),),
        (ForeignKey("f7", ("chicken",), "chicken", ("id",)),),
    )
    chicken = SourceTable(
        "chicken",
        chicken.columns,
        chicken.indexes,
        (ForeignKey("f8", ("egg",), "egg", ("id",)),),
        None,
    )
    tables = [loans, members, books, chicken, egg]
    scaffold = plan(tables)
    assert [e.name for e in scaffold.entities] == ["members", "books", "loans", "egg", "chicken"]
    [loans_plan] = [e for e in scaffold.entities if e.name == "loans"]
    assert [(r.column, r.entity, r.key) for r in loans_plan.references] == [
        ("member", "members", "id"),
        ("book", "books", "isbn"),
    ]
    notes = "\n".join(scaffold.notes)
    assert "loans(parent) -> loans: not declared (the table references itself)" in notes
    assert "loans(a, member) -> members: not declared (a foreign key of several" in notes
    assert "loans(a) -> elsewhere: not declared (elsewhere is not among" in notes
    assert "egg(chicken) -> chicken: not declared (a cycle: chicken -> egg -> chicken)" in notes
    said = "\n".join(describe(scaffold))
    assert "chicken: ? rows, key id (primary key)" in said
    migration = load_migration(str(written(tmp_path, tables)))
    assert migration.names() == ("members", "books", "loans", "egg", "chicken")


def test_text_carried_columns_are_read_as_the_type_map_says(tmp_path: Path) -> None:
    typed = ColumnType("numeric", precision=40, scale=20, spelled="numeric(40,20)")
    amount = SourceColumn("amount", typed, carry("postgresql", typed), False)
    stamp = ColumnType("timestamp", precision=3, spelled="timestamp(3)")
    at = SourceColumn("at", stamp, carry("mysql", stamp), False)
    tables = [table("t", [column("id"), amount, at], (pk("id"),))]
    [entity] = load_migration(str(written(tmp_path, tables))).entities
    assert entity.source.schema == {"id": pl.Int64, "amount": pl.String, "at": pl.String}
    assert entity.source.read_as["amount"] == "{}::text"
    assert "UNIX_TIMESTAMP({})" in entity.source.read_as["at"]
    assert entity.sql_types == {
        "id": "bigint",
        "amount": "numeric(40,20)",
        "at": "timestamptz(3)",
    }


def test_an_index_and_a_unique_key_on_the_same_columns_declare_one_unique_index() -> None:
    both = table(
        "t",
        [column("id"), column("code", "TEXT")],
        (pk("id"), SourceIndex("plain", "index", ("code",)), unique("code")),
    )
    [entity] = plan([both]).entities
    # The primary key's index is the record key's own: not declared twice.
    assert entity.indexes == (("t_code_key", ("code",), True),)


def test_one_key_column_is_the_primary_key_a_composite_key_gets_legacy_id(
    tmp_path: Path,
) -> None:
    """A key of one column, carried as it is, is how the engine knows a record and the
    table's primary key; a composite key is kept as the text of its columns in legacy_id,
    beside a generated key, as is a keyless table's generated key alone."""
    one = table("one", [column("code", "TEXT", not_null=True), column("n")], (pk("code"),))
    pair = table("pair", [column("a", not_null=True), column("b", not_null=True)], (pk("a", "b"),))
    none = table("none", [column("n")])
    entities = load_migration(str(written(tmp_path, [one, pair, none]))).entities
    keyed = {e.name: (e.record_key, e.unique_keys, e.surrogate_key) for e in entities}
    assert keyed == {
        "one": ("code", ("code",), None),
        "pair": ("legacy_id", ("legacy_id",), "etl_id"),
        "none": ("legacy_id", (), "etl_id"),
    }
    assert [e.target_columns for e in entities] == [
        ("code", "n"),
        ("legacy_id", "a", "b"),
        ("n",),
    ]
    assert [[i.name for i in e.table_indexes()] for e in entities] == [
        ["idx_one_etl_job_id"],
        ["idx_pair_legacy_id", "pair_a_b_key", "idx_pair_etl_job_id"],
        ["idx_none_etl_job_id"],
    ]


def test_an_enum_is_text_whose_contract_holds_its_values(tmp_path: Path) -> None:
    """MySQL's enum (and PostgreSQL's) lands as text; the contract checks for its values,
    so a value outside them (MySQL's '' of a non-strict insert) is a reject."""
    labels = ("new", "it's", "Zoë 🦀", "")
    typed = ColumnType("enum", labels=labels[:3], spelled="enum('new','it''s','Zoë 🦀')")
    state = SourceColumn("state", typed, carry("mysql", typed), False)
    folder = written(
        tmp_path, [table("tickets", [column("id", not_null=True), state], (pk("id"),))]
    )
    [entity] = load_migration(str(folder)).entities
    assert entity.sql_types["state"] == "text"
    rows = pl.DataFrame({"legacy_id": ["1", "2", "3", "4", "5"], "id": [1, 2, 3, 4, 5]})
    rows = rows.with_columns(state=pl.Series([*labels, None]))
    import pandera.polars as pa

    try:
        entity.contract(None).validate(rows, lazy=True)
    except pa.errors.SchemaErrors as e:
        failed = e.failure_cases
    else:
        raise AssertionError("the contract let a value outside the enum through")
    assert failed["failure_case"].to_list() == [""]
    assert failed["check"].to_list() == ["state: not one of the enum's values"]
