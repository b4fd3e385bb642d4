"""Finding a user's migration: a file, a folder or a module, its entities in reference order."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from columnar_etl.errors import ConfigError
from columnar_etl.migration import load_migration

#: A migration module of a user's: two entities, the one referencing the other declared first.
MODULE = """
import pandera.polars as pa
import polars as pl

from columnar_etl import Entity, Reference, SourceSpec


def _contract(columns):
    return lambda as_of: pa.DataFrameSchema({c: pa.Column(pl.String) for c in columns})


loans = Entity(
    name="loans",
    source=SourceSpec("loans", "loan_id", {"loan_id": pl.Int64, "member_id": pl.Int64}),
    transform=lambda lf: lf,
    contract=_contract(["legacy_id", "member_legacy_id"]),
    target_table="loans",
    references=(Reference("member_legacy_id", to="members.legacy_id", sets="member_id"),),
)
members = Entity(
    name="members",
    source=SourceSpec("members", "member_id", {"member_id": pl.Int64}),
    transform=lambda lf: lf,
    contract=_contract(["legacy_id"]),
    target_table="members",
)
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def test_without_a_migration_the_built_in_example_runs() -> None:
    assert load_migration().names() == ("customers", "products", "orders")


def test_a_file_s_entities_run_after_those_they_reference(tmp_path: Path) -> None:
    migration = load_migration(str(_write(tmp_path, "library.py", MODULE)))
    assert migration.names() == ("members", "loans")
    assert [e.name for e, _ in migration.referencing("members")] == ["loans"]


def test_a_folder_and_an_entities_list(tmp_path: Path) -> None:
    _write(tmp_path, "migration.py", MODULE + "\nENTITIES = [members]\n")
    assert load_migration(str(tmp_path)).names() == ("members",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = 1\n", "declares no entities"),
        ("raise RuntimeError('boom')\n", "cannot import migration .*RuntimeError: boom"),
        (
            MODULE + "\nENTITIES = [loans]\n",
            "references members.legacy_id, but no entity of the migration is called 'members'",
        ),
        (
            MODULE.replace('to="members.legacy_id"', 'to="members.nosuch"'),
            "references members.nosuch, but members has no column 'nosuch' \\(columns: ",
        ),
        (MODULE + "\nENTITIES = [members, members]\n", "two entities are called 'members'"),
        (
            MODULE.replace('target_table="members",', 'target_table="members", defaults={"x": 1},'),
            "entity 'members': defaults names 'x', not one of its columns",
        ),
        (
            MODULE.replace(
                'target_table="members",', 'target_table="members", defaults={"legacy_id": [1]},'
            ),
            "entity 'members': defaults\\['legacy_id'\\] = \\[1\\] is not a column's value",
        ),
        (
            MODULE.replace(
                'target_table="members",', 'target_table="members", surrogate_key=None,'
            ),
            "loans.member_id is set from members's generated key, which it does not have",
        ),
        (
            MODULE.replace(
                'target_table="members",',
                'target_table="members", surrogate_key=None, unique_keys=(),',
            ),
            "without a generated key .* its record key 'legacy_id' is the primary key",
        ),
    ],
)
def test_a_broken_migration_is_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_migration(str(_write(tmp_path, "m.py", text)))


def test_a_missing_file_and_a_cycle(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="migration file not found"):
        load_migration(str(tmp_path / "nope.py"))
    cyclic = MODULE.replace(
        'target_table="members",',
        'target_table="members",\n'
        '    references=(Reference("legacy_id", to="loans.legacy_id", sets="loan_id"),),',
    )
    with pytest.raises(ConfigError, match=r"in a cycle: (members|loans) -> .* -> \1$"):
        load_migration(str(_write(tmp_path, "c.py", cyclic)))


def test_a_source_filter_binds_its_placeholders_only() -> None:
    import polars as pl

    from columnar_etl.declare import SourceSpec, bind, placeholders
    from columnar_etl.extract import relation

    where = "a = :x AND b::int > :y AND c <> ':x is text' AND d = :x"
    assert placeholders(where) == ["x", "y", "x"]
    assert bind(where, lambda name: f"<{name}>") == (
        "a = <x> AND b::int > <y> AND c <> ':x is text' AND d = <x>"
    )
    spec = SourceSpec(
        "t", "id", {"id": pl.Int64}, where="a = :x OR b = :y", params={"x": "it's\\", "y": True}
    )
    assert relation(spec, "postgresql") == (
        "(SELECT * FROM \"t\" WHERE a = E'it''s\\\\' OR b = TRUE) AS \"t\""
    )
    assert relation(spec, "sqlite") == "(SELECT * FROM \"t\" WHERE a = 'it''s\\' OR b = 1) AS \"t\""
    with pytest.raises(ConfigError, match="each :name needs a value"):
        SourceSpec("t", "id", {"id": pl.Int64}, where="a = :x", params={})
    with pytest.raises(ConfigError, match="can't bind"):
        SourceSpec("t", "id", {"id": pl.Int64}, where="a = :x", params={"x": float("nan")})
