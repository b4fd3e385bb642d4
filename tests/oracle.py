"""Row-wise test oracle for the transformation and validation rules in ``docs/rules.md``.

Plain Python, one source dict at a time, written to be read side by side with the rules page.
The vectorized entity modules are compared against this module row for row, so every rule is
spelled out literally here; where the rules page leaves room, the reading closest to the
reference design is taken and marked with ``AMBIGUITY:``.

Source dicts use the legacy column names; ids are ``int``, ``customers.active`` is ``int`` or
``None``, every other value is ``str`` or ``None``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "PY_WHITESPACE",
    "Outcome",
    "UnparseableDateError",
    "customer",
    "is_json",
    "load_json",
    "order",
    "parse_date",
    "parse_price",
    "parse_quantity",
    "product",
]

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

#: Every character ``c`` with ``c.isspace()``; ``str.strip()`` removes exactly these.
PY_WHITESPACE: str = "".join(chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace())

VALID = "valid"
FILTERED = "filtered"
TRANSFORMATION_ERROR = "transformation_error"
VALIDATION_ERROR = "validation_error"


@dataclass(frozen=True)
class Outcome:
    """The outcome of one source row.

    ``row`` is the target row when ``kind`` is ``"valid"`` or ``"validation_error"``, else None.
    ``message`` is ``"; ".join(errors)`` for rejects, else None.
    """

    kind: str
    row: dict[str, Any] | None = None
    message: str | None = None


def _is_empty(value: str | None) -> bool:
    """Null or ``""``; a whitespace-only string is not empty."""
    return value is None or value == ""


def _decide(
    row: dict[str, Any], transformation_errors: list[str], validate: Any, *args: Any
) -> Outcome:
    """Steps 2-4 of the row outcome (the filter is judged by the caller)."""
    if transformation_errors:
        return Outcome(TRANSFORMATION_ERROR, None, "; ".join(transformation_errors))
    validation_errors: list[str] = validate(row, *args)
    if validation_errors:
        return Outcome(VALIDATION_ERROR, row, "; ".join(validation_errors))
    return Outcome(VALID, row, None)


# --------------------------------------------------------------------------------------------
# Dates
# --------------------------------------------------------------------------------------------

DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%Y%m%d",
)


class UnparseableDateError(ValueError):
    """A non-empty date value that none of ``DATE_FORMATS`` parses."""


def parse_date(value: str | None) -> datetime | None:
    """Parse a legacy date: None for an empty value, raise ``UnparseableDateError`` if no format
    parses it (non-ASCII text never parses)."""
    if _is_empty(value):
        return None
    assert value is not None
    if value.isascii():
        for fmt in DATE_FORMATS:
            try:
                return datetime.strptime(value, fmt)
            except ValueError:
                continue
    raise UnparseableDateError(value)


def _date_field(source: dict[str, Any], field: str, errors: list[str]) -> datetime | None:
    """Parse ``source[field]``; on failure append ``"<field>: unrecognised date"``, give None."""
    try:
        return parse_date(source.get(field))
    except UnparseableDateError:
        errors.append(f"{field}: unrecognised date")
        return None


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------

_QUANTITY_RE = re.compile(r"[+-]?[0-9]+")
_PRICE_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_quantity(text: str | None) -> int | None:
    """``int`` when the stripped text fully matches ``^[+-]?[0-9]+$``, else None."""
    if text is None:
        return None
    text = text.strip()
    if _QUANTITY_RE.fullmatch(text) is None:
        return None
    value = int(text)
    # Decision: a quantity must fit a signed 64-bit integer (the target's bigint).
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def parse_price(text: str | None) -> float | None:
    """``float`` when the stripped text fully matches the price pattern and is finite, else None.

    Used for ``unit_price``, ``order_total`` and item prices.
    """
    if text is None:
        return None
    text = text.strip()
    if _PRICE_RE.fullmatch(text) is None:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite JSON constant {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"JSON number out of float64 range: {text}")
    return value


def _finite_int(text: str) -> int:
    if not math.isfinite(float(text)):
        raise ValueError(f"JSON number out of float64 range: {text}")
    return int(text)


_NOT_JSON = object()


def load_json(text: str) -> Any:
    """``json.loads`` restricted to finite numbers; returns ``_NOT_JSON`` for invalid text."""
    try:
        value = json.loads(
            text,
            parse_float=_finite_float,
            parse_int=_finite_int,
            parse_constant=_reject_constant,
        )
        # Decision: a lone surrogate escape (\ud800) makes the text invalid JSON.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeEncodeError included
        return _NOT_JSON
    return value


def is_json(text: str) -> bool:
    """Whether ``text`` is valid JSON in the sense of the rules page."""
    return load_json(text) is not _NOT_JSON


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


# --------------------------------------------------------------------------------------------
# Customers
# --------------------------------------------------------------------------------------------

_CUSTOMER_STATUS = {
    "1": "active",
    "A": "active",
    "2": "inactive",
    "I": "inactive",
    "3": "suspended",
    "S": "suspended",
    "4": "pending",
    "P": "pending",
}

_EMAIL_RE = re.compile(r"[^@]+@[^@]+\.[^@]+")


def _clean_customer_name(name: str | None) -> str:
    """Reference ``_clean_name``: strip, drop non-``[\\w\\s\\-.]``, collapse whitespace, title."""
    if _is_empty(name):
        return "Unknown Customer"
    assert name is not None
    name = re.sub(r"[^\w\s\-\.]", "", name.strip())
    name = " ".join(name.split())
    return name.title()


def _clean_email(email: str | None) -> str | None:
    """Strip + lowercase; empty before or after that -> None (no format check here)."""
    if _is_empty(email):
        return None
    assert email is not None
    email = email.strip().lower()
    return email or None


def _clean_phone(phone: str | None) -> str | None:
    """Keep Unicode decimal digits; format 10 and 11-with-leading-1 digit US numbers."""
    if _is_empty(phone):
        return None
    assert phone is not None
    digits = re.sub(r"[^\d]", "", phone)
    if len(digits) == 10:
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    if len(digits) == 11 and digits.startswith("1"):
        return f"+1 ({digits[1:4]}) {digits[4:7]}-{digits[7:]}"
    return digits


def _stripped_or(value: str | None, default: str) -> str:
    # AMBIGUITY: "empty" is judged on the source value (vocabulary: whitespace-only is not
    # empty), so a whitespace-only country strips to "" rather than falling back to "US".
    if _is_empty(value):
        return default
    assert value is not None
    return value.strip()


def _build_address(source: dict[str, Any]) -> dict[str, str]:
    return {
        "street": _stripped_or(source.get("street_address"), ""),
        "city": _stripped_or(source.get("city"), ""),
        "state": _stripped_or(source.get("state_province"), ""),
        "postal_code": _stripped_or(source.get("zip_postal"), ""),
        "country": _stripped_or(source.get("country"), "US"),
    }


def validate_customer(row: dict[str, Any], as_of: datetime) -> list[str]:
    """Customer validation rules 1-4, in order."""
    errors: list[str] = []
    if len(row["name"].strip()) < 2:
        errors.append("Name is required and must be at least 2 characters")
    if row["email"] is None:
        errors.append("Email is required")
    elif _EMAIL_RE.fullmatch(row["email"]) is None:
        errors.append("Invalid email format")
    if row["phone"] is not None and len(row["phone"]) < 10:
        errors.append("Phone number must be at least 10 digits")
    if row["created_at"] is None:
        errors.append("created_at is required")
    elif row["created_at"] > as_of:
        errors.append("created_at cannot be in the future")
    return errors


def customer(source: dict[str, Any], as_of: datetime) -> Outcome:
    """Outcome of one ``customers`` source row."""
    active = source.get("active")
    if active is None or active != 1:
        return Outcome(FILTERED)

    errors: list[str] = []
    created_at = _date_field(source, "created_date", errors)
    updated_at = _date_field(source, "last_modified", errors)
    status_code = source.get("status_code")
    status_key = status_code.strip() if status_code is not None else None

    row = {
        "legacy_id": str(source["customer_id"]),
        "name": _clean_customer_name(source.get("customer_name")),
        "email": _clean_email(source.get("email_address")),
        "phone": _clean_phone(source.get("phone_number")),
        "address": _build_address(source),
        "status": _CUSTOMER_STATUS.get(status_key, "active"),
        "created_at": created_at,
        "updated_at": updated_at,
    }
    return _decide(row, errors, validate_customer, as_of)


# --------------------------------------------------------------------------------------------
# Products
# --------------------------------------------------------------------------------------------

_CATEGORY = {
    "electronics": "Electronics",
    "electronic": "Electronics",
    "computers": "Electronics",
    "clothing": "Apparel",
    "clothes": "Apparel",
    "apparel": "Apparel",
    "books": "Books",
    "book": "Books",
}

# AMBIGUITY: "exactly one of" is read as an exact, case-sensitive match on the unstripped value
# (the reference's ``status in active_values``), so " 1" and "YES" are inactive.
_ACTIVE_VALUES = frozenset({"1", "active", "A", "available", "Y", "yes"})


def _sku(product_code: str | None, product_id: int) -> str:
    if not _is_empty(product_code):
        assert product_code is not None
        sku = re.sub(r"[^\w\-]", "", product_code.upper())
        if sku:
            return sku
    return f"PROD-{product_id}"


def _category(category: str | None) -> str:
    if _is_empty(category):
        return "Uncategorized"
    assert category is not None
    category = category.strip().lower()
    return _CATEGORY.get(category, category.title())


def _attributes(text: str | None, errors: list[str]) -> dict[str, Any]:
    """JSON object, or ``key=value;...`` pairs when the text is not JSON."""
    if _is_empty(text):
        return {}
    assert text is not None
    parsed = load_json(text)
    if parsed is not _NOT_JSON:
        if isinstance(parsed, dict):
            return parsed
        errors.append("product_attributes: JSON is not an object")
        return {}
    attributes: dict[str, Any] = {}
    for pair in text.split(";"):
        if "=" in pair:
            key, value = pair.split("=", 1)
            attributes[key.strip()] = value.strip()
    return attributes


def validate_product(row: dict[str, Any]) -> list[str]:
    """Product validation rules 1-4, in order."""
    errors: list[str] = []
    if len(row["sku"]) < 3:
        errors.append("SKU must be at least 3 characters")
    if len(row["name"].strip()) < 2:
        errors.append("Product name is required and must be at least 2 characters")
    if row["price"] < 0:
        errors.append("Price cannot be negative")
    elif row["price"] > 100000:
        errors.append("Price seems unreasonably high")
    if row["category"] == "":
        errors.append("Category is required")
    return errors


def product(source: dict[str, Any], as_of: datetime) -> Outcome:
    """Outcome of one ``products`` source row (``as_of`` is accepted but unused)."""
    del as_of
    errors: list[str] = []

    # Transformation errors in page order: unit_price, then product_attributes.
    unit_price = source.get("unit_price")
    price: float | None = None
    if _is_empty(unit_price):
        errors.append("unit_price is required")
    else:
        price = parse_price(unit_price)
        if price is None:
            errors.append("unit_price is not a number")
    attributes = _attributes(source.get("product_attributes"), errors)

    name = source.get("product_name")
    description = source.get("description")
    status = source.get("status")
    row = {
        "legacy_id": str(source["product_id"]),
        "sku": _sku(source.get("product_code"), source["product_id"]),
        "name": "Unknown Product" if _is_empty(name) else name.strip(),
        "description": "" if _is_empty(description) else description.strip(),
        "price": price,
        "category": _category(source.get("category")),
        "attributes": attributes,
        "active": True if _is_empty(status) else status in _ACTIVE_VALUES,
    }
    return _decide(row, errors, validate_product)


# --------------------------------------------------------------------------------------------
# Orders
# --------------------------------------------------------------------------------------------

_ORDER_STATUS = {
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

ORDER_CUTOFF = datetime(2020, 1, 1)


def _json_text(value: Any) -> str | None:
    """A JSON scalar read as text: string as is, ``true``/``false``, numbers as decimal text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # AMBIGUITY: a JSON float's "decimal text" is taken as Python's repr (1e16 -> "1e+16");
    # it only shows in product_id, since quantity/price of a float are judged on the value.
    return repr(value)


