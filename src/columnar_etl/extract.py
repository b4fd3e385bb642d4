"""Reading the legacy database with connectorx: the batch plan (key ranges), one batch as Arrow.

Identifiers come from the entity's SourceSpec and are checked against the source table's real
columns before any query runs; the only values in the SQL are key values the source gave us,
a filter's parameters, and (in catalog lookups) those identifiers, each written as a literal
by the source's Dialect.

A table keyed by one integer column is planned by the source in one query and streamed; a
table keyed by text or by several columns is planned by keyset pagination and read range by
range, every comparison of keys made by the source in its own order (its collation), never
by us; a table without a key is one batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from columnar_etl import typemap
from columnar_etl.config import DEFAULT_LOCK_TIMEOUT, DatabaseUrl, first_line
from columnar_etl.declare import SOURCE_ERRORS, SourceSpec, bind
from columnar_etl.dialects import DIALECTS
from columnar_etl.errors import SourceError
from columnar_etl.expressions import join_messages, message_if

__all__ = ["BatchRange", "KeyRange", "Source", "key_hash", "source_key_hash", "utf8_hex"]


# Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF), as the
# upper-case hex text SQLite's hex() gives: lets the bad values be found without a Python loop.
_CONT = "[89AB][0-9A-F]"
_UTF8_HEX = (
    "^(?:[0-7][0-9A-F]"
    f"|C[2-9A-F]{_CONT}|D[0-9A-F]{_CONT}"
    f"|E0[AB][0-9A-F]{_CONT}|E[1-9A-CEF]{_CONT}{_CONT}|ED[89][0-9A-F]{_CONT}"
    f"|F0[9AB][0-9A-F]{_CONT}{_CONT}|F[1-3]{_CONT}{_CONT}{_CONT}|F48[0-9A-F]{_CONT}{_CONT}"
    ")*$"
)


Key = tuple[Any, ...]


@dataclass(frozen=True)
class KeyRange:
    """The rows of a batch of a table not keyed by one integer: keys from ``start`` (included)
    to ``stop`` (included when ``through``, else excluded), as the source orders them; an open
    end where None (a keyless table's one batch is open at both)."""

    start: Key | None
    stop: Key | None
    through: bool = True

    def to_json(self) -> str:
        """How the ledger stores it (migration_batches.key_range)."""
        return json.dumps({"start": self.start, "stop": self.stop, "through": self.through})

    @classmethod
    def from_json(cls, text: str) -> KeyRange:
        found = json.loads(text)
        start, stop = found["start"], found["stop"]
        return cls(
            None if start is None else tuple(start),
            None if stop is None else tuple(stop),
            bool(found["through"]),
        )


@dataclass(frozen=True)
class BatchRange:
    """Ids ``start_id..end_id`` inclusive of a source table, holding ``records_count`` rows;
    for a table keyed otherwise, the rows of ``keys``, which were rows ``start_id..end_id``
    in key order when the plan was made."""

    batch_number: int
    start_id: int
    end_id: int
    records_count: int
    keys: KeyRange | None = None


def key_hash(ids: pl.Series) -> str:
    """A stable fingerprint of a batch's source keys: sha256 (hex) of the ids, every value and
    repeat, sorted, each as 8 bytes of a little-endian signed integer. Defined by us and hashed
    by hashlib, so the load that records it and a later ``etl verify`` in another process (or
    with another Polars) agree; Polars' own hash is not stable across versions. Bytes rather
    than decimal text: a tenth of the time (2M ids: 0.05 s vs 0.36 s), in every batch's load.
    Nulls (refused by the plan) are left out."""
    data = ids.cast(pl.Int64).drop_nulls().sort().to_numpy().astype("<i8", copy=False)
    return hashlib.sha256(data.tobytes()).hexdigest()


def rows_hash(frame: pl.DataFrame) -> str:
    """A stable fingerprint of rows: sha256 (hex) of each row as a JSON object, sorted (by
    their bytes, so whatever order the source gave them), one per line."""
    if frame.is_empty():
        return hashlib.sha256(b"").hexdigest()
    lines = frame.select(pl.struct(pl.all()).struct.json_encode().sort().str.join("\n"))
    return hashlib.sha256(lines.item().encode()).hexdigest()


def source_key_hash(spec: SourceSpec, frame: pl.DataFrame) -> str:
    """The fingerprint of a batch's source keys (``frame``: its rows as read): the ids of an
    integer key (:func:`key_hash`), else the key's values per row, or for a keyless table the
    whole rows."""
    if spec.integer_key:
        return key_hash(frame[spec.id_column])
    return rows_hash(frame.select(spec.key_columns or spec.columns))


def utf8_hex(hex_text: pl.Expr) -> pl.Expr:
    """Whether upper-case hex text spells well-formed UTF-8 (null stays null)."""
    return hex_text.str.contains(_UTF8_HEX)


def _decoded(column: str, marked: bool = False) -> pl.Expr:
    """Hex text back to text; an invalid value becomes ``<invalid UTF-8: 4F52FF>`` (where
    ``marked``, after the mark of :func:`_selected`, which stays first)."""
    hex_text = pl.col(column)
    valid = utf8_hex(hex_text)
    text = pl.when(valid).then(hex_text).str.decode("hex").cast(pl.String)
    bytes_shown = hex_text.str.slice(len(_MARK.encode().hex())) if marked else hex_text
    shown = pl.concat_str(
        pl.lit((_MARK if marked else "") + "<invalid UTF-8: "), bytes_shown, pl.lit(">")
    )
    return pl.when(valid | hex_text.is_null()).then(text).otherwise(shown).alias(column)


#: Source rows per streamed query (see :meth:`Source.stream`).
STREAM_ROWS = 200_000

#: The batch plan, in SQL that PostgreSQL and SQLite both run on an indexed id: each batch starts
#: at the first id after the ``skip``-th id from the previous start (an index walk), ends
#: just before the next start, and counts its rows. With ``unique`` (1: a unique index on the
#: id alone) every batch but the last holds exactly ``skip + 1`` rows, and only the last is
#: counted: the counts were 60% of the query's time (2M ids: 0.27 s vs 0.10 s without). Only
#: identifiers (checked against the table) and integers of ours are pasted in.
_PLAN = """
WITH RECURSIVE starts(start_id) AS (
    SELECT MIN({key}) FROM {table}
    UNION ALL
    SELECT (SELECT MIN({key}) FROM {table} WHERE {key} > (
                SELECT {key} FROM {table} WHERE {key} >= starts.start_id
                ORDER BY {key} LIMIT 1 OFFSET {skip}))
    FROM starts WHERE starts.start_id IS NOT NULL
),
ranges AS (
    SELECT start_id, COALESCE(LEAD(start_id) OVER (ORDER BY start_id) - 1,
                              (SELECT MAX({key}) FROM {table})) AS end_id,
           LEAD(start_id) OVER (ORDER BY start_id) IS NULL AS is_last
    FROM starts WHERE start_id IS NOT NULL
)
SELECT start_id, end_id,
       CASE WHEN {unique} = 1 AND NOT is_last THEN {skip} + 1
            ELSE (SELECT COUNT(*) FROM {table}
                  WHERE {key} >= ranges.start_id AND {key} <= ranges.end_id) END AS records_count
FROM ranges ORDER BY start_id
"""


#: Distinct ids per page while planning a table whose id has no index: 16 MB of memory.
PLAN_ROWS = 1_000_000


def relation(spec: SourceSpec, dialect: str) -> str:
    """What the queries of ``spec`` read FROM: its table, or only the rows its filter keeps
    (under the table's own name, so its columns read as they do on the table)."""
    words = DIALECTS[dialect]
    table = words.quote(spec.table)
    if spec.where is None:
        return table
    where = bind(spec.where, lambda name: words.literal(spec.params[name]))
    return f"(SELECT * FROM {table} WHERE {where}) AS {words.quote(_unqualified(spec.table))}"


def _unqualified(table: str) -> str:
    return table.rpartition(".")[2]


#: Where connectorx infers an expression's type from the first row (SQLite), each value of a
#: ``read_as`` expression is read behind this mark and a NULL as empty text, which no
#: marked value is: every row then has a text, and :func:`_unmarked` gives the values back.
_MARK = "~"


def _selected(spec: SourceSpec, columns: Iterable[str], dialect: str) -> list[str]:
    """The select list of ``columns``: each as it is, or read through its ``read_as``
    expression (exactly, as text) under its own name."""
    words = DIALECTS[dialect]
    quote, marked = words.quote, not words.reading.typed_expressions

    def read(column: str) -> str:
        expression = spec.read_as[column].replace("{}", quote(column))
        if marked:
            expression = f"COALESCE('{_MARK}' || ({expression}), '')"
        return f"{expression} AS {quote(column)}"

    return [read(c) if c in spec.read_as else quote(c) for c in columns]


def _unmarked(frame: pl.DataFrame, spec: SourceSpec, dialect: str) -> pl.DataFrame:
    """``frame`` with the values :func:`_selected` marked given back (empty text: NULL)."""
    if DIALECTS[dialect].reading.typed_expressions:
        return frame
    marked = [c for c in spec.read_as if c in frame.columns]
    return frame.with_columns(
        pl.when(pl.col(c) != "").then(pl.col(c).cast(pl.String).str.slice(1)).alias(c)
        for c in marked
    )


def _keys_sql(spec: SourceSpec, dialect: str) -> tuple[str, Any]:
    """The key as the source compares it (``"k"`` or the row ``("a", "b")``), and a function
    writing a key's values the same way, as literals."""
    words = DIALECTS[dialect]
    columns = [words.quote(c) for c in spec.key_columns]

    def row(items: Iterable[str]) -> str:
        items = list(items)
        return items[0] if len(items) == 1 else "(" + ", ".join(items) + ")"

    return row(columns), lambda key: row(words.literal(v) for v in key)


def range_condition(spec: SourceSpec, keys: KeyRange, dialect: str) -> str:
    """The SQL condition selecting the rows of ``keys`` (TRUE where both ends are open)."""
    column, values = _keys_sql(spec, dialect)
    parts = []
    if keys.start is not None:
        parts.append(f"{column} >= {values(keys.start)}")
    if keys.stop is not None:
        parts.append(f"{column} {'<=' if keys.through else '<'} {values(keys.stop)}")
    return " AND ".join(parts) or "1 = 1"


class Source:
    """The legacy database."""

    def __init__(self, url: DatabaseUrl, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> None:
        """A source read through connectorx; a PostgreSQL query gives up waiting for another
        session's lock after ``lock_timeout`` seconds (0: the server's setting)."""
        self.url = url
        self.dialect = DIALECTS[url.dialect]
        self.reading = self.dialect.reading
        self._options = {"protocol": self.reading.protocol} if self.reading.protocol else {}
        self._driver_url = url.driver_url(lock_timeout)

    def _quote(self, identifier: str) -> str:
        """A checked table or column name, quoted as the source database quotes it."""
        return self.dialect.quote(identifier)

    def probe(self) -> None:
        """Fail fast where the server is down or refuses us: connectorx's pool would retry
        for 30 s before giving up (the Reading's ``probe``)."""
        if self.reading.probe is not None:
            self.reading.probe(self.url, self._driver_url)

    def read(self, sql: str) -> pl.DataFrame:
        """Run a query through connectorx into a Polars frame."""
        import connectorx as cx

        if self.dialect.file and not self.url.path.is_file():
            # connectorx's pool would retry a folder for ~25 s, logging each failure.
            what = "is not a file" if self.url.path.exists() else "file not found"
            raise SourceError(f"source database {what}: {self.url.path}")
        try:
            table = cx.read_sql(self._driver_url, sql, return_type="arrow", **self._options)
        except BaseException as exc:
            if not _driver_failure(exc):
                raise
            raise SourceError(f"cannot read source {self.url}: {first_line(exc)}") from None
        return pl.from_arrow(table)  # type: ignore[return-value]

    def check(self, spec: SourceSpec) -> None:
        """Fail clearly when the source is unreachable, or a table or column is missing."""
        self.probe()
        schema, _, table = spec.table.rpartition(".")
        literal = self.dialect.literal
        in_schema = literal(schema) if schema else self.reading.default_schema
        sql = self.reading.columns.format(table=literal(table), schema=in_schema)
        # spec.table is ours (a registered entity), never user input.
        found = set(self.read(sql)["name"].to_list())
        if not found:
            raise SourceError(f"source table {spec.table!r} not found in {self.url}")
        missing = [c for c in spec.columns if c not in found]
        if missing:
            raise SourceError(
                f"source table {spec.table!r} is missing columns: {', '.join(missing)}"
            )
        rules = typemap.table_rules(self.read, self.url.dialect, spec.table)
        typemap.raise_for_uncarried(spec, rules)
        typemap.raise_for_unordered_keys(spec, rules)
        self._refuse_wide_keys(spec, rules)

    def _refuse_wide_keys(self, spec: SourceSpec, rules: Mapping[str, object]) -> None:
        """A key column the type map would read as text but ``spec`` reads as an integer
        (``etl init`` keys a MySQL table by its unsigned bigint id so): every value must fit
        that integer, or the run stops before reading, naming the column and its range."""
        for column in spec.key_columns:
            rule, dtype = rules.get(column), spec.schema[column]
            if not (isinstance(rule, typemap.Carry) and rule.as_text and dtype.is_integer()):
                continue
            quoted, table = self._quote(column), relation(spec, self.url.dialect)
            found = self.read(f"SELECT MIN({quoted}) AS lo, MAX({quoted}) AS hi FROM {table}")
            lo, hi = found["lo"][0], found["hi"][0]
            least, most = pl.select(dtype.min().alias("lo"), dtype.max().alias("hi")).row(0)
            if lo is not None and not (least <= int(lo) and int(hi) <= most):
                raise SourceError(
                    f"source table {spec.table!r}, key column {column!r}: its values "
                    f"{lo}..{hi} do not all fit {dtype} ({least}..{most}), which it is read as"
                )

    def plan(self, spec: SourceSpec, batch_size: int) -> list[BatchRange]:
        """Cut the table into id ranges of ``batch_size`` rows (the last may hold fewer).

        Boundaries are every ``batch_size``-th id in sorted order, so gaps and skew in the ids
        never make a batch empty or oversized. A batch always holds every row of its last id:
        ids that repeat (no primary key) make it larger, never split. Ranges are contiguous,
        so a row added to the source later still falls in exactly one batch.

        With an index on the id, the database computes the batches (:data:`_PLAN`) and only
        they cross the wire: reading 2M sorted ids into the client cost 0.8 s of its CPU, the
        query 0.1 s of the server's over a unique id (0.27 s where it must count each batch).
        Without an index, that query would scan the table once per batch: the ids and their
        counts are read in pages instead.
        """
        self._refuse_null_ids(spec)
        size = int(batch_size)
        if not spec.key_columns:
            rows = self.count(spec)
            return [BatchRange(1, 1, rows, rows, KeyRange(None, None))] if rows else []
        if not spec.integer_key:
            return self._keyset_plan(spec, size)
        indexed, unique = self._id_index(spec)
        if indexed:
            key, table = self._quote(spec.id_column), relation(spec, self.url.dialect)
            sql = _PLAN.format(key=key, table=table, skip=size - 1, unique=int(unique))
            ranges = self.read(sql).rows()
        else:
            ranges = self._ranges_from_id_counts(spec, size)
        return [
            BatchRange(number, int(start), int(end), int(count))
            for number, (start, end, count) in enumerate(ranges, 1)
        ]

    def _keyset_plan(self, spec: SourceSpec, size: int) -> list[BatchRange]:
        """Batches of a text or composite key: each runs from its first key up to the next
        batch's first (excluded), the last through the last key, so a row added later still
        falls in one batch. ``start_id..end_id`` are the rows' positions in key order."""
        cut = _cut(self._key_counts(spec), spec.key_columns, size)
        plan, position = [], 0
        for number, (first, last, rows) in enumerate(cut, 1):
            following = cut[number][0] if number < len(cut) else None
            keys = KeyRange(first, following, False) if following else KeyRange(first, last)
            plan.append(BatchRange(number, position + 1, position + rows, rows, keys))
            position += rows
        return plan

    def _id_index(self, spec: SourceSpec) -> tuple[bool, bool]:
        """Whether an index leads with the id column, and whether one keeps it unique."""
        names = {
            "table": self.dialect.literal(spec.table),
            "column": self.dialect.literal(spec.id_column),
        }
        quoted = self.dialect.literal(self._quote(spec.table))
        sql = self.reading.key_indexed.format(quoted=quoted, **names)
        found = self.read(sql).row(0, named=True)
        return bool(found["n"]), bool(found["u"])

    def _ranges_from_id_counts(self, spec: SourceSpec, size: int) -> list[tuple[int, int, int]]:
        """(start, end, rows) per batch, as :data:`_PLAN` gives them, from the distinct ids and
        their counts: each batch ends at the first id where its rows reach ``size``."""
        cut = _cut(self._key_counts(spec), spec.key_columns, size)
        ends = [following[0] - 1 for following, _, _ in cut[1:]] + [
            last for _, (last,), _ in cut[-1:]
        ]
        return [(first, end, rows) for ((first,), _, rows), end in zip(cut, ends, strict=True)]

    def _key_counts(self, spec: SourceSpec) -> Iterator[pl.DataFrame]:
        """The table's distinct keys with their row counts (``_etl_rows``), in the source's
        order, ``PLAN_ROWS`` at a time (keyset pagination: each page starts after the last
        key of the one before)."""
        table = relation(spec, self.url.dialect)
        column, values = _keys_sql(spec, self.url.dialect)
        columns = ", ".join(self._quote(c) for c in spec.key_columns)
        after: Key | None = None
        while True:
            where = "1 = 1" if after is None else f"{column} > {values(after)}"
            page = self.read(
                f"SELECT {columns}, COUNT(*) AS _etl_rows FROM {table} WHERE {where} "
                f"GROUP BY {columns} ORDER BY {columns} LIMIT {PLAN_ROWS}"
            )
            if page.height:
                yield page
            if page.height < PLAN_ROWS:
                return
            after = page.select(spec.key_columns).row(-1)

    def _refuse_null_ids(self, spec: SourceSpec) -> None:
        """Rows without a key fall in no key range: refuse them rather than lose them."""
        if not spec.key_columns:
            return
        nulls_in = " OR ".join(f"{self._quote(c)} IS NULL" for c in spec.key_columns)
        sql = f"SELECT COUNT(*) AS n FROM {relation(spec, self.url.dialect)} WHERE {nulls_in}"
        nulls = int(self.read(sql)["n"][0])
        if nulls:
            raise SourceError(
                f"{nulls:,} rows of source table {spec.table!r} have no "
                f"{' or '.join(repr(c) for c in spec.key_columns)} (NULL); batches are key "
                "ranges and could not read them: give them keys first"
            )

    def count(self, spec: SourceSpec) -> int:
        """Rows in the source table (those its filter keeps)."""
        table = relation(spec, self.url.dialect)
        return int(self.read(f"SELECT COUNT(*) AS n FROM {table}")["n"][0])

    def keys(self, spec: SourceSpec) -> pl.Series:
        """Every id of the source table (nulls included), sorted, as Int64: one query."""
        key = self._quote(spec.id_column)
        table = relation(spec, self.url.dialect)
        frame = self.read(f"SELECT {key} AS id FROM {table} ORDER BY {key}")
        # Sorted again here: SQLite orders a text-typed id as text, and puts nulls first.
        return frame["id"].cast(pl.Int64, strict=False).sort(nulls_last=True)

    def record_ids(self, spec: SourceSpec) -> pl.Series:
        """Every row's id as text (``SourceSpec.record_id``); empty for a keyless table."""
        if spec.integer_key:
            return self.keys(spec).cast(pl.String)
        if not spec.key_columns:
            return pl.Series("id", [], pl.String)
        everything = KeyRange(None, None)
        return self.range_keys(spec, everything).select(spec.record_id()).to_series()

    def range_keys(self, spec: SourceSpec, keys: KeyRange) -> pl.DataFrame:
        """The keys (a keyless table: the rows) of ``keys``'s rows now, with their dtypes."""
        columns = spec.key_columns or spec.columns
        selected = ", ".join(_selected(spec, columns, self.url.dialect))
        where = range_condition(spec, keys, self.url.dialect)
        frame = self.read(
            f"SELECT {selected} FROM {relation(spec, self.url.dialect)} WHERE {where}"
        )
        frame = _unmarked(frame, spec, self.url.dialect)
        return frame.cast({c: spec.schema[c] for c in columns}, strict=False)  # type: ignore[arg-type]

    def read_batch(self, spec: SourceSpec, batch: BatchRange) -> pl.DataFrame:
        """The rows of one batch, with the legacy dtypes of ``spec``."""
        try:
            frame = self.read(
                self._batch_sql(spec, batch, _selected(spec, spec.columns, self.url.dialect))
            )
        except SourceError as exc:
            if not self.reading.unchecked_text or "utf-8" not in str(exc).lower():
                raise
            frame = self._read_batch_as_hex(spec, batch)
        frame = _unmarked(frame, spec, self.url.dialect)
        return frame.cast(dict(spec.schema), strict=False)  # type: ignore[arg-type]

    def _batch_sql(self, spec: SourceSpec, batch: BatchRange, columns: list[str]) -> str:
        selected = f"SELECT {', '.join(columns)} FROM {relation(spec, self.url.dialect)}"
        if batch.keys is not None:
            where = range_condition(spec, batch.keys, self.url.dialect)
            order = ", ".join(self._quote(c) for c in spec.key_columns)
            # A keyless table's rows come in whatever order the source keeps them.
            return f"{selected} WHERE {where}" + (f" ORDER BY {order}" if order else "")
        key = self._quote(spec.id_column)
        return (
            f"{selected} WHERE {key} >= {int(batch.start_id)} AND {key} <= {int(batch.end_id)} "
            f"ORDER BY {key}"
        )

    def _read_batch_as_hex(self, spec: SourceSpec, batch: BatchRange) -> pl.DataFrame:
        """SQLite stores text it never checked; connectorx refuses invalid UTF-8. Read the
        batch's text as hex instead, decode what is valid, and say which values were not."""
        text = [c for c, dtype in spec.schema.items() if dtype == pl.String]
        quoted = {c: self._quote(c) for c in spec.columns}
        selected = _selected(spec, spec.columns, self.url.dialect)
        # A column read through an expression is hex too, its mark (never NULL) within.
        columns = [
            item
            if c not in text
            else f"hex({item.removesuffix(f' AS {quoted[c]}')}) AS {quoted[c]}"
            if c in spec.read_as
            else f"CASE WHEN {quoted[c]} IS NULL THEN NULL ELSE hex({quoted[c]}) END AS {quoted[c]}"
            for c, item in zip(spec.columns, selected, strict=True)
        ]
        frame = self.read(self._batch_sql(spec, batch, columns))
        problems = [
            message_if(~utf8_hex(pl.col(c)), f"{c}: invalid UTF-8 in the source") for c in text
        ]
        marked = not self.reading.typed_expressions
        return frame.with_columns(
            *(_decoded(c, marked and c in spec.read_as) for c in text),
            join_messages(*problems).alias(SOURCE_ERRORS),
        )

    def stream(
        self,
        spec: SourceSpec,
        batches: Sequence[BatchRange],
        *,
        rows_per_query: int = STREAM_ROWS,
        rows_per_read: int = 20_000,
    ) -> Iterator[tuple[BatchRange, pl.DataFrame]]:
        """The rows of ``batches`` (sorted by id), batch by batch, as :meth:`read_batch` gives
        them, through one streamed query (connectorx ``arrow_stream``) per run of adjacent
        batches holding about ``rows_per_query`` rows: fewer connections and scans than a
        query per batch. connectorx reads a stream ahead without limit (measured: a whole
        2M-row table within seconds), so the run length is what bounds memory."""
        if not spec.integer_key:  # cutting a stream by key would compare keys in Python
            for batch in batches:
                yield batch, self.read_batch(spec, batch)
            return
        run: list[BatchRange] = []
        for batch in batches:
            adjacent = run and batch.batch_number == run[-1].batch_number + 1
            if run and (not adjacent or sum(b.records_count for b in run) >= rows_per_query):
                yield from self._stream_run(spec, run, rows_per_read)
                run = []
            run.append(batch)
        if run:
            yield from self._stream_run(spec, run, rows_per_read)

    def _stream_run(
        self, spec: SourceSpec, run: list[BatchRange], rows_per_read: int
    ) -> Iterator[tuple[BatchRange, pl.DataFrame]]:
        import connectorx as cx

        span = BatchRange(0, run[0].start_id, run[-1].end_id, 0)
        sql = self._batch_sql(spec, span, _selected(spec, spec.columns, self.url.dialect))
        schema, key = dict(spec.schema), spec.id_column
        try:
            reader = cx.read_sql(
                self._driver_url,
                sql,
                return_type="arrow_stream",
                batch_size=rows_per_read,
                **self._options,
            )
        except BaseException as exc:
            if not _driver_failure(exc):
                raise
            raise SourceError(f"cannot read source {self.url}: {first_line(exc)}") from None
        pending = iter(run)
        batch: BatchRange | None = next(pending)
        held: list[pl.DataFrame] = []
        try:
            for record_batch in _record_batches(reader, self.url):
                chunk: pl.DataFrame = pl.from_arrow(record_batch)  # type: ignore[assignment]
                if chunk.is_empty():
                    continue
                chunk = _unmarked(chunk, spec, self.url.dialect)
                held.append(chunk)
                while batch is not None and chunk[key][-1] > batch.end_id:
                    rows = pl.concat(held, rechunk=False)
                    cut = rows[key].search_sorted(batch.end_id, side="right")
                    yield batch, rows.slice(0, cut).rechunk().cast(schema, strict=False)  # type: ignore[arg-type]
                    held = [rows.slice(cut)]
                    batch = next(pending, None)
            while batch is not None:  # the stream ended: what is held is the current batch's
                rows = pl.concat(held) if held else pl.DataFrame(schema=schema)
                yield batch, rows.cast(schema, strict=False)  # type: ignore[arg-type]
                held = []
                batch = next(pending, None)
        finally:
            reader.close()


def _cut(
    pages: Iterable[pl.DataFrame], columns: tuple[str, ...], size: int
) -> list[tuple[Key, Key, int]]:
    """(first key, last key, rows) per batch, from a table's distinct keys and their row
    counts in order (``_etl_rows``): each batch ends at the first key where its rows reach
    ``size``, so a key's rows are never split. Positions only: no key is compared here."""
    closed: list[tuple[Key, Key, int]] = []
    start: Key | None = None
    filled = 0
    for page in pages:
        keys, upto = page.select(columns), page["_etl_rows"].cum_sum()  # rows through each key
        taken, i = 0, 0  # rows of this page before key i
        while i < page.height:
            if start is None:
                start = keys.row(i)
            j = upto.search_sorted(taken + size - filled, side="left")
            if j >= page.height:  # the page ends before the batch fills
                filled += int(upto[-1]) - taken
                break
            closed.append((start, keys.row(j), filled + int(upto[j]) - taken))
            start, filled, taken, i = None, 0, int(upto[j]), j + 1
        last = keys.row(page.height - 1)
    if start is not None:
        closed.append((start, last, filled))
    return closed


def _record_batches(reader: Any, url: DatabaseUrl) -> Iterator[Any]:
    """The record batches of a connectorx stream; a failure mid-stream is a SourceError."""
    iterator = iter(reader)
    while True:
        try:
            record_batch = next(iterator)
        except StopIteration:
            return
        except BaseException as exc:
            if not _driver_failure(exc):
                raise
            raise SourceError(f"cannot read source {url}: {first_line(exc)}") from None
        yield record_batch


def _driver_failure(exc: BaseException) -> bool:
    """Whether connectorx failed: an error, or a panic of its Rust code (pyo3 raises those as
    a PanicException, a BaseException: a MySQL zero date read as a date is one)."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"
