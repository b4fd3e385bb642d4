"""RunConfig's clock: an instant in UTC, shown to the rules as the source zone's wall-clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from columnar_etl.config import DatabaseUrl, RunConfig
from columnar_etl.errors import ConfigError, TargetError

URL = DatabaseUrl.parse("sqlite:///legacy.db", what="test")


def _config(**kw: object) -> RunConfig:
    return RunConfig(source=URL, target=URL, **kw)  # type: ignore[arg-type]


def test_the_default_clock_is_now_in_utc() -> None:
    before = datetime.now(UTC)
    config = _config()
    assert config.as_of.utcoffset() == timedelta(0)
    assert before <= config.as_of <= datetime.now(UTC)
    assert config.describe()["as_of"].endswith("+00:00")
    assert config.describe()["source_timezone"] == "UTC"


def test_the_rules_see_the_instant_as_wall_clock_time_in_the_source_zone() -> None:
    instant = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    config = _config(as_of=instant, source_timezone="America/Los_Angeles")
    assert config.source_as_of == datetime(2026, 12, 2, 4, 0)  # PST, naive
    kiritimati = _config(as_of=instant.astimezone(timezone(timedelta(hours=14))))
    assert kiritimati.as_of == instant and kiritimati.source_as_of == datetime(2026, 12, 2, 12)


def test_a_naive_clock_is_wall_clock_time_in_the_source_zone() -> None:
    config = _config(as_of=datetime(2026, 7, 1, 9, 30), source_timezone="America/Los_Angeles")
    assert config.as_of == datetime(2026, 7, 1, 16, 30, tzinfo=UTC)  # PDT
    assert config.source_as_of == datetime(2026, 7, 1, 9, 30)


def test_a_resumed_job_takes_its_stored_clock_and_zone() -> None:
    stored = _config(as_of=datetime(2026, 1, 1, tzinfo=UTC), source_timezone="Asia/Tokyo")
    resumed = _config(source_timezone="UTC").with_clock_of(stored.describe())
    assert resumed.as_of == stored.as_of and resumed.source_timezone == "Asia/Tokyo"
    assert resumed.source_as_of == datetime(2026, 1, 1, 9)


def test_an_older_job_stored_without_a_zone_keeps_its_verdicts() -> None:
    """Older versions stored a naive local clock and no zone, and compared the legacy
    timestamps with that value as it is: the resumed job compares with the same value."""
    old = {"as_of": "2025-06-01T12:00:00", "batch_size": 100}
    resumed = _config(source_timezone="Europe/Paris").with_clock_of(old)
    assert resumed.source_timezone == "UTC" and resumed.as_of.utcoffset() == timedelta(0)
    assert resumed.source_as_of == datetime(2025, 6, 1, 12)


def test_a_stored_clock_that_is_not_a_time_is_a_target_error() -> None:
    with pytest.raises(TargetError, match="stored as_of"):
        _config().with_clock_of({"as_of": "yesterday"})


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "America", "/etc/localtime", "../UTC"])
def test_an_unknown_time_zone_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="IANA time zone"):
        _config(source_timezone=name)
