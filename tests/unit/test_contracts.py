"""The Polars engine setting a run holds while pandera validates (contracts.in_memory_collects)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import polars as pl
import pytest

from columnar_etl.contracts import in_memory_collects

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
