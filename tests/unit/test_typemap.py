"""The type map's rules, without a database: classification, filled-in targets, refusals.
(tests/integration/test_typemap.py proves them value by value on real databases.)"""

from __future__ import annotations

import polars as pl
import pytest

from columnar_etl.typemap import TYPEMAPS, Carry, ColumnType, Refuse, carry, sqlite_type


@pytest.mark.parametrize(
    ("declared", "name", "precision", "scale"),
    [
        ("INTEGER", "integer", None, None),
        ("UNSIGNED BIG INT", "integer", None, None),
        ("varchar(20)", "text", 20, None),
        ("NUMERIC(20, 12)", "numeric", 20, 12),
        ("DECIMAL(10,2)", "numeric", 10, 2),
        ("DOUBLE PRECISION", "real", None, None),
        ("BLOB", "blob", None, None),
        ("", "", None, None),
        ("BOOLEAN", "boolean", None, None),
        ("TIMESTAMP", "datetime", None, None),
        ("DATETIME", "datetime", None, None),
        ("DATE", "date", None, None),
        ("JSON", "json", None, None),
    ],
)
def test_sqlite_declared_types_by_affinity(
    declared: str, name: str, precision: int | None, scale: int | None
) -> None:
    column = sqlite_type(declared)
    assert (column.name, column.precision, column.scale) == (name, precision, scale)


def test_every_rule_fills_in_its_target_and_read() -> None:
    column = ColumnType("x", length=5, precision=6, scale=2, spelled="x(6,2)")
    for dialect, table in TYPEMAPS.items():
        for name in table:
            rule = carry(dialect, ColumnType(**{**column.__dict__, "name": name}))
            if isinstance(rule, Carry):
                assert "{" not in rule.target and "{" not in rule.read.replace("{c}", "")
                assert rule.select("`c`").startswith(("`c`", rule.read.format(c="`c`")))


@pytest.mark.parametrize(
    ("column", "target", "as_text"),
    [
        (ColumnType("decimal", precision=10, scale=2), "numeric(10,2)", False),
        (ColumnType("decimal", precision=28, scale=10), "numeric(28,10)", False),
        (ColumnType("decimal", precision=20, scale=12), "numeric(20,12)", True),
        (ColumnType("decimal", precision=65, scale=0), "numeric(65,0)", True),
        (ColumnType("bigint", unsigned=True), "numeric(20)", True),
        (ColumnType("bigint"), "bigint", False),
        (ColumnType("int", unsigned=True), "bigint", False),
        (ColumnType("tinyint(1)"), "boolean", True),
        (ColumnType("timestamp", precision=6), "timestamptz(6)", True),
        (ColumnType("datetime", precision=0), "timestamp(0)", True),
        (ColumnType("bit", length=8), "bit(8)", True),
        (ColumnType("varchar", length=20), "varchar(20)", False),
    ],
)
def test_mysql_rules(column: ColumnType, target: str, as_text: bool) -> None:
    rule = carry("mysql", column)
    assert isinstance(rule, Carry) and (rule.target, rule.as_text) == (target, as_text)
    assert rule.why or not as_text  # every text read says why


def test_mysql_unsigned_integers_widen_losslessly() -> None:
    assert carry("mysql", ColumnType("smallint", unsigned=True)).dtype == pl.Int32()  # type: ignore[union-attr]
    assert carry("mysql", ColumnType("tinyint", unsigned=True)).dtype == pl.Int16()  # type: ignore[union-attr]


def test_refusals_name_the_type() -> None:
    spatial = carry("mysql", ColumnType("point", spelled="point"))
    unknown = carry("mysql", ColumnType("inet6", spelled="inet6"))
    untyped = carry("sqlite", sqlite_type(""))
    composite = carry("postgresql", ColumnType("user-defined", spelled="pair"))
    assert isinstance(spatial, Refuse) and spatial.reason.startswith("point: spatial")
    assert isinstance(unknown, Refuse) and unknown.reason.startswith("inet6: no known way")
    assert isinstance(untyped, Refuse) and "no declared type" in untyped.reason
    assert isinstance(composite, Refuse) and composite.reason.startswith("pair: ")


def test_postgres_reads_unnamed_builtin_types_as_text_of_themselves() -> None:
    rule = carry("postgresql", ColumnType("interval", spelled="interval"))
    assert isinstance(rule, Carry) and (rule.target, rule.read) == ("interval", "{c}::text")
    assert rule.select('"iv"') == '"iv"::text AS "iv"'
    unconstrained = carry("postgresql", ColumnType("numeric", spelled="numeric"))
    assert unconstrained.target == "numeric" and unconstrained.as_text  # type: ignore[union-attr]
