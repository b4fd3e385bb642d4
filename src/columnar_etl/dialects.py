"""What differs between the databases, stated once per database.

Each :class:`Dialect` answers "how does this database say or do X": its URLs, its driver, its
surrogate key, the SQL type of a contract's dtype, JSON, how it quotes a name and writes a
value, its catalog queries, its locks, what its errors mean. The rest of the engine asks the
dialect instead of branching on the database's name; another database is one more instance
here. MySQL/MariaDB is a source only: the tool reads it and never writes to it.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import polars as pl

from columnar_etl import catalog, reading
from columnar_etl.catalog import Catalog
from columnar_etl.reading import Reading

__all__ = ["DIALECTS", "MYSQL", "POSTGRES", "SQLITE", "Dialect", "Fault"]


class Fault(Enum):
    """What a failed statement says about the batch it belonged to (see Dialect.fault)."""

    ROW = "row"
    """The database refused some row's values (a constraint, a data or encoding error, a
    trigger): the batch is bisected to find the rows, the rest of it loads."""
    RETRY = "retry"
    """Not the rows' fault and maybe gone on the next try (a lost connection, a deadlock, a
    lock): the whole batch is retried on a checked connection, never bisected."""
    STORAGE = "storage"
    """The target cannot take writes (disk full, I/O error, read-only, no privilege, a table
    of another shape): retrying or bisecting only repeats it, so the run stops, naming it."""


@dataclass(frozen=True)
class Dialect:
    """One database's words for the facts an entity declares, and its ways of doing what
    the engine asks of it (connect, bound lock waits, write JSON, class an error)."""

    name: str
    title: str
    """The database's name in a message."""
    surrogate_key: str
    """The target table's own ``id`` column: a generated integer primary key."""
    load_ordered_index: str
    """How an index over values in load order (:attr:`Index.load_ordered`) is made, after
    the table's name: a block-range index where the database has one, else nothing (a
    btree)."""
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
    schemes: tuple[str, ...]
    """URL schemes naming this database (``postgres://`` is read as ``postgresql://``)."""
    file: bool
    """The database is one file the URL names (``sqlite:///PATH``), not a server."""
    driver: str
    """The ADBC driver's DB-API module."""
    numbered_placeholders: bool
    """Whether the driver wants ``$1, $2`` where our SQL writes ``?``."""
    lock_timeout: str
    """The statement that bounds a session's waits for other sessions' locks to ``{ms}``."""
    unbounded_wait: int
    """The ``{ms}`` of :attr:`lock_timeout` meaning "wait as long as it may" (0: the
    statement is left out and the server's own setting applies)."""
    text_settings: str
    """The URL ``options`` value (URL-encoded ``-c`` settings) with which a source session
    writes values as text exactly as the target reads them back, whatever the database's
    defaults: dates in ISO form (a range's too, its zone as an offset, not an abbreviation),
    every digit of a float; empty where no setting changes it."""
    startup_lock_timeout: str | None
    """The URL ``options`` value asking the server for a lock timeout of ``{ms}`` before any
    statement (libpq, connectorx); None where a URL cannot say it."""
    advisory_locks: bool
    """Sessions can hold named locks (PostgreSQL advisory locks): the run lock, the schema
    step's turn and a fast job's deferral; without them a run locks the database file."""
    concurrent_writers: bool
    """Several connections can commit at once (the fast path's load lanes); SQLite takes one
    writer at a time."""
    json_cast: str
    """SQL turning the text column ``{}`` into this database's JSON type."""
    json_arrow: bool
    """The driver writes Arrow's JSON extension type into a JSON column (the server parses
    it): JSON travels so, not as text cast in SQL."""
    decimals: bool
    """The driver writes Arrow decimals (into a ``numeric(p,s)`` column: binary COPY takes
    no float there); else a number travels as it is, and the column keeps it."""
    text_temporals: bool
    """Timestamps are written as ISO text and booleans as 0/1 (SQLite keeps what it is
    given, under the column's affinity)."""
    resets_after_error: bool
    """The database may roll a transaction back by itself after an error (SQLite: a full
    disk, an I/O error), leaving the driver out of step: the connection is then replaced."""
    schema_folder: str
    """The folder of ``schemas/`` holding this database's ledger DDL."""
    restore: str | None
    """The DDL that gives back what a fast job set aside on ``{tables}`` (a primary key,
    autovacuum), or None where a fast job sets nothing aside that the DDL would restore."""
    key_index: str | None
    """How a fast job's primary key ``{name}`` on ``{table}`` (``{column}``) is built as a
    unique index, which ``restore`` then makes the key; None where ``restore`` is."""
    catalog: Catalog
    """This database's catalog queries."""
    affinities: bool
    """Columns hold any value under a type affinity (SQLite), not a type: an exact declared
    type means nothing there, and text is kept as text."""
    reading: Reading
    """How the database is read as a source (extract.py)."""
    scratch_schema: str | None
    """The statement putting this session's temporary schema first on the search path, where
    a declared table is created unseen in a transaction rolled back; None: a database in
    memory (``connect(":memory:")``) serves instead."""
    faults: Mapping[str, Fault]
    """What an error says about a batch: by SQLSTATE or its class (``sqlstates``), or by
    words of its message, lower case."""
    sqlstates: bool
    """Whether the driver reports a SQLSTATE (else the message is all there is)."""
    other_fault: Fault
    """The fault of an error :attr:`faults` does not name."""
    build_settings: tuple[str, ...] = ()
    """Statements run on a connection before it builds a deferred index (Target.build_indexes)."""
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
    unread_copy_end: bool = False
    """The driver's bulk load leaves the server's "ready" reply after the COPY unread, and
    its next statement then takes the open transaction for none and sends BEGIN again: a
    WARNING in the server's log ("there is already a transaction in progress"). PostgreSQL's
    ADBC driver does; a describe-only round trip, which runs no statement, reads the reply."""

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

    def lock_settings(self, seconds: float) -> list[str]:
        """Statements bounding a new connection's waits for other sessions' locks to
        ``seconds`` (0: as long as the database lets it)."""
        ms = round(seconds * 1000) or self.unbounded_wait
        return [self.lock_timeout.format(ms=ms)] if ms else []

    def placeholders(self, sql: str) -> str:
        """``sql``, written with ``?`` placeholders, as the driver wants it."""
        if not self.numbered_placeholders:
            return sql
        counter = iter(range(1, 10_000))
        return re.sub(r"\?", lambda _: f"${next(counter)}", sql)

    def json(self, column: str) -> str:
        """SQL turning the text ``column`` into this database's JSON type."""
        return self.json_cast.format(column)

    def fault(self, exc: BaseException) -> Fault:
        """What ``exc``, raised by a statement of a batch, says about the batch."""
        if self.sqlstates:
            state = getattr(exc, "sqlstate", None) or ""
            return self.faults.get(state) or self.faults.get(state[:2], self.other_fault)
        message = str(exc).lower()
        found = (fault for words, fault in self.faults.items() if words in message)
        return next(found, self.other_fault)

    def connect(self, url: str) -> Any:
        """A new DB-API connection of the ADBC driver (``url``: a file's path, or a URL)."""
        return importlib.import_module(self.driver).connect(url)

    def column_type(self, declared: str | None, dtype: pl.DataType, *, json: bool = False) -> str:
        """The SQL type of a contract column of ``dtype`` with an exact ``declared`` type
        (``Entity.sql_types``), or without one. Where the database keeps values under a type
        affinity (SQLite), text stays text: a declared ``numeric(30,20)`` would turn it into
        a float of 17 digits."""
        if declared is None:
            return self.sql_type(dtype, json=json)
        kept_as_text = dtype == pl.String or isinstance(dtype, pl.Decimal)
        # Number text declared_types has checked (plain digits, a finite double) is turned
        # back into the very number by an INTEGER or REAL column's affinity.
        numbers = dtype == pl.String and NUMBER_TYPE.fullmatch(declared.strip()) is not None
        if self.affinities and kept_as_text and _affinity(declared) != "TEXT" and not numbers:
            return self.sql_type(dtype, json=json)
        if self.affinities and not _TYPE_NAME.fullmatch(declared.strip()):
            # SQLite's grammar has no array and no words after a length (PostgreSQL's
            # varchar(10)[], timestamp(3) with time zone): the dtype's type, same affinity.
            return self.sql_type(dtype, json=json)
        return declared

    def cast_on_load(self, declared: str | None, dtype: pl.DataType) -> bool:
        """Whether a contract column of ``dtype`` carrying text is cast by the database into
        its ``declared`` type as it loads (``etl init`` reads exact values as text): never
        where types are affinities, nor into character types, which the column's own
        assignment checks (an explicit cast would cut a value too long)."""
        return (
            declared is not None
            and dtype == pl.String
            and not self.affinities
            and not _CHARACTER.fullmatch(declared.strip())
        )

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
    title="PostgreSQL",
    # The identity's sequence hands each session 1,000 ids at a time: a COPY of millions of
    # rows asked it once per row (with a lock and, every 32 values, a WAL record).
    surrogate_key="bigint GENERATED BY DEFAULT AS IDENTITY (CACHE 1000) PRIMARY KEY",
    load_ordered_index=" USING brin",
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
        pl.Decimal: "numeric",
    },
    json_type="jsonb",
    integer="bigint",
    booleans=("FALSE", "TRUE"),
    backslash_escapes=True,
    for_update=" FOR UPDATE",
    schemes=("postgresql", "postgres"),
    file=False,
    driver="adbc_driver_postgresql.dbapi",
    numbered_placeholders=True,
    lock_timeout="SET lock_timeout = {ms}",
    unbounded_wait=0,
    # Only the output forms: DateStyle=ISO keeps the database's day-month order for input.
    text_settings="%20".join(
        f"-c%20{setting}%3D{value}"
        for setting, value in (
            ("DateStyle", "ISO"),
            ("IntervalStyle", "postgres"),
            ("extra_float_digits", "1"),
            ("bytea_output", "hex"),
        )
    ),
    startup_lock_timeout="-c%20lock_timeout%3D{ms}",
    advisory_locks=True,
    concurrent_writers=True,
    json_cast="{}::jsonb",
    json_arrow=True,
    decimals=True,
    text_temporals=False,
    resets_after_error=False,
    schema_folder="postgres",
    restore=catalog.POSTGRES_RESTORE,
    key_index=catalog.POSTGRES_KEY_INDEX,
    catalog=catalog.POSTGRES,
    affinities=False,
    reading=reading.POSTGRES,
    scratch_schema="SET LOCAL search_path = pg_temp",
    # Sorting a 2M-row table's key in 64 MB (the default) spilled to disk: 256 MB took its
    # build from 1.3 to 1.0 s. Raised only: a server configured with more keeps its own.
    # A DO block, not a SELECT: after a SELECT's row the driver sent BEGIN again, and the
    # server logged a warning of a transaction already in progress.
    build_settings=(
        "DO $$ BEGIN IF pg_size_bytes(current_setting('maintenance_work_mem')) "
        "< pg_size_bytes('256MB') THEN SET maintenance_work_mem = '256MB'; END IF; END $$",
    ),
    # Classes 22 (data exception) and 23 (integrity constraint) are the rows' own; P0001 is
    # a trigger's RAISE, 54000 a value too large for an index entry. Anything else retries.
    faults={
        "22": Fault.ROW,
        "23": Fault.ROW,
        "P0001": Fault.ROW,
        "54000": Fault.ROW,
        "53": Fault.STORAGE,  # insufficient resources: disk full, out of memory
        "58": Fault.STORAGE,  # system error: I/O error
        "XX": Fault.STORAGE,  # internal error, data corrupted
        "25006": Fault.STORAGE,  # read-only transaction (a standby)
        "42": Fault.STORAGE,  # no such table or column, no privilege: the table's fault
    },
    sqlstates=True,
    other_fault=Fault.RETRY,
    unread_copy_end=True,
)

