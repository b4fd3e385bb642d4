"""Products: legacy ``products`` -> target ``products`` (rules: docs/rules.md#products)."""

from __future__ import annotations

from datetime import datetime

import pandera.polars as pa
import polars as pl

from columnar_etl import (
    FILTERED,
    TRANSFORM_ERRORS,
    Entity,
    Index,
    SourceSpec,
    carry_row_id,
    reads,
    rule,
)
from columnar_etl.expressions import (
    is_empty,
    join_messages,
    json_string,
    keep_word_chars,
    message_if,
    parse_float,
    strip,
    title_case,
    valid_json,
)

__all__ = ["CATEGORIES", "ENTITY", "contract", "transform"]

SOURCE = SourceSpec(
    table="products",
    key="product_id",
    schema={
        "product_id": pl.Int64,
        "product_code": pl.String,
        "product_name": pl.String,
        "description": pl.String,
        "unit_price": pl.String,
        "category": pl.String,
        "status": pl.String,
        "product_attributes": pl.String,
    },
)

CATEGORIES = {
    "electronics": "Electronics",
    "electronic": "Electronics",
    "computers": "Electronics",
    "clothing": "Apparel",
    "clothes": "Apparel",
    "apparel": "Apparel",
    "books": "Books",
    "book": "Books",
}
ACTIVE_VALUES = ("1", "active", "A", "available", "Y", "yes")


def _sku(code: pl.Expr, product_id: pl.Expr) -> pl.Expr:
    cleaned = keep_word_chars(code.str.to_uppercase(), r"\-")
    fallback = pl.concat_str(pl.lit("PROD-"), product_id.cast(pl.String))
    return pl.when(is_empty(code) | (cleaned == "")).then(fallback).otherwise(cleaned)


def _category(raw: pl.Expr) -> pl.Expr:
    lowered = strip(raw).str.to_lowercase()
    mapped = lowered.replace_strict(CATEGORIES, default=title_case(lowered), return_dtype=pl.String)
    return pl.when(is_empty(raw)).then(pl.lit("Uncategorized")).otherwise(mapped)


def _pairs_as_json(raw: pl.Expr) -> pl.Expr:
    """``k1=v1;k2=v2`` as a JSON object text; parts without '=' are skipped."""
    # Elementwise work inside list.eval only (a filter there would run once per row).
    parts = raw.str.split(";").list.filter(pl.element().str.contains("=", literal=True))
    pair = pl.element().str.splitn("=", 2).struct.field
    member = pl.concat_str(
        json_string(strip(pair("field_0"))),
        pl.lit(":"),
        json_string(strip(pair("field_1"))),
    )
    return pl.concat_str(pl.lit("{"), parts.list.eval(member).list.join(","), pl.lit("}"))


@reads(SOURCE)
def transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Legacy products -> target rows; pure Polars."""
    c = pl.col
    attrs = c("product_attributes")
    # Columns read by several expressions below are computed once, here: Polars does not
    # reliably share a repeated subexpression.
    staged = lf.with_columns(_is_json=valid_json(attrs), _price=parse_float(c("unit_price")))
    is_json = c("_is_json")
    is_object = is_json & attrs.str.strip_chars(" \t\n\r").str.starts_with("{")
    price_missing = is_empty(c("unit_price"))
    return staged.select(
        carry_row_id(),
        legacy_id=c("product_id").cast(pl.String),
        sku=_sku(c("product_code"), c("product_id")),
        name=pl.when(is_empty(c("product_name")))
        .then(pl.lit("Unknown Product"))
        .otherwise(strip(c("product_name"))),
        description=pl.when(is_empty(c("description")))
        .then(pl.lit(""))
        .otherwise(strip(c("description"))),
        price=c("_price"),
        category=_category(c("category")),
        attributes=pl.when(is_empty(attrs))
        .then(pl.lit("{}"))
        .when(is_object)
        .then(attrs)
        .when(~is_json)
        .then(_pairs_as_json(pl.when(~is_json).then(attrs))),
        active=pl.when(is_empty(c("status")))
        .then(True)
        .otherwise(c("status").is_in(ACTIVE_VALUES)),
        **{
            FILTERED: pl.lit(False),
            TRANSFORM_ERRORS: join_messages(
                message_if(price_missing, "unit_price is required"),
                message_if(
                    ~price_missing & c("_price").is_null(),
                    "unit_price is not a number",
                ),
                message_if(
                    ~is_empty(attrs) & is_json & ~is_object,
                    "product_attributes: JSON is not an object",
                ),
            ),
        },
    )


def contract(as_of: datetime) -> pa.DataFrameSchema:
    """Valid target products (``as_of`` is unused: no product rule depends on the clock)."""
    del as_of
    return pa.DataFrameSchema(
        {
            "legacy_id": pa.Column(pl.String),
            "sku": pa.Column(
                pl.String,
                checks=rule(
                    "SKU must be at least 3 characters", pl.col("sku").str.len_chars() >= 3
                ),
            ),
            "name": pa.Column(
                pl.String,
                checks=rule(
                    "Product name is required and must be at least 2 characters",
                    strip(pl.col("name")).str.len_chars() >= 2,
                ),
            ),
            "description": pa.Column(pl.String),
            "price": pa.Column(
                pl.Float64,
                checks=[
                    pa.Check.ge(0, error="Price cannot be negative"),
                    pa.Check.le(100_000, error="Price seems unreasonably high"),
                ],
            ),
            "category": pa.Column(
                pl.String, checks=rule("Category is required", pl.col("category") != "")
            ),
            "attributes": pa.Column(pl.String),
            "active": pa.Column(pl.Boolean),
        }
    )


ENTITY = Entity(
    name="products",
    source=SOURCE,
    transform=transform,
    contract=contract,
    target_table="products",
    unique_keys=("legacy_id", "sku"),
    json_columns=("attributes",),
    indexes=(Index("idx_products_category", ("category",)),),
    defaults={"description": "", "attributes": "{}", "active": True},
)
