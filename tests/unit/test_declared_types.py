"""Which values a declared exact SQL type holds, and how they travel (declared_types.py)."""

from __future__ import annotations

import math
import sqlite3

import polars as pl
import pytest

from columnar_etl.declare import ROW_ID
from columnar_etl.declared_types import Declared, misfits, written
from columnar_etl.dialects import SQLITE


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("varchar(40)", Declared("c", "varchar(40)", length=40)),
        ("CHARACTER VARYING (5)", Declared("c", "CHARACTER VARYING (5)", length=5)),
        ("char(2)", Declared("c", "char(2)", length=2)),
        ("numeric(12,2)", Declared("c", "numeric(12,2)", precision=12, scale=2, digits=12)),
        ("decimal(5)", Declared("c", "decimal(5)", precision=5, scale=0, digits=5)),
        # Polars' decimals stop at 38 digits; text may use the whole declared precision.
        ("numeric(50,10)", Declared("c", "numeric(50,10)", precision=38, scale=10, digits=50)),
        ("smallint", Declared("c", "smallint", integer=pl.Int16)),
        ("integer", Declared("c", "integer", integer=pl.Int32)),
        ("INT2", Declared("c", "INT2", integer=pl.Int16)),
        # A bigint's range is a bigint's: text for one is checked as integer text.
        ("bigint", Declared("c", "bigint", form="integer")),
        ("int8", Declared("c", "int8", form="integer")),
        ("double precision", Declared("c", "double precision", form="float")),
        ("date", Declared("c", "date", form="date")),
        ("time(6) without time zone", Declared("c", "time(6) without time zone", form="time")),
        ("timestamptz(3)", Declared("c", "timestamptz(3)", form="timestamp")),
        ("boolean", Declared("c", "boolean", form="boolean")),
        ("date[]", None),
        ("numeric", None),
        ("text", None),
        ("numeric(2,3)", None),
    ],
)
def test_a_declared_type_says_what_it_checks(sql: str, expected: Declared | None) -> None:
    assert Declared.parse("c", sql) == expected


def _refused(
    data: dict[str, list], sql_types: dict[str, str], kept_as_text: bool = False
) -> dict[str, str]:
    rows = pl.DataFrame(data).with_row_index(ROW_ID)
    fit, refused = misfits(rows, sql_types, kept_as_text)
    assert fit.height + refused.height == rows.height
    return dict(refused.select(pl.col(ROW_ID).cast(pl.String), "error_message").iter_rows())


def test_integer_text_kept_as_text_must_fit_its_declared_width() -> None:
    values = ["32767", "-32768", "+7", "32768", "-32769", "1.5", "abc", "9" * 20, None]
    refused = _refused({"q": values}, {"q": "smallint"}, kept_as_text=True)
    assert refused == {
        "3": "q: 32768 does not fit smallint",
        "4": "q: -32769 does not fit smallint",
        "5": "q: 1.5 does not fit smallint",
        "6": "q: abc does not fit smallint",
        "7": f"q: {'9' * 20} does not fit smallint",
    }


def test_a_number_with_more_decimals_or_digits_than_declared_is_refused() -> None:
    fees = [1.1, 1.005, 0.1 + 0.2, 999.99, -999.99, 1000.0, math.nan, math.inf, None, 1e-9]
    refused = _refused({"fee": fees}, {"fee": "numeric(5,2)"})
    assert refused == {
        "1": "fee: 1.005 does not fit numeric(5,2)",
        "2": "fee: 0.30000000000000004 does not fit numeric(5,2)",
        "5": "fee: 1000.0 does not fit numeric(5,2)",
        "6": "fee: NaN does not fit numeric(5,2)",
        "7": "fee: inf does not fit numeric(5,2)",
        "9": "fee: 1e-9 does not fit numeric(5,2)",
    }


def test_integers_text_and_the_first_misfit_of_a_row() -> None:
    data = {"n": [1, 99_999, 100_000, 40_000], "code": ["ab", "abcd", "a", "abcdef"]}
    refused = _refused(data, {"n": "numeric(5)", "code": "varchar(4)", "missing": "smallint"})
    assert refused == {
        "2": "n: 100000 does not fit numeric(5)",
        "3": "code: abcdef does not fit varchar(4)",
    }
    assert _refused({"q": [32_767, -32_768, 32_768]}, {"q": "smallint"}) == {
        "2": "q: 32768 does not fit smallint"
    }