def _json_quantity(value: Any) -> int | None:
    """A JSON number counts by its value (2.0 is 2, 2.5 is invalid); bools never parse."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = int(value) if value.is_integer() else None
    if isinstance(value, int):
        return value if _INT64_MIN <= value <= _INT64_MAX else None
    return parse_quantity(value)


def _json_price(value: Any) -> float | None:
    """A JSON number is its (finite) value as float; strings go through the regex."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)  # finite: load_json rejects numbers beyond float64
    return parse_price(value)


def _items(text: str | None, errors: list[str]) -> list[dict[str, Any]]:
    """Order items from JSON or from ``product_id:quantity:price|...`` text.

    In the JSON form an unparseable quantity/price is stored as None and judged by validation;
    in the delimited form it is a transformation error.
    """
    if _is_empty(text):
        return []
    assert text is not None
    parsed = load_json(text)
    if parsed is not _NOT_JSON:
        if not isinstance(parsed, list) or not all(
            isinstance(element, dict) and all(_is_scalar(v) for v in element.values())
            for element in parsed
        ):
            errors.append("order_items: JSON is not an array of flat objects")
            return []
        return [
            {
                "product_id": _json_text(element.get("product_id")),
                "quantity": _json_quantity(element.get("quantity")),
                "price": _json_price(element.get("price")),
            }
            for element in parsed
        ]

    items: list[dict[str, Any]] = []
    for part in text.split("|"):
        if ":" not in part:
            continue
        fields = part.split(":")
        if len(fields) < 3:
            continue
        # AMBIGUITY: n counts the parts that become items (":" present and >= 3 fields), so
        # it equals the item's position in ``items`` and in the validation messages.
        n = len(items) + 1
        quantity = parse_quantity(fields[1].strip())
        price = parse_price(fields[2].strip())
        if quantity is None:
            errors.append(f"Item {n}: invalid quantity")
        if price is None:
            errors.append(f"Item {n}: invalid price")
        items.append({"product_id": fields[0].strip(), "quantity": quantity, "price": price})
    return items


