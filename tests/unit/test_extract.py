"""Pure parts of extraction: telling well-formed UTF-8 from the rest without a Python loop."""

from __future__ import annotations

import hashlib

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from columnar_etl.extract import key_hash, utf8_hex

# Bytes biased towards lead and continuation bytes, where the edge cases live.
edgy_bytes = st.lists(
    st.one_of(
        st.integers(0, 255),
        st.integers(0x80, 0xBF),
        st.sampled_from([0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]),
    ),
    max_size=8,
).map(bytes)


def _valid(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=300)
@given(st.lists(st.one_of(edgy_bytes, st.text().map(lambda t: t.encode("utf-8", "surrogatepass")))))
def test_utf8_hex_agrees_with_python(samples: list[bytes]) -> None:
    hexes = pl.Series("h", [b.hex().upper() for b in samples], dtype=pl.String)
    got = hexes.to_frame().select(utf8_hex(pl.col("h")))["h"].to_list()
    assert got == [_valid(b) for b in samples]


def test_utf8_hex_edges() -> None:
    cases = {
        "": True,
        "41": True,
        "C3A9": True,  # é
        "F09D849E": True,  # U+1D11E
        "F48FBFBF": True,  # U+10FFFF
        "C0AF": False,  # overlong '/'
        "EDA080": False,  # a surrogate
        "F4908080": False,  # past U+10FFFF
        "FF": False,
        "C3": False,  # truncated
    }
    frame = pl.DataFrame({"h": list(cases)})
    assert frame.select(utf8_hex(pl.col("h")))["h"].to_list() == list(cases.values())


def _sha256_of(*ids: int) -> str:
    return hashlib.sha256(b"".join(i.to_bytes(8, "little", signed=True) for i in ids)).hexdigest()


def test_key_hash_is_sha256_of_the_sorted_ids_as_little_endian_int64() -> None:
    """Fixed bytes hashed by hashlib, not a library's own hash: a ledger written by one
    version is checked by another. Every id counts, repeats too; the integer type does not."""
    ids = [2, -3, 9_000_000_000, 1, 2]
    assert key_hash(pl.Series(ids)) == _sha256_of(-3, 1, 2, 2, 9_000_000_000)
    for dtype in (pl.Int32, pl.UInt16, pl.Int64):
        assert key_hash(pl.Series([7, 5, 5], dtype=dtype)) == _sha256_of(5, 5, 7)
    assert key_hash(pl.Series([5, 7])) != _sha256_of(5, 5, 7)
    assert key_hash(pl.Series([], dtype=pl.Int64)) == hashlib.sha256(b"").hexdigest()
