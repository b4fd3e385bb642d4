"""What an entity is: its legacy source, its pure transform, and its target contract."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import pandera.polars as pa
import polars as pl
import polars.selectors as cs

from columnar_etl.errors import ConfigError, ContractError
from columnar_etl.expressions import coalesce_dates, is_empty

__all__ = [
    "FILTERED",
    "POSITION",
    "ROW_ID",
    "SOURCE_ERRORS",
    "TRANSFORM_ERRORS",
    "Entity",
    "Index",
    "Reference",
    "SourceSpec",
    "bind",
    "carry_row_id",
    "general_dates",
    "key_dtype",
    "on_rows",
    "reads",
    "rule",
]

#: Row position added by :func:`columnar_etl.contracts.split`; transforms carry it through.
ROW_ID = "_row_id"
#: Boolean column: the row is out of scope (counted as filtered, never rejected).
FILTERED = "_filtered"
#: Text column: parse failures joined with "; ", null when the row transformed cleanly.
TRANSFORM_ERRORS = "_transform_errors"
#: Text column a source batch may carry: why a row could not be read faithfully (invalid
#: UTF-8 in an SQLite source), null for rows that read fine. Such rows are rejected.
SOURCE_ERRORS = "_source_errors"
#: Row position within a transform's input, the key :func:`on_rows` joins on.
POSITION = "_position"


#: What a source filter's placeholder may be bound to.
Param = bool | int | float | str | None
#: ``:name`` outside a string literal, and not PostgreSQL's ``::type`` cast.
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
#: A SQL string literal ('it''s'), which placeholders never reach into.
_STRING_LITERAL = re.compile(r"('(?:[^']|'')*')")


def placeholders(where: str) -> list[str]:
    """The ``:name`` placeholders of a source filter, outside its string literals."""
    parts = _STRING_LITERAL.split(where)
    return [m for part in parts[::2] for m in _PLACEHOLDER.findall(part)]


def bind(where: str, literal: Callable[[str], str]) -> str:
    """``where`` with each placeholder replaced by ``literal(name)``: the typed literal, in
    the source database's own quoting, of that placeholder's value (never text the user
    formatted into SQL)."""
    parts = _STRING_LITERAL.split(where)
    for i in range(0, len(parts), 2):
        parts[i] = _PLACEHOLDER.sub(lambda m: literal(m.group(1)), parts[i])
    return "".join(parts)


#: What a key column may be read as: batches are ranges of the key, compared by the source.
_KEY_DTYPES = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.String)


def key_dtype(dtype: pl.DataType | type[pl.DataType]) -> bool:
    """Whether a column read as ``dtype`` can be (part of) a :class:`SourceSpec`'s key."""
    return dtype.base_type() in _KEY_DTYPES


