"""The entities through the vectorized path: reference cases, row accounting, a new entity."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pandera.polars as pa
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from columnar_etl import entities
from columnar_etl.contracts import ERROR_MESSAGE, ERROR_TYPE, split
from columnar_etl.declare import (
    FILTERED,
    POSITION,
    ROW_ID,
    TRANSFORM_ERRORS,
    Entity,
    SourceSpec,
    carry_row_id,
    on_rows,
    rule,
)
from columnar_etl.entities import order_items
from columnar_etl.errors import ConfigError
from columnar_etl.expressions import clean_name, is_empty, join_messages, message_if, parse_float

AS_OF = datetime(2025, 6, 1, 12, 0, 0)
CUSTOMERS = entities.get("customers")
PRODUCTS = entities.get("products")
ORDERS = entities.get("orders")


def frame(entity: Entity, *rows: dict[str, Any]) -> pl.DataFrame:
    """A legacy frame of ``rows`` with the entity's source schema; missing columns are null."""
    columns = entity.source.schema
    return pl.DataFrame([{c: row.get(c) for c in columns} for row in rows], schema=columns)


def customer(customer_id: int, **values: Any) -> dict[str, Any]:
    good = {
        "customer_id": customer_id,
        "customer_name": "Jane Roe",
        "email_address": f"jane{customer_id}@example.com",
        "phone_number": "5551234567",
        "active": 1,
        "created_date": "2023-01-15 10:30:00",
    }
    return good | values


def order(order_id: int, **values: Any) -> dict[str, Any]:
    good = {
        "order_id": order_id,
        "customer_id": 1,
        "order_total": "10",
        "order_date": "2023-02-01",
        "order_items": "P1:1:10",
    }
    return good | values


# --------------------------------------------------------------------------------------------
# (a) The reference's test cases, through split()
# --------------------------------------------------------------------------------------------


def test_reference_customer_transformation() -> None:
    source = frame(
        CUSTOMERS,
        {
            "customer_id": 123,
            "customer_name": "  john DOE  ",
            "email_address": "JOHN@EXAMPLE.COM",
            "phone_number": "5551234567",
            "street_address": "123 Main St",
            "status_code": "1",
            "active": 1,
            "created_date": "2023-01-15 10:30:00",
        },
    )
    result = split(source, CUSTOMERS, AS_OF)
    assert result.rejects.height == 0
    assert result.filtered == 0
    [row] = result.valid.to_dicts()
    address = json.loads(row.pop("address"))
    assert row == {
        "legacy_id": "123",
        "name": "John Doe",
        "email": "john@example.com",
        "phone": "(555) 123-4567",
        "status": "active",
        "created_at": datetime(2023, 1, 15, 10, 30),
        "updated_at": None,
    }
    assert address == {
        "street": "123 Main St",
        "city": "",
        "state": "",
        "postal_code": "",
        "country": "US",
    }


def test_reference_customer_validation_error() -> None:
    source = frame(CUSTOMERS, customer(1, customer_name="J", email_address="invalid-email"))
    result = split(source, CUSTOMERS, AS_OF)
    assert result.valid.height == 0
    assert result.rejects[ERROR_TYPE].to_list() == ["validation_error"]
    assert result.rejects[ERROR_MESSAGE].to_list() == [
        "Name is required and must be at least 2 characters; Invalid email format"
    ]


def test_reference_customer_transformation_error() -> None:
    source = frame(CUSTOMERS, customer(1, created_date="not-a-date"))
    result = split(source, CUSTOMERS, AS_OF)
    assert result.valid.height == 0
    assert result.rejects[ERROR_TYPE].to_list() == ["transformation_error"]
    assert result.rejects[ERROR_MESSAGE].to_list() == ["created_date: unrecognised date"]


