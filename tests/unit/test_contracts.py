"""The Polars engine setting a run holds while pandera validates (contracts.in_memory_collects)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime

import pandera.polars as pa
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from columnar_etl import FILTERED, TRANSFORM_ERRORS, Entity, SourceSpec, carry_row_id
from columnar_etl.contracts import in_memory_collects, split, validation_messages
from columnar_etl.errors import ContractError

AFFINITY = "POLARS_ENGINE_AFFINITY"


@pytest.fixture(autouse=True)
def _own_affinity() -> Iterator[None]:
    before = os.environ.get(AFFINITY)
    yield
    pl.Config.set_engine_affinity(before)  # type: ignore[arg-type]


@pytest.mark.parametrize("before", [None, "streaming"])
def test_overlapping_runs_keep_in_memory_until_the_last_leaves_then_put_back_the_user_s(
    before: str | None,
) -> None:
    pl.Config.set_engine_affinity(before)  # type: ignore[arg-type]
    first, second = in_memory_collects(), in_memory_collects()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # out of order: the first run ends while the second runs
    assert os.environ.get(AFFINITY) == "in-memory"
    second.__exit__(None, None, None)
    assert os.environ.get(AFFINITY) == before


def test_the_setting_is_put_back_when_the_run_fails() -> None:
    pl.Config.set_engine_affinity("streaming")
    with pytest.raises(RuntimeError), in_memory_collects():
        assert os.environ.get(AFFINITY) == "in-memory"
        raise RuntimeError("a failed run")
    assert os.environ.get(AFFINITY) == "streaming"


def test_an_affinity_polars_does_not_know_is_put_back_as_it_was_without_failing_the_run() -> None:
    os.environ[AFFINITY] = "bogus"
    with in_memory_collects():
        assert os.environ.get(AFFINITY) == "in-memory"
    assert os.environ.get(AFFINITY) == "bogus"


# -- a contract of dtypes and nullability alone: judged without pandera running over rows --


COPIED = SourceSpec("t", "k", {"k": pl.Int64, "name": pl.String, "w": pl.Float64})


def _copy(lf: pl.LazyFrame) -> pl.LazyFrame:
    return lf.select(
        carry_row_id(),
        *COPIED.columns,
        COPIED.record_id().alias("legacy_id"),
        **{FILTERED: pl.lit(False), TRANSFORM_ERRORS: pl.lit(None, pl.String)},
    )


def _identity(*, checked: bool) -> Entity:
    """An identity copy whose name and weight are required; ``checked`` adds a rule that every
    row passes, which sends the contract through pandera as before."""
    rules = [pa.Check.ge(0)] if checked else []

    def contract(as_of: object) -> pa.DataFrameSchema:
        return pa.DataFrameSchema(
            {
                "legacy_id": pa.Column(pl.String),
                "k": pa.Column(pl.Int64, checks=rules),
                "name": pa.Column(pl.String),
                "w": pa.Column(pl.Float64),
            }
        )

    return Entity("t", COPIED, _copy, contract, "t", required_messages={"w": "w: needed"})


FRAME = pl.DataFrame(
    {
        "k": [1, 2, 3, 4, 5],
        "name": ["a", None, "c", None, "e"],
        "w": [1.0, 2.0, float("nan"), None, 5.5],
    }
)


def test_a_contract_of_types_and_nulls_rejects_exactly_as_pandera_does() -> None:
    lean = split(FRAME, _identity(checked=False), datetime(2026, 1, 1))
    full = split(FRAME, _identity(checked=True), datetime(2026, 1, 1))
    assert_frame_equal(lean.rejects, full.rejects)
    assert_frame_equal(lean.valid, full.valid)
    assert lean.valid["k"].to_list() == [1, 5]
    assert lean.rejects["error_message"].to_list() == [
        "name is required",
        "w: needed",  # NaN in a float column is missing, as pandera has it
        "name is required; w: needed",
    ]


def test_a_wrong_dtype_still_stops_the_lean_contract() -> None:
    wrong = _copy(FRAME.with_row_index("__row").lazy()).collect()
    wrong = wrong.with_columns(pl.col("w").cast(pl.String))
    with pytest.raises(ContractError, match="dtype"):
        validation_messages(wrong, _identity(checked=False), datetime(2026, 1, 1))


def test_the_lean_contract_is_judged_again_for_other_dtypes_after_passing_once() -> None:
    entity, as_of = _identity(checked=False), datetime(2026, 1, 1)
    right = _copy(FRAME.with_row_index("__row").lazy()).collect()
    assert validation_messages(right, entity, as_of).height == 3  # the dtypes pass
    with pytest.raises(ContractError, match="dtype"):
        validation_messages(right.with_columns(pl.col("w").cast(pl.String)), entity, as_of)


class _Unhashable:
    """A contract given as a callable object that defines equality and so has no hash."""

    def __init__(self, entity: Entity) -> None:
        self.entity = entity

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Unhashable)

    def __call__(self, as_of: datetime) -> pa.DataFrameSchema:
        return self.entity.contract(as_of)


def test_a_contract_callable_without_a_hash_is_judged_as_any_other() -> None:
    entity = _identity(checked=False)
    odd = Entity("t", COPIED, _copy, _Unhashable(entity), "t", required_messages={"w": "w: needed"})
    judged = split(FRAME, odd, datetime(2026, 1, 1))
    assert_frame_equal(judged.rejects, split(FRAME, entity, datetime(2026, 1, 1)).rejects)
