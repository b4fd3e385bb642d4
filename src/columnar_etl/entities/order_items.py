"""The ``order_items`` column of orders: items text -> stored JSON, item sum, item messages.

Two paths (rules: docs/rules.md#orders). Clean items text, which most rows have, is turned
into the stored JSON by whole-column text operations: clean JSON as json.dumps writes it
passes through, the clean delimited form is rewritten. :func:`general` handles any text by
the rules as written, one row per item; the tests hold both paths to the same bytes.
"""

from __future__ import annotations

import polars as pl

from columnar_etl import POSITION
from columnar_etl.expressions import (
    FLAT_JSON_OBJECT,
    JSON_WS,
    is_empty,
    join_messages,
    json_string,
    message_if,
    parse_float,
    parse_int,
    strip,
    valid_json,
)

__all__ = [
    "CLEAN",
    "CLEAN_DELIMITED",
    "CLEAN_JSON",
    "CLEAN_SUM",
    "DELIMITED_ITEMS",
    "ITEMS",
    "ITEMS_SHAPE",
    "ITEM_ERRORS",
    "ITEM_SUM",
    "PARSE_ERRORS",
    "clean_delimited",
    "clean_json",
    "clean_sums",
    "general",
]

SOURCE_COLUMN = "order_items"
#: Hidden contract column: the per-item rule messages of a row, null when every item is fine.
ITEM_ERRORS = "_item_errors"
#: Columns :func:`general` adds: the items JSON, the item sum, the parse failures.
ITEMS, ITEM_SUM, PARSE_ERRORS = "_g_items", "_g_item_sum", "_g_parse_errors"
#: Column :func:`clean_delimited` adds, and the one :func:`clean_sums` adds.
DELIMITED_ITEMS, CLEAN_SUM = "_delimited_items", "_clean_sum"

_ITEM = pl.Struct({"product_id": pl.String, "quantity": pl.String, "price": pl.String})

# An array of flat objects (scalar member values only), the shape items JSON must have.
ITEMS_SHAPE = (
    rf"^{JSON_WS}\[{JSON_WS}(?:{FLAT_JSON_OBJECT}(?:{JSON_WS},{JSON_WS}{FLAT_JSON_OBJECT})*)?"
    rf"{JSON_WS}\]{JSON_WS}$"
)

# Clean items: no rule can fail on them, and the stored JSON follows from the text alone. A
# product id of printable ASCII that needs no JSON escape (and no braces, see
# _TRIMMED_PRICES), a positive quantity of at most 18 digits (so an int64), a non-negative
# price of at most 9 + 2 digits (Polars prints it back as written, minus trailing zeros).
_CLEAN_ID = r'[\x20-\x7e--["\\{}]]+'
# Delimited: also no space (stripped), no ':' or '|', and no '[' (so not taken for JSON).
_CLEAN_FIELD = r'[\x21-\x7e--["\\{}:|\[\]]]+'
_CLEAN_QUANTITY = r"[1-9][0-9]{0,17}"
_CLEAN_PRICE = r"(?:0|[1-9][0-9]{0,8})\.[0-9]{1,2}"
_CLEAN_OBJECT = (
    rf'\{{"product_id": "{_CLEAN_ID}", "quantity": {_CLEAN_QUANTITY}, '
    rf'"price": {_CLEAN_PRICE}\}}'
)
#: Clean items as json.dumps writes them, which is also how they are stored.
CLEAN_JSON = rf"^\[(?:{_CLEAN_OBJECT}(?:, {_CLEAN_OBJECT})*)?\]$"
_CLEAN_PART = rf"{_CLEAN_FIELD}:{_CLEAN_QUANTITY}:{_CLEAN_PRICE}"
#: Clean items in the delimited form.
CLEAN_DELIMITED = rf"^{_CLEAN_PART}(?:\|{_CLEAN_PART})*$"
#: Clean items in either form (one regex pass); the JSON form is the one starting with "[".
CLEAN = f"(?:{CLEAN_JSON})|(?:{CLEAN_DELIMITED})"

