"""The messy legacy database generator: deterministic, chunkable, and as dirty as documented."""

from __future__ import annotations

import re
from datetime import datetime

import polars as pl
import pytest

from columnar_etl import generate as gen
from columnar_etl.entities import customers, orders, products
from columnar_etl.expressions import coalesce_dates, strip
from columnar_etl.generate import DIRT, Sizes, generate, iter_orders, sizes_for

SCHEMAS = {
    "customers": customers.SOURCE,
    "products": products.SOURCE,
    "orders": orders.SOURCE,
}
ROWS = 5_000
# Enough rows that even the 1% product dirt (1,000 products) shows up many times over.
DIRTY_ROWS = 20_000


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    return generate(ROWS, seed=7)


@pytest.fixture(scope="module")
def dirty() -> dict[str, pl.DataFrame]:
    return generate(DIRTY_ROWS)


def count(frame: pl.DataFrame, condition: pl.Expr) -> int:
    return frame.filter(condition.fill_null(False)).height


# --- shape, determinism, chunking ---------------------------------------------------------------


def test_sizes_for() -> None:
    assert sizes_for(1_000) == Sizes(customers=200, products=50, orders=1_000)
    assert sizes_for(10) == Sizes(customers=20, products=20, orders=10)


def test_frames_have_exactly_the_source_schema(tables: dict[str, pl.DataFrame]) -> None:
    assert set(tables) == set(SCHEMAS)
    sizes = sizes_for(ROWS)
    for name, spec in SCHEMAS.items():
        assert tables[name].schema == pl.Schema(spec.schema), name
        assert tables[name].height == getattr(sizes, name)


def test_same_seed_gives_identical_frames(tables: dict[str, pl.DataFrame]) -> None:
    again = generate(ROWS, seed=7)
    for name, frame in tables.items():
        assert frame.equals(again[name]), name


def test_different_seed_gives_different_frames(tables: dict[str, pl.DataFrame]) -> None:
    other = generate(ROWS, seed=8)
    for name, frame in tables.items():
        assert not frame.equals(other[name]), name