def test_reference_order_transformation() -> None:
    source = frame(
        ORDERS,
        {
            "order_id": 456,
            "customer_id": 123,
            "order_number": "ORD-2023-001",
            "order_total": "199.99",
            "status": "SHIP",
            "order_date": "2023-02-01 14:30:00",
            "order_items": '[{"product_id": "P001", "quantity": 2, "price": 99.99}]',
        },
    )
    result = split(source, ORDERS, AS_OF)
    assert result.rejects.height == 0
    [row] = result.valid.to_dicts()
    items = json.loads(row.pop("items"))
    assert row == {
        "legacy_id": "456",
        "customer_legacy_id": "123",
        "order_number": "ORD-2023-001",
        "order_date": datetime(2023, 2, 1, 14, 30),
        "total": 199.99,
        "status": "shipped",
    }
    assert items == [{"product_id": "P001", "quantity": 2, "price": 99.99}]


# Clean rows take the fast path; these are the texts at its edges (prices ending in 0, no
# total, the largest clean quantity) and the same items in both source forms.
CLEAN_ITEMS = [
    '[{"product_id": "P001", "quantity": 2, "price": 99.90}]',
    '[{"product_id": "A b-1.", "quantity": 1, "price": 2.0}, '
    '{"product_id": "P2", "quantity": 999999999999999999, "price": 0.00}]',
    '[{"product_id": "P1", "quantity": 3, "price": 123456789.05}]',
    "[]",
    "P001:2:99.90",
    "A-1.:1:2.0|P2:999999999999999999:0.00|P3:10:0.5",
    "P1:3:123456789.05",
]


@pytest.mark.parametrize("order_total", ["12.30", "n/a", None])
def test_orders_fast_path_matches_general_path(order_total: str | None) -> None:
    rows = [
        order(i, order_items=items, order_total=order_total) for i, items in enumerate(CLEAN_ITEMS)
    ]
    source = frame(ORDERS, *rows).lazy()
    fast = ORDERS.transform(source).collect()
    assert fast[order_items.ITEM_ERRORS].null_count() == len(rows)
    general = on_rows(source, (pl.lit(True), order_items.general)).collect()
    # The same text, byte for byte, whichever path wrote it.
    assert fast["items"].to_list() == general[order_items.ITEMS].to_list()
    if order_total is None or order_total == "n/a":
        assert fast["total"].to_list() == general[order_items.ITEM_SUM].fill_null(0.0).to_list()
    assert json.loads(fast["items"][1]) == [
        {"product_id": "A b-1.", "quantity": 1, "price": 2.0},
        {"product_id": "P2", "quantity": 999999999999999999, "price": 0.0},
    ]
    assert fast["items"][4] == '[{"product_id": "P001", "quantity": 2, "price": 99.9}]'


# Items close to the fast path's edges: ids with the characters it refuses, quantities and
# prices around its limits, in either form.
_edge_id = st.text(st.sampled_from('P1 a.-_:|[]{}"\\é'), max_size=4)
_edge_quantity = st.sampled_from(["1", "2", "0", "-1", "07", "999999999999999999", "1" * 19])
_LARGEST_PRICES = ["123456789.05", "1234567890.5"]  # the largest clean one, and one digit more
_edge_price = st.sampled_from(
    ["9.99", "9.90", "2.00", "0.00", "0.0", "5", ".5", "5.", "-1.50", "1e2", "0.125", "1.0000"]
) | st.sampled_from(_LARGEST_PRICES)
_edge_item = st.tuples(_edge_id, _edge_quantity, _edge_price)


def _as_text(items: list[tuple[str, str, str]], json_form: bool) -> str:
    if not json_form:
        return "|".join(":".join(item) for item in items)
    parts = (
        f'{{"product_id": {json.dumps(i)}, "quantity": {q}, "price": {p}}}' for i, q, p in items
    )
    return "[" + ", ".join(parts) + "]"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(_edge_item, max_size=3), st.booleans()), min_size=1))
def test_orders_any_items_text_matches_the_general_path(
    texts: list[tuple[list[tuple[str, str, str]], bool]],
) -> None:
    rows = [
        order(n, order_items=_as_text(items, json_form), order_total="n/a")
        for n, (items, json_form) in enumerate(texts)
    ]
    source = frame(ORDERS, *rows).lazy()
    out = ORDERS.transform(source).collect()
    general = on_rows(source, (pl.lit(True), order_items.general)).collect()
    assert out["items"].to_list() == general[order_items.ITEMS].to_list()
    assert out["total"].to_list() == general[order_items.ITEM_SUM].fill_null(0.0).to_list()
    errors = out[order_items.ITEM_ERRORS].to_list()
    assert errors == general[order_items.ITEM_ERRORS].to_list()