# A clean price ending in 0 ("9.90", "2.00") as Polars prints the float ("9.9", "2.0"); only
# a price is followed by "}". Literal patterns: far cheaper than a regex with a capture group.
_TRIMMED_PRICES = {".00}": ".0}"} | {f".{d}0}}": f".{d}}}" for d in range(1, 10)}
# Delimited -> JSON: the first ':' of each part becomes \x00 (its only per-part edit); then
# one pass writes every separator and trims the prices, which end in "|" or "}" there.
_NEXT_OBJECT = '}, {"product_id": "'
_DELIMITED_TO_JSON = (
    {"\x00": '", "quantity": ', ":": ', "price": ', "|": _NEXT_OBJECT}
    | _TRIMMED_PRICES
    | {price[:-1] + "|": trimmed[:-1] + _NEXT_OBJECT for price, trimmed in _TRIMMED_PRICES.items()}
)


def _replace(text: pl.Expr, replacements: dict[str, str]) -> pl.Expr:
    return text.str.replace_many(list(replacements), list(replacements.values()))


def clean_json(text: pl.Expr) -> pl.Expr:
    """Clean JSON items text (CLEAN_JSON) -> the stored JSON: the same, prices as floats print."""
    return _replace(text, _TRIMMED_PRICES)


def clean_delimited(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Clean delimited items (``P1:2:9.90|P2:1:3.5``) -> DELIMITED_ITEMS, the stored JSON."""
    raw = pl.col(SOURCE_COLUMN)
    parts = raw.str.split("|").list.eval(pl.element().str.replace(":", "\x00", literal=True))
    text = _replace(pl.concat_str(parts.list.join("|"), pl.lit("}")), _DELIMITED_TO_JSON)
    stored = pl.concat_str(pl.lit('[{"product_id": "'), text, pl.lit("]"))
    return rows.select(POSITION, stored.alias(DELIMITED_ITEMS))


def clean_sums(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Clean items text, either form -> CLEAN_SUM, the sum of quantity * price."""
    raw = pl.col(SOURCE_COLUMN)
    item = pl.element().struct.field
    typed = pl.List(pl.Struct({"quantity": pl.Int64, "price": pl.Float64}))
    from_json = (
        pl.when(raw.str.starts_with("["))
        .then(raw)
        .str.json_decode(typed)
        .list.eval(item("quantity") * item("price"))
    )
    part = pl.element().str.split_exact(":", 2).struct.field
    from_delimited = (
        pl.when(~raw.str.starts_with("["))
        .then(raw)
        .str.split("|")
        .list.eval(
            part("field_1").cast(pl.Int64, strict=False)
            * part("field_2").cast(pl.Float64, strict=False)
        )
    )
    item_sum = pl.coalesce(from_json.list.sum(), from_delimited.list.sum())
    return rows.select(POSITION, item_sum.alias(CLEAN_SUM))


def _delimited_items(raw: pl.Expr) -> pl.Expr:
    """``P1:2:9.99|P2:1:3.50`` -> list of item structs; parts with < 3 fields are skipped."""
    # A part with at least two ':' is one that contains ':' and splits into >= 3 fields.
    parts = raw.str.split("|").list.filter(pl.element().str.count_matches(":", literal=True) >= 2)
    field = pl.element().str.split_exact(":", 2).struct.field
    return parts.list.eval(
        pl.struct(
            product_id=strip(field("field_0")),
            quantity=strip(field("field_1")),
            price=strip(field("field_2")),
        )
    )


def _parsed(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Any items text -> ``_items`` (list of text structs, null for a JSON shape error)."""
    c = pl.col
    raw = c(SOURCE_COLUMN)
    shaped = rows.select(
        POSITION, raw, _shape=raw.str.contains(ITEMS_SHAPE), _is_json=valid_json(raw)
    )
    decodable = c("_is_json") & c("_shape")
    return shaped.with_columns(
        _shape_error=~is_empty(raw) & c("_is_json") & ~c("_shape"),
        _delimited=~is_empty(raw) & ~c("_is_json"),
        _items=pl.when(is_empty(raw))
        .then(pl.lit([], dtype=pl.List(_ITEM)))
        .when(decodable)
        .then(pl.when(decodable).then(raw).str.json_decode(pl.List(_ITEM)))
        .when(~c("_is_json"))
        .then(_delimited_items(pl.when(~c("_is_json")).then(raw))),
    )


def _checks(*, parse_only: bool) -> pl.Expr:
    """One item's rule messages ("Item 2: invalid price"), joined; null when it is fine.

    ``parse_only``: just the parse failures, which are transformation errors in the delimited
    form (column ``_item_parse_errors``); otherwise every item rule (column ITEM_ERRORS).
    """
    c = pl.col
    n = c("_n").cast(pl.String)
    exists = c("_n").is_not_null()

    def say(condition: pl.Expr, text: str) -> pl.Expr:
        return message_if(condition, pl.concat_str(pl.lit("Item "), n, pl.lit(f": {text}")))

    quantity, price = c("_quantity"), c("_price")
    bad_quantity = say(exists & quantity.is_null(), "invalid quantity")
    bad_price = say(exists & price.is_null(), "invalid price")
    if parse_only:
        return join_messages(bad_quantity, bad_price).alias("_item_parse_errors")
    return join_messages(
        say(exists & is_empty(c("_product_id")), "product_id is required"),
        bad_quantity,
        say(quantity <= 0, "quantity must be positive"),
        bad_price,
        say(price < 0, "price cannot be negative"),
    ).alias(ITEM_ERRORS)


def _item_json(product_id: pl.Expr, quantity: pl.Expr, price: pl.Expr) -> pl.Expr:
    """One stored item, laid out as json.dumps writes it (so clean JSON items pass through)."""

    def number(value: pl.Expr) -> pl.Expr:
        return value.cast(pl.String).fill_null("null")

    return pl.concat_str(
        pl.lit('{"product_id": '),
        json_string(product_id),
        pl.lit(', "quantity": '),
        number(quantity),
        pl.lit(', "price": '),
        number(price),
        pl.lit("}"),
    )


def general(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Any items text -> ITEMS, ITEM_SUM, ITEM_ERRORS and PARSE_ERRORS, by the rules as written.

    The items are exploded into one row per item, numbered, checked, and gathered back per
    row: per-item work stays elementwise (``list.eval`` with ``int_range`` or ``filter`` would
    evaluate once per row, and so would ``str.join`` or when/then inside ``agg``).
    """
    c = pl.col
    numbered = _parsed(rows).with_columns(_n=pl.int_ranges(1, c("_items").list.len() + 1))
    # A row without items stays as one row of nulls, so every row comes back from the group_by.
    items = (
        numbered.explode("_items", "_n", empty_as_null=True)
        .with_columns(
            _product_id=c("_items").struct.field("product_id"),
            _quantity=parse_int(c("_items").struct.field("quantity")),
            _price=parse_float(c("_items").struct.field("price")),
        )
        .with_columns(
            _checks(parse_only=False),
            _checks(parse_only=True),
            _json=pl.when(c("_n").is_not_null()).then(
                _item_json(c("_product_id"), c("_quantity"), c("_price"))
            ),
            _value=c("_quantity") * c("_price"),
        )
    )
    gathered = items.group_by(POSITION, maintain_order=True).agg(
        c("_json", ITEM_ERRORS, "_item_parse_errors"),
        c("_value").sum().alias(ITEM_SUM),
        c("_shape_error", "_delimited").first(),
    )

    def joined(column: str) -> pl.Expr:
        text = c(column).list.join("; ")
        return pl.when(text != "").then(text)

    return gathered.select(
        POSITION,
        pl.concat_str(pl.lit("["), c("_json").list.join(", "), pl.lit("]")).alias(ITEMS),
        ITEM_SUM,
        joined(ITEM_ERRORS),
        join_messages(
            message_if(c("_shape_error"), "order_items: JSON is not an array of flat objects"),
            pl.when(c("_delimited")).then(joined("_item_parse_errors")),
        ).alias(PARSE_ERRORS),
    )
