"""columnar-etl: columnar, bounded-memory legacy database migration.

The public API, for a migration module of one's own (see docs/writing-a-migration.md)::

    from columnar_etl import Entity, Index, Reference, SourceSpec, reads, rule

Names are imported on first use, so ``import columnar_etl`` stays cheap for the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "FILTERED",
    "POSITION",
    "TRANSFORM_ERRORS",
    "Entity",
    "Index",
    "Migration",
    "Reference",
    "SourceSpec",
    "carry_row_id",
    "general_dates",
    "init_migration",
    "load_migration",
    "migrate",
    "on_rows",
    "reads",
    "rule",
]

_WHERE = {
    "FILTERED": "columnar_etl.declare",
    "POSITION": "columnar_etl.declare",
    "general_dates": "columnar_etl.declare",
    "on_rows": "columnar_etl.declare",
    "TRANSFORM_ERRORS": "columnar_etl.declare",
    "carry_row_id": "columnar_etl.declare",
    "Entity": "columnar_etl.declare",
    "Index": "columnar_etl.declare",
    "Reference": "columnar_etl.declare",
    "SourceSpec": "columnar_etl.declare",
    "reads": "columnar_etl.declare",
    "rule": "columnar_etl.declare",
    "Migration": "columnar_etl.migration",
    "load_migration": "columnar_etl.migration",
    "migrate": "columnar_etl.api",
    "init_migration": "columnar_etl.api",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'columnar_etl' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