def test_on_rows_computes_only_the_selected_rows() -> None:
    seen: list[int] = []

    def times(factor: int) -> Callable[[pl.LazyFrame], pl.LazyFrame]:
        def compute(rows: pl.LazyFrame) -> pl.LazyFrame:
            def count(df: pl.DataFrame) -> pl.DataFrame:
                seen.append(df.height)
                return df

            product = (pl.col("x") * factor).alias(f"x{factor}")
            return rows.map_batches(count).select(POSITION, product)

        return compute

    lf = pl.LazyFrame({"x": [1, 2, 3, 4]})
    out = on_rows(lf, (pl.col("x") % 2 == 0, times(2)), (pl.col("x") > 3, times(3)))
    assert out.collect().rows() == [(1, None, None), (2, 4, None), (3, None, None), (4, 8, 12)]
    assert sorted(seen) == [1, 2]


@pytest.mark.parametrize("entity", [CUSTOMERS, PRODUCTS, ORDERS], ids=lambda e: e.name)
def test_transform_reads_its_source_once(entity: Entity) -> None:
    calls: list[int] = []

    def count(df: pl.DataFrame) -> pl.DataFrame:
        calls.append(df.height)
        return df

    rows = {"customers": customer(1), "products": {"product_id": 1}, "orders": order(1)}
    source = frame(entity, rows[entity.name]).lazy().map_batches(count, schema=entity.source.schema)
    assert entity.transform(source).collect().height == 1
    assert calls == [1]


def test_reference_product_transformation() -> None:
    source = frame(
        PRODUCTS,
        {
            "product_id": 789,
            "product_code": "WIDGET-001",
            "product_name": "Super Widget",
            "description": "A super widget",
            "unit_price": "29.99",
            "category": "widgets",
            "status": "1",
            "product_attributes": '{"color": "blue", "size": "medium"}',
        },
    )
    result = split(source, PRODUCTS, AS_OF)
    assert result.rejects.height == 0
    [row] = result.valid.to_dicts()
    attributes = json.loads(row.pop("attributes"))
    assert row == {
        "legacy_id": "789",
        "sku": "WIDGET-001",
        "name": "Super Widget",
        "description": "A super widget",
        "price": 29.99,
        "category": "Widgets",
        "active": True,
    }
    assert attributes == {"color": "blue", "size": "medium"}


# --------------------------------------------------------------------------------------------
# (b) Every row lands in exactly one place
# --------------------------------------------------------------------------------------------


def test_customers_every_row_once() -> None:
    source = frame(
        CUSTOMERS,
        customer(1),
        customer(2, active=0),  # filtered
        customer(3, active=None),  # filtered
        customer(4, created_date="yesterday"),  # transformation error
        customer(5, email_address=None),  # validation error
        customer(6, customer_name="  ", phone_number="n/a"),  # validation error, two rules
        customer(7, active=2, created_date="garbage"),  # filter wins over the bad date
        customer(8, created_date="2030-01-01"),  # future: validation error
        customer(9, last_modified="2024-13-01"),  # transformation error
        customer(10),
    )
    result = split(source, CUSTOMERS, AS_OF)
    assert result.valid["legacy_id"].to_list() == ["1", "10"]
    assert result.filtered == 3
    assert result.rejects.select("customer_id", ERROR_TYPE, ERROR_MESSAGE).rows() == [
        (4, "transformation_error", "created_date: unrecognised date"),
        (5, "validation_error", "Email is required"),
        (
            6,
            "validation_error",
            "Name is required and must be at least 2 characters; "
            "Phone number must be at least 10 digits",
        ),
        (8, "validation_error", "created_at cannot be in the future"),
        (9, "transformation_error", "last_modified: unrecognised date"),
    ]
    assert result.valid.height + result.rejects.height + result.filtered == source.height


