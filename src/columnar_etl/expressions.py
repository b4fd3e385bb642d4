"""Reusable Polars expression builders for cleaning legacy text.

Every function here is pure: it takes and returns Polars expressions (or a LazyFrame for the
join-based code mapping) and imports no database driver, so notebooks can use it directly.
The exact semantics are those of ``docs/rules.md``; each mirrors a Python idiom of the
reference (``str.strip``, ``re.sub(r"[^\\w...]")``, ``datetime.strptime``) closely enough
that the row-wise oracle in ``tests/oracle.py`` agrees row for row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import polars as pl

__all__ = [
    "DATE_FORMATS",
    "NUMBER_PATTERN",
    "PY_WHITESPACE",
    "clean_email",
    "clean_name",
    "coalesce_dates",
    "format_phone",
    "is_empty",
    "join_messages",
    "json_string",
    "keep_word_chars",
    "map_codes",
    "message_if",
    "padded_dates",
    "parse_float",
    "parse_int",
    "strip",
    "title_case",
    "valid_json",
]

#: Characters for which Python's ``str.isspace()`` is true: what ``str.strip()`` removes. Written
#: out, because finding them among all 1.1M code points took 0.1 s of every start (a unit test
#: holds the list to that search).
PY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WS_CLASS = "".join(f"\\x{{{ord(c):x}}}" for c in PY_WHITESPACE)
# Python's ``\w`` is "alphanumeric or underscore"; in Rust's regex that is letters, numbers, _.
_WORD_CLASS = r"\p{L}\p{N}_"

#: The reference's date formats, tried in this order; the first that parses wins.
DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%Y%m%d",
)

#: A decimal number as the rules accept it (ASCII digits, optional sign and exponent).
NUMBER_PATTERN = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_INT_PATTERN = r"^[+-]?[0-9]+$"


def is_empty(expr: pl.Expr) -> pl.Expr:
    """True where the value is null or the empty string (Python falsiness)."""
    return expr.is_null() | (expr == "")


def strip(expr: pl.Expr) -> pl.Expr:
    """Python's ``str.strip()``: trim every Unicode whitespace character Python knows."""
    return expr.str.strip_chars(PY_WHITESPACE)


def keep_word_chars(expr: pl.Expr, extra: str = "") -> pl.Expr:
    """Delete every character that is not a word character or one of ``extra`` (regex-escaped)."""
    return expr.str.replace_all(f"[^{_WORD_CLASS}{extra}]", "")


# Letters without case (CJK, N'Ko tone marks, ...): Python's str.title() starts a new word after
# them, Polars' to_titlecase does not; a NUL after each makes Polars see the boundary too.
_UNCASED_LETTER = r"[\p{Alphabetic}--\p{Cased}]"


def title_case(expr: pl.Expr) -> pl.Expr:
    """Python's ``str.title()``: upper after an uncased character, lower after a cased one."""
    marked = expr.str.replace_all(f"({_UNCASED_LETTER})", "${1}\x00")
    return marked.str.to_titlecase().str.replace_all(f"({_UNCASED_LETTER})\x00", "${1}")


def clean_name(expr: pl.Expr, default: str) -> pl.Expr:
    """The reference's ``_clean_name``: drop junk, collapse whitespace, title-case."""
    cleaned = (
        keep_word_chars(strip(expr), _WS_CLASS + r"\-.")
        .str.replace_all(f"[{_WS_CLASS}]+", " ")
        .str.strip_chars(" ")
    )
    cleaned = title_case(cleaned)
    return pl.when(is_empty(expr)).then(pl.lit(default)).otherwise(cleaned)


def clean_email(expr: pl.Expr) -> pl.Expr:
    """Strip and lowercase; empty becomes null (validity is the contract's job)."""
    cleaned = strip(expr).str.to_lowercase()
    return pl.when(is_empty(cleaned)).then(None).otherwise(cleaned)


def format_phone(expr: pl.Expr) -> pl.Expr:
    """Digits only; 10 digits as ``(555) 123-4567``, 11 starting with 1 as ``+1 (...)``."""
    # The digits are a struct field so that the regex runs once: Polars does not reliably
    # share the repeated subexpression that each slice below would otherwise be.
    digits = pl.field("digits")
    n = digits.str.len_chars()

    def local(offset: int) -> pl.Expr:
        return pl.concat_str(
            pl.lit("("),
            digits.str.slice(offset, 3),
            pl.lit(") "),
            digits.str.slice(offset + 3, 3),
            pl.lit("-"),
            digits.str.slice(offset + 6, 4),
        )

    formatted = (
        pl.when(n == 10)
        .then(local(0))
        .when((n == 11) & digits.str.starts_with("1"))
        .then(pl.concat_str(pl.lit("+1 "), local(1)))
        .otherwise(digits)
    )
    phone = pl.struct(expr.str.replace_all(r"[^\d]", "").alias("digits")).struct.with_fields(
        formatted.alias("_phone")
    )
    return pl.when(is_empty(expr)).then(None).otherwise(phone.struct.field("_phone"))


