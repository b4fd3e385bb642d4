"""A migration: the entities a user declared, found in their own file, folder or module.

``--migration`` (env ``ETL_MIGRATION``) names a Python file, a folder (its ``migration.py`` or
``__init__.py``) or an importable module. The module lists its entities in ``ENTITIES``, or
else every :class:`Entity` it holds at module level is one. They run in reference order: an
entity after every entity it references. Without a migration, the built-in example runs
(the reference's customers, products and orders).
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from columnar_etl.config import first_line
from columnar_etl.declare import Entity
from columnar_etl.errors import ConfigError

__all__ = ["BUILTIN", "Migration", "load_migration"]

#: The module of the built-in example.
BUILTIN = "columnar_etl.entities"


@dataclass(frozen=True)
class Migration:
    """The entities of one migration, in reference order, and where they came from."""

    entities: tuple[Entity, ...]
    origin: str = BUILTIN

    def __post_init__(self) -> None:
        object.__setattr__(self, "entities", _in_reference_order(self.entities))

    def names(self) -> tuple[str, ...]:
        """Entity names, in the order ``--entity all`` runs them."""
        return tuple(e.name for e in self.entities)

    def get(self, name: str) -> Entity:
        """The entity called ``name``; a ConfigError listing the valid names otherwise."""
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise ConfigError(
            f"unknown entity {name!r}; valid entities: {', '.join(self.names())} or all"
        )

    def referencing(self, name: str) -> list[tuple[Entity, int]]:
        """The entities with a reference to ``name``, with the index of that reference."""
        return [
            (entity, i)
            for entity in self.entities
            for i, reference in enumerate(entity.references)
            if reference.entity == name
        ]


def _in_reference_order(found: Iterable[Entity]) -> tuple[Entity, ...]:
    """``found`` with every entity after those it references (declaration order otherwise);
    a ConfigError for a duplicate name, a reference to an unknown entity or key, or a cycle."""
    by_name: dict[str, Entity] = {}
    for entity in found:
        if entity.name in by_name:
            raise ConfigError(f"two entities are called {entity.name!r}")
        by_name[entity.name] = entity
    for entity in by_name.values():
        for reference in entity.references:
            pointed = by_name.get(reference.entity)
            where = f"{entity.name}.{reference.column} references {reference.to}"
            if pointed is None:
                raise ConfigError(
                    f"{where}, but no entity of the migration is called {reference.entity!r} "
                    f"(entities: {', '.join(by_name)})"
                )
            if reference.key not in pointed.target_columns:
                raise ConfigError(
                    f"{where}, but {pointed.name} has no column {reference.key!r} (columns: "
                    f"{', '.join(pointed.target_columns)})"
                )
            if reference.sets is not None and pointed.surrogate_key is None:
                raise ConfigError(
                    f"{entity.name}.{reference.sets} is set from {pointed.name}'s generated key, "
                    f"which it does not have (surrogate_key=None): declare one, or drop sets="
                )
    ordered: list[Entity] = []
    visiting: list[str] = []

    def visit(entity: Entity) -> None:
        if entity in ordered:
            return
        if entity.name in visiting:
            cycle = " -> ".join([*visiting[visiting.index(entity.name) :], entity.name])
            raise ConfigError(f"entities reference each other in a cycle: {cycle}")
        visiting.append(entity.name)
        for reference in entity.references:
            visit(by_name[reference.entity])
        visiting.pop()
        ordered.append(entity)

    for entity in by_name.values():
        visit(entity)
    return tuple(ordered)


def _from_file(path: Path) -> ModuleType:
    # A name of its own per file, so two migrations never share a module.
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:12]
    name = f"columnar_etl_migration_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"migration {path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def _module(spec: str) -> ModuleType:
    path = Path(spec).expanduser()
    if path.is_dir():
        for candidate in ("migration.py", "__init__.py"):
            if (path / candidate).is_file():
                return _from_file((path / candidate).absolute())
        raise ConfigError(f"migration folder {path} holds no migration.py or __init__.py")
    if path.suffix == ".py":
        if not path.is_file():
            raise ConfigError(f"migration file not found: {path}")
        return _from_file(path.absolute())
    return importlib.import_module(spec)


def load_migration(spec: str | None = None) -> Migration:
    """The migration ``spec`` names (a file, a folder or a module), or the built-in example.

    Each is imported once per process: a run asks for it at every step, and a user's module
    may do work when imported."""
    return _load(spec or BUILTIN)


@functools.cache
def _load(spec: str) -> Migration:
    try:
        module = _module(spec)
    except ConfigError:
        raise
    except Exception as exc:  # whatever the user's module raises while it is imported
        raise ConfigError(
            f"cannot import migration {spec}: {type(exc).__name__}: {first_line(exc)}"
        ) from None
    declared = getattr(module, "ENTITIES", None)
    if declared is None:
        declared = [v for v in vars(module).values() if isinstance(v, Entity)]
    entities = tuple(declared)
    if not entities or not all(isinstance(e, Entity) for e in entities):
        raise ConfigError(
            f"migration {spec} declares no entities: list them in ENTITIES, or define "
            "columnar_etl.Entity objects at module level"
        )
    return Migration(entities, spec)
