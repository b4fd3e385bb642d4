"""The built-in example's entities (customers, products, orders), declared with the public API,
and a registry by name for code that predates migrations (columnar_etl.migration)."""

from __future__ import annotations

from columnar_etl.declare import Entity, SourceSpec
from columnar_etl.errors import ConfigError

__all__ = ["ENTITIES", "Entity", "SourceSpec", "get", "names", "register"]

_REGISTRY: dict[str, Entity] = {}


def register(entity: Entity) -> Entity:
    """Make ``entity`` known to the engine and the CLI by its name."""
    _REGISTRY[entity.name] = entity
    return entity


def get(name: str) -> Entity:
    """The entity called ``name``; a ConfigError listing the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(names())
        raise ConfigError(f"unknown entity {name!r}; valid entities: {valid}") from None


def names() -> tuple[str, ...]:
    """Registered entity names, in migration order."""
    return tuple(_REGISTRY)


def _builtins() -> tuple[Entity, ...]:
    from columnar_etl.entities import customers, orders, products

    return tuple(module.ENTITY for module in (customers, products, orders))


#: The built-in example's entities, as a migration module lists its own (see migration.py).
ENTITIES = _builtins()
for _entity in ENTITIES:
    register(_entity)
