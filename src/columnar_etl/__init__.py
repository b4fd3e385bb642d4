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
    "TRANSFORM_ERRORS",
    "Entity",
    "Index",
    "Migration",
    "Reference",
    "SourceSpec",
    "carry_row_id",
    "load_migration",
    "migrate",
    "reads",
    "rule",
]

_WHERE = {
    "FILTERED": "columnar_etl.entities.base",
    "TRANSFORM_ERRORS": "columnar_etl.entities.base",
    "carry_row_id": "columnar_etl.entities.base",
    "Entity": "columnar_etl.entities.base",
    "Index": "columnar_etl.entities.base",
    "Reference": "columnar_etl.entities.base",
    "SourceSpec": "columnar_etl.entities.base",
    "reads": "columnar_etl.entities.base",
    "rule": "columnar_etl.entities.base",
    "Migration": "columnar_etl.migration",
    "load_migration": "columnar_etl.migration",
    "migrate": "columnar_etl.api",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'columnar_etl' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
