"""Linking declared references inside the target: one set-based UPDATE each, no rows in Python.

For a reference ``orders.customer_legacy_id -> customers.legacy_id`` that sets
``orders.customer_id``, each order's ``customer_id`` becomes the target id of the customer
whose ``legacy_id`` equals the order's ``customer_legacy_id``. A row whose referenced row was
filtered, rejected, rolled back or never existed is an orphan: it stays loaded with a null
link (``etl verify`` lists them).
"""

from __future__ import annotations

from dataclasses import dataclass

from columnar_etl import ledger
from columnar_etl.config import first_line
from columnar_etl.declare import Entity, Reference
from columnar_etl.errors import TargetError
from columnar_etl.migration import Migration
from columnar_etl.target import Target

__all__ = ["LinkResult", "link", "match_sql"]


@dataclass(frozen=True)
class LinkResult:
    """One reference after linking: ``linked + orphans == rows``."""

    entity: str
    reference: Reference
    rows: int
    """Rows of the entity's table."""
    linked: int
    """Rows pointing at the row they reference."""
    orphans: int
    """Rows whose referenced row is not in the target (a null link)."""
    updated: int
    """Rows whose link this call changed."""

    @property
    def label(self) -> str:
        """``orders.customer_legacy_id -> customers.legacy_id``."""
        return f"{self.entity}.{self.reference.column} -> {self.reference.to}"

    def to_dict(self) -> dict[str, object]:
        return {
            "reference": self.label,
            "sets": None if self.reference.sets is None else f"{self.entity}.{self.reference.sets}",
            "rows": self.rows,
            "linked": self.linked,
            "orphans": self.orphans,
            "updated": self.updated,
        }


def match_sql(table: str, reference: Reference, pointed: Entity) -> str:
    """The target id a row of ``table`` should point at: MIN keeps it deterministic (and
    free of "more than one row" errors) even if someone dropped the referenced key's unique
    index and loaded a duplicate."""
    return (
        f"(SELECT MIN(p.{pointed.primary_key}) FROM {pointed.target_table} p "
        f"WHERE p.{reference.key} = {table}.{reference.column})"
    )


def _link_one(target: Target, entity: Entity, reference: Reference, pointed: Entity) -> LinkResult:
    table = entity.target_table
    if reference.sets is None:
        return _matched(target, entity, reference, pointed)
    match = match_sql(table, reference, pointed)
    # Also repairs links to rows that are gone or were re-keyed; IS DISTINCT FROM is null-safe
    # in both PostgreSQL and SQLite (3.39+).
    stale = f"{reference.sets} IS DISTINCT FROM {match}"
    updated = int(target.scalar(f"SELECT COUNT(*) FROM {table} WHERE {stale}"))
    target.execute(f"UPDATE {table} SET {reference.sets} = {match} WHERE {stale}")
    row = target.query(f"SELECT COUNT(*) AS n, COUNT({reference.sets}) AS linked FROM {table}").row(
        0, named=True
    )
    rows, linked = int(row["n"]), int(row["linked"])
    return LinkResult(entity.name, reference, rows, linked, rows - linked, updated)


def _matched(target: Target, entity: Entity, reference: Reference, pointed: Entity) -> LinkResult:
    """A reference whose column is itself the link: nothing to fill, its figures only (a
    NULL in the column points nowhere and is no orphan)."""
    row = target.query(
        f"SELECT COUNT(*) AS n, COUNT(r.{reference.column}) AS pointing, "
        f"CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM {pointed.target_table} p WHERE "
        f"p.{reference.key} = r.{reference.column}) THEN 1 ELSE 0 END), 0) AS BIGINT) AS linked "
        f"FROM {entity.target_table} r"
    ).row(0, named=True)
    rows, linked = int(row["n"]), int(row["linked"])
    return LinkResult(entity.name, reference, rows, linked, int(row["pointing"]) - linked, 0)


def link(target: Target, migration: Migration) -> list[LinkResult]:
    """Point every row of every declared reference at the row it references (or at none),
    all in one transaction."""
    ledger.require_ledger(target)
    try:
        results = [
            _link_one(target, entity, reference, migration.get(reference.entity))
            for entity in migration.entities
            for reference in entity.references
        ]
        target.commit()
    except Exception as exc:  # the driver's own error classes
        target.rollback()
        raise TargetError(f"cannot link references in {target.url}: {first_line(exc)}") from None
    return results
