"""Small literal cases for the row-wise oracle (``tests/oracle.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from tests import oracle

AS_OF = datetime(2024, 6, 1, 12, 0, 0)


def _customer_source(**overrides: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "customer_id": 123,
        "customer_name": "  john DOE  ",
        "email_address": "JOHN@EXAMPLE.COM",
        "phone_number": "5551234567",
        "street_address": "123 Main St",
        "city": "New York",
        "state_province": "NY",
        "zip_postal": "10001",
        "country": None,
        "status_code": "1",
        "active": 1,
        "created_date": "2023-01-15 10:30:00",
        "last_modified": None,
    }
    source.update(overrides)
    return source


def _order_source(**overrides: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "order_id": 456,
        "customer_id": 123,
        "order_number": "ORD-2023-001",
        "order_total": "199.99",
        "status": "SHIP",
        "order_date": "2023-02-01 14:30:00",
        "order_items": '[{"product_id": "P001", "quantity": 2, "price": 99.99}]',
    }
    source.update(overrides)
    return source


def _product_source(**overrides: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "product_id": 789,
        "product_code": "WIDGET-001",
        "product_name": "Super Widget",
        "description": "Amazing widget for all your needs",
        "unit_price": "29.99",
        "category": "widgets",
        "status": "1",
        "product_attributes": '{"color": "blue", "size": "medium"}',
    }
    source.update(overrides)
    return source


# --- the reference's four test cases, adapted ----------------------------------------------


def test_reference_customer_transformation() -> None:
    outcome = oracle.customer(_customer_source(), AS_OF)
    assert outcome == oracle.Outcome(
        "valid",
        {
            "legacy_id": "123",
            "name": "John Doe",
            "email": "john@example.com",
            "phone": "(555) 123-4567",
            "address": {
                "street": "123 Main St",
                "city": "New York",
                "state": "NY",
                "postal_code": "10001",
                "country": "US",
            },
            "status": "active",
            "created_at": datetime(2023, 1, 15, 10, 30, 0),
            "updated_at": None,
        },
        None,
    )


def test_reference_customer_validation() -> None:
    valid = oracle.customer(_customer_source(customer_name="John Doe"), AS_OF)
    assert valid.kind == "valid"

    invalid = oracle.customer(
        _customer_source(customer_name="J", email_address="invalid-email"), AS_OF
    )
    assert invalid.kind == "validation_error"
    assert invalid.message == (
        "Name is required and must be at least 2 characters; Invalid email format"
    )
    assert invalid.row is not None and invalid.row["email"] == "invalid-email"

    # The reference's created_at "not-a-date" is a transformation error here.
    bad_date = oracle.customer(_customer_source(created_date="not-a-date"), AS_OF)
    assert bad_date == oracle.Outcome(
        "transformation_error", None, "created_date: unrecognised date"
    )


def test_reference_order_transformation() -> None:
    outcome = oracle.order(_order_source(), AS_OF)
    assert outcome.kind == "valid"
    assert outcome.row == {
        "legacy_id": "456",
        "customer_legacy_id": "123",
        "order_number": "ORD-2023-001",
        "total": 199.99,
        "status": "shipped",
        "order_date": datetime(2023, 2, 1, 14, 30, 0),
        "items": [{"product_id": "P001", "quantity": 2, "price": 99.99}],
    }


def test_reference_product_transformation() -> None:
    outcome = oracle.product(_product_source(), AS_OF)
    assert outcome.kind == "valid"
    assert outcome.row == {
        "legacy_id": "789",
        "sku": "WIDGET-001",
        "name": "Super Widget",
        "description": "Amazing widget for all your needs",
        "price": 29.99,
        "category": "Widgets",
        "attributes": {"color": "blue", "size": "medium"},
        "active": True,
    }


# --- one case per tricky decision -----------------------------------------------------------


def test_zero_total_is_valid() -> None:
    outcome = oracle.order(
        _order_source(
            order_total="0", order_items='[{"product_id": "P1", "quantity": 1, "price": 0}]'
        ),
        AS_OF,
    )
    assert outcome.kind == "valid"
    assert outcome.row is not None and outcome.row["total"] == 0.0


def test_pre_2020_order_is_filtered_even_with_broken_items() -> None:
    outcome = oracle.order(
        _order_source(order_date="12/31/2019", order_items='{"not": "a list"}'), AS_OF
    )
    assert outcome == oracle.Outcome("filtered", None, None)


def test_unparseable_date_is_a_transformation_error_not_filtered() -> None:
    outcome = oracle.order(_order_source(order_date="2019-13-45", order_items="5"), AS_OF)
    assert outcome == oracle.Outcome(
        "transformation_error",
        None,
        "order_date: unrecognised date; order_items: JSON is not an array of flat objects",
    )


def test_na_total_falls_back_to_items_sum() -> None:
    outcome = oracle.order(_order_source(order_total="n/a", order_items="P1:2:1.5|P2:1:4"), AS_OF)
    assert outcome.kind == "valid"
    assert outcome.row is not None
    assert outcome.row["total"] == 7.0
    assert outcome.row["items"] == [
        {"product_id": "P1", "quantity": 2, "price": 1.5},
        {"product_id": "P2", "quantity": 1, "price": 4.0},
    ]


def test_json_attributes_that_are_a_list_are_rejected() -> None:
    outcome = oracle.product(_product_source(product_attributes='["a=1"]'), AS_OF)
    assert outcome == oracle.Outcome(
        "transformation_error", None, "product_attributes: JSON is not an object"
    )


def test_delimited_items_with_bad_quantity() -> None:
    outcome = oracle.order(
        _order_source(order_total="", order_items="P1:2:1.5|junk|P2:two:x|P3:1"), AS_OF
    )
    assert outcome == oracle.Outcome(
        "transformation_error", None, "Item 2: invalid quantity; Item 2: invalid price"
    )


def test_json_item_field_types() -> None:
    items = (
        '[{"product_id": 7, "quantity": "2", "price": 5},'
        ' {"product_id": "P", "quantity": 2.5, "price": "9.99"},'
        ' {"product_id": "Q", "quantity": true, "price": 9.99}]'
    )
    outcome = oracle.order(_order_source(order_total=None, order_items=items), AS_OF)
    assert outcome.kind == "validation_error"
    assert outcome.message == "Item 2: invalid quantity; Item 3: invalid quantity"
    assert outcome.row is not None
    assert outcome.row["items"] == [
        {"product_id": "7", "quantity": 2, "price": 5.0},
        {"product_id": "P", "quantity": None, "price": 9.99},
        {"product_id": "Q", "quantity": None, "price": 9.99},
    ]
    assert outcome.row["total"] == 10.0


def test_inactive_customer_is_filtered() -> None:
    for active in (0, None, 2):
        outcome = oracle.customer(_customer_source(active=active, created_date="junk"), AS_OF)
        assert outcome == oracle.Outcome("filtered", None, None)


def test_shared_email_stays_valid() -> None:
    first = oracle.customer(_customer_source(customer_id=1), AS_OF)
    second = oracle.customer(_customer_source(customer_id=2, customer_name="Jane Doe"), AS_OF)
    assert first.kind == second.kind == "valid"
    assert first.row is not None and second.row is not None
    assert first.row["email"] == second.row["email"] == "john@example.com"


def test_customer_validation_message_order() -> None:
    outcome = oracle.customer(
        _customer_source(
            customer_name="!!", email_address="   ", phone_number="n/a", created_date=None
        ),
        AS_OF,
    )
    assert outcome.kind == "validation_error"
    assert outcome.message == (
        "Name is required and must be at least 2 characters; Email is required; "
        "Phone number must be at least 10 digits; created_at is required"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        ("2023-01-15", datetime(2023, 1, 15)),
        ("1/2/2023", datetime(2023, 1, 2)),
        ("31/12/2023", datetime(2023, 12, 31)),
        ("20230115", datetime(2023, 1, 15)),
        ("2023-01-15  9:05:07", datetime(2023, 1, 15, 9, 5, 7)),
    ],
)
def test_parse_date(text: str | None, expected: datetime | None) -> None:
    assert oracle.parse_date(text) == expected


@pytest.mark.parametrize(
    "text", ["２０２３-01-15", "2023-02-30", "2023-01-15 10:30:60", " 2023-01-15"]
)
def test_parse_date_rejects(text: str) -> None:
    with pytest.raises(oracle.UnparseableDateError):
        oracle.parse_date(text)


def test_json_validity() -> None:
    assert oracle.is_json(' {"a": [1, 2.5, null]} ')
    for text in ("NaN", "[Infinity]", "1e400", "[-1e400]", "1" + "0" * 400, "{'a': 1}", ""):
        assert not oracle.is_json(text), text
    assert not oracle.is_json("[" * 100_000)


def test_product_price_and_attributes_fallback() -> None:
    outcome = oracle.product(
        _product_source(
            product_code="  ",
            unit_price=" 1e6 ",
            category="  ",
            status="YES",
            product_attributes="color = red ;size=M=L; junk ;color=blue",
        ),
        AS_OF,
    )
    assert outcome.kind == "validation_error"
    assert outcome.message == "Price seems unreasonably high; Category is required"
    assert outcome.row is not None
    assert outcome.row["sku"] == "PROD-789"
    assert outcome.row["active"] is False
    assert outcome.row["attributes"] == {"color": "blue", "size": "M=L"}
    assert oracle.product(_product_source(unit_price="1.2.3"), AS_OF).message == (
        "unit_price is not a number"
    )
