"""What differs between the databases, stated once per database.

Each :class:`Dialect` answers "how does this database say X": its surrogate key, the SQL type
of a contract's dtype, JSON, how it quotes a name and writes a value. The rest of the engine
asks the dialect instead of branching on the database's name. MySQL/MariaDB is a source only:
the tool reads it and never writes to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import polars as pl

__all__ = ["DIALECTS", "MYSQL", "POSTGRES", "SQLITE", "Dialect"]


@dataclass(frozen=True)
class Dialect:
    """One target database's words for the facts an entity declares."""

    name: str
    surrogate_key: str
    """The target table's own ``id`` column: a generated integer primary key."""
    types: Mapping[type[pl.DataType], str]
    """SQL type per Polars dtype class of a contract column."""
    json_type: str
    """SQL type of a declared JSON column."""
    integer: str
    """SQL type of a column holding another table's ``id`` (a reference) or a job id."""
    booleans: tuple[str, str]
    """How the database writes false and true."""
    backslash_escapes: bool
    """Whether a string literal can be read with backslash escapes (PostgreSQL with
    standard_conforming_strings off): text holding a backslash is then written E'...' with
    the backslashes doubled, which reads the same whatever the setting."""
    for_update: str
    """The clause that makes a SELECT lock its rows until the transaction ends; SQLite takes
    one writer at a time and has none."""
    identifier_quote: str = '"'
    """The character that quotes a table or column name (doubled inside it). MySQL reads a
    double-quoted word as a string unless the server runs with ANSI_QUOTES: backticks there."""
    hex_text: str | None = None
    """How to write text holding a backslash as the hex of its UTF-8 (``{}``), where no
    quoted form reads the same under every setting: MySQL takes a backslash as an escape
    unless sql_mode has NO_BACKSLASH_ESCAPES, and with that escape a quote doubled after a
    backslash would end the literal."""
    target: bool = True
    """Whether the tool can write to this database (load, ledger); else it is a source only."""

    def quote(self, identifier: str) -> str:
        """``identifier`` as a quoted name of this database (one of our checked names); a
        schema-qualified ``schema.table`` part by part."""
        mark = self.identifier_quote
        return ".".join(
            mark + part.replace(mark, mark + mark) + mark for part in identifier.split(".", 1)
        )

    def literal(self, value: str | int | float | bool | None) -> str:
        """``value`` as a SQL literal of this database, typed, and text quoted so that no
        value can end its literal: a declared default, or a source filter's parameter bound
        on our side (connectorx takes no parameters), as a driver binding client-side does."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return self.booleans[value]
        if isinstance(value, int | float):
            return repr(value)
        if self.hex_text is not None and "\\" in value:
            return self.hex_text.format(value.encode().hex())
        quoted = "'" + value.replace("'", "''") + "'"
        if self.backslash_escapes and "\\" in value:
            return "E" + quoted.replace("\\", "\\\\")
        return quoted

    def sql_type(self, dtype: pl.DataType, *, json: bool = False) -> str:
        """The SQL type of a contract column of ``dtype`` (a JSON one when ``json``)."""
        if json:
            return self.json_type
        try:
            return self.types[dtype.base_type()]
        except KeyError:
            raise TypeError(f"no {self.name} type for a contract column of {dtype}") from None


POSTGRES = Dialect(
    name="postgresql",
    surrogate_key="bigserial PRIMARY KEY",
    types={
        pl.String: "text",
        pl.Int64: "bigint",
        pl.Int32: "integer",
        pl.Int16: "smallint",
        pl.Float64: "double precision",
        pl.Float32: "real",
        pl.Boolean: "boolean",
        pl.Datetime: "timestamp",
        pl.Date: "date",
    },
    json_type="jsonb",
    integer="bigint",
    booleans=("FALSE", "TRUE"),
    backslash_escapes=True,
    for_update=" FOR UPDATE",
)

# SQLite keeps what it is given under a type's affinity: timestamps as ISO text (the loader
# writes them so), booleans as 0/1.
SQLITE = Dialect(
    name="sqlite",
    surrogate_key="INTEGER PRIMARY KEY AUTOINCREMENT",
    types={
        pl.String: "text",
        pl.Int64: "bigint",
        pl.Int32: "integer",
        pl.Int16: "integer",
        pl.Float64: "real",
        pl.Float32: "real",
        pl.Boolean: "integer",
        pl.Datetime: "text",
        pl.Date: "text",
    },
    json_type="text",
    integer="bigint",
    booleans=("0", "1"),
    backslash_escapes=False,
    for_update="",
)

# A source only: what a target needs (surrogate key, contract types) is never asked of it.
MYSQL = Dialect(
    name="mysql",
    surrogate_key="BIGINT AUTO_INCREMENT PRIMARY KEY",
    types={},
    json_type="json",
    integer="bigint",
    booleans=("FALSE", "TRUE"),
    backslash_escapes=False,
    for_update=" FOR UPDATE",
    identifier_quote="`",
    hex_text="_utf8mb4 X'{}'",
    target=False,
)

DIALECTS = {dialect.name: dialect for dialect in (POSTGRES, SQLITE, MYSQL)}