# SQLite keeps what it is given under a type's affinity: timestamps as ISO text (the loader
# writes them so), booleans as 0/1.
SQLITE = Dialect(
    name="sqlite",
    title="SQLite",
    surrogate_key="INTEGER PRIMARY KEY AUTOINCREMENT",
    load_ordered_index="",
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
        pl.Decimal: "text",  # its exact digits: a numeric affinity would make it a float
    },
    json_type="text",
    integer="bigint",
    booleans=("0", "1"),
    backslash_escapes=False,
    for_update="",
    schemes=("sqlite",),
    file=True,
    driver="adbc_driver_sqlite.dbapi",
    numbered_placeholders=False,
    # SQLITE_BUSY after that long; 0 would not wait at all.
    lock_timeout="PRAGMA busy_timeout = {ms}",
    unbounded_wait=2**31 - 1,
    text_settings="",
    startup_lock_timeout=None,
    advisory_locks=False,
    concurrent_writers=False,
    json_cast="{}",
    json_arrow=False,
    decimals=False,
    text_temporals=True,
    resets_after_error=True,
    schema_folder="sqlite",
    restore=None,
    key_index=None,
    catalog=catalog.SQLITE,
    affinities=True,
    reading=reading.SQLITE,
    scratch_schema=None,
    # SQLite reports no code through ADBC: its messages say it. Anything else is a row's
    # (constraints, datatype mismatch, a trigger's RAISE).
    faults={
        "database or disk is full": Fault.STORAGE,
        "disk i/o error": Fault.STORAGE,
        "readonly database": Fault.STORAGE,
        "unable to open database file": Fault.STORAGE,
        "database disk image is malformed": Fault.STORAGE,
        "out of memory": Fault.STORAGE,
        "no such table": Fault.STORAGE,
        "no such column": Fault.STORAGE,
        "has no column named": Fault.STORAGE,
        "database is locked": Fault.RETRY,
        "database table is locked": Fault.RETRY,
    },
    sqlstates=False,
    other_fault=Fault.ROW,
)

