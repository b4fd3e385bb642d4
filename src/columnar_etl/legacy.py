"""Writing a generated legacy database (``etl generate``, the demo, tests, benchmarks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from columnar_etl.config import DatabaseUrl
from columnar_etl.errors import ConfigError
from columnar_etl.generate import customers_table, iter_orders, products_table, sizes_for
from columnar_etl.target import Target

if TYPE_CHECKING:  # the engine is not needed at run time, only its callback type
    from columnar_etl.pipeline import Progress

__all__ = ["MAX_ROWS", "check_size", "write_legacy"]

#: Orders generated and written per step: bounds memory for any ``rows``.
CHUNK = 250_000
#: Customers and products are built whole (a fifth and a twentieth of the orders): beyond this
#: they no longer fit in a few GiB.
MAX_ROWS = 100_000_000


def check_size(rows: int, seed: int = 0) -> None:
    """Refuse sizes and seeds the generator cannot honour, before anything is written."""
    if not 1 <= rows <= MAX_ROWS:
        raise ConfigError(f"rows must be between 1 and {MAX_ROWS:,}, got {rows:,}")
    if seed < 0:
        raise ConfigError(f"seed must be 0 or more, got {seed}")


def write_legacy(
    url: DatabaseUrl, rows: int, seed: int = 42, progress: Progress | None = None
) -> dict[str, int]:
    """Create the legacy schema at ``url`` and fill it with ``rows`` generated orders (and the
    customers and products that go with them), in one transaction; refuses a database that
    already holds rows."""
    check_size(rows, seed)
    sizes = sizes_for(rows)
    with Target(url) as target:
        target.apply_schema("legacy")
        for table in ("customers", "products", "orders"):
            if int(target.scalar(f"SELECT COUNT(*) FROM {table}")):
                raise ConfigError(f"{url} already holds legacy rows in {table}; use a new database")
        # The legacy DDL declares active as integer (int4): binary COPY needs the same width.
        customers = customers_table(seed, sizes.customers)
        target.ingest(
            "customers", customers.with_columns(pl.col("active").cast(pl.Int32)), append=True
        )
        target.ingest("products", products_table(seed, sizes.products), append=True)
        written = 0
        if progress:
            progress("orders", written, rows)
        for chunk in iter_orders(rows, seed, CHUNK):
            target.ingest("orders", chunk, append=True)
            written += chunk.height
            if progress:
                progress("orders", written, rows)
        target.commit()
    return {"customers": sizes.customers, "products": sizes.products, "orders": sizes.orders}
