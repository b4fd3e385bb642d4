"""Writing a generated legacy database (``etl generate``, the demo, tests, benchmarks)."""

from __future__ import annotations

import polars as pl

from columnar_etl.config import DatabaseUrl
from columnar_etl.errors import ConfigError
from columnar_etl.generate import _customers, _products, iter_orders, sizes_for
from columnar_etl.target import Target

__all__ = ["write_legacy"]


def write_legacy(url: DatabaseUrl, rows: int, seed: int = 42) -> dict[str, int]:
    """Create the legacy schema at ``url`` and fill it with ``rows`` generated orders (and the
    customers and products that go with them); refuses a database that already holds rows."""
    if rows < 1:
        raise ConfigError(f"rows must be a positive integer, got {rows}")
    sizes = sizes_for(rows)
    with Target(url) as target:
        target.apply_schema("legacy")
        for table in ("customers", "products", "orders"):
            if int(target.scalar(f"SELECT COUNT(*) FROM {table}")):
                raise ConfigError(f"{url} already holds legacy rows in {table}; use a new database")
        # The legacy DDL declares active as integer (int4): binary COPY needs the same width.
        customers = _customers(seed, sizes.customers).with_columns(pl.col("active").cast(pl.Int32))
        target.ingest("customers", customers, append=True)
        target.ingest("products", _products(seed, sizes.products), append=True)
        for chunk in iter_orders(rows, seed):
            target.ingest("orders", chunk, append=True)
        target.commit()
    return {"customers": sizes.customers, "products": sizes.products, "orders": sizes.orders}
