"""Pure parts of extraction: telling well-formed UTF-8 from the rest without a Python loop."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from columnar_etl.extract import utf8_hex

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
