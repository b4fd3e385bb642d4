"""A deterministic, vectorized generator of a realistic, messy legacy database.

``generate(rows, seed)`` builds the three legacy tables (``customers``, ``products``,
``orders``) with exactly the columns and dtypes of each entity's ``SOURCE.schema``, sorted by
id. Every kind of dirt the rules in ``docs/rules.md`` handle appears at the rate given in
:data:`DIRT`, the single source of truth for those rates.

Everything is drawn as whole numpy arrays from ``np.random.Generator(PCG64(...))`` and turned
into text with Polars expressions: there is no per-row Python. The random streams are keyed:

- customers and products each have an id stream and a field stream of their own;
- orders are drawn in fixed blocks of ``_BLOCK`` rows, block ``b`` from the key
  ``(seed, orders, b)``, so :func:`iter_orders` can stream 10M orders in bounded memory and
  its chunks, whatever their size, concatenate to exactly the orders of :func:`generate`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from columnar_etl.entities import customers as customer_entity
from columnar_etl.entities import orders as order_entity
from columnar_etl.entities import products as product_entity
from columnar_etl.expressions import DATE_FORMATS

__all__ = [
    "DIRT",
    "Sizes",
    "customers_table",
    "generate",
    "iter_orders",
    "products_table",
    "sizes_for",
]

#: Dirt rates (fraction of rows of the table). Kinds listed together under one field are
#: mutually exclusive (one uniform draw picks at most one of them); fields are independent.
DIRT: dict[str, float] = {
    # ids: increasing; most gaps are 1, some small, a few huge (sparse, skewed id ranges)
    "id_gap_small": 0.01,  # gap 2..10
    "id_gap_huge": 0.001,  # gap 1,001..1,000,000
    # dates (every date column): one of the six formats of rules.md, uniformly, plus
    "date_garbage": 0.01,  # "not a date", "2023-13-45", "2021-02-30", ...
    "date_missing": 0.01,  # null or ""
    "customer_created_future": 0.01,  # created_date in 2031..2039
    "customer_last_modified_missing": 0.08,  # never modified: null or ""
    # customers.customer_name (casing, junk and spacing are independent of each other)
    "customer_name_casing": 0.05,  # ALL CAPS, lower, mIxEd (a third each)
    "customer_name_junk": 0.03,  # one of @#!*$%&? stuck to a name part
    "customer_name_spaces": 0.03,  # padded, runs of spaces, tab, no-break space
    "customer_name_empty": 0.01,  # null, "", whitespace only
    # customers.email_address (case and whitespace are independent of the kinds below)
    "customer_email_mixed_case": 0.15,  # JOHN.DOE7@GMAIL.COM, John.Doe7@Gmail.Com
    "customer_email_whitespace": 0.02,  # surrounding spaces or tab
    "customer_email_invalid": 0.02,  # no @, no dot in domain, "@@", " at "
    "customer_email_shared": 0.01,  # another customer's email, maybe other case/whitespace
    "customer_email_missing": 0.02,  # null, "", whitespace only
    # customers.phone_number: one of seven formats, plus
    "customer_phone_short": 0.02,  # 4-7 digits, e.g. 12345
    "customer_phone_junk": 0.01,  # "n/a", "none", ... (no digits at all)
    "customer_phone_missing": 0.03,  # null or ""
    # customers address, status, active
    "customer_address_missing": 0.02,  # street/city/state/zip all null or ""
    "customer_country_missing": 0.05,  # null or "" (-> "US")
    "customer_status_unknown": 0.02,  # 9, X, "", 0, a, active
    "customer_status_missing": 0.01,  # null
    "customer_inactive": 0.10,  # active = 0 (filtered)
    "customer_active_null": 0.01,  # active null (filtered)
    # products.product_code
    "product_code_junk": 0.03,  # lower case, inner space, junk characters: "wid -00012!"
    "product_code_empty": 0.02,  # null, "", whitespace, all junk ("!!!")
    "product_code_duplicate": 0.01,  # another product's code, same SKU after cleaning
    # products.product_name / description
    "product_name_padded": 0.03,
    "product_name_empty": 0.02,  # null, "", whitespace, one character
    "product_description_padded": 0.03,
    "product_description_empty": 0.05,  # null or ""
    # products.unit_price
    "product_price_padded": 0.03,  # " 12.50 "
    "product_price_not_number": 0.02,  # n/a, N/A, $12.99, TBD, 12,99
    "product_price_missing": 0.02,  # null or ""
    "product_price_negative": 0.01,
    "product_price_too_high": 0.01,  # > 100,000
    # products.category: mapped spellings (Electronics, " electronic ", COMPUTERS, ...), plus
    "product_category_other": 0.05,  # garden, Toys, home & kitchen, " Sports "
    "product_category_empty": 0.02,  # null, "", whitespace only
    # products.status: 1 active A available Y yes, plus
    "product_status_inactive": 0.05,  # 0, inactive, N, discontinued
    "product_status_missing": 0.02,  # null or ""
    # products.product_attributes: JSON objects or k=v;k2=v2 pairs, plus
    "product_attributes_not_object": 0.02,  # [1, 2], "text", 42, null, true
    "product_attributes_broken": 0.01,  # truncated JSON, "color:blue" (no pairs either)
    "product_attributes_empty": 0.05,  # null or ""
    # orders.customer_id: mostly existing ids (popular customers order more), plus
    "order_customer_unknown": 0.02,  # past the largest customer id, 0 or -1
    "order_customer_missing": 0.01,  # null
    # orders.order_number / order_total / status
    "order_number_missing": 0.03,  # null or ""
    "order_total_not_number": 0.02,  # n/a, N/A, TBD (-> sum of items)
    "order_total_missing": 0.02,  # null or ""
    "order_total_zero": 0.01,  # "0.00"
    "order_status_unknown": 0.02,  # X, 9, "", new, PENDING, null
    # orders.order_date
    "order_date_pre_2020": 0.10,  # 2015..2019 (filtered); the rest 2020..2025-05
    # orders.order_items: a JSON array of 1-4 items or the P1:2:9.99|P2:1:3.50 form, plus
    "order_items_bad_values": 0.01,  # first item with quantity 0 / -1 or a negative price
    "order_items_broken": 0.02,  # P1:x:9.99, P1:2:abc, [{"product_id": ..., P1;2;3
    "order_items_not_array": 0.01,  # {"a": 1}, [1, 2], "P1:2:9.99", [[1, 2]], nested object
    "order_items_empty": 0.02,  # null, "", []
}

# Shares that pick a clean format rather than a defect (not dirt, so not in DIRT).
_ATTRIBUTES_AS_PAIRS = 0.25
_ITEMS_DELIMITED = 0.25
_BLOCK = 100_000
_CUSTOMERS, _PRODUCTS, _ORDERS = 1, 2, 3
_IDS, _FIELDS = 0, 1


def _epoch(year: int, month: int = 1, day: int = 1) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())


_START, _CUTOFF, _END = _epoch(2015), _epoch(2020), _epoch(2025, 6)
_FUTURE_START, _FUTURE_END = _epoch(2031), _epoch(2040)
_DAY = 86_400

_FIRST = [
    "John", "Mary", "James", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "José", "Zoë", "Anne-Marie", "François", "Björn", "Siobhán",
    "Mei", "Raj", "Olga", "Ahmed",
]  # fmt: skip
_LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "O'Brien", "McDonald", "Van der Berg", "Müller",
    "Núñez", "St. John", "Nguyen", "Kowalski", "Smith-Jones", "D'Angelo",
]  # fmt: skip
_DOMAINS = [
    "gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "example.com", "aol.com",
    "comcast.net", "company.co.uk", "mail.example.org", "icloud.com",
]  # fmt: skip
_STREETS = [
    "Main", "Oak", "Pine", "Maple", "Cedar", "Elm", "Washington", "Lake", "Hill", "Park",
    "Sunset", "Lincoln", "Church", "Mill", "River",
]  # fmt: skip
_STREET_TYPES = ["St", "Street", "Ave", "Avenue", "Rd", "Blvd", "Ln", "Dr", "Ct", "Way"]
_CITIES = [
    ("New York", "NY"), ("Los Angeles", "CA"), ("Chicago", "IL"), ("Houston", "TX"),
    ("Phoenix", "AZ"), ("Philadelphia", "PA"), ("San Antonio", "TX"), ("San Diego", "CA"),
    ("Dallas", "TX"), ("Austin", "TX"), ("Seattle", "WA"), ("Denver", "CO"), ("Boston", "MA"),
    ("Portland", "OR"), ("Miami", "FL"), ("Atlanta", "GA"), ("Toronto", "ON"),
    ("Vancouver", "BC"), ("St. Louis", "mo"), ("Salt Lake City", "Utah"),
]  # fmt: skip
_COUNTRIES = ["US", "USA", "United States", "us", "CA", "Canada"]
_COUNTRY_WEIGHTS = [0.78, 0.08, 0.05, 0.03, 0.04, 0.02]
_JUNK = list("@#!*$%&?")
_GAPS = ["  ", "   ", "\t", " \u00a0 "]
_GARBAGE_DATES = [
    "not a date", "2023-13-45", "2021-02-30", "0000-00-00 00:00:00", "31/31/2020",
    "yesterday", "N/A", "2020/01/15",
]  # fmt: skip
_CUSTOMER_STATUS = ["1", "2", "3", "4", "A", "I", "S", "P"]
_CUSTOMER_STATUS_WEIGHTS = [0.45, 0.08, 0.03, 0.04, 0.25, 0.07, 0.03, 0.05]
_CUSTOMER_STATUS_UNKNOWN = ["9", "X", "", "0", "a", "active"]
_PHONE_JUNK = ["n/a", "none", "unknown", "call office", "-"]

_CODE_PREFIXES = ["WID", "GAD", "CBL", "BK", "TSH", "HDP", "KBD", "MSE", "LMP", "MUG", "ABC"]
_ADJECTIVES = [
    "Deluxe", "Basic", "Premium", "Compact", "Wireless", "Classic", "Portable", "Ergonomic",
    "Vintage", "Smart", "Eco", "Heavy-Duty",
]  # fmt: skip
_NOUNS = [
    "Widget", "Gadget", "Cable", "Notebook", "T-Shirt", "Headphones", "Keyboard", "Mouse",
    "Lamp", "Mug", "Backpack", "Charger", "Novel", "Jacket", "Monitor",
]  # fmt: skip
_CATEGORY_SPELLINGS = [
    "Electronics", " electronic ", "COMPUTERS", "electronics", "Computers", "Clothing",
    "clothes", "Apparel", "APPAREL ", "Books", "book", " BOOKS",
]  # fmt: skip
_CATEGORY_OTHER = ["garden", "Toys", "home & kitchen", " Sports ", "OFFICE SUPPLIES"]
_PRODUCT_ACTIVE = ["1", "active", "A", "available", "Y", "yes"]
_PRODUCT_INACTIVE = ["0", "inactive", "N", "discontinued", "no", "Active"]
_COLORS = ["red", "blue", "green", "black", "white", "silver"]
_SIZES = ["XS", "S", "M", "L", "XL"]
_NOT_OBJECT = ["[1, 2]", '"text"', "42", "null", "true", '["blue", "red"]']
_BROKEN_ATTRIBUTES = ['{"color": ', "color:blue", "{'color': 'red'}", "size M"]
_PRICE_NOT_NUMBER = ["n/a", "N/A", "$12.99", "TBD", "12,99", "free"]

_ORDER_STATUS = ["1", "2", "3", "4", "5", "NEW", "PROC", "SHIP", "DELV", "CANC"]
_ORDER_STATUS_WEIGHTS = [0.05, 0.05, 0.08, 0.25, 0.04, 0.06, 0.06, 0.1, 0.27, 0.04]
_ORDER_STATUS_UNKNOWN = ["X", "9", "", "new", "PENDING", None]
_TOTAL_NOT_NUMBER = ["n/a", "N/A", "TBD"]
_ITEMS_NOT_ARRAY = [
    '{"a": 1}', "[1, 2]", '"P1:2:9.99"', "[[1, 2]]",
    '[{"product_id": {"id": 1}, "quantity": 1, "price": 2.5}]', "42",
]  # fmt: skip
_ITEMS_EMPTY = [None, "", "[]"]
_MAX_ITEMS = 4
# Item prices in cents; negative ones only come from the bad-values dirt.
_MIN_CENTS, _MAX_CENTS = -10_000, 500_000
# Punctuation of the two item forms (JSON, delimited), chosen per order.
_ITEM_PUNCTUATION = {
    "open": ("[", ""),
    "mid": (', "price": ', ":"),
    "close": ("}", ""),
    "joiner": (", ", "|"),
    "end": ("]", ""),
}


@dataclass(frozen=True)
class Sizes:
    """Row counts of the three legacy tables."""

    customers: int
    products: int
    orders: int


def sizes_for(rows: int) -> Sizes:
    """Table sizes for ``rows`` orders: a customer per 5 orders, a product per 20 (min 20)."""
    return Sizes(customers=max(rows // 5, 20), products=max(rows // 20, 20), orders=rows)


def generate(rows: int, seed: int = 42) -> dict[str, pl.DataFrame]:
    """The legacy tables for ``rows`` orders, keyed by table name, each sorted by its id."""
    _check(rows, seed)
    sizes = sizes_for(rows)
    chunks = list(_order_blocks(rows, seed))
    orders = pl.concat(chunks) if chunks else _empty(order_entity.SOURCE.schema)
    return {
        "customers": customers_table(seed, sizes.customers),
        "products": products_table(seed, sizes.products),
        "orders": orders,
    }


def iter_orders(rows: int, seed: int = 42, chunk: int = 500_000) -> Iterator[pl.DataFrame]:
    """The orders of ``generate(rows, seed)`` in frames of ``chunk`` rows (the last shorter)."""
    _check(rows, seed)
    if chunk < 1:
        raise ValueError(f"chunk must be positive, got {chunk}")
    pending: list[pl.DataFrame] = []
    held = 0
    for block in _order_blocks(rows, seed):
        pending.append(block)
        held += block.height
        while held >= chunk:
            buffer = pl.concat(pending)
            yield buffer.slice(0, chunk)
            rest = buffer.slice(chunk)
            pending, held = ([rest] if rest.height else []), rest.height
    if held:
        yield pl.concat(pending)


# --- random building blocks -------------------------------------------------------------------


def _check(rows: int, seed: int) -> None:
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if seed < 0:  # SeedSequence takes non-negative entropy only
        raise ValueError(f"seed must be >= 0, got {seed}")


def _rng(seed: int, *key: int) -> np.random.Generator:
    """An independent stream per key, so tables and blocks never share random numbers."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, *key])))