def _total(order_total: str | None, items: list[dict[str, Any]]) -> float:
    """``order_total`` when it parses as a price, else ``sum(quantity * price)`` in item order."""
    parsed = parse_price(order_total)
    if parsed is not None:
        return parsed
    total = 0.0
    for item in items:
        # AMBIGUITY: a JSON-form item whose quantity or price did not parse (None) adds nothing
        # to the fallback total (null-skipping sum); the row is a validation error anyway.
        if item["quantity"] is None or item["price"] is None:
            continue
        # NOTE: Python int * float; a quantity of 309+ digits (beyond float64) raises
        # OverflowError here, deliberately loud: the rules page does not bound quantities.
        total += item["quantity"] * item["price"]
    return total


def validate_order(row: dict[str, Any]) -> list[str]:
    """Order validation rules 1-4, in order."""
    errors: list[str] = []
    if row["customer_legacy_id"] is None:
        errors.append("customer_legacy_id is required")
    if row["order_date"] is None:
        errors.append("order_date is required")
    if row["total"] < 0:
        errors.append("Order total cannot be negative")
    elif row["total"] > 1_000_000:
        errors.append("Order total seems unreasonably high")
    if not row["items"]:
        errors.append("Order must have at least one item")
    for n, item in enumerate(row["items"], start=1):
        if item["product_id"] is None or item["product_id"] == "":
            errors.append(f"Item {n}: product_id is required")
        if item["quantity"] is None:
            errors.append(f"Item {n}: invalid quantity")
        elif item["quantity"] <= 0:
            errors.append(f"Item {n}: quantity must be positive")
        if item["price"] is None:
            errors.append(f"Item {n}: invalid price")
        elif item["price"] < 0:
            errors.append(f"Item {n}: price cannot be negative")
    return errors


def order(source: dict[str, Any], as_of: datetime) -> Outcome:
    """Outcome of one ``orders`` source row (``as_of`` is accepted but unused)."""
    del as_of
    errors: list[str] = []
    order_date = _date_field(source, "order_date", errors)
    # The filter comes before every other rule, including the items/total errors.
    if order_date is not None and order_date < ORDER_CUTOFF:
        return Outcome(FILTERED)

    items = _items(source.get("order_items"), errors)
    order_id = source["order_id"]
    customer_id = source.get("customer_id")
    order_number = source.get("order_number")
    status = source.get("status")
    status_key = status.strip() if status is not None else None

    row = {
        "legacy_id": str(order_id),
        "customer_legacy_id": None if customer_id is None else str(customer_id),
        "order_number": f"ORD-{order_id}" if _is_empty(order_number) else order_number,
        "total": _total(source.get("order_total"), items),
        "status": _ORDER_STATUS.get(status_key, "pending"),
        "order_date": order_date,
        "items": items,
    }
    return _decide(row, errors, validate_order)
