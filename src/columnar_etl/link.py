"""Linking orders to their customers inside the target: one set-based UPDATE, no rows in Python.

``orders.customer_id`` is the target id of the customer whose ``legacy_id`` equals the order's
``customer_legacy_id``. An order whose customer was filtered, rejected, rolled back or never
existed is an orphan: it stays loaded with a null ``customer_id`` (``etl verify`` lists them).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from columnar_etl import ledger
from columnar_etl.config import first_line
from columnar_etl.errors import TargetError
from columnar_etl.target import Target

__all__ = ["LinkResult", "link_orders"]

# MIN: deterministic (and no "more than one row" error on PostgreSQL) even if someone dropped
# the unique index on customers.legacy_id and loaded a duplicate.
_MATCH = "(SELECT MIN(c.id) FROM customers c WHERE c.legacy_id = orders.customer_legacy_id)"
# Also repairs links to customers that are gone or were re-keyed; IS DISTINCT FROM is null-safe
# in both PostgreSQL and SQLite (3.39+).
_STALE = f"customer_id IS DISTINCT FROM {_MATCH}"


@dataclass(frozen=True)
class LinkResult:
    """Orders after linking: ``linked + orphans == orders``."""

    orders: int
    linked: int
    """Orders pointing at their customer."""
    orphans: int
    """Orders whose customer is not in the target (null customer_id)."""
    updated: int
    """Orders whose customer_id this call changed."""

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def link_orders(target: Target) -> LinkResult:
    """Point every order at its customer (or at none), in one transaction."""
    ledger.require_ledger(target)
    try:
        updated = int(target.scalar(f"SELECT COUNT(*) FROM orders WHERE {_STALE}"))
        target.execute(f"UPDATE orders SET customer_id = {_MATCH} WHERE {_STALE}")
        row = target.query(
            "SELECT COUNT(*) AS orders, COUNT(customer_id) AS linked FROM orders"
        ).row(0, named=True)
        target.commit()
    except Exception as exc:  # the driver's own error classes
        target.rollback()
        raise TargetError(f"cannot link orders in {target.url}: {first_line(exc)}") from None
    orders, linked = int(row["orders"]), int(row["linked"])
    return LinkResult(orders, linked, orders - linked, updated)