def _kinds(rng: np.random.Generator, n: int, *rates: float) -> np.ndarray:
    """0 for a clean row, k for the k-th (mutually exclusive) dirt kind, from one uniform draw."""
    edges = np.cumsum(rates)
    return (np.searchsorted(edges, rng.random(n), side="right") + 1) % (len(rates) + 1)


def _flag(rng: np.random.Generator, n: int, rate: float) -> np.ndarray:
    return rng.random(n) < rate


def _choose(
    rng: np.random.Generator,
    n: int,
    options: Sequence[str | None],
    weights: Sequence[float] | None = None,
) -> pl.Series:
    """``n`` values drawn from ``options`` (uniformly unless weighted)."""
    if weights is None:
        index = rng.integers(0, len(options), n)
    else:
        p = np.asarray(weights, dtype=np.float64)
        index = rng.choice(len(options), size=n, p=p / p.sum())
    return pl.Series(options, dtype=pl.String).gather(index)


def _sparse_ids(rng: np.random.Generator, n: int, start: int = 0) -> np.ndarray:
    """Strictly increasing ids after ``start``: gaps of 1 mostly, some 2-10, a few huge."""
    u = rng.random(n)
    small = rng.integers(2, 11, n)
    huge = rng.integers(1_001, 1_000_001, n)
    huge_rate = DIRT["id_gap_huge"]
    gaps = np.where(u < huge_rate, huge, np.where(u < huge_rate + DIRT["id_gap_small"], small, 1))
    return start + np.cumsum(gaps, dtype=np.int64)


