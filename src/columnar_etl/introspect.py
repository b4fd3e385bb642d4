"""What a legacy database's catalog says about its tables, for ``etl init``.

One :class:`CatalogReader` per source dialect holds its catalog questions (SQL with the
table's name as a ``{table}`` literal, or its quoted name as ``{quoted}``); each answers in
the same shape, so that :func:`read_tables` builds every :class:`SourceTable` the same way
whatever the database. Column types come from :mod:`columnar_etl.typemap`: what each becomes
in PostgreSQL, and how it is read so that no value changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import polars as pl

from columnar_etl.dialects import DIALECTS
from columnar_etl.errors import SourceError
from columnar_etl.typemap import (
    Carry,
    ColumnType,
    Refuse,
    carry,
    catalog_sql,
    column_type,
    sqlite_apart_count,
    sqlite_read_apart,
)

__all__ = [
    "READERS",
    "CatalogReader",
    "ForeignKey",
    "SourceColumn",
    "SourceIndex",
    "SourceTable",
    "read_tables",
]

#: Runs a query on the source (``Source.read``).
Read = Callable[[str], pl.DataFrame]


@dataclass(frozen=True)
class CatalogReader:
    """One database's catalog questions, each answered in the shape :func:`read_tables`
    reads."""

    tables: str
    """Every base table of the connection's schema: ``name``, ``estimated`` (its estimated
    rows; negative where the database has no estimate), ``parent`` (0/1 or a boolean: a read
    of it includes the rows of the tables inheriting it)."""
    others: str
    """The relations of the schema that are not tables (views...), which ``--tables`` may
    name by mistake: ``name``, ``kind`` (``view``...)."""
    not_null: str
    """The columns of ``{table}``: ``name``, ``not_null`` (0/1 or a boolean); where the
    catalog can, every column, also those the user may not read."""
    indexes: str
    """One row per column of each index of ``{table}`` (primary key and unique constraints
    included): ``name``, ``kind`` (primary, unique or index), ``seq`` (from 1), ``column``
    (NULL for an expression, a prefix or a non-btree index, which the scaffold leaves out).
    Partial indexes are left out."""
    foreign_keys: str
    """One row per column of each foreign key of ``{table}`` to a table of the same schema:
    ``name``, ``seq``, ``column``, ``ref_table``, ``ref_column`` (NULL: the referenced
    table's primary key, in order)."""
    count: str | None = None
    """The exact rows of ``{quoted}``, where counting is cheap and no estimate exists."""
    kinds_apart: bool = False
    """A column may hold values of another kind than its type (SQLite): counted, and such a
    column read as text (:func:`columnar_etl.typemap.sqlite_read_apart`)."""
    folds_case: str | None = None
    """Whether the database compares names ignoring (ASCII) case, as ``folds`` (0/1): then a
    table may be named, and a foreign key may name its columns, in any case."""
    own_rows: str | None = None
    """The condition keeping only a ``parent`` table's own rows, ``:table`` its quoted name."""
    key_reads: Mapping[str, Carry] = field(default_factory=dict)
    """By type name: how a key column is read where the type map reads the type as text
    (keys are ranges the source compares, read as they are)."""


POSTGRES = CatalogReader(
    tables=(
        "SELECT c.relname::text AS name, "
        "CAST(CASE WHEN c.reltuples < 0 THEN -1 ELSE c.reltuples END AS bigint) AS estimated, "
        "c.relkind = 'r' AND EXISTS (SELECT FROM pg_inherits h WHERE h.inhparent = c.oid) "
        "AS parent "
        "FROM pg_class c WHERE c.relnamespace = to_regnamespace(current_schema()) "
        "AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname"
    ),
    others=(
        "SELECT c.relname::text AS name, CASE c.relkind WHEN 'v' THEN 'view' "
        "WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' "
        "ELSE 'partition' END AS kind FROM pg_class c "
        "WHERE c.relnamespace = to_regnamespace(current_schema()) "
        "AND (c.relkind IN ('v', 'm', 'f') OR c.relispartition AND c.relkind IN ('r', 'p'))"
    ),
    not_null=(
        "SELECT a.attname::text AS name, a.attnotnull AS not_null FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass(format('%I.%I', current_schema(), {table})) "
        "AND a.attnum > 0 AND NOT a.attisdropped"
    ),
    indexes=(
        "SELECT i.relname::text AS name, CASE WHEN x.indisprimary THEN 'primary' "
        "WHEN x.indisunique THEN 'unique' ELSE 'index' END AS kind, "
        "CAST(k.n AS bigint) AS seq, "
        "CASE WHEN m.amname = 'btree' THEN a.attname::text END AS column "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_am m ON m.oid = i.relam "
        "CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) "
        "LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
        "WHERE x.indrelid = to_regclass(format('%I.%I', current_schema(), {table})) "
        "AND x.indpred IS NULL AND k.n <= x.indnkeyatts ORDER BY i.relname, k.n"
    ),
    foreign_keys=(
        "SELECT c.conname::text AS name, CAST(k.n AS bigint) AS seq, "
        "a.attname::text AS column, r.relname::text AS ref_table, "
        "ra.attname::text AS ref_column "
        "FROM pg_constraint c "
        "CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(attnum, refnum, n) "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum "
        "JOIN pg_class r ON r.oid = c.confrelid "
        "JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.refnum "
        "WHERE c.contype = 'f' AND r.relnamespace = c.connamespace "
        "AND c.conrelid = to_regclass(format('%I.%I', current_schema(), {table})) "
        "ORDER BY c.conname, k.n"
    ),
    # A partitioned table has no rows of its own: only a parent by inheritance is filtered.
    own_rows="tableoid = CAST(:table AS regclass)",
)

MYSQL = CatalogReader(
    tables=(
        "SELECT table_name AS name, CAST(COALESCE(table_rows, -1) AS SIGNED) AS estimated, "
        "0 AS parent "
        "FROM information_schema.tables WHERE table_schema = DATABASE() "
        "AND table_type = 'BASE TABLE' ORDER BY table_name"
    ),
    others=(
        "SELECT table_name AS name, LOWER(table_type) AS kind FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_type <> 'BASE TABLE'"
    ),
    not_null=(
        "SELECT column_name AS name, CAST(is_nullable = 'NO' AS SIGNED) AS not_null "
        "FROM information_schema.columns WHERE table_schema = DATABASE() "
        "AND table_name = {table}"
    ),
    # A prefix index (sub_part) is no uniqueness of the whole column, a fulltext or spatial
    # one no index the target can have: their columns are NULL, and the index left out.
    indexes=(
        "SELECT index_name AS name, CASE WHEN index_name = 'PRIMARY' THEN 'primary' "
        "WHEN non_unique = 0 THEN 'unique' ELSE 'index' END AS kind, "
        "CAST(seq_in_index AS SIGNED) AS seq, "
        "CASE WHEN sub_part IS NULL AND index_type IN ('BTREE', 'HASH') "
        "THEN column_name END AS `column` "
        "FROM information_schema.statistics WHERE table_schema = DATABASE() "
        "AND table_name = {table} ORDER BY index_name, seq_in_index"
    ),
    foreign_keys=(
        "SELECT constraint_name AS name, CAST(ordinal_position AS SIGNED) AS seq, "
        "column_name AS `column`, referenced_table_name AS ref_table, "
        "referenced_column_name AS ref_column FROM information_schema.key_column_usage "
        "WHERE table_schema = DATABASE() AND table_name = {table} "
        "AND referenced_table_schema = DATABASE() AND referenced_table_name IS NOT NULL "
        "ORDER BY constraint_name, ordinal_position"
    ),
    folds_case="SELECT CAST(@@lower_case_table_names <> 0 AS SIGNED) AS folds",
    # The common AUTO_INCREMENT key: read as it is (connectorx gives uint64) into a bigint,
    # exact for every id up to 9223372036854775807; a greater one fails the run, loudly.
    key_reads={
        "bigint": Carry(
            "numeric(20)",
            pl.Int64(),
            why="an unsigned key read as it is: an id past 9223372036854775807 stops the run",
            when=lambda column: column.unsigned,
        )
    },
)

SQLITE = CatalogReader(
    tables=(
        "SELECT name, -1 AS estimated, 0 AS parent FROM sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
        "AND COALESCE(sql, '') NOT LIKE 'CREATE VIRTUAL%' ORDER BY name"
    ),
    others=(
        "SELECT name, CASE type WHEN 'view' THEN 'view' ELSE 'virtual table' END AS kind "
        "FROM sqlite_master WHERE type = 'view' "
        "OR type = 'table' AND COALESCE(sql, '') LIKE 'CREATE VIRTUAL%'"
    ),
    not_null=(
        'SELECT name, "notnull" AS not_null FROM pragma_table_xinfo({table}) WHERE hidden <> 1'
    ),
    # The primary key from table_info: a rowid table's INTEGER PRIMARY KEY has no index.
    indexes=(
        "SELECT '(primary key)' AS name, 'primary' AS kind, pk AS seq, name AS \"column\" "
        "FROM pragma_table_info({table}) WHERE pk > 0 "
        "UNION ALL SELECT l.name, CASE WHEN l.\"unique\" THEN 'unique' ELSE 'index' END, "
        "i.seqno + 1, i.name FROM pragma_index_list({table}) AS l, "
        "pragma_index_info(l.name) AS i WHERE l.partial = 0 AND l.origin <> 'pk' "
        "ORDER BY 1, 3"
    ),
    foreign_keys=(
        'SELECT CAST(id AS TEXT) AS name, seq + 1 AS seq, "from" AS "column", '
        '"table" AS ref_table, "to" AS ref_column '
        "FROM pragma_foreign_key_list({table}) ORDER BY id, seq"
    ),
    count="SELECT COUNT(*) AS n FROM {quoted}",
    folds_case="SELECT 1 AS folds",
    kinds_apart=True,
)

#: The reader of each source dialect.
READERS = {"postgresql": POSTGRES, "mysql": MYSQL, "sqlite": SQLITE}


@dataclass(frozen=True)
class SourceColumn:
    """One column of a legacy table, and how the tool carries it."""

    name: str
    type: ColumnType
    rule: Carry | Refuse
    not_null: bool
    as_key: Carry | None = None
    """How it is read where it is (part of) the key and ``rule`` reads it as text."""

    @property
    def key_rule(self) -> Carry | None:
        """How the column is read as (part of) an entity's key: as it is, as an integer or
        as text (batches are ranges of the key, compared by the source); None where it
        cannot be a key."""
        for rule in (self.rule, self.as_key):
            if isinstance(rule, Carry) and rule.keyable:
                return rule
        return None

    @property
    def why_not_a_key(self) -> str:
        """Why :attr:`key_rule` is None."""
        if isinstance(self.rule, Carry) and self.rule.unordered:
            return f"is {self.rule.unordered}"
        return "read as text"


@dataclass(frozen=True)
class SourceIndex:
    """An index of a legacy table (its primary key and unique constraints too)."""

    name: str
    kind: str
    """``primary``, ``unique`` or ``index``."""
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ForeignKey:
    """A foreign key of a legacy table to another table of its schema."""

    name: str
    columns: tuple[str, ...]
    table: str
    """The table pointed at."""
    to: tuple[str, ...]
    """Its columns pointed at (empty: its primary key)."""


@dataclass(frozen=True)
class SourceTable:
    """A legacy table as its catalog states it."""

    name: str
    columns: tuple[SourceColumn, ...]
    indexes: tuple[SourceIndex, ...]
    """Those on plain columns only (no expression, prefix or partial index)."""
    foreign_keys: tuple[ForeignKey, ...]
    rows: int | None
    """Its estimated rows (exact where counted); None where the database has no estimate
    (a PostgreSQL table never analyzed)."""
    where: str | None = None
    """The condition its reads need to keep only its own rows (``SourceSpec.where``)."""
    params: Mapping[str, str] = field(default_factory=dict)
    """The values of ``where``'s placeholders."""

    def column(self, name: str) -> SourceColumn:
        return next(c for c in self.columns if c.name == name)

    @property
    def primary_key(self) -> tuple[str, ...]:
        return next((i.columns for i in self.indexes if i.kind == "primary"), ())

    @property
    def uniques(self) -> tuple[tuple[str, ...], ...]:
        """Its unique constraints and indexes other than the primary key."""
        return tuple(i.columns for i in self.indexes if i.kind == "unique")


def read_tables(read: Read, dialect: str, only: Sequence[str] | None = None) -> list[SourceTable]:
    """The tables of the source's schema (``only`` those, when given, each once: a
    SourceError names one it does not hold), in name order, each with its columns, indexes
    and foreign keys."""
    reader = READERS[dialect]
    found = read(reader.tables)
    estimates = dict(zip(found["name"].to_list(), found["estimated"].to_list(), strict=True))
    parents = {name for name, parent in zip(found["name"], found["parent"], strict=True) if parent}
    folds = reader.folds_case is not None and bool(read(reader.folds_case)["folds"][0])
    spelling = _ascii_lower if folds else str
    held = {spelling(name): name for name in estimates}
    names = list(estimates) if only is None else _named(read, reader, only, held, spelling)
    tables = [_table(read, dialect, name, estimates[name], name in parents) for name in names]
    if not folds:
        return tables
    by_name = {t.name: t for t in tables}
    return [_spelled_keys(t, held, by_name, spelling) for t in tables]


Spelling = Callable[[str], str]
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(name: str) -> str:
    return name.translate(_ASCII_LOWER)


def _named(
    read: Read,
    reader: CatalogReader,
    only: Sequence[str],
    held: Mapping[str, str],
    spelling: Spelling,
) -> list[str]:
    """The tables ``only`` names, each once, spelled as the catalog spells them (``held``,
    by their ``spelling``); a SourceError names those the source does not hold, and what
    those of them that are views (or such) are."""
    unknown = [name for name in only if spelling(name) not in held]
    if unknown:
        found = read(reader.others)
        kinds = {spelling(str(row["name"])): str(row["kind"]) for row in found.rows(named=True)}
        what = [f"{n!r} is a {kinds[spelling(n)]}" for n in unknown if spelling(n) in kinds]
        raise SourceError(
            f"no table {', '.join(map(repr, unknown))} in the source"
            + (f" ({', '.join(what)}: etl init copies tables)" if what else "")
            + f"; it holds {', '.join(held.values()) or 'no tables'}"
        )
    return list(dict.fromkeys(held[spelling(name)] for name in only))


def _spelled_keys(
    table: SourceTable,
    held: Mapping[str, str],
    by_name: Mapping[str, SourceTable],
    spelling: Spelling,
) -> SourceTable:
    """``table`` with its foreign keys naming tables and columns as their catalogs do, where
    the database ignores case (SQLite keeps a foreign key as it was written)."""

    def spelled(name: str, owner: SourceTable | None) -> str:
        columns = owner.columns if owner is not None else ()
        return next((c.name for c in columns if spelling(c.name) == spelling(name)), name)

    keys = []
    for fk in table.foreign_keys:
        pointed = held.get(spelling(fk.table), fk.table)
        columns = tuple(spelled(c, table) for c in fk.columns)
        to = tuple(spelled(c, by_name.get(pointed)) for c in fk.to)
        keys.append(replace(fk, columns=columns, table=pointed, to=to))
    return replace(table, foreign_keys=tuple(keys))


def _table(read: Read, dialect: str, name: str, estimate: int | None, parent: bool) -> SourceTable:
    reader = READERS[dialect]
    sql = DIALECTS[dialect]
    literal = sql.literal(name)
    not_null = {
        str(row["name"]): bool(row["not_null"])
        for row in read(reader.not_null.format(table=literal)).rows(named=True)
    }
    columns = tuple(
        SourceColumn(
            str(row["name"]),
            typed := column_type(dialect, row),
            carry(dialect, typed),
            not_null.get(str(row["name"]), False),
            _key_read(reader, typed),
        )
        for row in read(catalog_sql(dialect, literal)).rows(named=True)
    )
    _require_columns(name, not_null, columns)
    if reader.kinds_apart:
        columns = _read_apart(read, sql.quote, name, columns)
    rows = estimate if estimate is not None and estimate >= 0 else None
    if rows is None and reader.count is not None:
        rows = int(read(reader.count.format(quoted=sql.quote(name)))["n"][0])
    return SourceTable(
        name,
        columns,
        _indexes(read(reader.indexes.format(table=literal))),
        _foreign_keys(read(reader.foreign_keys.format(table=literal))),
        rows,
        *((reader.own_rows, {"table": sql.quote(name)}) if parent and reader.own_rows else ()),
    )


def _require_columns(
    table: str, not_null: Mapping[str, bool], columns: Sequence[SourceColumn]
) -> None:
    """A SourceError where ``table`` has no columns (nothing a migration can copy), or
    columns the user may not read: the catalog's column list leaves them out, and they would
    never be copied."""
    if not not_null and not columns:
        raise SourceError(f"table {table!r} has no columns: leave it out of --tables")
    hidden = [name for name in not_null if name not in {c.name for c in columns}]
    if hidden:
        raise SourceError(
            f"table {table!r}: the source's user may not read column(s) "
            f"{', '.join(map(repr, hidden))}: grant it SELECT on the table, or leave the "
            "table out of --tables"
        )


def _key_read(reader: CatalogReader, column: ColumnType) -> Carry | None:
    rule = reader.key_reads.get(column.name)
    return rule if rule is not None and (rule.when is None or rule.when(column)) else None


def _read_apart(
    read: Read, quote: Callable[[str], str], table: str, columns: tuple[SourceColumn, ...]
) -> tuple[SourceColumn, ...]:
    """``columns``, those holding values connectorx could not read as their type read as
    text (one scan of the table counts them all; ``quote``: the source's name quoting)."""
    counting = {c.name: sql for c in columns if (sql := sqlite_apart_count(c.rule))}
    if not counting:
        return columns
    select = ", ".join(
        f"{sql.format(c=quote(n))} AS c{i}" for i, (n, sql) in enumerate(counting.items())
    )
    counts = read(f"SELECT {select} FROM {quote(table)}").row(0)
    apart = {n: int(k or 0) for n, k in zip(counting, counts, strict=True)}
    return tuple(
        replace(c, rule=sqlite_read_apart(c.rule, apart[c.name]))  # type: ignore[arg-type]
        if apart.get(c.name)
        else c
        for c in columns
    )


def _grouped(frame: pl.DataFrame) -> dict[str, list[dict[str, object]]]:
    """Rows by their ``name``, in order."""
    groups: dict[str, list[dict[str, object]]] = {}
    for row in frame.rows(named=True):
        groups.setdefault(str(row["name"]), []).append(row)
    return groups


def _indexes(frame: pl.DataFrame) -> tuple[SourceIndex, ...]:
    indexes = []
    for name, rows in _grouped(frame).items():
        columns = tuple(row["column"] for row in rows)
        if all(isinstance(c, str) for c in columns):
            indexes.append(SourceIndex(name, str(rows[0]["kind"]), columns))  # type: ignore[arg-type]
    return tuple(indexes)


def _foreign_keys(frame: pl.DataFrame) -> tuple[ForeignKey, ...]:
    keys = []
    for name, rows in _grouped(frame).items():
        to = tuple(str(row["ref_column"]) for row in rows if row["ref_column"] is not None)
        columns = tuple(str(row["column"]) for row in rows)
        keys.append(ForeignKey(name, columns, str(rows[0]["ref_table"]), to))
    return tuple(keys)
