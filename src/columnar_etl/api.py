"""The library's front door: one call runs a migration as ``etl run --json`` does.

For notebooks and orchestrators (Airflow, Dagster, Prefect): the same options as the CLI, by
their Python names, checked the same way; the result is what ``etl run --json`` prints. A
failed job is in the result (its ``status`` and ``error``), as it is in the CLI's output;
a run that cannot start raises an :class:`~columnar_etl.errors.EtlError`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from columnar_etl import pipeline
from columnar_etl.config import DEFAULT_TARGET_FILE, DatabaseUrl, RunConfig
from columnar_etl.errors import ConfigError, SourceError
from columnar_etl.scaffold import Plan

__all__ = ["MIGRATION_FILE", "init_migration", "migrate"]

#: The file ``etl init`` writes into its folder (``--migration DIR`` loads it).
MIGRATION_FILE = "migration.py"


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


def init_migration(source: str, out: str | Path, tables: Sequence[str] | None = None) -> Plan:
    """Write into the new or empty folder ``out`` a runnable migration of the ``source``
    database (a URL): one entity per table (``tables`` only, when given), declared with the
    public API; what it found and decided is in the returned plan (``etl init`` prints
    :func:`columnar_etl.scaffold.describe` of it). Nothing is written where a table is
    missing or a column's type cannot be carried: an EtlError says which."""
    from columnar_etl.dialects import DIALECTS
    from columnar_etl.extract import Source
    from columnar_etl.introspect import read_tables
    from columnar_etl.migration import load_migration
    from columnar_etl.scaffold import plan, render
    from columnar_etl.typemap import every_refusal, refusals

    folder = Path(out).expanduser()
    _require_empty(folder)
    url = DatabaseUrl.parse(source, what="source (--source)", source=True)
    legacy = Source(url)
    legacy.probe()
    found = read_tables(legacy.read, url.dialect, tables)
    if not found:
        raise ConfigError(
            f"the source {url} holds no tables" if tables is None else "--tables names no table"
        )
    # Every refusal at once: a legacy database rarely has only one odd column.
    refused = [r for t in found for r in refusals(t.name, {c.name: c.rule for c in t.columns})]
    if refused:
        raise SourceError(
            f"{every_refusal(refused)}; nothing was written (--tables leaves a table out)"
        )
    scaffold = plan(found)
    text = render(scaffold, DIALECTS[url.dialect].title)
    with tempfile.TemporaryDirectory() as scratch:  # it must load before it is written
        checked = Path(scratch) / MIGRATION_FILE
        checked.write_text(text, encoding="utf-8")
        load_migration(str(checked))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MIGRATION_FILE).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write --out {folder}: {exc.strerror or exc}") from None
    return scaffold


def _require_empty(folder: Path) -> None:
    """A ConfigError unless ``folder`` is missing or an empty folder."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--out {folder} is a file; name a new or empty folder")
    if folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(f"--out {folder} is not empty: etl init writes a new or empty folder")