def test_orders_every_row_once() -> None:
    source = frame(
        ORDERS,
        order(1),
        order(2, order_date="2019-12-31 23:59:59"),  # filtered
        order(3, order_date="12/31/2019", order_items="{"),  # filtered before anything else
        order(4, order_items="P1:x:10"),  # transformation error
        order(5, customer_id=None),  # validation error
        order(6, order_items=""),  # validation error
        order(7, order_date="2020-01-01"),  # the cut-off itself is in scope
    )
    result = split(source, ORDERS, AS_OF)
    assert result.valid["legacy_id"].to_list() == ["1", "7"]
    assert result.filtered == 2
    assert result.rejects.select("order_id", ERROR_TYPE, ERROR_MESSAGE).rows() == [
        (4, "transformation_error", "Item 1: invalid quantity"),
        (5, "validation_error", "customer_legacy_id is required"),
        (6, "validation_error", "Order must have at least one item"),
    ]
    assert result.valid.height + result.rejects.height + result.filtered == source.height


# --------------------------------------------------------------------------------------------
# (c) A fourth entity is one module's worth of code
# --------------------------------------------------------------------------------------------

SUPPLIER_SOURCE = SourceSpec(
    table="suppliers",
    key="supplier_id",
    schema={"supplier_id": pl.Int64, "supplier_name": pl.String, "rating": pl.String},
)


def supplier_transform(lf: pl.LazyFrame) -> pl.LazyFrame:
    rating = parse_float(pl.col("rating"))
    return lf.select(
        carry_row_id(),
        legacy_id=pl.col("supplier_id").cast(pl.String),
        name=clean_name(pl.col("supplier_name"), "Unknown Supplier"),
        rating=rating,
        **{
            FILTERED: pl.lit(False),
            TRANSFORM_ERRORS: join_messages(
                message_if(~is_empty(pl.col("rating")) & rating.is_null(), "rating: not a number")
            ),
        },
    )


def supplier_contract(as_of: datetime) -> pa.DataFrameSchema:
    del as_of
    return pa.DataFrameSchema(
        {
            "legacy_id": pa.Column(pl.String),
            "name": pa.Column(
                pl.String,
                checks=rule("Name is too short", pl.col("name").str.len_chars() >= 2),
            ),
            "rating": pa.Column(
                pl.Float64,
                checks=[
                    pa.Check.ge(0, error="Rating cannot be negative"),
                    pa.Check.le(5, error="Rating cannot exceed 5"),
                ],
            ),
        }
    )


SUPPLIERS = Entity(
    name="suppliers",
    source=SUPPLIER_SOURCE,
    transform=supplier_transform,
    contract=supplier_contract,
    target_table="suppliers",
    required_messages={"rating": "Rating is required"},
)


@pytest.fixture
def suppliers() -> Iterator[Entity]:
    before = entities.names()
    entities.register(SUPPLIERS)
    yield SUPPLIERS
    del entities._REGISTRY["suppliers"]
    assert entities.names() == before


def test_new_entity_registers_and_splits(suppliers: Entity) -> None:
    assert entities.get("suppliers") is suppliers
    assert entities.names() == ("customers", "products", "orders", "suppliers")
    assert suppliers.target_columns == ("legacy_id", "name", "rating")
    source = pl.DataFrame(
        {
            "supplier_id": [1, 2, 3, 4, 5, 6],
            "supplier_name": ["  acme  CORP!! ", "x", "Bolt & Co", None, "Nuts", "Gears"],
            "rating": ["4.5", "3", "five", "5", "-1", None],
        },
        schema=SUPPLIER_SOURCE.schema,
    )
    result = split(source, entities.get("suppliers"), AS_OF)
    assert result.valid.to_dict(as_series=False) == {
        "legacy_id": ["1", "4"],
        "name": ["Acme Corp", "Unknown Supplier"],
        "rating": [4.5, 5.0],
    }
    assert result.rejects.select("supplier_id", ERROR_TYPE, ERROR_MESSAGE).rows() == [
        (2, "validation_error", "Name is too short"),
        (3, "transformation_error", "rating: not a number"),
        (5, "validation_error", "Rating cannot be negative"),
        (6, "validation_error", "Rating is required"),
    ]
    assert result.filtered == 0