def parse_float(expr: pl.Expr) -> pl.Expr:
    """A finite float64 where the stripped text is a decimal number, else null."""
    text = strip(expr)
    value = text.cast(pl.Float64, strict=False)
    ok = text.str.contains(NUMBER_PATTERN) & value.is_finite()
    return pl.when(ok).then(value).otherwise(None)


def parse_int(expr: pl.Expr) -> pl.Expr:
    """An int64 where the stripped text is an optionally signed integer, else null."""
    text = strip(expr)
    return pl.when(text.str.contains(_INT_PATTERN)).then(text.cast(pl.Int64, strict=False))


# strptime directives -> the regexes Python's _strptime uses, with ASCII digits only.
_DIRECTIVES = {
    "Y": r"([0-9]{4})",
    "m": r"(1[0-2]|0[1-9]|[1-9])",
    "d": r"(3[0-1]|[1-2][0-9]|0[1-9]|[1-9]| [1-9])",
    "H": r"(2[0-3]|[0-1][0-9]|[0-9])",
    "M": r"([0-5][0-9]|[0-9])",
    "S": r"(6[0-1]|[0-5][0-9]|[0-9])",
}
# Whitespace in a format matches one or more whitespace characters (ASCII text only).
_ASCII_WS = r"[\t\n\x0b\x0c\r\x1c-\x1f ]+"


def _format_regex(fmt: str) -> tuple[str, list[str]]:
    """Translate a strptime format into an anchored regex and the order of its fields."""
    parts, fields, i = ["^"], [], 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%":
            directive = fmt[i + 1]
            parts.append(_DIRECTIVES[directive])
            fields.append(directive)
            i += 2
            continue
        parts.append(_ASCII_WS if ch.isspace() else re.escape(ch))
        i += 1
    parts.append("$")
    return "".join(parts), fields


def _parse_with(expr: pl.Expr, fmt: str) -> pl.Expr:
    """Text in ``fmt`` (strptime's regex) -> datetime; null when it does not match or exist."""
    pattern, fields = _format_regex(fmt)
    field = {name: pl.field(str(i + 1)) for i, name in enumerate(fields)}

    def padded(name: str) -> pl.Expr:
        # 1- or 2-digit fields (a day may be space-padded) -> 2 digits; a missing time is 0.
        return field[name].str.strip_chars(" ").str.zfill(2) if name in field else pl.lit("00")

    # The fields become one zero-padded ISO text that Polars' parser checks (the calendar
    # date must exist); it would also take the year 0 and a 60th second, which Python refuses.
    iso = pl.concat_str(
        field["Y"], pl.lit("-"), padded("m"), pl.lit("-"), padded("d"), pl.lit(" "),
        padded("H"), pl.lit(":"), padded("M"), pl.lit(":"), padded("S"),
    )  # fmt: skip
    possible = (field["Y"] != "0000") & (padded("S") < "60")
    # Built inside the struct so that the regex runs once: Polars does not reliably share a
    # repeated subexpression, such as the extraction behind each field read separately.
    text = expr.str.extract_groups(pattern).struct.with_fields(
        pl.when(possible).then(iso).alias("_iso")
    )
    return text.struct.field("_iso").str.to_datetime(
        "%Y-%m-%d %H:%M:%S", strict=False, time_unit="us"
    )


def coalesce_dates(expr: pl.Expr, formats: Sequence[str] = DATE_FORMATS) -> pl.Expr:
    """Parse text with the first of ``formats`` that matches (strptime semantics), else null.

    Only ASCII text parses: the format regexes match nothing else, and a format with a
    non-ASCII literal character could only match non-ASCII text, so it is left out.
    """
    usable = [fmt for fmt in formats if fmt.isascii()]
    if not usable:
        return pl.lit(None, pl.Datetime("us"))
    return pl.coalesce([_parse_with(expr, fmt) for fmt in usable]).cast(pl.Datetime("us"))


# The zero-padded shape of each DATE_FORMATS directive, with Python's ranges (the year 0000 and
# a 60th or 61st second, which datetime() refuses, are left to coalesce_dates).
_PADDED = {
    "Y": r"(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)",
    "m": r"(?:0[1-9]|1[0-2])",
    "d": r"(?:0[1-9]|[12][0-9]|3[01])",
    "H": r"(?:[01][0-9]|2[0-3])",
    "M": r"[0-5][0-9]",
    "S": r"[0-5][0-9]",
}


