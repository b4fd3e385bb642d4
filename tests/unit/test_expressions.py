"""Literal examples for every public helper in ``columnar_etl.expressions`` (docs/rules.md)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from columnar_etl.expressions import (
    DATE_FORMATS,
    PY_WHITESPACE,
    clean_email,
    clean_name,
    coalesce_dates,
    format_phone,
    is_empty,
    join_messages,
    json_string,
    keep_word_chars,
    map_codes,
    message_if,
    padded_dates,
    parse_float,
    parse_int,
    strip,
    title_case,
    valid_json,
)
from tests import oracle


def apply(helper: Callable[[pl.Expr], pl.Expr], data: list[Any]) -> list[Any]:
    """Run ``helper`` over one String column holding ``data``; the result as a list."""
    frame = pl.DataFrame({"a": data}, schema={"a": pl.String})
    return frame.select(helper(pl.col("a")).alias("out"))["out"].to_list()


def test_py_whitespace_is_what_str_strip_removes() -> None:
    assert "\x1c" in PY_WHITESPACE
    assert "\u3000" in PY_WHITESPACE
    assert "\u200b" not in PY_WHITESPACE  # zero-width space is not whitespace to Python
    assert len(PY_WHITESPACE) == 29
    every = "".join(chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace())
    assert every == PY_WHITESPACE


def test_is_empty() -> None:
    data = [None, "", " ", "a", "\u3000", "0"]
    expected = [True, True, False, False, False, False]
    assert apply(is_empty, data) == expected


def test_strip() -> None:
    data = [" a ", "\x1ca\x1c", "\u3000a b\u3000", "\t\n\x0b\x0c\r a\x85\xa0", "\u200ba", "", None]
    expected = ["a", "a", "a b", "a", "\u200ba", "", None]
    assert apply(strip, data) == expected
    assert expected[:5] == [s.strip() for s in data[:5]]


def test_keep_word_chars() -> None:
    data = ["a-b.c!d_e 1", "é中①²_", "e\u0301", "a\u200bb", "x!@#$%^&*()y", "١٢٣", "", None]
    expected = ["abcd_e1", "é中①²_", "e", "ab", "xy", "١٢٣", "", None]
    assert apply(keep_word_chars, data) == expected


def test_keep_word_chars_extra() -> None:
    data = ["a-b.c d", "--"]
    expected = ["a-bcd", "--"]
    assert apply(lambda e: keep_word_chars(e, r"\-"), data) == expected


def test_title_case() -> None:
    data = ["abc1def", "中a", "o'neil", "hELLO wORLD", "a_b", "x-y", "ßa", "ǆemal", "", None]
    expected = ["Abc1Def", "中A", "O'Neil", "Hello World", "A_B", "X-Y", "Ssa", "ǅemal", "", None]
    assert apply(title_case, data) == expected
    assert expected[:-1] == [s.title() for s in data[:-1]]


def test_clean_name() -> None:
    data = [
        "  john DOE  ",
        "J@hn!!  o'neil\t\u3000smith",
        "mary-jane st.john",
        "\x1cbob\x1c",
        "a \n\n b",
        "  ",
        "!!!",
        "",
        None,
    ]
    expected = [
        "John Doe",
        "Jhn Oneil Smith",
        "Mary-Jane St.John",
        "Bob",
        "A B",
        "",  # whitespace-only is not empty: no default, the contract rejects it
        "",
        "Unknown",
        "Unknown",
    ]
    assert apply(lambda e: clean_name(e, "Unknown"), data) == expected


def test_clean_email() -> None:
    data = ["  JOHN@EXAMPLE.COM ", "Ä@B.C", "not-an-email", "\u3000", "", None]
    expected = ["john@example.com", "ä@b.c", "not-an-email", None, None, None]
    assert apply(clean_email, data) == expected


def test_format_phone() -> None:
    data = [
        "5551234567",
        "(555) 123-4567 ext",
        "15551234567",
        "1-555-123-4567",
        "25551234567",
        "555-1234",
        "n/a",
        "",
        None,
    ]
    expected = [
        "(555) 123-4567",
        "(555) 123-4567",
        "+1 (555) 123-4567",
        "+1 (555) 123-4567",
        "25551234567",
        "5551234",
        "",
        None,
        None,
    ]
    assert apply(format_phone, data) == expected


def test_parse_float_accepts() -> None:
    data = ["1.", ".5", "+1", "1e3", " -2.5 ", "\u30003E-2\u3000", "0", "-0.0"]
    expected = [1.0, 0.5, 1.0, 1000.0, -2.5, 0.03, 0.0, -0.0]
    result = apply(parse_float, data)
    assert result == expected
    assert pl.DataFrame({"a": ["1"]}).select(parse_float(pl.col("a"))).dtypes == [pl.Float64]


def test_parse_float_rejects() -> None:
    data = ["inf", "-inf", "Infinity", "nan", "1_0", "", "0x10", "1e400", "1e", ".", "1,5", "١"]
    data.append(None)
    assert apply(parse_float, data) == [None] * len(data)


def test_parse_int() -> None:
    data = ["1", "+2", "-3", " 4 ", "9223372036854775807", "9223372036854775808"]
    data += ["1.0", "1e3", "1_0", "٣", "", "x", None]
    expected = [1, 2, -3, 4, 9223372036854775807] + [None] * 8
    assert apply(parse_int, data) == expected
    assert pl.DataFrame({"a": ["1"]}).select(parse_int(pl.col("a"))).dtypes == [pl.Int64]


def test_date_formats_order() -> None:
    assert DATE_FORMATS == (
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d",
        "%m/%d/%Y %H:%M:%S",
        "%m/%d/%Y",
        "%d/%m/%Y",
        "%Y%m%d",
    )


# Each expectation is what ``datetime.strptime`` gives with the first format that parses
# (checked by hand), except non-ASCII text, which the rules refuse on purpose.
DATE_CASES = [
    ("2023-01-15 10:30:00", datetime(2023, 1, 15, 10, 30)),  # %Y-%m-%d %H:%M:%S
    ("2023-01-15", datetime(2023, 1, 15)),  # %Y-%m-%d
    ("01/15/2023 10:30:00", datetime(2023, 1, 15, 10, 30)),  # %m/%d/%Y %H:%M:%S
    ("01/15/2023", datetime(2023, 1, 15)),  # %m/%d/%Y
    ("15/01/2023", datetime(2023, 1, 15)),  # %d/%m/%Y
    ("20230115", datetime(2023, 1, 15)),  # %Y%m%d
    ("2023-1-5", datetime(2023, 1, 5)),
    ("1/2/2023", datetime(2023, 1, 2)),  # m/d wins over d/m
    ("13/02/2021", datetime(2021, 2, 13)),  # only d/m fits
    ("1/ 5/2023", datetime(2023, 1, 5)),  # space-padded day
    ("2023-01-15  10:30:00", datetime(2023, 1, 15, 10, 30)),  # whitespace run
    ("2023-01-15\t10:30:00", datetime(2023, 1, 15, 10, 30)),
    ("2023-01-15 1:2:3", datetime(2023, 1, 15, 1, 2, 3)),
    ("202315", datetime(2023, 1, 5)),
    ("2023115", datetime(2023, 11, 5)),  # strptime's regex takes month 11 first
    ("2024-02-29", datetime(2024, 2, 29)),
    ("2000-02-29", datetime(2000, 2, 29)),
    ("20230230", None),
    ("2023-02-29", None),
    ("1900-02-29", None),
    ("31/02/2021", None),
    ("2023-13-01", None),
    ("0000-01-01", None),
    ("2023-01-15 10:30:60", None),  # strptime matches 60 but datetime() refuses it
    (" 2023-01-15", None),
    ("2023-01-15 ", None),
    ("٢٠٢٣-01-15", None),  # strptime would accept Arabic-Indic digits; the rules do not
    ("not-a-date", None),
    ("", None),
    (None, None),
]


def test_coalesce_dates() -> None:
    data = [text for text, _ in DATE_CASES]
    expected = [value for _, value in DATE_CASES]
    frame = pl.DataFrame({"a": data}, schema={"a": pl.String})
    result = frame.select(coalesce_dates(pl.col("a")).alias("out"))
    assert result.schema["out"] == pl.Datetime("us")
    assert result["out"].to_list() == expected


def test_coalesce_dates_skips_non_ascii_formats() -> None:
    # Only ASCII text parses (docs/rules.md#dates), so a format with a non-ASCII literal never does.
    assert apply(lambda e: coalesce_dates(e, ("%Y年%m月%d日",)), ["2023年01月05日"]) == [None]


def test_padded_dates() -> None:
    # Zero-padded text in each format parses; anything else is left to coalesce_dates (null).
    data = [text for text, _ in DATE_CASES]
    padded = apply(padded_dates, data)
    assert [text for text, value in zip(data, padded, strict=True) if value] == [
        "2023-01-15 10:30:00",
        "2023-01-15",
        "01/15/2023 10:30:00",
        "01/15/2023",
        "15/01/2023",
        "20230115",
        "13/02/2021",
        "2024-02-29",
        "2000-02-29",
    ]
    assert apply(padded_dates, ["2023-02-29", "0000-01-01", "2023-01-15 10:30:60"]) == [None] * 3


@st.composite
def padded_texts(draw: st.DrawFn) -> str:
    """Zero-padded texts of every format, real dates or not (day 31 of February, year 0)."""
    fmt = draw(st.sampled_from(DATE_FORMATS))
    width = {"Y": 4, "m": 2, "d": 2, "H": 2, "M": 2, "S": 2}
    top = {"Y": 9999, "m": 13, "d": 32, "H": 24, "M": 60, "S": 61}
    text = fmt
    for field, size in width.items():
        text = text.replace(f"%{field}", str(draw(st.integers(0, top[field]))).zfill(size))
    return text


@given(st.lists(padded_texts(), min_size=1, max_size=20))
def test_padded_dates_agree_with_coalesce_dates(texts: list[str]) -> None:
    fast = apply(padded_dates, texts)
    exact = apply(coalesce_dates, texts)
    # The fast path reads every date that exists, and reads it as coalesce_dates does.
    assert fast == exact


def test_coalesce_dates_custom_formats() -> None:
    data = ["01/02/2023", "2023-01-02"]
    expected = [datetime(2023, 2, 1), None]
    assert apply(lambda e: coalesce_dates(e, ("%d/%m/%Y",)), data) == expected


def test_valid_json() -> None:
    cases = {
        '{"a": 1}': True,
        "[1, 2]": True,
        '"x"': True,
        "1": True,
        "-0": True,
        "true": True,
        "null": True,
        " null ": True,
        "\nnull\n": True,
        " {} ": True,
        "{": False,
        "": False,
        "tru": False,
        "nan": False,
        "NaN": False,
        "Infinity": False,
        "1e400": False,
        '{"a": 1e400}': False,
        "{'a': 1}": False,
        "[1,]": False,
        "01": False,
        '{"a":1}{"b":2}': False,
    }
    assert apply(valid_json, list(cases)) == list(cases.values())
    assert apply(valid_json, [None]) == [None]


_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
# Valid JSON, and texts one edit away from it (numbers out of range, lone surrogates, ...).
_json_texts = _json_values.map(json.dumps) | st.tuples(
    _json_values.map(json.dumps),
    st.sampled_from(["", "1e400", '"\\ud800"', ",", "]", "}", " ", "01", "NaN"]),
    st.integers(0, 40),
).map(lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :])


@given(st.lists(_json_texts, min_size=1, max_size=10))
def test_valid_json_agrees_with_python(texts: list[str]) -> None:
    assert apply(valid_json, texts) == [oracle.is_json(text) for text in texts]


def test_json_string() -> None:
    data = ['a"b', "c\\d", "e\nf", "ünï€😀", "\x00\x1f", "</script>", ""]
    result = apply(json_string, data)
    assert result[:3] == ['"a\\"b"', '"c\\\\d"', '"e\\nf"']
    assert [json.loads(text) for text in result] == data
    assert apply(json_string, [None]) == ["null"]


CODES = {"A": "alpha", "B": "beta"}


@pytest.mark.parametrize(
    "mapping",
    [CODES, pl.DataFrame({"k": ["A", "B"], "v": ["alpha", "beta"]})],
    ids=["dict", "frame"],
)
def test_map_codes(mapping: dict[str, str] | pl.DataFrame) -> None:
    data = {"id": [1, 2, 3, 4, 5, 6], "code": [" A", "B\u3000", "Z", None, "a", "A"]}
    expected = {
        "id": [1, 2, 3, 4, 5, 6],
        "code": [" A", "B\u3000", "Z", None, "a", "A"],
        "name": ["alpha", "beta", "?", "?", "?", "alpha"],
    }
    result = map_codes(pl.LazyFrame(data), "code", mapping, output="name", default="?")
    assert isinstance(result, pl.LazyFrame)
    assert result.collect().to_dict(as_series=False) == expected


def test_map_codes_replaces_its_input_column_and_casts_codes() -> None:
    data = {"id": [1, 2], "status": [1, 9]}
    expected = {"id": [1, 2], "status": ["one", "other"]}
    result = map_codes(pl.LazyFrame(data), "status", {"1": "one"}, output="status", default="other")
    assert result.collect().to_dict(as_series=False) == expected


def test_message_if_and_join_messages() -> None:
    data = {"a": [1, 5, 10, 2], "b": [True, False, True, None]}
    messages = join_messages(
        message_if(pl.col("a") > 3, "big"),
        message_if(pl.col("b"), "flag"),
        message_if(pl.col("a") > 3, pl.concat_str(pl.lit("a="), pl.col("a").cast(pl.String))),
    )
    expected = {"m": ["flag", "big; a=5", "big; flag; a=10", None]}
    assert pl.DataFrame(data).select(messages.alias("m")).to_dict(as_series=False) == expected


def test_message_if_is_null_when_false() -> None:
    result = pl.select(message_if(pl.lit(False), "x").alias("m"), message_if(pl.lit(True), "x"))
    assert result.row(0) == (None, "x")


def test_join_messages_without_messages_is_null() -> None:
    assert pl.select(join_messages(pl.lit(None, pl.String)).alias("m")).item() is None
    assert pl.select(join_messages(pl.lit(None, pl.String), pl.lit("x")).alias("m")).item() == "x"