@dataclass(frozen=True)
class SourceSpec:
    """The legacy table an entity reads."""

    table: str
    """Table name in the legacy database, schema-qualified when needed (``legacy.members``)."""
    key: str | tuple[str, ...] | None
    """The table's key: one column or several, each integer or text; None for a table without
    one. Batches are ranges of it in the source's own order (keyset pagination); a keyless
    table is read as one batch."""
    schema: Mapping[str, pl.DataType]
    """Every legacy column with the dtype it is read as (keys integer or text, the rest mostly
    text)."""
    where: str | None = None
    """A source-side filter (the reference's ``filters={"active": 1}``): a SQL condition on
    the table's columns, with each value a ``:name`` placeholder bound from ``params``. Rows
    it excludes are never extracted, and verify's source checks apply it too."""
    params: Mapping[str, Param] = field(default_factory=dict)
    """The values of ``where``'s placeholders: None, booleans, integers, finite floats, text."""
    read_as: Mapping[str, str] = field(default_factory=dict)
    """Columns read through a SQL expression of the source's, each ``{}`` standing for the
    quoted column (``CASE WHEN {} IS NULL ...`` names it twice): ``{"total": "CAST({} AS
    TEXT)"}`` reads a numeric connectorx would round as its exact text (``etl init`` writes
    these from its type map). Not for key columns."""

    def __post_init__(self) -> None:
        key = (self.key,) if isinstance(self.key, str) else tuple(self.key or ())
        object.__setattr__(self, "key", key[0] if len(key) == 1 else (key or None))
        # Source names are always quoted (legacy tables have names like "Order Details"):
        # anything but an empty name or a NUL goes.
        if not all(name and "\x00" not in name for name in (self.table, *self.schema)):
            raise ConfigError(f"source {self.table!r}: a table or column name is empty or has NUL")
        for column in key:
            dtype = self.schema.get(column)
            if dtype is None or not key_dtype(dtype):
                raise ConfigError(
                    f"source {self.table!r}: key column {column!r} must be one of its columns, "
                    f"read as an integer or text (it is {dtype})"
                )
        for column, expression in self.read_as.items():
            if column not in self.schema or column in key or "{}" not in expression:
                raise ConfigError(
                    f"source {self.table!r}: read_as[{column!r}] = {expression!r} must be a "
                    "non-key column's SQL expression with {} for the column"
                )
        named = set(placeholders(self.where or ""))
        if named != set(self.params):
            raise ConfigError(
                f"source {self.table!r}: where= names {sorted(named)} but params= gives "
                f"{sorted(self.params)}; each :name needs a value, and each value a :name"
            )
        for name, value in self.params.items():
            bad_float = isinstance(value, float) and not math.isfinite(value)
            bad_text = isinstance(value, str) and "\x00" in value
            if not isinstance(value, Param) or bad_float or bad_text:
                raise ConfigError(f"source {self.table!r}: params[{name!r}] = {value!r} can't bind")

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.schema)

    @property
    def key_columns(self) -> tuple[str, ...]:
        """The key's columns, in order; empty for a keyless table."""
        return (self.key,) if isinstance(self.key, str) else tuple(self.key or ())

    @property
    def integer_key(self) -> bool:
        """Whether the key is one integer column: batches are then id ranges the source
        computes and streams (the fastest path); other keys are read range by range."""
        return isinstance(self.key, str) and self.schema[self.key] != pl.String

    @property
    def id_column(self) -> str:
        """The key's column, for a key of one column."""
        if not isinstance(self.key, str):
            raise ConfigError(f"source {self.table!r} has no single key column ({self.key!r})")
        return self.key

    def record_id(self) -> pl.Expr:
        """A source row's id as text, as rejects record it: the key's value; a composite key
        as a JSON object of its columns; for a keyless table, ``(no key)`` (its rejects keep
        their whole source row, which is what finds them)."""
        columns = self.key_columns
        if not columns:
            return pl.lit("(no key)")
        if len(columns) == 1:
            return pl.col(columns[0]).cast(pl.String)
        return pl.struct(columns).struct.json_encode()

    def conform(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        """``lf`` with every legacy column cast to its declared dtype (a column Polars typed
        ``Null``, all of it missing, becomes a column of nulls of the right type); a missing
        column, or a value that does not cast, is a ContractError naming it."""
        found = lf.collect_schema()
        missing = [name for name in self.columns if name not in found]
        if missing:
            raise ContractError(
                f"legacy {self.table} rows need columns {', '.join(missing)} "
                f"(it reads {', '.join(self.columns)})"
            )
        # Only the columns that differ: a batch read from the source already has the types.
        changed = {n: t for n, t in self.schema.items() if found[n] != t}
        return lf.cast(changed, strict=True) if changed else lf  # type: ignore[arg-type]


#: What a declared table, column or index name may be: it is written into DDL and queries as
#: it is, so nothing that would need quoting (or could end a statement) gets through.
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: An exact SQL type as declared: ``numeric(12,2)``, ``varchar(40)``, ``timestamp with time zone``,
#: ``timestamp(3) with time zone`` (PostgreSQL's spelling of a precision), ``integer[]``.
_SQL_TYPE = re.compile(
    r"[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?( [A-Za-z][A-Za-z ]*)?(\[\])?"
)


def is_sql_type(text: str) -> bool:
    """Whether ``text`` reads as a column's SQL type (``numeric(10,2)``, ``text[]``)."""
    return _SQL_TYPE.fullmatch(text.strip()) is not None


def _identifiers(where: str, *names: str) -> None:
    for name in names:
        if not _IDENTIFIER.fullmatch(name):
            raise ConfigError(
                f"{where}: {name!r} is not a plain SQL name (letters, digits and _, "
                "not starting with a digit)"
            )


@dataclass(frozen=True)
class Index:
    """A named index of the target table, on one column or several (the reference's
    ``__dataflow__['indexes']``)."""

    name: str
    columns: tuple[str, ...]
    unique: bool = False
    load_ordered: bool = False
    """The values arrive in the order rows are loaded (a job id): where the database has one,
    a block-range index serves the lookups at a fraction of a btree's build time and size."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        _identifiers(f"index {self.name!r}", self.name, *self.columns)


@dataclass(frozen=True)
class Reference:
    """A column that points at another entity's key, and the target column it fills: the
    reference's ``orders.customer_legacy_id -> customers.legacy_id`` sets ``orders.customer_id``
    to the customer's target id."""

    column: str
    """This entity's column holding the other entity's key."""
    to: str
    """``entity.column``: the key pointed at."""
    sets: str | None = None
    """This entity's column that linking fills with the target id of the row pointed at;
    None where ``column`` itself is the link (an identity copy keeps its foreign keys as they
    are): nothing to fill, but the run order, verify's orphan check and rollback's refusal
    still follow the reference."""

    def __post_init__(self) -> None:
        _, dot, key = self.to.partition(".")
        if not dot:
            raise ConfigError(f"reference to {self.to!r}: say entity.column, e.g. customers.id")
        filled = () if self.sets is None else (self.sets,)
        _identifiers(f"reference {self.column} -> {self.to}", self.column, *filled, key)

    @property
    def entity(self) -> str:
        return self.to.partition(".")[0]

    @property
    def key(self) -> str:
        return self.to.partition(".")[2]


@dataclass(frozen=True)
class Entity:
    """One migratable entity; an instance is all the engine needs to know about it."""

    name: str
    source: SourceSpec
    transform: Callable[[pl.LazyFrame], pl.LazyFrame]
    """Pure legacy -> target transform; adds FILTERED and TRANSFORM_ERRORS columns."""
    contract: Callable[[datetime], pa.DataFrameSchema]
    """The pandera contract of valid target rows, for a run whose clock reads ``as_of``."""
    target_table: str
    unique_keys: tuple[str, ...] = ("legacy_id",)
    """Target columns with a unique index; the row with the lower source key wins a
    collision. The :attr:`record_key` is the record's own: a row whose record key an earlier
    job loaded is already there."""
    json_columns: tuple[str, ...] = ()
    """Target columns holding JSON text (jsonb on PostgreSQL)."""
    required_messages: Mapping[str, str] = field(default_factory=dict)
    """Message for a null in a non-nullable contract column (default ``"<col> is required"``)."""
    indexes: tuple[Index, ...] = ()
    """Plain (or further unique) indexes of the target table, besides the unique keys'."""
    references: tuple[Reference, ...] = ()
    """Columns pointing at other entities' keys, and the columns linking fills."""
    sql_types: Mapping[str, str] = field(default_factory=dict)
    """An exact SQL type for a target column (``numeric(12,2)``), where the contract's dtype
    does not say enough; the others follow from the contract."""
    defaults: Mapping[str, str | int | float | bool] = field(default_factory=dict)
    """A column's DEFAULT in the target table, for rows others insert later (the migration
    always writes every column): a plain value, written as a SQL literal."""
    record_key: str = "legacy_id"
    """The target column holding the source row's key: ``legacy_id`` (its
    :meth:`SourceSpec.record_id` text), or the source's own key column where the transform
    carries it unchanged (an integer or text key, whose text is the record id): then the
    target needs no second column and no second unique index for it."""
    surrogate_key: str | None = "id"
    """The target table's own generated key column (its primary key), which references'
    ``sets`` columns hold: another name where a column of the contract is called ``id``.
    None: no generated key, the :attr:`record_key` is the primary key (a unique key of the
    entity, never null); no reference can then ``set`` a column from it."""

    def __post_init__(self) -> None:
        where = f"entity {self.name!r}"
        columns = tuple(self.target_schema())
        _identifiers(where, self.target_table, *columns, *self.unique_keys, *self.json_columns)
        _identifiers(where, self.primary_key, self.record_key)
        filled = [r.sets for r in self.references if r.sets is not None]
        taken = {*columns, *filled, "etl_job_id"} & {self.surrogate_key}
        if taken:
            raise ConfigError(
                f"{where}: its generated key {self.surrogate_key!r} is also one of its columns: "
                "name it otherwise (surrogate_key=...)"
            )
        for name, sql in self.sql_types.items():
            if name not in columns or not is_sql_type(sql):
                raise ConfigError(f"{where}: sql_types[{name!r}] = {sql!r} is not a column's type")
        for name, value in self.defaults.items():
            if name not in columns:
                raise ConfigError(f"{where}: defaults names {name!r}, not one of its columns")
            if not isinstance(value, str | int | float | bool):
                raise ConfigError(
                    f"{where}: defaults[{name!r}] = {value!r} is not a column's value"
                )
        for declared in (*self.unique_keys, *self.json_columns):
            if declared not in columns:
                raise ConfigError(f"{where}: {declared!r} is not a column of its contract")
        if self.unique_keys and self.record_key not in columns:
            raise ConfigError(
                f"{where}: unique keys need a {self.record_key} column, the source row's own "
                f"key (record_key): a row whose {self.record_key} is already loaded is "
                "skipped, another key's collision is a duplicate (a table without a key "
                "declares unique_keys=())"
            )
        if self.surrogate_key is None and (
            self.record_key not in self.unique_keys or self.target_schema()[self.record_key][1]
        ):
            raise ConfigError(
                f"{where}: without a generated key (surrogate_key=None) its record key "
                f"{self.record_key!r} is the primary key: one of unique_keys, and not nullable"
            )

    @property
    def primary_key(self) -> str:
        """The target table's primary key column: the generated key, else the record key."""
        return self.surrogate_key or self.record_key

    @functools.cached_property
    def target_columns(self) -> tuple[str, ...]:
        return tuple(self._target_schema)

    def target_schema(self) -> dict[str, tuple[pl.DataType, bool]]:
        """The contract's target columns: name -> (dtype, nullable)."""
        return dict(self._target_schema)

    @functools.cached_property
    def _target_schema(self) -> dict[str, tuple[pl.DataType, bool]]:
        # Built once: the contract is asked for it in every batch, and building one is not
        # free (pandera copies each column).
        columns = self.contract(datetime(2000, 1, 1)).columns
        return {
            name: (column.dtype.type, column.nullable)
            for name, column in columns.items()
            if not name.startswith("_")
        }

    def table_indexes(self) -> tuple[Index, ...]:
        """Every index of the target table: one unique index per unique key, the declared
        ones, and the one on etl_job_id that verify and rollback read by."""
        table = self.target_table
        # The primary key's own index is the record key's where no key is generated.
        keys = (key for key in self.unique_keys if key != self.primary_key)
        unique = tuple(Index(f"idx_{table}_{key}", (key,), unique=True) for key in keys)
        by_job = Index(f"idx_{table}_etl_job_id", ("etl_job_id",), load_ordered=True)
        return (*unique, *self.indexes, by_job)


Transform = Callable[[pl.LazyFrame], pl.LazyFrame]


def reads(source: SourceSpec) -> Callable[[Transform], Transform]:
    """Make a transform take any frame holding ``source``'s columns (a notebook's dicts, a
    test's literal rows): the frame is conformed to the declared types first
    (:meth:`SourceSpec.conform`)."""

    def decorate(transform: Transform) -> Transform:
        @functools.wraps(transform)
        def conformed(lf: pl.LazyFrame) -> pl.LazyFrame:
            return transform(source.conform(lf))

        return conformed

    return decorate


def rule(error: str, expr: pl.Expr) -> pa.Check:
    """A pandera check from a boolean Polars expression; ``error`` is the reject message."""
    return pa.Check(lambda data: data.lazyframe.select(expr), name=error, error=error)


def carry_row_id() -> pl.Expr:
    """Select ROW_ID when the frame has one, so transforms also run on plain legacy frames."""
    return cs.by_name(ROW_ID, require_all=False)


#: One part of :func:`on_rows`: which rows, and what to compute from them.
Part = tuple[pl.Expr, Callable[[pl.LazyFrame], pl.LazyFrame]]


def on_rows(lf: pl.LazyFrame, *parts: Part) -> pl.LazyFrame:
    """``lf`` plus the columns each ``(where, compute)`` part derives from the rows ``where`` picks.

    For rules whose exact implementation is slow but which only a few rows need: ``compute``
    gets just those rows, with a POSITION column it must keep, and returns at most one row per
    POSITION; its other columns are null on the remaining rows. Row order is kept. The parts
    share one pass over ``lf`` (nesting calls would compute ``lf`` once per call).
    """
    # An explicit cache: the optimizer would otherwise give the positions below a plan of
    # their own, and read the source twice.
    indexed = lf.with_row_index(POSITION).cache()
    positions = indexed.select(POSITION)
    # Joining onto the position column alone, then pasting the result beside the frame, copies
    # only the new columns; a join onto the whole frame would gather every column.
    spread = [
        positions.join(
            compute(indexed.filter(where)), on=POSITION, how="left", maintain_order="left"
        ).drop(POSITION)
        for where, compute in parts
    ]
    return pl.concat([indexed.drop(POSITION), *spread], how="horizontal")


def general_dates(text: str, padded: str, output: str) -> Part:
    """The :func:`on_rows` part that reads the dates the zero-padded fast path did not.

    Column ``output`` is ``coalesce_dates`` of column ``text``, computed only where column
    ``padded`` (``padded_dates`` of ``text``) is null and the text is not empty; the dates of a
    batch are the coalesce of the two columns.
    """
    column = pl.col(text)

    def compute(rows: pl.LazyFrame) -> pl.LazyFrame:
        return rows.select(POSITION, coalesce_dates(column).alias(output))

    return pl.col(padded).is_null() & ~is_empty(column), compute