def _padded_regex(fmt: str) -> str:
    """The anchored regex of ``fmt``'s zero-padded texts, one space where the format has one."""
    escaped = re.escape(fmt).replace("\\ ", " ")
    return "^" + re.sub(r"%(.)", lambda m: _PADDED[m.group(1)], escaped) + "$"


def padded_dates(expr: pl.Expr) -> pl.Expr:
    """The DATE_FORMATS value of zero-padded dates (``2023-01-05``), null for any other text.

    A fast path for :func:`coalesce_dates`, which it agrees with wherever it is not null:
    Polars' native parser reads the zero-padded shape of each format, which no earlier format of
    DATE_FORMATS can match (they differ in separators or length), so the first format that
    parses wins as before. ``%m/%d/%Y`` and ``%d/%m/%Y`` share a shape and are tried in order.
    """
    return pl.coalesce(
        pl.when(expr.str.contains(_padded_regex(fmt)))
        .then(expr)
        # No cache of unique texts: building it costs more than parsing them.
        .str.to_datetime(fmt, strict=False, time_unit="us", cache=False)
        for fmt in DATE_FORMATS
    )


# RFC 8259 syntax as regexes: a string, a number, whitespace, an object of scalar members.
JSON_STRING = r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"'
JSON_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
JSON_WS = r"[ \t\n\r]*"
_SCALAR = f"(?:{JSON_STRING}|{JSON_NUMBER}|true|false|null)"
_MEMBER = f"{JSON_STRING}{JSON_WS}:{JSON_WS}{_SCALAR}"
FLAT_JSON_OBJECT = rf"\{{{JSON_WS}(?:{_MEMBER}(?:{JSON_WS},{JSON_WS}{_MEMBER})*)?{JSON_WS}\}}"
_ELEMENT = f"(?:{_SCALAR}|{FLAT_JSON_OBJECT})"
_FLAT_JSON_ARRAY = rf"\[{JSON_WS}(?:{_ELEMENT}(?:{JSON_WS},{JSON_WS}{_ELEMENT})*)?{JSON_WS}\]"
# An object of scalars, or an array of scalars and such objects: most JSON a legacy row holds.
_FLAT_JSON = rf"^{JSON_WS}(?:{FLAT_JSON_OBJECT}|{_FLAT_JSON_ARRAY}){JSON_WS}$"
#: Syntactically valid JSON can still be refused: a \u escape may be a lone surrogate, and a
#: number with a 3-digit exponent or 300 digits may not fit a finite float64.
MAYBE_INVALID_JSON = r"\\u|[eE][+-]?[0-9]{3}|[0-9]{300}"


def valid_json(expr: pl.Expr) -> pl.Expr:
    """True where the text is one complete JSON value (RFC 8259, finite numbers)."""
    # Flat JSON, the common case, is known valid from a regex; only the other texts are
    # parsed (which also re-serializes them). The known ones are parsed as "0".
    known = expr.str.contains(_FLAT_JSON) & ~expr.str.contains(MAYBE_INVALID_JSON)
    parsed = pl.when(known).then(pl.lit("0")).otherwise(expr).str.json_path_match("$")
    return parsed.is_not_null() | (expr.str.strip_chars(" \t\n\r") == "null")


def json_string(expr: pl.Expr) -> pl.Expr:
    """Encode text as a JSON string literal (quotes and escapes included)."""
    encoded = pl.struct(expr.alias("v")).struct.json_encode()
    return encoded.str.strip_prefix('{"v":').str.strip_suffix("}")


def map_codes(
    lf: pl.LazyFrame,
    column: str,
    mapping: Mapping[str, str] | pl.DataFrame,
    *,
    output: str,
    default: str,
) -> pl.LazyFrame:
    """Map codes in ``column`` through a code table into ``output``.

    ``mapping`` is a ``{code: value}`` dict or a two-column frame (code, value), so a mapping
    kept in a CSV or a database table can be used the same way. Codes are stripped first;
    unknown or null codes get ``default``.
    """
    if isinstance(mapping, Mapping):
        codes, values = list(mapping), list(mapping.values())
    else:
        codes, values = mapping.to_series(0).cast(pl.String), mapping.to_series(1)
    # A lookup expression rather than a join: it runs alongside the other expressions of the
    # frame instead of in a step of its own.
    code = strip(pl.col(column).cast(pl.String))
    return lf.with_columns(code.replace_strict(codes, values, default=default).alias(output))


def message_if(condition: pl.Expr, message: str | pl.Expr) -> pl.Expr:
    """The message where ``condition`` holds, else null."""
    text = pl.lit(message) if isinstance(message, str) else message
    return pl.when(condition).then(text)


def join_messages(*messages: pl.Expr) -> pl.Expr:
    """Join the non-null messages with ``"; "``; null when there are none."""
    joined = pl.concat_str(list(messages), separator="; ", ignore_nulls=True)
    return pl.when(joined != "").then(joined)