def _customer_ids(seed: int, n: int) -> np.ndarray:
    return _sparse_ids(_rng(seed, _CUSTOMERS, _IDS), n)


def _product_ids(seed: int, n: int) -> np.ndarray:
    return _sparse_ids(_rng(seed, _PRODUCTS, _IDS), n)


def _empty(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict(schema))


def _cat(*parts: str | pl.Expr) -> pl.Expr:
    """Concatenate expressions and literal strings (null if any part is null)."""
    return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts])


def _pick(index: str, options: Sequence[pl.Expr]) -> pl.Expr:
    """``options[i]`` where column ``index`` is ``i`` (the last option for any other value)."""
    expr = pl.when(pl.col(index) == 0).then(options[0])
    for i, option in enumerate(options[1:-1], start=1):
        expr = expr.when(pl.col(index) == i).then(option)
    return expr.otherwise(options[-1])


def _dirty(kind: str, clean: pl.Expr, *dirty: pl.Expr) -> pl.Expr:
    """``clean`` where column ``kind`` is 0, else the kind-th of ``dirty``."""
    expr = pl.when(pl.col(kind) == 1).then(dirty[0])
    for k, option in enumerate(dirty[1:], start=2):
        expr = expr.when(pl.col(kind) == k).then(option)
    return expr.otherwise(clean)


