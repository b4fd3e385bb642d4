"""A user's own migration, declared only through columnar_etl's public API.

A lending library's legacy database, with a key of every shape: members (an integer key),
books (a text ISBN), the loans that point at both (a composite key: member, book and day) and
a visits log without any key. Nothing here is known to the package;
``etl run --migration tests/library_migration.py`` finds it.
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
BOOKS = SourceSpec(
    "lib_books",
    "isbn",
    {"isbn": pl.String, "title": pl.String, "published": pl.String},
)
LOANS = SourceSpec(
    "lib_loans",
    ("member_no", "isbn", "loaned_on"),
    {"member_no": pl.Int64, "isbn": pl.String, "loaned_on": pl.String, "fee": pl.String},
)
VISITS = SourceSpec(
    "lib_visits",
    None,
    {"member_no": pl.Int64, "visited": pl.String, "note": pl.String},
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


@reads(BOOKS)
def books_transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Legacy books -> target rows: the ISBN is the key, the year read as a number."""
    year = pl.col("published").str.strip_chars().cast(pl.Int32, strict=False)
    return lf.select(
        carry_row_id(),
        pl.col("isbn").alias("legacy_id"),
        pl.col("title").str.strip_chars(),
        year.alias("published"),
        **{
            FILTERED: pl.lit(False),
            TRANSFORM_ERRORS: _unparsed(pl.col("published"), year, "published: not a year"),
        },
    )


@reads(LOANS)
def loans_transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Legacy loans -> target rows: the fee read as a number of the currency."""
    fee = pl.col("fee").str.strip_chars().cast(pl.Float64, strict=False)
    return lf.select(
        carry_row_id(),
        LOANS.record_id().alias("legacy_id"),  # the composite key, as rejects name it
        pl.col("member_no").cast(pl.String).alias("member_legacy_id"),
        pl.col("isbn"),
        pl.col("loaned_on"),
        fee.alias("fee"),
        **{
            FILTERED: pl.lit(False),
            TRANSFORM_ERRORS: _unparsed(pl.col("fee"), fee, "fee: not a number"),
        },
    )


@reads(VISITS)
def visits_transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    """The visits log: no key, so every row is loaded as it is, repeats included."""
    day = pl.col("visited").str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    return lf.select(
        carry_row_id(),
        pl.col("member_no").cast(pl.String).alias("member_legacy_id"),
        day.alias("visited_on"),
        pl.col("note"),
        **{
            FILTERED: pl.lit(False),
            TRANSFORM_ERRORS: _unparsed(pl.col("visited"), day, "visited: not a date"),
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


def books_contract(as_of: object) -> pa.DataFrameSchema:
    """Valid books: a title."""
    del as_of
    titled = pl.col("title").str.len_chars() > 0
    return pa.DataFrameSchema(
        {
            "legacy_id": pa.Column(pl.String),
            "title": pa.Column(pl.String, checks=rule("title: empty", titled)),
            "published": pa.Column(pl.Int32, nullable=True),
        }
    )


def loans_contract(as_of: object) -> pa.DataFrameSchema:
    """Valid loans: a fee that is not negative."""
    del as_of
    return pa.DataFrameSchema(
        {
            "legacy_id": pa.Column(pl.String),
            "member_legacy_id": pa.Column(pl.String),
            "isbn": pa.Column(pl.String),
            "loaned_on": pa.Column(pl.String),
            "fee": pa.Column(pl.Float64, checks=rule("fee: negative", pl.col("fee") >= 0)),
        }
    )


def visits_contract(as_of: object) -> pa.DataFrameSchema:
    """Any visit that names its day."""
    del as_of
    return pa.DataFrameSchema(
        {
            "member_legacy_id": pa.Column(pl.String, nullable=True),
            "visited_on": pa.Column(pl.Date),
            "note": pa.Column(pl.String, nullable=True),
        }
    )


# Declared in this order on purpose: the migration runs members and books first, as loans
# reference them.
loans = Entity(
    name="loans",
    source=LOANS,
    transform=loans_transform,
    contract=loans_contract,
    target_table="loans",
    indexes=(Index("idx_loans_member_id", ("member_id",)),),
    references=(
        Reference("member_legacy_id", to="members.legacy_id", sets="member_id"),
        Reference("isbn", to="books.legacy_id", sets="book_id"),
    ),
)
visits = Entity(
    name="visits",
    source=VISITS,
    transform=visits_transform,
    contract=visits_contract,
    target_table="visits",
    unique_keys=(),  # a log: nothing in it is unique
    references=(Reference("member_legacy_id", to="members.legacy_id", sets="member_id"),),
)
books = Entity(
    name="books",
    source=BOOKS,
    transform=books_transform,
    contract=books_contract,
    target_table="books",
)
members = Entity(
    name="members",
    source=MEMBERS,
    transform=members_transform,
    contract=members_contract,
    target_table="members",
    indexes=(Index("idx_members_name", ("name",)),),
)
