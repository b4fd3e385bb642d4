"""Customers: legacy ``customers`` -> target ``customers`` (rules: docs/rules.md#customers)."""

from __future__ import annotations

from datetime import datetime

import pandera.polars as pa
import polars as pl

from columnar_etl import (
    FILTERED,
    TRANSFORM_ERRORS,
    Entity,
    SourceSpec,
    carry_row_id,
    general_dates,
    on_rows,
    reads,
    rule,
)
from columnar_etl.expressions import (
    clean_email,
    clean_name,
    format_phone,
    is_empty,
    join_messages,
    map_codes,
    message_if,
    padded_dates,
    strip,
)

__all__ = ["ENTITY", "STATUS_CODES", "contract", "transform"]

SOURCE = SourceSpec(
    table="customers",
    key="customer_id",
    schema={
        "customer_id": pl.Int64,
        "customer_name": pl.String,
        "email_address": pl.String,
        "phone_number": pl.String,
        "street_address": pl.String,
        "city": pl.String,
        "state_province": pl.String,
        "zip_postal": pl.String,
        "country": pl.String,
        "status_code": pl.String,
        "active": pl.Int64,
        "created_date": pl.String,
        "last_modified": pl.String,
    },
)

STATUS_CODES = {
    "1": "active",
    "A": "active",
    "2": "inactive",
    "I": "inactive",
    "3": "suspended",
    "S": "suspended",
    "4": "pending",
    "P": "pending",
}
EMAIL_PATTERN = r"^[^@]+@[^@]+\.[^@]+$"


def _text_or(column: str, default: str) -> pl.Expr:
    raw = pl.col(column)
    return pl.when(is_empty(raw)).then(pl.lit(default)).otherwise(strip(raw))


# Each date column: its zero-padded reading, and the general one for the rows that need it.
_DATES = {
    "created_date": ("_created", "_created_general"),
    "last_modified": ("_modified", "_modified_general"),
}


def _date(column: str) -> pl.Expr:
    padded, general = _DATES[column]
    return pl.coalesce(pl.col(padded), pl.col(general))


def _unparsed_date(column: str) -> pl.Expr:
    bad = ~is_empty(pl.col(column)) & _date(column).is_null()
    return message_if(bad, f"{column}: unrecognised date")


@reads(SOURCE)
def transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Legacy customers -> target rows; pure Polars.

    Dates are read by the zero-padded fast path, and by the general parser only on the rows
    that it leaves unread.
    """
    c = pl.col
    address = pl.struct(
        street=_text_or("street_address", ""),
        city=_text_or("city", ""),
        state=_text_or("state_province", ""),
        postal_code=_text_or("zip_postal", ""),
        country=_text_or("country", "US"),
    )
    mapped = map_codes(lf, "status_code", STATUS_CODES, output="status", default="active")
    staged = mapped.with_columns(
        padded_dates(c(column)).alias(padded) for column, (padded, _) in _DATES.items()
    )
    dated = on_rows(
        staged,
        *(general_dates(column, padded, general) for column, (padded, general) in _DATES.items()),
    )
    return dated.select(
        carry_row_id(),
        legacy_id=c("customer_id").cast(pl.String),
        name=clean_name(c("customer_name"), "Unknown Customer"),
        email=clean_email(c("email_address")),
        phone=format_phone(c("phone_number")),
        address=address.struct.json_encode(),
        status=c("status"),
        created_at=_date("created_date"),
        updated_at=_date("last_modified"),
        **{
            FILTERED: (c("active") != 1).fill_null(True),
            TRANSFORM_ERRORS: join_messages(
                _unparsed_date("created_date"), _unparsed_date("last_modified")
            ),
        },
    )


def contract(as_of: datetime) -> pa.DataFrameSchema:
    """Valid target customers, judged at ``as_of``."""
    name_ok = strip(pl.col("name")).str.len_chars() >= 2
    return pa.DataFrameSchema(
        {
            "legacy_id": pa.Column(pl.String),
            "name": pa.Column(
                pl.String,
                checks=rule("Name is required and must be at least 2 characters", name_ok),
            ),
            "email": pa.Column(
                pl.String,
                checks=rule("Invalid email format", pl.col("email").str.contains(EMAIL_PATTERN)),
            ),
            "phone": pa.Column(
                pl.String,
                nullable=True,
                checks=rule(
                    "Phone number must be at least 10 digits",
                    pl.col("phone").str.len_chars() >= 10,
                ),
            ),
            "address": pa.Column(pl.String),
            "status": pa.Column(
                pl.String, checks=pa.Check.isin(sorted(set(STATUS_CODES.values())))
            ),
            "created_at": pa.Column(
                pl.Datetime("us"),
                checks=pa.Check.le(as_of, error="created_at cannot be in the future"),
            ),
            "updated_at": pa.Column(pl.Datetime("us"), nullable=True),
        }
    )


ENTITY = Entity(
    name="customers",
    source=SOURCE,
    transform=transform,
    contract=contract,
    target_table="customers",
    unique_keys=("legacy_id", "email"),
    json_columns=("address",),
    required_messages={"email": "Email is required", "created_at": "created_at is required"},
    defaults={"address": "{}", "status": "active"},
)
