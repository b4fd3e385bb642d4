"""An entity's target table in SQL, rendered from its declaration for one dialect.

The table holds the target's own ``id`` (unless the record key is the primary key), the
contract's columns (types from their dtypes or
the entity's exact ``sql_types``, NOT NULL unless the contract allows null), the column each
reference fills, and ``etl_job_id``; its indexes are the entity's :meth:`Entity.table_indexes`.
Every statement is idempotent (``IF NOT EXISTS``).
"""

from __future__ import annotations

from columnar_etl.declare import Entity, Index
from columnar_etl.dialects import Dialect

__all__ = ["create_index", "table_columns", "table_statements"]


def table_columns(entity: Entity, dialect: Dialect) -> dict[str, str]:
    """Column name -> its SQL definition (type and NOT NULL), in table order."""
    columns = {}
    if entity.surrogate_key is not None:
        columns[entity.surrogate_key] = dialect.surrogate_key
    for name, (dtype, nullable) in entity.target_schema().items():
        declared = entity.sql_types.get(name)
        sql = dialect.column_type(declared, dtype, json=name in entity.json_columns)
        sql = sql if nullable else f"{sql} NOT NULL"
        if name == entity.primary_key:
            sql = f"{sql} PRIMARY KEY"
        if name in entity.defaults:
            sql = f"{sql} DEFAULT {dialect.literal(entity.defaults[name])}"
        columns[name] = sql
    for reference in entity.references:
        if reference.sets is not None:
            columns[reference.sets] = dialect.integer  # null until linked, or for an orphan
    columns["etl_job_id"] = f"{dialect.integer} NOT NULL"
    return columns


def create_index(table: str, index: Index, dialect: Dialect) -> str:
    """``CREATE [UNIQUE] INDEX IF NOT EXISTS`` for one declared index."""
    unique = "UNIQUE " if index.unique else ""
    method = dialect.load_ordered_index if index.load_ordered else ""
    columns = ", ".join(index.columns)
    return f"CREATE {unique}INDEX IF NOT EXISTS {index.name} ON {table}{method} ({columns})"


def table_statements(entity: Entity, dialect: Dialect) -> list[str]:
    """The statements that create the entity's table and its indexes when missing."""
    width = max(len(name) for name in table_columns(entity, dialect))
    body = ",\n".join(
        f"    {name.ljust(width)} {sql}" for name, sql in table_columns(entity, dialect).items()
    )
    table = entity.target_table
    create = f"CREATE TABLE IF NOT EXISTS {table} (\n{body}\n)"
    return [create, *(create_index(table, index, dialect) for index in entity.table_indexes())]