def test_unknown_entity_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match="valid entities: customers, products, orders"):
        entities.get("suppliers")


# --------------------------------------------------------------------------------------------
# (d) transform on a plain legacy LazyFrame (notebook use)
# --------------------------------------------------------------------------------------------


def test_transform_without_row_id_is_lazy() -> None:
    calls: list[int] = []

    def count(df: pl.DataFrame) -> pl.DataFrame:
        calls.append(df.height)
        return df

    source = frame(PRODUCTS, {"product_id": 7, "product_code": "ab c!", "unit_price": " 2.50 "})
    lf = source.lazy().map_batches(count, schema=PRODUCTS.source.schema)
    out = PRODUCTS.transform(lf)
    assert isinstance(out, pl.LazyFrame)
    assert calls == []  # building the plan ran nothing
    assert ROW_ID not in out.collect_schema()
    collected = out.collect()
    assert calls == [1]
    expected = {
        "legacy_id": "7",
        "sku": "ABC",
        "name": "Unknown Product",
        "description": "",
        "price": 2.5,
        "category": "Uncategorized",
        "attributes": "{}",
        "active": True,
        FILTERED: False,
        TRANSFORM_ERRORS: None,
    }
    assert collected.columns == list(expected)
    assert collected.row(0, named=True) == expected


def test_customer_transform_without_row_id() -> None:
    out = CUSTOMERS.transform(frame(CUSTOMERS, customer(3, active=0)).lazy())
    assert isinstance(out, pl.LazyFrame)
    collected = out.collect()
    assert ROW_ID not in collected.columns
    assert collected.select("legacy_id", "name", FILTERED, TRANSFORM_ERRORS).rows() == [
        ("3", "Jane Roe", True, None)
    ]


# --------------------------------------------------------------------------------------------
# (e) Rejects keep the untouched source row
# --------------------------------------------------------------------------------------------


def test_rejects_keep_the_untouched_source_row() -> None:
    source = frame(
        CUSTOMERS,
        customer(
            1,
            customer_name="  j  ",
            email_address="  MIXED@Case ",
            phone_number=" (555) 123 ",
            street_address="  1 Main St ",
            country=" ca ",
            status_code=" I ",
            last_modified="2024-01-01",
        ),
        customer(2),
        customer(3, created_date=" 2023-01-15", city="\u3000Paris\u3000"),
    )
    result = split(source, CUSTOMERS, AS_OF)
    assert result.rejects.columns == [*CUSTOMERS.source.columns, ERROR_TYPE, ERROR_MESSAGE]
    untouched = result.rejects.drop(ERROR_TYPE, ERROR_MESSAGE)
    assert_frame_equal(untouched, source.filter(pl.col("customer_id").is_in([1, 3])))
    assert result.rejects[ERROR_TYPE].to_list() == ["validation_error", "transformation_error"]


def test_a_transform_takes_plain_records_with_all_null_columns() -> None:
    """A notebook's literal record: ``last_modified`` None makes Polars type the column Null,
    which the transform's string expressions could not take."""
    from columnar_etl.entities import customers

    record = {
        "customer_id": 1,
        "customer_name": "Ann Lee",
        "email_address": "ann@example.com",
        "phone_number": "555-123-4567",
        "street_address": "1 Main St",
        "city": "Springfield",
        "state_province": "IL",
        "zip_postal": "62701",
        "country": "US",
        "status_code": "A",
        "active": 1,
        "created_date": "2020-01-02",
        "last_modified": None,
    }
    out = customers.transform(pl.DataFrame([record]).lazy()).collect()
    assert out["legacy_id"].to_list() == ["1"]
    assert out["updated_at"].to_list() == [None]
    assert out["created_at"].dt.year().to_list() == [2020]


def test_a_transform_names_a_missing_legacy_column() -> None:
    from columnar_etl.entities import customers
    from columnar_etl.errors import ContractError

    with pytest.raises(ContractError, match="need columns email_address, phone_number"):
        customers.transform(pl.DataFrame({"customer_id": [1], "customer_name": ["A"]}).lazy())
