"""A user's own migration, declared only through columnar_etl's public API.

A lending library's legacy database: members, and the loans that point at them. Nothing here
is known to the package; ``etl run --migration tests/library_migration.py`` finds it.
"""

from __future__ import annotations

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
    reads,
    rule,
)

MEMBERS = SourceSpec(
    "lib_members",
    "member_no",
    {"member_no": pl.Int64, "full_name": pl.String, "joined": pl.String, "state": pl.String},
)
LOANS = SourceSpec(
    "lib_loans",
    "loan_id",
    {"loan_id": pl.Int64, "member_no": pl.Int64, "title": pl.String, "fee": pl.String},
)


def _unparsed(text: pl.Expr, parsed: pl.Expr, message: str) -> pl.Expr:
    """``message`` where ``text`` holds something that did not parse, else null."""
    return pl.when(text.is_not_null() & parsed.is_null()).then(pl.lit(message))


@reads(MEMBERS)
def members_transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Legacy members -> target rows: names trimmed, dates read, deleted members left out."""
    joined = pl.col("joined").str.strptime(pl.Datetime("us"), "%Y-%m-%d", strict=False)
    return lf.select(
        carry_row_id(),
        pl.col("member_no").cast(pl.String).alias("legacy_id"),
        pl.col("full_name").str.strip_chars().alias("name"),
        joined.alias("joined_at"),
        **{
            FILTERED: pl.col("state").eq("deleted").fill_null(False),
            TRANSFORM_ERRORS: _unparsed(pl.col("joined"), joined, "joined: not a date"),
        },
    )


@reads(LOANS)
def loans_transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Legacy loans -> target rows: the fee read as a number of the currency."""
    fee = pl.col("fee").str.strip_chars().cast(pl.Float64, strict=False)
    return lf.select(
        carry_row_id(),
        pl.col("loan_id").cast(pl.String).alias("legacy_id"),
        pl.col("member_no").cast(pl.String).alias("member_legacy_id"),
        pl.col("title"),
        fee.alias("fee"),
        **{
            FILTERED: pl.lit(False),
            TRANSFORM_ERRORS: _unparsed(pl.col("fee"), fee, "fee: not a number"),
        },
    )


def members_contract(as_of: object) -> pa.DataFrameSchema:
    """Valid members: a name of two characters or more."""
    del as_of
    named = pl.col("name").str.len_chars() >= 2
    return pa.DataFrameSchema(
        {
            "legacy_id": pa.Column(pl.String),
            "name": pa.Column(pl.String, checks=rule("name: at least 2 characters", named)),
            "joined_at": pa.Column(pl.Datetime("us"), nullable=True),
        }
    )


def loans_contract(as_of: object) -> pa.DataFrameSchema:
    """Valid loans: a title, a fee that is not negative."""
    del as_of
    return pa.DataFrameSchema(
        {
            "legacy_id": pa.Column(pl.String),
            "member_legacy_id": pa.Column(pl.String),
            "title": pa.Column(pl.String),
            "fee": pa.Column(pl.Float64, checks=rule("fee: negative", pl.col("fee") >= 0)),
        }
    )


# Declared in this order on purpose: the migration runs members first, as loans reference them.
loans = Entity(
    name="loans",
    source=LOANS,
    transform=loans_transform,
    contract=loans_contract,
    target_table="loans",
    indexes=(Index("idx_loans_member_id", ("member_id",)),),
    references=(Reference("member_legacy_id", to="members.legacy_id", sets="member_id"),),
)
members = Entity(
    name="members",
    source=MEMBERS,
    transform=members_transform,
    contract=members_contract,
    target_table="members",
    indexes=(Index("idx_members_name", ("name",)),),
)