def _blank(coin: str) -> pl.Expr:
    """Null or the empty string: both are "empty" to the rules."""
    return pl.when(pl.col(coin)).then(pl.lit("")).otherwise(pl.lit(None, dtype=pl.String))


def _money(cents: pl.Expr) -> pl.Expr:
    """Integer cents as decimal text with two places: -1234 -> "-12.34"."""
    magnitude = cents.abs()
    return _cat(
        pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        (magnitude // 100).cast(pl.String),
        ".",
        (magnitude % 100).cast(pl.String).str.zfill(2),
    )


def _dates(
    rng: np.random.Generator,
    seconds: np.ndarray,
    *,
    future: float = 0.0,
    missing: float | None = None,
) -> pl.Series:
    """Epoch seconds as text in a random one of the six rule formats, with garbage and gaps."""
    n = len(seconds)
    fmt = rng.integers(0, len(DATE_FORMATS), n)
    missing = DIRT["date_missing"] if missing is None else missing
    kind = _kinds(rng, n, DIRT["date_garbage"], future, missing)
    seconds = np.where(kind == 2, rng.integers(_FUTURE_START, _FUTURE_END, n), seconds)
    # %d/%m/%Y is tried after %m/%d/%Y, so it only reads as written when the day is > 12;
    # moving such a date 13 days on keeps it in the same month (day 14..25).
    stamp = seconds.astype("datetime64[s]")
    day = (stamp.astype("datetime64[D]") - stamp.astype("datetime64[M]")).astype(np.int64) + 1
    day_first = DATE_FORMATS.index("%d/%m/%Y")
    seconds = np.where((fmt == day_first) & (day <= 12), seconds + 13 * _DAY, seconds)
    frame = pl.DataFrame(
        {
            "t": seconds,
            "fmt": fmt,
            "kind": kind,
            "garbage": _choose(rng, n, _GARBAGE_DATES),
            "coin": rng.random(n) < 0.5,
        }
    )
    stamp_expr = pl.from_epoch("t", time_unit="s")
    text = _pick("fmt", [stamp_expr.dt.strftime(f) for f in DATE_FORMATS])
    return frame.select(_dirty("kind", text, pl.col("garbage"), text, _blank("coin"))).to_series()


def _schema_order(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Exactly the source columns, in order, with the source dtypes."""
    return frame.select(pl.col(name).cast(dtype) for name, dtype in schema.items())


# --- customers --------------------------------------------------------------------------------


def _ascii(name: str) -> str:
    """A name as it would appear in an email address: José O'Brien -> jose, obrien."""
    decomposed = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in decomposed.lower() if ch.isalnum())


def _mixed(name: str) -> str:
    """mIxEd case, computed once per list entry (not per row)."""
    return "".join(ch.upper() if i % 2 else ch.lower() for i, ch in enumerate(name))


def _names(values: list[str], index: np.ndarray) -> tuple[pl.Series, pl.Series, pl.Series]:
    """As written, mIxEd, and as an email part, for the chosen list entries."""
    plain = pl.Series(values, dtype=pl.String).gather(index)
    mixed = pl.Series([_mixed(v) for v in values], dtype=pl.String).gather(index)
    ascii_ = pl.Series([_ascii(v) for v in values], dtype=pl.String).gather(index)
    return plain, mixed, ascii_


def customers_table(seed: int, n: int) -> pl.DataFrame:
    """``n`` legacy customers for ``seed``, sorted by id."""
    ids = _customer_ids(seed, n)
    rng = _rng(seed, _CUSTOMERS, _FIELDS)
    first, first_mixed, first_ascii = _names(_FIRST, rng.integers(0, len(_FIRST), n))
    last, last_mixed, last_ascii = _names(_LAST, rng.integers(0, len(_LAST), n))
    casing = DIRT["customer_name_casing"] / 3
    email_kind = _kinds(
        rng,
        n,
        DIRT["customer_email_invalid"],
        DIRT["customer_email_shared"],
        DIRT["customer_email_missing"],
    )
    # A shared email is copied from a customer whose own email is clean, so the two really
    # collide after strip + lower.
    clean_rows = np.flatnonzero(email_kind == 0)
    draw = rng.integers(0, 1 << 62, n)
    source = np.arange(n)
    if len(clean_rows):
        source = np.where(email_kind == 2, clean_rows[draw % len(clean_rows)], source)
    created = rng.integers(_START, _END, n)
    modified = created + (rng.random(n) * (_END - created)).astype(np.int64)
    raw = pl.DataFrame(
        {
            "customer_id": ids,
            "first": first,
            "first_mixed": first_mixed,
            "first_ascii": first_ascii,
            "last": last,
            "last_mixed": last_mixed,
            "last_ascii": last_ascii,
            "case": _kinds(rng, n, casing, casing, casing),
            "junk": _flag(rng, n, DIRT["customer_name_junk"]),
            "junk_char": _choose(rng, n, _JUNK),
            "junk_at_end": rng.random(n) < 0.5,
            "spaced": _flag(rng, n, DIRT["customer_name_spaces"]),
            "gap": _choose(rng, n, _GAPS),
            "name_kind": _kinds(rng, n, DIRT["customer_name_empty"]),
            "name_blank": _choose(rng, n, [None, "", "   "]),
            "local_form": rng.integers(0, 4, n),
            "domain": _choose(rng, n, _DOMAINS),
            "email_kind": email_kind,
            "source": source,
            "invalid_form": rng.integers(0, 4, n),
            "email_blank": _choose(rng, n, [None, "", "  "]),
            "mixed_case": _flag(rng, n, DIRT["customer_email_mixed_case"]),
            "upper": rng.random(n) < 0.5,
            "email_padded": _flag(rng, n, DIRT["customer_email_whitespace"]),
            "area": rng.integers(201, 990, n),
            "exchange": rng.integers(200, 1000, n),
            "line": rng.integers(0, 10_000, n),
            "phone_form": rng.integers(0, 7, n),
            "phone_kind": _kinds(
                rng,
                n,
                DIRT["customer_phone_short"],
                DIRT["customer_phone_junk"],
                DIRT["customer_phone_missing"],
            ),
            "short_phone": rng.integers(1_000, 10_000_000, n),
            "phone_junk": _choose(rng, n, _PHONE_JUNK),
            "house": rng.integers(1, 10_000, n),
            "street": _choose(rng, n, _STREETS),
            "street_type": _choose(rng, n, _STREET_TYPES),
            "apartment": np.where(rng.random(n) < 0.1, rng.integers(1, 500, n), -1),
            "city": _choose(rng, n, [f"{city}|{state}" for city, state in _CITIES]),
            "zip": rng.integers(501, 100_000, n),
            "zip4": np.where(rng.random(n) < 0.1, rng.integers(0, 10_000, n), -1),
            "address_missing": _flag(rng, n, DIRT["customer_address_missing"]),
            "country": _choose(rng, n, _COUNTRIES, _COUNTRY_WEIGHTS),
            "country_missing": _flag(rng, n, DIRT["customer_country_missing"]),
            "status": _choose(rng, n, _CUSTOMER_STATUS, _CUSTOMER_STATUS_WEIGHTS),
            "status_kind": _kinds(
                rng, n, DIRT["customer_status_unknown"], DIRT["customer_status_missing"]
            ),
            "status_unknown": _choose(rng, n, _CUSTOMER_STATUS_UNKNOWN),
            "active_kind": _kinds(rng, n, DIRT["customer_inactive"], DIRT["customer_active_null"]),
            "created_date": _dates(rng, created, future=DIRT["customer_created_future"]),
            "last_modified": _dates(rng, modified, missing=DIRT["customer_last_modified_missing"]),
            "coin": rng.random(n) < 0.5,
        }
    )
    c = pl.col

    def cased(plain: str, mixed: str) -> pl.Expr:
        text = c(plain)
        return _dirty("case", text, text.str.to_uppercase(), text.str.to_lowercase(), c(mixed))

    first_part = (
        pl.when(c("junk") & ~c("junk_at_end"))
        .then(_cat(cased("first", "first_mixed"), c("junk_char")))
        .otherwise(cased("first", "first_mixed"))
    )
    separator = pl.when(c("spaced")).then(c("gap")).otherwise(pl.lit(" "))
    name = _cat(first_part, separator, cased("last", "last_mixed"))
    name = pl.when(c("junk") & c("junk_at_end")).then(_cat(name, c("junk_char"))).otherwise(name)
    name = pl.when(c("spaced")).then(_cat(" ", name, "  ")).otherwise(name)

    number = c("customer_id").cast(pl.String)
    initial = c("first_ascii").str.slice(0, 1)
    local = _pick(
        "local_form",
        [
            _cat(c("first_ascii"), ".", c("last_ascii"), number),
            _cat(c("first_ascii"), "_", c("last_ascii"), number),
            _cat(initial, c("last_ascii"), number),
            _cat(c("last_ascii"), initial, number),
        ],
    )
    email = _cat(local, "@", c("domain"))
    invalid = _pick(
        "invalid_form",
        [
            _cat(local, c("domain")),
            _cat(local, "@", c("domain").str.replace(r"\..*$", "")),
            _cat(local, "@@", c("domain")),
            _cat(local, " at ", c("domain")),
        ],
    )
    email_cased = (
        pl.when(c("mixed_case") & c("upper"))
        .then(c("email").str.to_uppercase())
        .when(c("mixed_case"))
        .then(c("email").str.to_titlecase())
        .otherwise(c("email"))
    )
    shared = c("email").gather(c("source"))
    shared = pl.when(c("upper")).then(shared.str.to_uppercase()).otherwise(_cat(" ", shared))

    area, exchange = c("area").cast(pl.String), c("exchange").cast(pl.String)
    line = c("line").cast(pl.String).str.zfill(4)
    phone = _pick(
        "phone_form",
        [
            _cat(area, "-", exchange, "-", line),
            _cat("(", area, ") ", exchange, " ", line),
            _cat(area, exchange, line),
            _cat("+1 ", area, " ", exchange, " ", line),
            _cat("1-", area, "-", exchange, "-", line),
            _cat(area, ".", exchange, ".", line),
            _cat("(", area, ") ", exchange, "-", line),
        ],
    )
    street = _cat(c("house").cast(pl.String), " ", c("street"), " ", c("street_type"))
    street = (
        pl.when(c("apartment") >= 0)
        .then(_cat(street, ", Apt ", c("apartment").cast(pl.String)))
        .otherwise(street)
    )
    zip_code = c("zip").cast(pl.String).str.zfill(5)
    zip_code = (
        pl.when(c("zip4") >= 0)
        .then(_cat(zip_code, "-", c("zip4").cast(pl.String).str.zfill(4)))
        .otherwise(zip_code)
    )

    def address(value: pl.Expr) -> pl.Expr:
        return pl.when(c("address_missing")).then(_blank("coin")).otherwise(value)

    frame = (
        raw.with_columns(email=email)
        .with_columns(email=_dirty("email_kind", c("email"), invalid, shared, c("email_blank")))
        .with_columns(email=email_cased)
        .select(
            "customer_id",
            customer_name=_dirty("name_kind", name, c("name_blank")),
            email_address=pl.when(c("email_padded"))
            .then(_cat("  ", c("email"), " "))
            .otherwise(c("email")),
            phone_number=_dirty(
                "phone_kind",
                phone,
                c("short_phone").cast(pl.String),
                c("phone_junk"),
                _blank("coin"),
            ),
            street_address=address(street),
            city=address(c("city").str.split_exact("|", 1).struct.field("field_0")),
            state_province=address(c("city").str.split_exact("|", 1).struct.field("field_1")),
            zip_postal=address(zip_code),
            country=pl.when(c("country_missing")).then(_blank("coin")).otherwise(c("country")),
            status_code=_dirty(
                "status_kind", c("status"), c("status_unknown"), pl.lit(None, dtype=pl.String)
            ),
            active=_dirty("active_kind", pl.lit(1), pl.lit(0), pl.lit(None, dtype=pl.Int64)),
            created_date="created_date",
            last_modified="last_modified",
        )
    )
    return _schema_order(frame, customer_entity.SOURCE.schema)


# --- products ---------------------------------------------------------------------------------


def products_table(seed: int, n: int) -> pl.DataFrame:
    """``n`` legacy products for ``seed``, sorted by id."""
    ids = _product_ids(seed, n)
    rng = _rng(seed, _PRODUCTS, _FIELDS)
    code_kind = _kinds(
        rng,
        n,
        DIRT["product_code_junk"],
        DIRT["product_code_empty"],
        DIRT["product_code_duplicate"],
    )
    # A duplicate copies a clean product's code, so both clean to the same SKU.
    clean_rows = np.flatnonzero(code_kind == 0)
    draw = rng.integers(0, 1 << 62, n)
    source = np.arange(n)
    if len(clean_rows):
        source = np.where(code_kind == 3, clean_rows[draw % len(clean_rows)], source)
    dollars = np.exp(rng.normal(3.0, 1.0, n))
    cents = np.clip(np.round(dollars * 100), 99, 2_500_000).astype(np.int64)
    raw = pl.DataFrame(
        {
            "product_id": ids,
            "prefix": _choose(rng, n, _CODE_PREFIXES),
            "code_kind": code_kind,
            "source": source,
            "junk_form": rng.integers(0, 4, n),
            "junk_char": _choose(rng, n, _JUNK),
            "code_blank": _choose(rng, n, [None, "", "  ", "!!!", "#"]),
            "duplicate_form": rng.integers(0, 3, n),
            "adjective": _choose(rng, n, _ADJECTIVES),
            "noun": _choose(rng, n, _NOUNS),
            "name_kind": _kinds(rng, n, DIRT["product_name_padded"], DIRT["product_name_empty"]),
            "name_blank": _choose(rng, n, [None, "", "   ", "X"]),
            "description_kind": _kinds(
                rng, n, DIRT["product_description_padded"], DIRT["product_description_empty"]
            ),
            "cents": cents,
            "price_kind": _kinds(
                rng,
                n,
                DIRT["product_price_padded"],
                DIRT["product_price_not_number"],
                DIRT["product_price_missing"],
                DIRT["product_price_negative"],
                DIRT["product_price_too_high"],
            ),
            "price_not_number": _choose(rng, n, _PRICE_NOT_NUMBER),
            "high_cents": rng.integers(10_000_001, 1_000_000_000, n),
            "category": _choose(rng, n, _CATEGORY_SPELLINGS),
            "category_kind": _kinds(
                rng, n, DIRT["product_category_other"], DIRT["product_category_empty"]
            ),
            "category_other": _choose(rng, n, _CATEGORY_OTHER),
            "category_blank": _choose(rng, n, [None, "", "  "]),
            "status": _choose(rng, n, _PRODUCT_ACTIVE),
            "status_kind": _kinds(
                rng, n, DIRT["product_status_inactive"], DIRT["product_status_missing"]
            ),
            "status_inactive": _choose(rng, n, _PRODUCT_INACTIVE),
            "as_pairs": rng.random(n) < _ATTRIBUTES_AS_PAIRS,
            "color": _choose(rng, n, _COLORS),
            "size": _choose(rng, n, _SIZES),
            "weight": rng.integers(1, 5_000, n),
            "with_weight": rng.random(n) < 0.3,
            "attributes_kind": _kinds(
                rng,
                n,
                DIRT["product_attributes_not_object"],
                DIRT["product_attributes_broken"],
                DIRT["product_attributes_empty"],
            ),
            "not_object": _choose(rng, n, _NOT_OBJECT),
            "broken": _choose(rng, n, _BROKEN_ATTRIBUTES),
            "coin": rng.random(n) < 0.5,
        }
    )
    c = pl.col
    code = _cat(c("prefix"), "-", c("product_id").cast(pl.String).str.zfill(5))
    lower = c("code").str.to_lowercase()
    junk_code = _pick(
        "junk_form",
        [
            _cat(lower.str.slice(0, 2), " ", lower.str.slice(2), c("junk_char")),  # wid -00012!
            _cat(" ", c("code"), " "),
            lower,
            c("code").str.replace("-", c("junk_char"), literal=True),
        ],
    )
    copied = c("code").gather(c("source"))
    duplicate = _pick(
        "duplicate_form",
        [_cat(copied.str.to_lowercase(), "!"), _cat(" ", copied), _cat("#", copied, "*")],
    )
    name = _cat(c("adjective"), " ", c("noun"))
    description = _cat("The ", name.str.to_lowercase(), " for everyday use.")
    price = _money(c("cents"))
    weight = (
        pl.when(c("with_weight"))
        .then(_cat(', "weight_g": ', c("weight").cast(pl.String)))
        .otherwise(pl.lit(""))
    )
    json_object = _cat('{"color": "', c("color"), '", "size": "', c("size"), '"', weight, "}")
    pairs = (
        pl.when(c("with_weight"))
        .then(_cat("color = ", c("color"), "; size=", c("size"), ";"))
        .otherwise(_cat("color=", c("color"), ";size=", c("size")))
    )
    frame = raw.with_columns(code=code).select(
        "product_id",
        product_code=_dirty("code_kind", c("code"), junk_code, c("code_blank"), duplicate),
        product_name=_dirty("name_kind", name, _cat("  ", name, " "), c("name_blank")),
        description=_dirty(
            "description_kind", description, _cat(" ", description, "\n"), _blank("coin")
        ),
        unit_price=_dirty(
            "price_kind",
            price,
            _cat(" ", price, "  "),
            c("price_not_number"),
            _blank("coin"),
            _cat("-", price),
            _money(c("high_cents")),
        ),
        category=_dirty("category_kind", c("category"), c("category_other"), c("category_blank")),
        status=_dirty("status_kind", c("status"), c("status_inactive"), _blank("coin")),
        product_attributes=_dirty(
            "attributes_kind",
            pl.when(c("as_pairs")).then(pairs).otherwise(json_object),
            c("not_object"),
            c("broken"),
            _blank("coin"),
        ),
    )
    return _schema_order(frame, product_entity.SOURCE.schema)


# --- orders -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lookups:
    """Text shared by every order block, built once: gathering it beats rebuilding it per row."""

    customer_ids: np.ndarray
    product_labels: pl.Series  # "P<product_id>"
    item_heads: pl.Series  # per product: the JSON item head, then the delimited one
    money: pl.Series  # "-100.00" .. "5000.00", indexed by cents - _MIN_CENTS


def _lookups(seed: int, sizes: Sizes) -> _Lookups:
    labels = pl.Series(_product_ids(seed, sizes.products)).cast(pl.String)
    labels = pl.select(_cat("P", pl.lit(labels))).to_series()
    heads = pl.concat(
        [
            pl.select(_cat('{"product_id": "', pl.lit(labels), '", "quantity": ')).to_series(),
            pl.select(_cat(pl.lit(labels), ":")).to_series(),
        ]
    )
    money = pl.select(_money(pl.int_range(_MIN_CENTS, _MAX_CENTS + 1))).to_series()
    return _Lookups(_customer_ids(seed, sizes.customers), labels, heads, money)


def _order_blocks(rows: int, seed: int) -> Iterator[pl.DataFrame]:
    """The orders in blocks of ``_BLOCK`` rows; block ``b`` only uses the key (seed, b)."""
    lookups = _lookups(seed, sizes_for(rows))
    last_id = 0
    for block, start in enumerate(range(0, rows, _BLOCK)):
        n = min(_BLOCK, rows - start)
        frame = _orders_block(_rng(seed, _ORDERS, block), n, last_id, lookups)
        last_id = int(frame["order_id"][-1])
        yield frame


def _orders_block(
    rng: np.random.Generator, n: int, after_id: int, lookups: _Lookups
) -> pl.DataFrame:
    ids = _sparse_ids(rng, n, after_id)
    customer_ids = lookups.customer_ids
    # Popular customers order more: u**2 piles the picks onto the low customer indexes.
    popular = (rng.random(n) ** 2 * len(customer_ids)).astype(np.int64)
    unknown = np.stack(
        [
            customer_ids[-1] + rng.integers(1, 1_000_000, n),
            np.zeros(n, dtype=np.int64),
            np.full(n, -1, dtype=np.int64),
        ]
    )[rng.integers(0, 3, n), np.arange(n)]
    customer_kind = _kinds(rng, n, DIRT["order_customer_unknown"], DIRT["order_customer_missing"])
    customer = np.where(customer_kind == 1, unknown, customer_ids[popular])

    count = rng.integers(1, _MAX_ITEMS + 1, n)
    shape = (n, _MAX_ITEMS)
    n_products = len(lookups.product_labels)
    product = rng.integers(0, n_products, shape)
    quantity = np.minimum(rng.geometric(0.55, shape), 12)
    cents = np.clip(np.round(np.exp(rng.normal(2.8, 0.9, shape)) * 100), 49, _MAX_CENTS)
    cents = cents.astype(np.int64)
    bad = _flag(rng, n, DIRT["order_items_bad_values"])
    bad_form = rng.integers(0, 3, n)
    quantity[:, 0] = np.where(bad & (bad_form == 0), 0, quantity[:, 0])
    quantity[:, 0] = np.where(bad & (bad_form == 1), -1, quantity[:, 0])
    negative = -np.minimum(cents[:, 0], -_MIN_CENTS)
    cents[:, 0] = np.where(bad & (bad_form == 2), negative, cents[:, 0])
    present = np.arange(_MAX_ITEMS) < count[:, None]
    total = (quantity * cents * present).sum(axis=1)
    # 0 = JSON array, 1 = P1:2:9.99|P2:1:3.50; picks the item head and the punctuation below.
    form = (rng.random(n) < _ITEMS_DELIMITED).astype(np.int64)

    pre_2020 = _flag(rng, n, DIRT["order_date_pre_2020"])
    seconds = np.where(pre_2020, rng.integers(_START, _CUTOFF, n), rng.integers(_CUTOFF, _END, n))
    columns: dict[str, object] = {
        "order_id": ids,
        "customer_id": customer,
        "customer_kind": customer_kind,
        "number_missing": _flag(rng, n, DIRT["order_number_missing"]),
        "total": total,
        "total_kind": _kinds(
            rng,
            n,
            DIRT["order_total_not_number"],
            DIRT["order_total_missing"],
            DIRT["order_total_zero"],
        ),
        "total_not_number": _choose(rng, n, _TOTAL_NOT_NUMBER),
        "status": _choose(rng, n, _ORDER_STATUS, _ORDER_STATUS_WEIGHTS),
        "status_unknown": _flag(rng, n, DIRT["order_status_unknown"]),
        "status_other": _choose(rng, n, _ORDER_STATUS_UNKNOWN),
        "order_date": _dates(rng, seconds),
        "count": count,
        "items_kind": _kinds(
            rng,
            n,
            DIRT["order_items_broken"],
            DIRT["order_items_not_array"],
            DIRT["order_items_empty"],
        ),
        "broken_form": rng.integers(0, 5, n),
        "not_array": _choose(rng, n, _ITEMS_NOT_ARRAY),
        "items_blank": _choose(rng, n, _ITEMS_EMPTY),
        "coin": rng.random(n) < 0.5,
        "pid0": lookups.product_labels.gather(product[:, 0]),
    }
    for name, (json, delimited) in _ITEM_PUNCTUATION.items():
        columns[name] = pl.Series([json, delimited], dtype=pl.String).gather(form)
    for k in range(_MAX_ITEMS):
        columns[f"head{k}"] = lookups.item_heads.gather(product[:, k] + form * n_products)
        columns[f"qty{k}"] = quantity[:, k]
        columns[f"price{k}"] = lookups.money.gather(cents[:, k] - _MIN_CENTS)
    raw = pl.DataFrame(columns)
    c = pl.col

    def item(k: int) -> pl.Expr:
        text = _cat(
            c(f"head{k}"), c(f"qty{k}").cast(pl.String), c("mid"), c(f"price{k}"), c("close")
        )
        return pl.when(c("count") > k).then(_cat(c("joiner"), text) if k else text)

    items = pl.concat_str(
        [c("open"), *(item(k) for k in range(_MAX_ITEMS)), c("end")], ignore_nulls=True
    )
    first_pid, first_qty, first_price = c("pid0"), c("qty0").cast(pl.String), c("price0")
    broken = _pick(
        "broken_form",
        [
            _cat(first_pid, ":x:", first_price),  # quantity not a number
            _cat(first_pid, ":", first_qty, ":abc"),  # price not a number
            _cat('[{"product_id": "', first_pid, '", '),  # truncated JSON
            _cat(first_pid, ";", first_qty, ";", first_price),  # wrong separator: no items
            _cat(first_pid, ":", first_qty, ":", first_price, "|", first_pid, ":1"),  # 2 fields
        ],
    )
    frame = raw.select(
        "order_id",
        customer_id=pl.when(c("customer_kind") == 2)
        .then(pl.lit(None, dtype=pl.Int64))
        .otherwise(c("customer_id")),
        order_number=pl.when(c("number_missing"))
        .then(_blank("coin"))
        .otherwise(_cat("SO", c("order_id").cast(pl.String).str.zfill(8))),
        order_total=_dirty(
            "total_kind",
            _money(c("total")),
            c("total_not_number"),
            _blank("coin"),
            pl.lit("0.00"),
        ),
        status=pl.when(c("status_unknown")).then(c("status_other")).otherwise(c("status")),
        order_date="order_date",
        order_items=_dirty("items_kind", items, broken, c("not_array"), c("items_blank")),
    )
    return _schema_order(frame, order_entity.SOURCE.schema)
