"""The target database through ADBC: one connection, explicit transactions, Arrow in and out.

What differs between PostgreSQL and SQLite (placeholders, JSON and timestamp writes, catalog
queries, locks, what an error means) is asked of the target's :class:`Dialect`; everything
above this module is dialect-free.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.resources
import os
import re
import time
import zlib
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

import polars as pl
import pyarrow as pa

from columnar_etl import ddl
from columnar_etl.config import DEFAULT_LOCK_TIMEOUT, DatabaseUrl, RunConfig, first_line
from columnar_etl.declare import Entity
from columnar_etl.dialects import Dialect, Fault
from columnar_etl.errors import RunLockedError, TargetError
from columnar_etl.shape import TableShape, differences

__all__ = ["LEDGER_TABLES", "Fault", "Target"]


#: The ledger's tables: every run's schema step creates them, whatever entities it runs.
LEDGER_TABLES = ("migration_jobs", "migration_batches", "migration_errors")


#: PostgreSQL advisory lock key serializing schema steps (run locks are crc32 of the entity).
_SCHEMA_LOCK = zlib.crc32(b"columnar_etl:schema")

#: Sessions holding another session's deferral lock on a table (see Target.hold_deferred).
_DEFERRED_ELSEWHERE = (
    "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND classid = 0 AND objsubid = 1 AND objid::text::bigint = ? AND pid <> pg_backend_pid()"
)
#: Our DDL's ``CREATE [UNIQUE] INDEX IF NOT EXISTS name ON table``: (UNIQUE, name, table).
_CREATE_INDEX = re.compile(r"CREATE (UNIQUE )?INDEX IF NOT EXISTS (\w+) ON (\w+)")
#: Our DDL's ``ALTER TABLE table ADD COLUMN [IF NOT EXISTS] column``: (table, column).
_ADD_COLUMN = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (?:IF NOT EXISTS )?(\w+)")
#: The table one of our DDL statements creates or indexes (none: the DO block).
_DDL_TABLE = re.compile(
    r"CREATE (?:UNIQUE )?(?:INDEX IF NOT EXISTS \w+ ON|TABLE IF NOT EXISTS) (\w+)"
)


def _deferred_key(table: str) -> int:
    return zlib.crc32(f"columnar_etl:deferred:{table}".encode())


def _fetch(conn: Any, sql: str, params: Sequence[Any]) -> pl.DataFrame:
    """A query's rows on a bare ADBC connection (SQLite placeholders)."""
    with conn.cursor() as cur:
        cur.execute(sql, list(params))
        return _frame(cur.fetch_arrow_table())


def _frame(rows: pa.Table) -> pl.DataFrame:
    """``rows`` as a frame, a column of an Arrow extension type as its storage: the
    PostgreSQL driver gives numeric (an unsigned id's numeric(20) too) and json so, as their
    exact text, which Polars can neither cast nor compare."""
    columns = [
        pa.chunked_array([c.storage for c in column.chunks], type=column.type.storage_type)
        if isinstance(column.type, pa.BaseExtensionType)
        else column
        for column in rows.columns
    ]
    return pl.from_arrow(pa.Table.from_arrays(columns, names=rows.column_names))  # type: ignore[return-value]


def _shape(
    table: str, dialect: Dialect, query: Callable[[str, Sequence[Any]], pl.DataFrame]
) -> TableShape:
    """``table``'s shape from the catalog ``query`` reads (its placeholders all name it)."""

    def ask(sql: str) -> pl.DataFrame:
        return query(sql, (table,) * sql.count("?"))

    return TableShape.from_catalog(ask(dialect.catalog.columns), ask(dialect.catalog.keys))


def _statements(ddl: str) -> Iterator[str]:
    """The statements of one of our DDL files: split at semicolons outside ``$$`` bodies, with
    whole-line comments (which may hold semicolons) and empty pieces left out. Not a SQL
    parser: our files keep semicolons out of string literals and trailing comments, and use
    no other dollar tags."""
    code = "\n".join(line for line in ddl.splitlines() if not line.lstrip().startswith("--"))
    statement = ""
    for index, part in enumerate(code.split("$$")):
        if index % 2:  # a $$ body, kept whole
            statement += f"$${part}$$"
            continue
        *ends, rest = part.split(";")
        for end in ends:
            if (statement + end).strip():
                yield (statement + end).strip()
            statement = ""
        statement += rest
    if statement.strip():
        yield statement.strip()


