"""A target table's shape (columns, types, nullability, keys) and how two shapes differ.

The facts come from the database's catalog (see :meth:`Target.shape_differences`), for the
real table and for the table as declared, so both are spelled the same way and compare as
they are: no parsing of DDL, no list of type synonyms.

What counts as a difference is what makes the tool's writes fail or mean something else:
a declared column missing or of another type, a column that refuses NULL where the
declaration allows it, an undeclared column that needs a value the tool never writes (NOT
NULL without a default), and any primary or unique key other than the declared ones (an
extra one refuses rows, a missing one lets a key load twice). Looser is accepted: a column
that allows NULL where the declaration says NOT NULL (every row the tool writes has the
value; rows without one are not the tool's, see ``etl verify``), and an extra column that
is nullable or has a default (the tool names its columns and leaves that one alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

__all__ = ["Column", "TableShape", "differences"]


@dataclass(frozen=True)
class Column:
    """One column as the catalog describes it."""

    type: str
    """The catalog's spelling of the type (SQLite: the declared type's affinity)."""
    not_null: bool
    has_default: bool
    """A default, an identity or a generated value: a row that leaves it out still has one."""


@dataclass(frozen=True)
class TableShape:
    """The columns (by name) and the primary and unique keys of a table."""

    columns: dict[str, Column]
    keys: frozenset[str]
    """``primary key (id)``, ``unique (legacy_id)``, ``partial unique (email)``: by column,
    never by name, so a key the user created under another name is the same key."""

    @classmethod
    def from_catalog(cls, columns: pl.DataFrame, keys: pl.DataFrame) -> TableShape:
        """From ``columns`` (name, type, not_null, has_default) and ``keys`` (one row per
        column of a key: index_name, kind, partial, seq, key_column)."""
        found = {
            str(r["name"]): Column(str(r["type"]), bool(r["not_null"]), bool(r["has_default"]))
            for r in columns.iter_rows(named=True)
        }
        described = (
            keys.cast({"index_name": pl.String, "seq": pl.Int64, "key_column": pl.String})
            .sort("index_name", "seq")
            .group_by("index_name", maintain_order=True)
            .agg(
                pl.col("kind").first().cast(pl.String),
                pl.col("partial").first().cast(pl.Boolean),
                pl.col("key_column").str.join(", "),
            )
        )
        spelled = {
            f"{'partial ' if r['partial'] else ''}{r['kind']} ({r['key_column']})"
            for r in described.iter_rows(named=True)
        }
        return cls(found, frozenset(spelled))


def differences(declared: TableShape, actual: TableShape) -> list[str]:
    """What in ``actual`` is other than ``declared`` in a way that matters (module docstring),
    each as a short phrase; empty when the table can be loaded as declared."""
    found: list[str] = []
    for name, want in declared.columns.items():
        have = actual.columns.get(name)
        if have is None:
            found.append(f"column {name} ({want.type}) is missing")
            continue
        if have.type != want.type:
            found.append(f"column {name} is {have.type}, declared {want.type}")
        if have.not_null and not want.not_null:
            found.append(f"column {name} is NOT NULL, declared nullable")
    for name, have in actual.columns.items():
        if name not in declared.columns and have.not_null and not have.has_default:
            found.append(f"column {name} ({have.type} NOT NULL, no default) is not declared")
    found += [f"{key} is missing" for key in sorted(declared.keys - actual.keys)]
    found += [f"{key} is not declared" for key in sorted(actual.keys - declared.keys)]
    return found
