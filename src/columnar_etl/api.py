"""The library's front door: one call runs a migration as ``etl run --json`` does.

For notebooks and orchestrators (Airflow, Dagster, Prefect): the same options as the CLI, by
their Python names, checked the same way; the result is what ``etl run --json`` prints. A
failed job is in the result (its ``status`` and ``error``), as it is in the CLI's output;
a run that cannot start raises an :class:`~columnar_etl.errors.EtlError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from columnar_etl import pipeline
from columnar_etl.config import DEFAULT_TARGET_FILE, DatabaseUrl, RunConfig

__all__ = ["migrate"]


def migrate(
    entity: str = "all",
    *,
    source: str,
    target: str | None = None,
    migration: str | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Migrate ``entity`` (or ``all``) of ``migration`` (default: the built-in example) from
    the ``source`` URL into the ``target`` URL (default: ``./columnar_etl_target.db``), with
    any other :class:`RunConfig` option (``batch_size=``, ``on_conflict=``, ...); one dict per
    job, as ``etl run --json`` prints them."""
    pipeline.raise_for_missing(entity, migration)
    target = target or f"sqlite://{Path.cwd() / DEFAULT_TARGET_FILE}"
    config = RunConfig(
        source=DatabaseUrl.parse(source, what="source", source=True),
        target=DatabaseUrl.parse(target, what="target"),
        migration=migration,
        **options,
    )
    return pipeline.run(config, entity).to_dicts()
