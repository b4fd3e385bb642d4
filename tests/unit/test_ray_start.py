"""Connecting to a Ray cluster: the client server's start-up race is retried, nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from columnar_etl import ray_executor
from columnar_etl.errors import ConfigError

# Ray's own words when the per-client server it forks dies at once (ray-project/ray#63202).
_RACE = (
    "Initialization failure from server:\nRuntimeError: Starting Ray client server failed. "
    "See ray_client_server_23001.err for detailed logs."
)


class _Ray:
    """Just the two calls _start makes, failing the first ``failures`` inits with ``error``."""

    def __init__(self, failures: int, error: str) -> None:
        self.failures, self.error, self.inits = failures, error, 0

    def is_initialized(self) -> bool:
        return False

    def init(self, **_: Any) -> None:
        self.inits += 1
        if self.inits <= self.failures:
            raise ConnectionAbortedError(self.error)


@pytest.fixture(autouse=True)
def _no_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_executor.time, "sleep", lambda _: None)


def test_a_client_server_that_died_starting_is_asked_again() -> None:
    ray = _Ray(failures=2, error=_RACE)
    ray_executor._start(ray, None)
    assert ray.inits == 3


def test_the_race_every_time_ends_in_one_line() -> None:
    ray = _Ray(failures=99, error=_RACE)
    with pytest.raises(ConfigError, match="Starting Ray client server failed"):
        ray_executor._start(ray, None)
    assert ray.inits == ray_executor._CLIENT_ATTEMPTS


def test_any_other_failure_is_not_retried() -> None:
    ray = _Ray(failures=1, error="Permission denied: bad token")
    with pytest.raises(ConfigError, match="bad token"):
        ray_executor._start(ray, None)
    assert ray.inits == 1