@pytest.mark.parametrize("chunk", [1, 999, 1_234, 5_000, 10**6])
def test_chunked_orders_equal_generated_orders(monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    # Small random blocks, so chunks straddle block boundaries and ids carry across blocks.
    monkeypatch.setattr(gen, "_BLOCK", 1_000)
    rows = 5_000 if chunk > 1 else 1_500
    expected = generate(rows, seed=3)["orders"]
    chunks = list(iter_orders(rows, seed=3, chunk=chunk))
    assert all(c.height == chunk for c in chunks[:-1])
    assert 0 < chunks[-1].height <= chunk
    assert pl.concat(chunks).equals(expected)


def test_default_chunking_equals_generate() -> None:
    expected = generate(ROWS, seed=5)["orders"]
    assert pl.concat(iter_orders(ROWS, seed=5, chunk=2_000)).equals(expected)


def test_zero_rows_and_bad_arguments() -> None:
    empty = generate(0)["orders"]
    assert empty.height == 0
    assert empty.schema == pl.Schema(orders.SOURCE.schema)
    assert list(iter_orders(0)) == []
    with pytest.raises(ValueError, match="chunk"):
        next(iter_orders(10, chunk=0))
    with pytest.raises(ValueError, match="rows"):
        generate(-1)
    with pytest.raises(ValueError, match="seed"):
        generate(10, seed=-1)


def test_ids_increase_strictly_with_huge_gaps() -> None:
    tables = generate(DIRTY_ROWS)
    for name, spec in SCHEMAS.items():
        ids = tables[name][spec.id_column]
        gaps = ids.diff().drop_nulls()
        assert ids.null_count() == 0
        assert ids.n_unique() == ids.len(), name
        assert (gaps > 0).all(), name
        assert (gaps == 1).mean() > 0.9, name  # mostly dense ...
    for name in ("customers", "orders"):  # ... but sparse and skewed
        gaps = tables[name][SCHEMAS[name].id_column].diff().drop_nulls()
        assert (gaps > 1_000).any(), name


# --- dirt ---------------------------------------------------------------------------------------


def test_dirt_rates_are_fractions() -> None:
    assert DIRT
    assert all(0 < rate < 0.5 for rate in DIRT.values())


def test_dirt_names_are_all_used() -> None:
    source = gen.__file__
    with open(source, encoding="utf-8") as handle:
        text = handle.read()
    for name in DIRT:
        assert f'DIRT["{name}"]' in text, name


def test_customer_dirt(dirty: dict[str, pl.DataFrame]) -> None:
    frame = dirty["customers"]
    c = pl.col
    name, email, phone = c("customer_name"), c("email_address"), c("phone_number")
    clean_email = strip(email).str.to_lowercase()
    checks = {
        "junk in names": name.str.contains(r"[@#!*$%&?]"),
        "ALL CAPS names": (name == name.str.to_uppercase()) & name.str.contains("[A-Z]{3}"),
        "lower-case names": (name == name.str.to_lowercase()) & name.str.contains("[a-z]{3}"),
        "mIxEd names": name.str.contains("[a-z][A-Z][a-z][A-Z]"),
        "extra spaces": name.str.contains(r"^\s|\s\s|\t"),
        "empty names": name.is_null() | (strip(name) == ""),
        "mixed-case emails": email != email.str.to_lowercase(),
        "padded emails": email != strip(email),
        "emails without @": ~email.str.contains("@") & (strip(email) != ""),
        "emails without a dot in the domain": email.str.contains(r"@[^.]+$"),
        "missing emails": email.is_null() | (email == ""),
        "short phones": phone.str.contains(r"^\d{4,7}$"),
        "missing phones": phone.is_null() | (phone == ""),
        "inactive": c("active") == 0,
        "null active": c("active").is_null(),
        "unknown status": c("status_code").is_in(["9", "X", ""]),
        "null status": c("status_code").is_null(),
        "status letters": c("status_code").is_in(["A", "I", "S", "P"]),
        "status digits": c("status_code").is_in(["1", "2", "3", "4"]),
        "garbage dates": c("created_date").is_in(["not a date", "2023-13-45"]),
        "future dates": coalesce_dates(c("created_date")).dt.year() >= 2031,
        "missing dates": c("created_date").is_null() | (c("created_date") == ""),
    }
    for what, condition in checks.items():
        assert count(frame, condition) > 0, what
    shared = frame.filter(clean_email != "").group_by(clean_email).len()
    assert shared.filter(pl.col("len") > 1).height > 0, "no email shared by two customers"
    inactive_share = count(frame, c("active") == 0) / frame.height
    assert abs(inactive_share - DIRT["customer_inactive"]) < 0.03


@pytest.mark.parametrize(
    ("example", "pattern"),
    [
        ("555-123-4567", r"^\d{3}-\d{3}-\d{4}$"),
        ("(555) 123 4567", r"^\(\d{3}\) \d{3} \d{4}$"),
        ("5551234567", r"^\d{10}$"),
        ("+1 555 123 4567", r"^\+1 \d{3} \d{3} \d{4}$"),
        ("1-555-123-4567", r"^1-\d{3}-\d{3}-\d{4}$"),
        ("555.123.4567", r"^\d{3}\.\d{3}\.\d{4}$"),
    ],
)
def test_every_phone_format_appears(
    dirty: dict[str, pl.DataFrame], example: str, pattern: str
) -> None:
    assert re.fullmatch(pattern, example)
    assert count(dirty["customers"], pl.col("phone_number").str.contains(pattern)) > 0


def test_customers_are_created_between_2015_and_2025(dirty: dict[str, pl.DataFrame]) -> None:
    years = dirty["customers"].select(coalesce_dates(pl.col("created_date")).dt.year()).to_series()
    usual = years.filter(years < 2031)
    assert usual.min() == 2015
    assert usual.max() == 2025


@pytest.mark.parametrize("column", ["created_date", "last_modified"])
def test_every_date_format_appears(dirty: dict[str, pl.DataFrame], column: str) -> None:
    text = pl.col(column)
    patterns = {
        "%Y-%m-%d %H:%M:%S": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
        "%Y-%m-%d": r"^\d{4}-\d{2}-\d{2}$",
        "%m/%d/%Y %H:%M:%S": r"^\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$",
        "%m/%d/%Y": r"^(0\d|1[0-2])/\d{2}/\d{4}$",
        "%d/%m/%Y (day > 12)": r"^(1[3-9]|2\d|3[01])/\d{2}/\d{4}$",
        "%Y%m%d": r"^\d{8}$",
    }
    for fmt, pattern in patterns.items():
        assert count(dirty["customers"], text.str.contains(pattern)) > 0, fmt


def test_dates_parse_unless_garbage_or_missing(dirty: dict[str, pl.DataFrame]) -> None:
    for name, column in [
        ("customers", "created_date"),
        ("customers", "last_modified"),
        ("orders", "order_date"),
    ]:
        text = pl.col(column)
        unparsed = (text != "") & coalesce_dates(text).is_null() & ~text.is_in(gen._GARBAGE_DATES)
        assert count(dirty[name], unparsed) == 0, column


def test_product_dirt(dirty: dict[str, pl.DataFrame]) -> None:
    frame = dirty["products"]
    c = pl.col
    code, price, category = c("product_code"), c("unit_price"), c("category")
    checks = {
        "lower-case or junk codes": code.str.contains(r"[a-z]|[^A-Za-z0-9\-]"),
        "empty codes": code.is_null() | (code == ""),
        "padded names": c("product_name") != strip(c("product_name")),
        "empty names": c("product_name").is_null() | (c("product_name") == ""),
        "padded descriptions": c("description") != strip(c("description")),
        "empty descriptions": c("description").is_null() | (c("description") == ""),
        "decimal prices": price.str.contains(r"^\d+\.\d{2}$"),
        "padded prices": price.str.contains(r"^\s+\d"),
        "n/a prices": price == "n/a",
        "empty prices": price.is_null() | (price == ""),
        "negative prices": price.str.starts_with("-"),
        "huge prices": price.str.strip_chars().cast(pl.Float64, strict=False) > 100_000,
        "other categories": category.is_in(["garden", "Toys"]),
        "empty categories": category.is_null() | (category == ""),
        "inactive status": c("status").is_in(["0", "inactive", "N"]),
        "null status": c("status").is_null(),
        "JSON object attributes": c("product_attributes").str.starts_with('{"'),
        "k=v attributes": c("product_attributes").str.contains(r"^\w+ ?= ?\w+;"),
        "JSON non-object attributes": c("product_attributes").is_in(["[1, 2]", '"text"']),
        "empty attributes": c("product_attributes").is_null() | (c("product_attributes") == ""),
    }
    for what, condition in checks.items():
        assert count(frame, condition) > 0, what
    for spelling in ["Electronics", " electronic ", "COMPUTERS", "clothes", "Apparel", "book"]:
        assert count(frame, category == spelling) > 0, spelling
    for value in ["1", "active", "A", "available", "Y", "yes"]:
        assert count(frame, c("status") == value) > 0, value
    sku = code.str.to_uppercase().str.replace_all(r"[^\w\-]", "")
    shared = frame.filter(sku.str.len_chars() >= 3).group_by(sku).len()
    assert shared.filter(pl.col("len") > 1).height > 0, "no SKU shared after cleaning"


def test_order_dirt(dirty: dict[str, pl.DataFrame]) -> None:
    frame = dirty["orders"]
    c = pl.col
    items, total = c("order_items"), c("order_total")
    checks = {
        "null customers": c("customer_id").is_null(),
        "missing order numbers": c("order_number").is_null() | (c("order_number") == ""),
        "decimal totals": total.str.contains(r"^\d+\.\d{2}$"),
        "n/a totals": total == "n/a",
        "empty totals": total.is_null() | (total == ""),
        "zero totals": total == "0.00",
        "unknown status": ~c("status").is_in(gen._ORDER_STATUS),
        "JSON items": items.str.starts_with('[{"product_id": "P'),
        "delimited items": items.str.contains(r"^P\d+:\d+:\d+\.\d{2}(\|P\d+:\d+:\d+\.\d{2})+$"),
        "broken quantity": items.str.contains(r"^P\d+:x:"),
        "truncated JSON": items.str.contains(r'^\[\{"product_id": "P\d+", $'),
        "wrong separator": items.str.contains(r"^P\d+;\d+;"),
        "JSON non-array": items == '{"a": 1}',
        "empty items": items.is_null() | (items == ""),
        "garbage dates": c("order_date").is_in(["not a date", "2023-13-45"]),
        "missing dates": c("order_date").is_null() | (c("order_date") == ""),
    }
    for what, condition in checks.items():
        assert count(frame, condition) > 0, what
    for status in gen._ORDER_STATUS:
        assert count(frame, c("status") == status) > 0, status


def test_order_items_hold_one_to_four_items(dirty: dict[str, pl.DataFrame]) -> None:
    json_items = dirty["orders"].filter(
        pl.col("order_items").str.starts_with("[{").fill_null(False)
        & pl.col("order_items").str.ends_with("}]").fill_null(False)
    )
    sizes = json_items.select(pl.col("order_items").str.count_matches('"product_id"')).to_series()
    assert set(sizes.unique()) == {1, 2, 3, 4}


def test_order_dates_and_customers(dirty: dict[str, pl.DataFrame]) -> None:
    frame = dirty["orders"]
    dates = frame.select(coalesce_dates(pl.col("order_date"))).to_series().drop_nulls()
    pre_2020 = (dates < datetime(2020, 1, 1)).mean()
    assert abs(pre_2020 - DIRT["order_date_pre_2020"]) < 0.02
    assert dates.min() >= datetime(2015, 1, 1)
    assert dates.max() <= datetime.now()  # orders are never in the future

    known = dirty["customers"]["customer_id"]
    ids = frame["customer_id"].drop_nulls()
    unknown = (~ids.is_in(known.implode())).mean()
    assert 0.01 < unknown < 0.03
    assert 0.005 < frame["customer_id"].null_count() / frame.height < 0.02