def test_values_travel_in_the_declared_type_unchanged() -> None:
    rows = pl.DataFrame({"fee": [1.1, -3.0], "q": [1, 2], "code": ["a", "b"]})
    types = {"fee": "numeric(12,2)", "q": "smallint", "code": "varchar(3)"}
    sent = written(rows, types, decimals=True)
    assert sent.schema == {"fee": pl.Decimal(12, 2), "q": pl.Int16, "code": pl.String}
    assert [str(v) for v in sent["fee"]] == ["1.10", "-3.00"]
    # A driver without decimals gets the number as it is.
    assert written(rows, types, decimals=False)["fee"].dtype == pl.Float64


#: Text bound for a date, time, timestamp or boolean column, and whether it is one.
TEXTS = {
    "date": {
        "2020-02-29": True,
        "1900-02-29": False,  # not a leap year
        "0000-00-00": False,  # MySQL's zero date
        "2020-00-15": False,
        "0044-03-15 BC": True,
        "0005-02-29 BC": True,  # 5 BC is leap (1 BC is year 0)
        "0006-02-29 BC": False,
        "infinity": True,
        "2020-1-5": True,
        "15/03/2020": False,
    },
    "time(6)": {
        "24:00:00": True,  # the end of the day
        "24:00:00.000001": False,
        "23:59:59.999999+05:30": True,
        "-838:59:59": False,  # a MySQL duration
        "25:00": False,
        "12:60:00": False,
    },
    "timestamp(6) with time zone": {
        "0001-01-01 00:00:00.000000+00 BC": True,
        "294276-12-31 23:59:59.000000+00": True,
        "2021-03-28T04:30:00": True,
        "-infinity": True,
        "0000-00-00 00:00:00": False,
        "2020-02-30 00:00:00": False,
        "2020-01-01 24:00:01": False,
    },
    "boolean": {"1": True, "0": True, "true": True, " OFF ": True, "2": False, "-1": False},
}


@pytest.mark.parametrize("sql", list(TEXTS))
def test_text_kept_as_it_is_must_be_a_value_of_its_type(sql: str) -> None:
    """Into a target that keeps text as it is (SQLite), a zero date is a reject, not text;
    where the target casts it (PostgreSQL), the cast decides."""
    values = list(TEXTS[sql])
    refused = _refused({"v": [*values, None]}, {"v": sql}, kept_as_text=True)
    expected = {str(n): f"v: {v} does not fit {sql}" for n, v in enumerate(values)}
    assert refused == {n: m for n, m in expected.items() if not TEXTS[sql][values[int(n)]]}
    assert _refused({"v": values}, {"v": sql}) == {}


def test_a_target_that_keeps_no_nan_or_negative_zero_refuses_them() -> None:
    data = {"x": [0.0, -0.0, math.nan, math.inf, None, 1.5]}
    assert _refused(data, {}, kept_as_text=True) == {
        "1": "x: -0.0: the target keeps no negative zero (it would store 0)",
        "2": "x: NaN: the target keeps no NaN (it would store NULL)",
    }
    assert _refused(data, {}) == {}


@pytest.mark.parametrize(
    ("declared", "dtype", "expected"),
    [
        ("character varying(10)[]", pl.String(), "text"),
        ("timestamp(3) with time zone", pl.String(), "text"),
        ("varchar(40)", pl.String(), "varchar(40)"),
        ("double precision", pl.Float64(), "double precision"),
    ],
)
def test_a_postgresql_spelling_sqlite_cannot_parse_becomes_the_dtype_s_type(
    declared: str, dtype: pl.DataType, expected: str
) -> None:
    """etl init declares PostgreSQL's exact types; an SQLite target creates its table with
    what its grammar takes, of the same affinity."""
    sql = SQLITE.column_type(declared, dtype)
    assert sql == expected
    sqlite3.connect(":memory:").execute(f"CREATE TABLE t (c {sql})")
