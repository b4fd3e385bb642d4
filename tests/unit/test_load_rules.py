"""The loader's pure rule: within a batch, the row read first (the source reads in key order,
so the lowest key) keeps a unique key value, whatever order the valid rows come in."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from columnar_etl.contracts import ERROR_MESSAGE
from columnar_etl.declare import ROW_ID
from columnar_etl.load import within_batch_duplicates


def _expected(rows: list[tuple[int, str | None]]) -> tuple[list[int], dict[int, str]]:
    """Row by row: walk in legacy id order, the first holder of an email keeps it."""
    holder: dict[str, int] = {}
    kept, lost = [], {}
    for legacy_id, email in sorted(rows):
        if email is not None and email in holder:
            lost[legacy_id] = f"duplicate email '{email}' (kept legacy_id {holder[email]})"
        else:
            kept.append(legacy_id)
            if email is not None:
                holder[email] = legacy_id
    return kept, lost


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 40), st.one_of(st.none(), st.sampled_from("abc"))),
        unique_by=lambda r: r[0],
        max_size=25,
    ),
    st.booleans(),
)
def test_the_lowest_legacy_id_keeps_the_value_in_any_order(
    rows: list[tuple[int, str | None]], in_id_order: bool
) -> None:
    # The source read the rows in id order: ROW_ID is each row's rank.
    rank = {legacy_id: i for i, (legacy_id, _) in enumerate(sorted(rows))}
    rows = sorted(rows) if in_id_order else rows
    frame = pl.DataFrame(
        {
            "legacy_id": [str(i) for i, _ in rows],
            "email": [e for _, e in rows],
            ROW_ID: [rank[i] for i, _ in rows],
        },
        schema={"legacy_id": pl.String, "email": pl.String, ROW_ID: pl.UInt32},
    )
    kept, losers = within_batch_duplicates(frame, ("email",))
    expected_kept, expected_lost = _expected(rows)
    assert kept["legacy_id"].to_list() == [str(i) for i in expected_kept]
    by_rank = {r: legacy_id for legacy_id, r in rank.items()}
    lost = {by_rank[r]: m for r, m in zip(losers[ROW_ID], losers[ERROR_MESSAGE], strict=True)}
    assert lost == expected_lost


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0]])
def test_a_batch_without_duplicates_keeps_every_row_in_source_order(order: list[int]) -> None:
    frame = pl.DataFrame(
        {"legacy_id": ["1", "2", "10"], "email": ["a", "b", "c"], ROW_ID: [0, 1, 2]},
        schema_overrides={ROW_ID: pl.UInt32},
    )[order]
    kept, losers = within_batch_duplicates(frame, ("legacy_id", "email"))
    assert kept["legacy_id"].to_list() == ["1", "2", "10"] and losers.is_empty()
    assert losers.schema == {ROW_ID: pl.UInt32, ERROR_MESSAGE: pl.String}


@pytest.mark.parametrize(
    ("legacy_ids", "winner"),
    [
        # Text keys: the source's order decides ("b" was read first), not Python's.
        (["b", "a"], "b"),
        (["9000000000000000000", "-9000000000000000000"], "9000000000000000000"),
    ],
)
def test_the_winner_is_the_row_the_source_read_first(legacy_ids: list[str], winner: str) -> None:
    frame = pl.DataFrame({"legacy_id": legacy_ids, "email": ["a", "a"]})
    kept, losers = within_batch_duplicates(frame, ("email",))
    assert kept["legacy_id"].to_list() == [winner] and losers.height == 1
    assert losers[ERROR_MESSAGE].to_list() == [f"duplicate email 'a' (kept legacy_id {winner})"]


def test_an_empty_batch_has_no_duplicates() -> None:
    frame = pl.DataFrame(schema={"legacy_id": pl.String, "email": pl.String})
    kept, losers = within_batch_duplicates(frame, ("legacy_id", "email"))
    assert kept.is_empty() and losers.is_empty()


def test_the_winner_is_named_by_the_entity_s_own_record_key() -> None:
    # A table `etl init` keyed by its own column has no legacy_id to name the winner by.
    frame = pl.DataFrame({"customer_no": [7, 3], "email": ["a", "a"]})
    kept, losers = within_batch_duplicates(frame, ("email",), "customer_no")
    assert kept["customer_no"].to_list() == [7]
    assert losers[ERROR_MESSAGE].to_list() == ["duplicate email 'a' (kept customer_no 7)"]