# A source only: what a target needs (surrogate key, contract types, driver, ledger DDL,
# locks, error classes) is never asked of it; those fields say so.
MYSQL = Dialect(
    name="mysql",
    title="MySQL/MariaDB",
    surrogate_key="BIGINT AUTO_INCREMENT PRIMARY KEY",
    load_ordered_index="",
    types={},
    json_type="json",
    integer="bigint",
    booleans=("FALSE", "TRUE"),
    backslash_escapes=False,
    for_update=" FOR UPDATE",
    schemes=("mysql", "mariadb"),
    file=False,
    driver="",
    numbered_placeholders=False,
    lock_timeout="SET SESSION lock_wait_timeout = {ms}",
    unbounded_wait=0,
    text_settings="",
    startup_lock_timeout=None,
    advisory_locks=False,
    concurrent_writers=False,
    json_cast="{}",
    json_arrow=False,
    decimals=False,
    text_temporals=False,
    resets_after_error=False,
    schema_folder="",
    restore=None,
    key_index=None,
    catalog=catalog.SQLITE,
    affinities=False,
    reading=reading.MYSQL,
    scratch_schema=None,
    faults={},
    sqlstates=False,
    other_fault=Fault.RETRY,
    identifier_quote="`",
    hex_text="_utf8mb4 X'{}'",
    target=False,
)