class Target:
    """An open connection to the target database (ADBC, autocommit off)."""

    def __init__(
        self,
        url: DatabaseUrl,
        *,
        create: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        entities: Sequence[Entity] | None = None,
    ) -> None:
        """Connect; with ``create=False`` a missing SQLite file is an error, not a new file.
        A statement gives up waiting for another session's lock after ``lock_timeout``
        seconds (0: PostgreSQL's own setting; SQLite waits as long as it may). ``entities``:
        the declarations of the tables it holds (default: the built-in example's)."""
        self.url = url
        self._entities = None if entities is None else tuple(entities)
        self.lock_timeout = lock_timeout
        self.dialect = url.dialect
        self.sql_dialect = url.sql_dialect
        if self.sql_dialect.file and url.path.is_dir():
            raise TargetError(f"target {url} is a directory, not a {self.sql_dialect.title} file")
        if self.sql_dialect.file and not create and not url.path.exists():
            raise TargetError(f"target {url} does not exist: nothing has been migrated there")
        self._lock_fd: int | None = None
        self._locked: str | None = None
        self._deferring: set[str] = set()
        self._relock = False
        self.conn = self._connect()

    @classmethod
    def for_run(cls, config: RunConfig) -> Target:
        """The target of a run: its lock timeout, its migration's declarations."""
        from columnar_etl.migration import load_migration

        entities = load_migration(config.migration).entities
        return cls(config.target, lock_timeout=config.lock_timeout, entities=entities)

    @property
    def entities(self) -> tuple[Entity, ...]:
        """The entities whose tables this target holds, as declared."""
        if self._entities is None:
            from columnar_etl.migration import load_migration  # the built-in example

            self._entities = load_migration().entities
        return self._entities

    def declared(self, table: str) -> Entity:
        """The entity whose target table is ``table``."""
        for entity in self.entities:
            if entity.target_table == table:
                return entity
        raise TargetError(f"no entity of the migration declares a table {table}")

    def _connect(self) -> Any:
        url = self.url
        try:
            if self.sql_dialect.file:
                url.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self.sql_dialect.connect(str(url.path) if self.sql_dialect.file else url.url)
        except Exception as exc:  # the drivers raise their own error classes
            raise TargetError(f"cannot connect to target {url}: {first_line(exc)}") from None
        with conn.cursor() as cur:
            # No statement_timeout: a statement that is not waiting is working (an index build
            # on millions of rows takes minutes), and no bound would be right for every table.
            for statement in self.sql_dialect.lock_settings(self.lock_timeout):
                cur.execute(statement)
        conn.commit()  # a SET rolled back with its transaction would be undone
        return conn

    def _reconnect(self, wait: float) -> Any:
        """A new connection, trying every second for up to ``wait`` seconds: a restarting
        server refuses connections for a few seconds, longer than a retry's backoff."""
        deadline = time.monotonic() + wait
        while True:
            try:
                return self._connect()
            except TargetError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))

    def ping(self) -> bool:
        """Whether the connection still works (call after a rollback)."""
        try:
            self.scalar("SELECT 1")
            self.rollback()
            return True
        except Exception:
            return False

    def revive(self, wait: float = 0.0) -> None:
        """After a failed batch: roll back, and reconnect if the connection died (a restarted
        server), trying for up to ``wait`` seconds; the run lock and deferral locks are taken
        again. Raises TargetError while the server is still down, RunLockedError or
        TargetError while the dead connection's server session still holds a lock; the next
        call tries again."""
        self.rollback()
        alive = self.ping()
        if alive and not self._relock:
            return
        if not alive:
            with contextlib.suppress(Exception):
                self.conn.close()
            self.conn = self._reconnect(wait)
            self._relock = True  # until every lock is back, even across failed attempts
        if self._locked is not None and self.sql_dialect.advisory_locks:
            self.lock_run(self._locked)
        for table in self._deferring:
            if not self.scalar("SELECT pg_try_advisory_lock(?)", (_deferred_key(table),)):
                raise TargetError(f"the lock on {table} is still held by the lost connection")
        self._relock = False

    def lock_run(self, entity: str) -> None:
        """Hold the run lock for ``entity`` until this connection closes, or refuse at once.

        PostgreSQL: a session advisory lock per entity. SQLite: ``flock`` on the database file
        (SQLite's own locks are fcntl locks and do not see it), one run at a time per file. Both
        die with the process, so a killed run never leaves a stale lock behind.
        """
        busy = f"another etl run of {entity} is already running against {self.url}"
        if self.sql_dialect.advisory_locks:
            key = zlib.crc32(f"columnar_etl:{entity}".encode())
            if not self.scalar("SELECT pg_try_advisory_lock(?)", (key,)):
                raise RunLockedError(busy)
            self._locked = entity
            return
        fd = os.open(self.url.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            title = self.sql_dialect.title
            raise RunLockedError(f"{busy} ({title} targets take one run at a time)") from None
        self._lock_fd = fd

    def hold_deferred(self, table: str) -> None:
        """Say, until :meth:`release_deferred` or this connection closes, that a job is loading
        ``table`` with its indexes, key and autovacuum deferred (PostgreSQL): other sessions'
        schema steps then leave them to the job, which restores them at its end. A killed
        job's session is gone, so the next schema step restores them."""
        if not self.sql_dialect.advisory_locks or table in self._deferring:
            return
        self.scalar("SELECT pg_advisory_lock(?)", (_deferred_key(table),))
        self._deferring.add(table)

    def release_deferred(self, table: str) -> None:
        """End :meth:`hold_deferred` for ``table`` (if the database refuses, the lock ends with
        this connection, at the end of the run)."""
        if table not in self._deferring:
            return
        try:
            self.scalar("SELECT pg_advisory_unlock(?)", (_deferred_key(table),))
        except Exception:  # the driver's own error classes
            self.rollback()
            return
        self._deferring.discard(table)

    def schema_turn(self) -> None:
        """Wait for other schema steps, and keep them waiting until this transaction ends
        (PostgreSQL): a job dropping what it defers must not interleave with one restoring.
        Call it first in a transaction: holding a table lock while waiting here deadlocked
        with a schema step that wanted that table."""
        if self.sql_dialect.advisory_locks:
            # Without our lock timeout: this waits only for another etl run's schema step,
            # which its own timeouts bound, and whose index builds may rightly take minutes.
            own = self.scalar("SELECT current_setting('lock_timeout')")
            self.execute("SELECT set_config('lock_timeout', '0', true)")
            self.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))
            self.execute("SELECT set_config('lock_timeout', ?, true)", (own,))

    def _deferred_elsewhere(self) -> list[str]:
        """The tables another session's job is loading with what it deferred (PostgreSQL)."""
        tables = self._restored_tables()
        return [t for t in tables if self.scalar(_DEFERRED_ELSEWHERE, (_deferred_key(t),))]

    # -- statements -----------------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return self.sql_dialect.placeholders(sql)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement inside the current transaction."""
        with self.conn.cursor() as cur:
            cur.execute(self._sql(sql), list(params) if params else None)
            if cur.description:
                # Rows left unread (``SELECT set_config(...)``) leave the PostgreSQL driver
                # taking the open transaction for none: its next statement would send BEGIN
                # again, a WARNING in the server's log.
                cur.fetch_arrow_table()

    def query(self, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
        """Run a query and return its rows as a Polars frame."""
        with self.conn.cursor() as cur:
            cur.execute(self._sql(sql), list(params) if params else None)
            return _frame(cur.fetch_arrow_table())

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The single value a query returns."""
        with self.conn.cursor() as cur:
            cur.execute(self._sql(sql), list(params) if params else None)
            row = cur.fetchone()
            return None if row is None else row[0]

    def ingest(
        self, table: str, frame: pl.DataFrame, *, temporary: bool = True, append: bool = False
    ) -> None:
        """Bulk-load ``frame`` (binary COPY on PG): replace a temporary table, or append."""
        if self.sql_dialect.text_temporals:
            frame = frame.with_columns(
                pl.col(pl.Datetime).dt.strftime("%Y-%m-%d %H:%M:%S"),
                pl.col(pl.Boolean).cast(pl.Int64),
            )
        # Arrow's string and binary views are Polars' own layout: no copy of the values, and
        # both ADBC drivers write them.
        data = frame.to_arrow(compat_level=pl.CompatLevel.newest())
        if append:
            self._ingest(table, data, mode="append")
        else:
            self._ingest(table, data, mode="replace", temporary=temporary)

    def _ingest(self, table: str, data: Any, **how: Any) -> None:
        """``adbc_ingest`` (``how``: its mode, temporary), then, where the driver leaves the
        end of the COPY unread (Dialect.unread_copy_end), a describe-only round trip that
        reads it, so that the next statement does not send BEGIN inside the transaction."""
        with self.conn.cursor() as cur:
            cur.adbc_ingest(table, data, **how)
            if self.sql_dialect.unread_copy_end:
                cur.adbc_execute_schema("SELECT 1")

    def has_table(self, name: str) -> bool:
        """Whether ``name`` exists (a table of ours, or the ledger before anything ran)."""
        return bool(self.scalar(self.sql_dialect.catalog.has_table, (name,)))

    def has_column(self, table: str, column: str) -> bool:
        """Whether ``table`` (one of ours) has ``column``."""
        return bool(self.scalar(self.sql_dialect.catalog.has_column, (table, column)))

    def append(self, table: str, frame: pl.DataFrame, *, json_columns: Sequence[str] = ()) -> None:
        """Bulk-append ``frame`` into the existing ``table`` (binary COPY on PG), by column name.

        JSON columns travel as text in Arrow's JSON extension type; the PostgreSQL driver reads
        the table's column types and writes each as it needs (jsonb or json, which the server
        parses or checks): no staging table, no per-row cast in SQL.
        """
        if not self.sql_dialect.json_arrow or not json_columns:
            self.ingest(table, frame, append=True)
            return
        import pyarrow as pa

        data, json_type = frame.to_arrow(), pa.json_(pa.large_string())
        for name in json_columns:
            index = data.schema.get_field_index(name)
            text = data.column(index).cast(pa.large_string())
            chunks = [pa.ExtensionArray.from_storage(json_type, c) for c in text.chunks]
            data = data.set_column(index, name, pa.chunked_array(chunks, json_type))
        self._ingest(table, data, mode="append")

    def is_empty(self, table: str) -> bool:
        """Whether ``table`` (one of ours) holds no row."""
        return self.scalar(f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} LIMIT 1) AS one") == 0

    def schema_indexes(self, table: str, *, unique: bool = False) -> list[str]:
        """The non-unique indexes the declaration of ``table`` gives it, and with ``unique``
        its unique ones too (``apply_schema`` creates whichever is missing)."""
        indexes = self.declared(table).table_indexes()
        return [index.name for index in indexes if unique or not index.unique]

    def free_text_indexes(self, table: str) -> set[str]:
        """Indexes of ``table`` over a text column that can hold any length (PostgreSQL: a btree
        entry has a size limit, so a long enough value is refused by the index); the record
        key's does not count, a source id the source itself keeps unique. None on SQLite, which
        has no such limit."""
        sql = self.sql_dialect.catalog.free_text_indexes
        if sql is None:
            return set()
        found = self.query(sql, (table, self.declared(table).record_key))
        return set(found["name"].to_list())

    def _restored_tables(self) -> list[str]:
        """The tables whose primary key and autovacuum the schema step brings back when
        missing or paused (PostgreSQL: every entity table, see Dialect.restore); none on SQLite,
        whose key is the rowid."""
        if self.sql_dialect.restore is None:
            return []
        return [entity.target_table for entity in self.entities]

    def schema_primary_key(self, table: str) -> str | None:
        """The primary key our DDL restores on ``table`` when it is missing, so a job may drop
        it while it loads; None where the DDL does not."""
        return f"{table}_pkey" if table in self._restored_tables() else None

    def pause_autovacuum(self, table: str) -> bool:
        """Turn autovacuum off for ``table`` if our DDL turns it back on (PostgreSQL);
        whether it did. ``apply_schema`` is what restores it."""
        if table not in self._restored_tables():
            return False
        self.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        return True

    def unique_index(self, table: str, column: str) -> str | None:
        """A valid, whole-table unique index on ``column`` alone, if ``table`` has one: while
        it exists the database itself guarantees that no two rows share the value."""
        found = self.query(self.sql_dialect.catalog.unique_index, (table, column))
        return str(found["name"][0]) if found.height else None

    def dependents(self, table: str) -> list[str]:
        """The columns (``table.column``) whose foreign keys point at ``table``: while they
        exist, its primary key and unique indexes cannot be dropped for a load."""
        return self.query(self.sql_dialect.catalog.dependents, (table,))["name"].to_list()

    def shape_differences(self, table: str) -> list[str]:
        """How the existing ``table`` differs from its declaration (our target DDL) in its
        columns, types, nullability or keys, in ways that matter (see
        :mod:`columnar_etl.shape`); empty when it can be loaded. Ends the open transaction.

        Both shapes are read from a catalog: the declared one from the table created by our
        own DDL where nothing else sees it, so each fact is spelled as the database spells
        the real table's, whatever synonyms the DDL uses."""
        self.rollback()
        try:
            declared = self._declared_shape(table)
            actual = _shape(table, self.sql_dialect, self.query)
        except Exception as exc:  # the drivers' own error classes (no TEMP privilege...)
            raise TargetError(
                f"cannot compare table {table} with its declaration: {first_line(exc)}"
            ) from None
        finally:
            self.rollback()
        return differences(declared, actual)

    def _declared_shape(self, table: str) -> TableShape:
        """``table`` as our DDL declares it: PostgreSQL creates it in this session's temporary
        schema, first on the search path, in a transaction that is rolled back; SQLite in a
        database in memory. The real table is not touched, nor locked."""
        statements = ddl.table_statements(self.declared(table), self.sql_dialect)
        scratch_schema = self.sql_dialect.scratch_schema
        if scratch_schema is not None:
            try:
                self.execute(scratch_schema)
                for statement in statements:
                    self.execute(statement)
                return _shape(table, self.sql_dialect, self.query)
            finally:
                self.rollback()
        with contextlib.closing(self.sql_dialect.connect(":memory:")) as scratch:
            for statement in statements:
                with scratch.cursor() as cur:
                    cur.execute(statement)
            return _shape(table, self.sql_dialect, lambda sql, params: _fetch(scratch, sql, params))

    def json(self, column: str) -> str:
        """SQL turning a text column into the dialect's JSON type."""
        return self.sql_dialect.json(column)

    def fault(self, exc: BaseException) -> Fault:
        """What ``exc``, raised by a statement of a batch, says about the batch (Fault)."""
        return self.sql_dialect.fault(exc)

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        """End the transaction, undoing it, and make sure the next statement opens a new one.

        SQLite rolls a transaction back by itself after some errors (a full disk, an I/O
        error), and the driver, which does not know, then runs each statement on its own,
        committed at once: its ROLLBACK fails ("no transaction is active"), and the
        connection is replaced. A PostgreSQL connection whose rollback fails is broken;
        ``ping`` finds it and ``revive`` replaces it.
        """
        try:
            self.conn.rollback()
        except Exception:  # the drivers' own error classes
            if self.sql_dialect.resets_after_error:
                with contextlib.suppress(Exception):
                    self.conn.close()
                self.conn = self._connect()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema ---------------------------------------------------------------------------
    def _ddl(self, name: str) -> str:
        folder = self.sql_dialect.schema_folder
        ddl = importlib.resources.files("columnar_etl.schemas").joinpath(folder, f"{name}.sql")
        return ddl.read_text(encoding="utf-8")

    def _column_exists(self, statement: str) -> bool:
        """Whether ``statement`` adds a column the table already has (a ledger upgraded
        before)."""
        added = _ADD_COLUMN.match(statement)
        return added is not None and self.has_column(added[1], added[2])

    def _ddl_statements(self, name: str) -> list[str]:
        """``schemas/<dialect>/<name>.sql``; for the target, the ledger's, then each entity's
        table rendered from its declaration and (PostgreSQL) the restore of what a fast job
        set aside (Dialect.restore)."""
        statements = list(_statements(self._ddl(name)))
        if name != "target":
            return statements
        for entity in self.entities:
            statements += ddl.table_statements(entity, self.sql_dialect)
        # [table, its primary key]: declared identifiers, checked when declared.
        restored = ", ".join(
            f"['{table}', '{self.declared(table).primary_key}']"
            for table in self._restored_tables()
        )
        if restored and self.sql_dialect.restore is not None:
            statements.append(self.sql_dialect.restore.format(tables=restored))
        return statements

    def apply_schema(self, name: str = "target", tables: Collection[str] | None = None) -> None:
        """Apply ``schemas/<dialect>/<name>.sql`` and, for the target, the entity tables as
        declared (idempotent ``IF NOT EXISTS`` DDL).

        With ``tables``, only to those tables and the ledger's: a run touches no table it does
        not load, so another session's lock on one cannot hold the run up, nor can the run's
        wait hold that session's queue up. An index that exists is not asked for again:
        ``CREATE INDEX IF NOT EXISTS`` locks its table against writes before it looks.

        What a running job deferred on its table (see :meth:`hold_deferred`) is left to it:
        rebuilt here, its indexes would slow the rest of its load, and the build would wait
        for its batches and hold them up.
        """
        wanted = None if tables is None else {*tables, *LEDGER_TABLES}
        try:
            # One schema step at a time: two at once deadlocked upgrading their locks on a
            # table whose index or key they both found missing.
            self.schema_turn()
            busy = self._deferred_elsewhere()
            if self.sql_dialect.restore is not None:
                # Read by the DDL's DO block, which restores keys and autovacuum.
                self.scalar(
                    "SELECT set_config('columnar_etl.busy_tables', ?, true)", (",".join(busy),)
                )
                walked = self._restored_tables() if wanted is None else sorted(wanted)
                self.scalar(
                    "SELECT set_config('columnar_etl.schema_tables', ?, true)", (",".join(walked),)
                )
            for statement in self._schema_statements(name, wanted, busy):
                if not self._column_exists(statement):
                    self.execute(statement)
            self.commit()
        except Exception as exc:
            self.rollback()
            raise TargetError(
                f"cannot create the {name} schema in {self.url}: {first_line(exc)}"
            ) from None

    def _schema_statements(
        self, name: str, tables: set[str] | None, busy: list[str]
    ) -> Iterator[str]:
        """The statements of the DDL that :meth:`apply_schema` runs: those of ``tables`` (all
        when None), without the indexes of ``busy`` tables or the indexes that exist. Another
        table is created with its indexes where it is missing (a new table locks nobody out,
        and a target always has every table: verify reads them all)."""
        created: set[str] = set()
        for statement in self._ddl_statements(name):
            table = _DDL_TABLE.match(statement)
            if tables is not None and table is not None and table[1] not in tables | created:
                if not statement.startswith("CREATE TABLE") or self.has_table(table[1]):
                    continue
                created.add(table[1])
            index = _CREATE_INDEX.match(statement)
            if index is None:
                yield statement
                continue
            exists = self.scalar(self.sql_dialect.catalog.has_index, (index[2],))
            if index[3] not in busy and not exists:
                yield statement

    def build_indexes(self, table: str, names: Collection[str], connections: int) -> None:
        """Build those of the indexes ``names`` of ``table`` (its primary key's among them,
        see :meth:`schema_primary_key`) that are missing, at once, each on a connection of
        its own, up to ``connections``: each build scans the whole table, and one after
        another they left the server's other cores idle. The primary key is built as the
        unique index :meth:`apply_schema` then makes the key (Dialect.key_index).

        Call it where :meth:`apply_schema` follows: with fewer than two to build, where the
        key cannot be built apart, or where one writer locks the whole database (SQLite), it
        builds nothing and leaves them all to it. Each build commits on its own; should one
        fail, the others are kept and it is a TargetError, and the next schema step builds
        what is still missing.
        """
        if not self.sql_dialect.concurrent_writers or connections < 2:
            return
        failed = f"cannot rebuild the indexes of {table}"
        try:
            statements = self._index_statements(table, names)
        except Exception as exc:  # the drivers' own error classes
            self.rollback()
            raise TargetError(f"{failed}: {first_line(exc)}") from None
        if len(statements) < 2:
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(connections, len(statements))) as pool:
            failures = [f for f in pool.map(self._build, statements) if f is not None]
        if failures:
            raise TargetError(f"{failed}: {failures[0]}")

    def _index_statements(self, table: str, names: Collection[str]) -> list[str]:
        """The DDL building the indexes ``names`` of ``table`` that are missing; empty unless
        each has one."""
        primary = self.schema_primary_key(table)
        statements = []
        for statement in self._schema_statements("target", {table}, []):
            index = _CREATE_INDEX.match(statement)
            if index is not None and index[3] == table and index[2] in names:
                statements.append(statement)
        if primary in names and not self.scalar(self.sql_dialect.catalog.has_index, (primary,)):
            if self.sql_dialect.key_index is None:
                return []
            column = self.declared(table).primary_key
            statements.append(
                self.sql_dialect.key_index.format(name=primary, table=table, column=column)
            )
        self.rollback()
        return statements

    def _build(self, statement: str) -> str | None:
        """Run ``statement`` on a connection of its own and commit it; why it failed, or
        None."""
        try:
            conn = self._connect()
        except TargetError as exc:
            return str(exc)
        try:
            with conn.cursor() as cur:
                for setting in self.sql_dialect.build_settings:
                    cur.execute(setting)
                cur.execute(statement)
            conn.commit()
            return None
        except Exception as exc:  # the drivers' own error classes
            return first_line(exc)
        finally:
            with contextlib.suppress(Exception):
                conn.close()
