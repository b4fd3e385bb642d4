"""Waiting for locks other sessions hold: bounded, retried with backoff, said out loud.

Every connection gives up waiting for a lock after ``--lock-timeout`` (Target, Source). A step
of a run that gave up is retried after a pause, with the progress display saying what it waits
for; after the last try the run stops with one line naming the table and the session holding
it (pid, lock mode, user, application, state; never its query text, which may hold secrets).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import polars as pl

from columnar_etl.config import RunConfig
from columnar_etl.declare import Entity
from columnar_etl.errors import LockTimeoutError, SourceError
from columnar_etl.extract import Source
from columnar_etl.interrupt import Stop
from columnar_etl.target import LEDGER_TABLES, Target

__all__ = ["LockWaits", "is_lock_timeout"]

T = TypeVar("T")

#: PostgreSQL's lock_not_available: a statement's lock_timeout expired.
_LOCK_NOT_AVAILABLE = "55P03"
#: How the drivers say it where they give no SQLSTATE: connectorx (PostgreSQL's words) and
#: SQLite (SQLITE_BUSY / SQLITE_LOCKED after busy_timeout).
_WORDS = ("due to lock timeout", "database is locked", "database table is locked")

#: Holders named in one line; the rest are counted.
_SHOWN = 3


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it (our errors re-raise drivers' ``from None``: the context)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_lock_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` is a database giving up waiting for a lock (or caused by one)."""
    for error in _chain(exc):
        if isinstance(error, LockTimeoutError):
            return True
        if getattr(error, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            return True
        if any(word in str(error).lower() for word in _WORDS):
            return True
    return False


def _holders_sql(sql: str, tables: Sequence[str]) -> str:
    return sql.format(tables=", ".join("'" + t.replace("'", "''") + "'" for t in tables))


def _describe(holders: pl.DataFrame) -> str:
    """``products held by pid 4242 (RowExclusiveLock; user app, application 'psql', idle in
    transaction for 35 s)``, one clause per holder shown."""
    parts = []
    for row in holders.head(_SHOWN).iter_rows(named=True):
        facts = [f"user {row['user']}" if row["user"] else "", _application(row["application"])]
        if row["state"]:
            since = f" for {row['seconds']} s" if row["seconds"] is not None else ""
            facts.append(f"{row['state']}{since}")
        about = "; ".join([row["mode"], ", ".join(f for f in facts if f)]).rstrip("; ")
        parts.append(f"{row['table']} held by pid {row['pid']} ({about})")
    more = f" and {holders.height - _SHOWN} more" if holders.height > _SHOWN else ""
    return "; ".join(parts) + more


def _rolled_back(target: Target, result: T) -> T:
    """``result``, with the transaction that read it ended (a lookup holds no lock open)."""
    target.rollback()
    return result


def _application(name: str | None) -> str:
    return f"application {name!r}" if name else ""


@dataclass(frozen=True)
class LockWaits:
    """How one entity's run waits for locks: in ``source`` (its table) or ``target`` (the
    entity's table and the ledger's); ``notify`` shows what it waits for, ``stop`` (Ctrl-C)
    ends the wait."""

    entity: Entity
    source: Source
    config: RunConfig
    notify: Callable[[str], None]
    stop: Stop | None = None
    target: Target | None = None

    def patiently(self, step: Callable[[], T]) -> T:
        """``step`` (one transaction at most), tried again after a pause while a lock keeps
        it waiting; LockTimeoutError after ``max_retries`` more tries."""
        tries = self.config.max_retries + 1
        for attempt in range(tries):
            try:
                return step()
            except Exception as exc:
                if not is_lock_timeout(exc):
                    raise
                if self.target is not None:
                    self.target.rollback()
                if attempt + 1 == tries:
                    raise self.gave_up(exc, tries) from None
                pause = self.config.retry_backoff * 2**attempt
                self.notify(
                    f"waiting for a lock on {self.holders(exc)}; "
                    f"try {attempt + 2} of {tries} in {pause:g} s"
                )
                self._sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    def _sleep(self, seconds: float) -> None:
        if self.stop is None:
            time.sleep(seconds)
            return
        self.stop.wait(seconds)
        self.stop.check()

    def gave_up(self, exc: BaseException, tries: int) -> LockTimeoutError:
        """The one line a run stops with when ``exc``, a lock timeout, came on every try."""
        where = "source" if self._in_source(exc) else "target"
        timeout = f"--lock-timeout {self.config.lock_timeout:g} s"
        return LockTimeoutError(
            f"{self.entity.name}: gave up waiting for a lock in the {where} after {tries} "
            f"tries of {timeout}: {self.holders(exc)}; committed work is kept, run again "
            "once it is released"
        )

    def holders(self, exc: BaseException) -> str:
        """What holds the lock ``exc`` gave up on, as far as the database tells."""
        if self._in_source(exc):
            table, url = self.entity.source.table, self.source.url
            found = self.source.read
        elif self.target is not None:
            table, url, target = self.entity.target_table, self.target.url, self.target
            found = lambda sql: _rolled_back(target, target.query(sql))  # noqa: E731
        else:
            return "the target"
        dialect = url.sql_dialect
        if dialect.catalog.lock_holders is None:  # one writer at a time for the whole file
            return f"the {dialect.title} file {url.path} (another connection is writing to it)"
        tables = [table] if self._in_source(exc) else [table, *LEDGER_TABLES]
        with contextlib.suppress(Exception):  # the lookup is a courtesy, never the error
            holders = found(_holders_sql(dialect.catalog.lock_holders, tables))
            if holders.height:
                return _describe(holders)
        return f"{table}? (no other session holds a lock on it now: released, or not this table)"

    @staticmethod
    def _in_source(exc: BaseException) -> bool:
        return any(isinstance(error, SourceError) for error in _chain(exc))
