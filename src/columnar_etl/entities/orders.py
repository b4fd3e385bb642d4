"""Orders: legacy ``orders`` -> target ``orders`` (rules: docs/rules.md#orders)."""

from __future__ import annotations

from datetime import datetime

import pandera.polars as pa
import polars as pl

from columnar_etl import (
    FILTERED,
    TRANSFORM_ERRORS,
    Entity,
    Index,
    Reference,
    SourceSpec,
    carry_row_id,
    general_dates,
    on_rows,
    reads,
    rule,
)
from columnar_etl.entities import order_items
from columnar_etl.entities.order_items import ITEM_ERRORS
from columnar_etl.expressions import (
    is_empty,
    join_messages,
    map_codes,
    message_if,
    padded_dates,
    parse_float,
)

__all__ = ["CUTOFF", "ENTITY", "ITEM_ERRORS", "STATUS_CODES", "contract", "transform"]

SOURCE = SourceSpec(
    table="orders",
    key="order_id",
    schema={
        "order_id": pl.Int64,
        "customer_id": pl.Int64,
        "order_number": pl.String,
        "order_total": pl.String,
        "status": pl.String,
        "order_date": pl.String,
        "order_items": pl.String,
    },
)

STATUS_CODES = {
    "1": "pending",
    "NEW": "pending",
    "2": "processing",
    "PROC": "processing",
    "3": "shipped",
    "SHIP": "shipped",
    "4": "delivered",
    "DELV": "delivered",
    "5": "cancelled",
    "CANC": "cancelled",
}
#: Orders dated before this are out of scope (filtered, not rejected).
CUTOFF = datetime(2020, 1, 1)


@reads(SOURCE)
def transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Legacy orders -> target rows; pure Polars.

    Most rows (a zero-padded date, clean items) take fast whole-column text operations; the
    general parsers, which implement the rules as written, run only on the rows that need them.
    """
    c = pl.col
    raw = c("order_items")
    staged = map_codes(lf, "status", STATUS_CODES, output="status", default="pending").with_columns(
        legacy_id=c("order_id").cast(pl.String),
        _padded_date=padded_dates(c("order_date")),
        _total=parse_float(c("order_total")),
        _clean=raw.str.contains(order_items.CLEAN).fill_null(False),
        _json_form=raw.str.starts_with("["),
        # Computed here, beside the checks, rather than after them: it then runs in parallel.
        _json_items=order_items.clean_json(pl.when(raw.str.starts_with("[")).then(raw)),
    )
    clean = c("_clean")
    staged = staged.with_columns(
        _clean_json=clean & c("_json_form"), _clean_delimited=clean & ~c("_json_form")
    )
    done = on_rows(
        staged,
        general_dates("order_date", "_padded_date", "_general_date"),
        (~is_empty(raw) & ~clean, order_items.general),
        (c("_clean_delimited"), order_items.clean_delimited),
        # The item sum is only needed where the total is not a number.
        (c("_total").is_null() & clean, order_items.clean_sums),
    )
    order_date = pl.coalesce(c("_padded_date"), c("_general_date"))
    items = pl.coalesce(
        c(order_items.ITEMS),
        c(order_items.DELIMITED_ITEMS),
        pl.when(c("_clean_json")).then(c("_json_items")),
        pl.lit("[]"),  # no items text
    )
    item_sum = pl.coalesce(c(order_items.CLEAN_SUM), c(order_items.ITEM_SUM), pl.lit(0.0))
    return done.select(
        carry_row_id(),
        "legacy_id",
        customer_legacy_id=c("customer_id").cast(pl.String),
        order_number=pl.when(is_empty(c("order_number")))
        .then(pl.concat_str(pl.lit("ORD-"), c("legacy_id")))
        .otherwise(c("order_number")),
        total=pl.coalesce(c("_total"), item_sum),
        status=c("status"),
        order_date=order_date,
        items=items,
        **{
            ITEM_ERRORS: c(ITEM_ERRORS),
            FILTERED: (order_date < CUTOFF).fill_null(False),
            TRANSFORM_ERRORS: join_messages(
                message_if(
                    ~is_empty(c("order_date")) & order_date.is_null(),
                    "order_date: unrecognised date",
                ),
                c(order_items.PARSE_ERRORS),
            ),
        },
    )


def contract(as_of: datetime) -> pa.DataFrameSchema:
    """Valid target orders (``as_of`` is unused: the date cut-off is a filter, not a rule)."""
    del as_of
    return pa.DataFrameSchema(
        {
            "legacy_id": pa.Column(pl.String),
            "customer_legacy_id": pa.Column(pl.String),
            "order_number": pa.Column(pl.String),
            "order_date": pa.Column(pl.Datetime("us")),
            "total": pa.Column(
                pl.Float64,
                checks=[
                    pa.Check.ge(0, error="Order total cannot be negative"),
                    pa.Check.le(1_000_000, error="Order total seems unreasonably high"),
                ],
            ),
            "status": pa.Column(pl.String),
            "items": pa.Column(
                pl.String,
                checks=rule("Order must have at least one item", pl.col("items") != "[]"),
            ),
            ITEM_ERRORS: pa.Column(
                pl.String,
                nullable=True,
                checks=rule("{value}", pl.col(ITEM_ERRORS).is_null()),
            ),
        }
    )


ENTITY = Entity(
    name="orders",
    source=SOURCE,
    transform=transform,
    contract=contract,
    target_table="orders",
    json_columns=("items",),
    indexes=(
        Index("idx_orders_customer_id", ("customer_id",)),
        Index("idx_orders_order_date", ("order_date",)),
    ),
    references=(Reference("customer_legacy_id", to="customers.legacy_id", sets="customer_id"),),
    required_messages={
        "customer_legacy_id": "customer_legacy_id is required",
        "order_date": "order_date is required",
    },
    defaults={"items": "[]"},
)