DIALECTS = {dialect.name: dialect for dialect in (POSTGRES, SQLITE, MYSQL)}


#: Declared integer types, by the Polars integer of their range.
INTEGER_TYPES: Mapping[str, type[pl.DataType]] = {
    "bigint": pl.Int64,
    "int8": pl.Int64,
    "integer": pl.Int32,
    "int": pl.Int32,
    "int4": pl.Int32,
    "smallint": pl.Int16,
    "int2": pl.Int16,
}
#: Declared integer (group 1) and floating point types: text carried for one is checked as
#: a number of it (declared_types) and, where types are affinities, lands as that number.
NUMBER_TYPE = re.compile(
    rf"({'|'.join(INTEGER_TYPES)})|double\s+precision|float[48]?|real", re.IGNORECASE
)
#: A character type, which text is assigned to as it is (not an array of one).
_CHARACTER = re.compile(
    r"(text|varchar|character varying|char|character|bpchar)\s*(\(\s*\d+\s*\))?",
    re.IGNORECASE,
)


#: A type name as SQLite's grammar takes it: words, then at most a length or a precision.
_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_ ]*(\(\s*[+-]?\d+\s*(,\s*[+-]?\d+\s*)?\))?")


def _affinity(declared: str) -> str:
    """The affinity SQLite gives a column declared ``declared`` (sqlite.org datatype3 3.1):
    which of its types a value written into it becomes."""
    name = declared.upper()
    if "INT" in name:
        return "INTEGER"
    if any(word in name for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in name or not name.strip():
        return "BLOB"
    if any(word in name for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"
