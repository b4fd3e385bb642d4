"""The legacy orders table copied as it is, written as ``etl init`` writes an identity copy
(see IDENTITY_MIGRATION in tests/integration/test_user_migration.py): every source column
keeps its name and type, ``legacy_id`` is the source key as text, nothing is filtered or
rejected by a rule. benchmarks/peers.py runs it when this revision has no ``etl init``, and
says so in its figures.
"""

import pandera.polars as pa
import polars as pl

from columnar_etl import FILTERED, TRANSFORM_ERRORS, Entity, carry_row_id
from columnar_etl.entities.orders import SOURCE

#: The legacy table as the built-in example reads it: every column, in the source's types.
ORDERS = SOURCE


def orders_transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Every column as it is, and the key as text."""
    return lf.select(
        carry_row_id(),
        *ORDERS.columns,
        ORDERS.record_id().alias("legacy_id"),
        **{FILTERED: pl.lit(False), TRANSFORM_ERRORS: pl.lit(None, pl.String)},
    )


def orders_contract(as_of: object) -> pa.DataFrameSchema:
    """The source's columns and types; only the primary key is NOT NULL."""
    columns = {
        name: pa.Column(dtype, nullable=name != "order_id") for name, dtype in ORDERS.schema.items()
    }
    return pa.DataFrameSchema({"legacy_id": pa.Column(pl.String), **columns})


orders = Entity("orders", ORDERS, orders_transform, orders_contract, "orders")
