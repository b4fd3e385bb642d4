"""Orders: legacy ``orders`` -> target ``orders`` (rules: docs/rules.md#orders)."""

from __future__ import annotations

from datetime import datetime

import pandera.polars as pa
import polars as pl

from columnar_etl.entities.base import (
    FILTERED,
    TRANSFORM_ERRORS,
    Entity,
    SourceSpec,
    carry_row_id,
    rule,
)
from columnar_etl.expressions import (
    coalesce_dates,
    is_empty,
    join_messages,
    map_codes,
    message_if,
    parse_float,
    parse_int,
    strip,
    valid_json,
)

__all__ = ["CUTOFF", "ENTITY", "STATUS_CODES", "contract", "transform"]

SOURCE = SourceSpec(
    table="orders",
    id_column="order_id",
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
#: Hidden contract column: the per-item rule messages of a row, null when every item is fine.
ITEM_ERRORS = "_item_errors"

_ITEM = pl.Struct({"product_id": pl.String, "quantity": pl.String, "price": pl.String})

# An array of flat objects (scalar member values only), the shape items JSON must have.
_STR = r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'
_NUM = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
_WS = r"[ \t\n\r]*"
_MEMBER = f"{_STR}{_WS}:{_WS}(?:{_STR}|{_NUM}|true|false|null)"
_OBJECT = rf"\{{{_WS}(?:{_MEMBER}(?:{_WS},{_WS}{_MEMBER})*)?{_WS}\}}"
ITEMS_SHAPE = rf"^{_WS}\[{_WS}(?:{_OBJECT}(?:{_WS},{_WS}{_OBJECT})*)?{_WS}\]{_WS}$"


def _delimited_items(raw: pl.Expr) -> pl.Expr:
    """``P1:2:9.99|P2:1:3.50`` -> list of item structs; parts with < 3 fields are skipped."""
    fields = raw.str.split("|").list.eval(
        pl.element().filter(pl.element().str.contains(":", literal=True)).str.split(":")
    )
    complete = fields.list.eval(pl.element().filter(pl.element().list.len() >= 3))

    def field(i: int) -> pl.Expr:
        return strip(pl.element().list.get(i, null_on_oob=True))

    return complete.list.eval(pl.struct(product_id=field(0), quantity=field(1), price=field(2)))


def _item_messages(items: pl.Expr, *, parse_only: bool) -> pl.Expr:
    """Per-item rule messages ("Item 2: invalid price"), joined; null when there are none."""
    item = pl.element().struct.field
    n = (pl.int_range(pl.len()) + 1).cast(pl.String)

    def say(condition: pl.Expr, text: str) -> pl.Expr:
        return message_if(condition, pl.concat_str(pl.lit("Item "), n, pl.lit(f": {text}")))

    quantity, price = parse_int(item("quantity")), parse_float(item("price"))
    checks = [
        say(quantity.is_null(), "invalid quantity"),
        say(price.is_null(), "invalid price"),
    ]
    if not parse_only:
        checks = [
            say(is_empty(item("product_id")), "product_id is required"),
            checks[0],
            say(quantity <= 0, "quantity must be positive"),
            checks[1],
            say(price < 0, "price cannot be negative"),
        ]
    per_item = items.list.eval(join_messages(*checks)).list.drop_nulls()
    return pl.when(per_item.list.len() > 0).then(per_item.list.join("; "))


def _items_json(items: pl.Expr) -> pl.Expr:
    item = pl.element().struct.field
    encoded = items.list.eval(
        pl.struct(
            product_id=item("product_id"),
            quantity=parse_int(item("quantity")),
            price=parse_float(item("price")),
        ).struct.json_encode()
    )
    return pl.concat_str(pl.lit("["), encoded.list.join(","), pl.lit("]"))


def transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Legacy orders -> target rows; pure Polars."""
    c = pl.col
    raw = c("order_items")
    is_json = valid_json(raw)
    well_formed = is_json & raw.str.contains(ITEMS_SHAPE)
    delimited = ~is_empty(raw) & ~is_json
    items = (
        pl.when(is_empty(raw))
        .then(pl.lit([], dtype=pl.List(_ITEM)))
        .when(well_formed)
        .then(pl.when(well_formed).then(raw).str.json_decode(pl.List(_ITEM)))
        .when(delimited)
        .then(_delimited_items(raw))
    )
    order_date = coalesce_dates(c("order_date"))
    item_total = items.list.eval(
        parse_int(pl.element().struct.field("quantity"))
        * parse_float(pl.element().struct.field("price"))
    ).list.sum()
    mapped = map_codes(lf, "status", STATUS_CODES, output="status", default="pending")
    return mapped.select(
        carry_row_id(),
        legacy_id=c("order_id").cast(pl.String),
        customer_legacy_id=c("customer_id").cast(pl.String),
        order_number=pl.when(is_empty(c("order_number")))
        .then(pl.concat_str(pl.lit("ORD-"), c("order_id").cast(pl.String)))
        .otherwise(c("order_number")),
        total=pl.coalesce(parse_float(c("order_total")), item_total.cast(pl.Float64)),
        status=c("status"),
        order_date=order_date,
        items=_items_json(items),
        **{
            ITEM_ERRORS: _item_messages(items, parse_only=False),
            FILTERED: (order_date < CUTOFF).fill_null(False),
            TRANSFORM_ERRORS: join_messages(
                message_if(
                    ~is_empty(c("order_date")) & order_date.is_null(),
                    "order_date: unrecognised date",
                ),
                message_if(
                    ~is_empty(raw) & is_json & ~well_formed,
                    "order_items: JSON is not an array of flat objects",
                ),
                pl.when(delimited).then(_item_messages(items, parse_only=True)),
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
    required_messages={
        "customer_legacy_id": "customer_legacy_id is required",
        "order_date": "order_date is required",
    },
)
