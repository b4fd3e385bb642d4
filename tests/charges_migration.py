"""A user's migration whose target columns declare exact SQL types (``sql_types``).

A till's legacy charges: a short code, a fee of a currency with cents, a small quantity. The
target keeps them as ``varchar(8)``, ``numeric(8,2)`` and ``smallint``; a value those types
cannot hold is refused, never rounded or cut. ``etl run --migration tests/charges_migration.py``.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from columnar_etl import FILTERED, TRANSFORM_ERRORS, Entity, SourceSpec, carry_row_id, reads

CHARGES = SourceSpec(
    "till_charges",
    "charge_id",
    {"charge_id": pl.Int64, "code": pl.String, "fee": pl.String, "qty": pl.Int64},
)


@reads(CHARGES)
def charges_transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Legacy charges -> target rows: the code trimmed, the fee read as a number."""
    fee = pl.col("fee").str.strip_chars().cast(pl.Float64, strict=False)
    return lf.select(
        carry_row_id(),
        pl.col("charge_id").cast(pl.String).alias("legacy_id"),
        pl.col("code").str.strip_chars(),
        fee.alias("fee"),
        pl.col("qty"),
        **{
            FILTERED: pl.lit(False),
            TRANSFORM_ERRORS: pl.when(pl.col("fee").is_not_null() & fee.is_null()).then(
                pl.lit("fee: not a number")
            ),
        },
    )


def charges_contract(as_of: object) -> pa.DataFrameSchema:
    """Valid charges: a code and a fee; the quantity may be unknown."""
    del as_of
    return pa.DataFrameSchema(
        {
            "legacy_id": pa.Column(pl.String),
            "code": pa.Column(pl.String),
            "fee": pa.Column(pl.Float64),
            "qty": pa.Column(pl.Int64, nullable=True),
        }
    )


charges = Entity(
    name="charges",
    source=CHARGES,
    transform=charges_transform,
    contract=charges_contract,
    target_table="charges",
    sql_types={"code": "varchar(8)", "fee": "numeric(8,2)", "qty": "smallint"},
)
