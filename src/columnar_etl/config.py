"""Run configuration: frozen dataclasses built once at the CLI edge, and URL handling."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

from columnar_etl.dialects import DIALECTS, Dialect
from columnar_etl.errors import ConfigError, TargetError
from columnar_etl.executors import EXECUTORS

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_WORKERS",
    "MAX_BATCH_SIZE",
    "MAX_WORKERS",
    "DatabaseUrl",
    "RunConfig",
    "first_line",
    "hide_known_secrets",
    "one_line",
    "redact",
    "source_zone",
]

#: From the tuning sweeps (benchmarks/tune.py and peers.py, 2M orders into PostgreSQL on 2
#: cores; docs/benchmarks.md "Tuning"): 25k and 50k batches take the same time, 25k a fifth
#: less memory; 100k went past the 768 MiB budget; 4 workers gained nothing.
DEFAULT_BATCH_SIZE = 25_000
DEFAULT_WORKERS = 3
DEFAULT_TARGET_FILE = "columnar_etl_target.db"
#: Memory grows with workers x batch_size; more workers than this only thrash 2-64 cores.
MAX_WORKERS = 64
#: Batches of 250k orders already took 1-2.3 GiB (benchmarks/tune.py); a bigger number than
#: this is a typo, and past int64 the plan query failed with a driver's type error.
MAX_BATCH_SIZE = 10_000_000
#: Seconds a statement waits for a lock another session holds before it gives up (and the run
#: retries, then stops naming the holder): long enough for an application's short
#: transactions, short enough that a forgotten open one is reported rather than waited on.
DEFAULT_LOCK_TIMEOUT = 10.0
#: A day: a larger --lock-timeout is a typo (0 turns the timeout off).
MAX_LOCK_TIMEOUT = 86_400.0

# The secret runs to the last '@' of its word: a raw '@' in a password must not show its tail.
_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<secret>\S*)@")
# libpq also takes the password as a query parameter: ...?password=secret. A ':' that ends the
# word is the message's own punctuation ("...?password=***: IO: ..."), not the secret's.
_PASSWORD_PARAM = re.compile(r"(?P<head>[?&]password=)[^&\s]*?(?=:?(?:[&\s]|$))", re.IGNORECASE)
_PARAM_VALUE = re.compile(r"(?:^|&)password=(?P<secret>[^&]*)", re.IGNORECASE)
#: Shorter passwords are not hidden wherever they occur: "etl", "pw1" or "100" would also
#: blank the command's name, ordinary words and counts, and are guessed in no time anyway.
MIN_SECRET = 4
#: Every password of a URL this process parsed, as written and percent-decoded, longest first:
#: redact() hides them wherever a driver's message quotes them. A tuple, replaced whole, so a
#: thread that redacts never sees it change under it.
_secrets: tuple[str, ...] = ()


def redact(text: str) -> str:
    """Replace the password of every URL in ``text`` with ``***``."""
    text = _PASSWORD.sub(lambda m: f"{m.group('head')}***@", text)
    return _PASSWORD_PARAM.sub(lambda m: f"{m.group('head')}***", text)


def hide_known_secrets(text: str) -> str:
    """:func:`redact`, and every password of a URL this process parsed hidden wherever it
    occurs: for a driver's words, which may quote a password outside any URL. Not for our
    own text (a stored URL, a message naming a table), where a password that happens to be a
    word ("orders") would blank that word."""
    for secret in _secrets:
        text = text.replace(secret, "***")
    return redact(text)


def _remember_secrets(url: str) -> None:
    """Add the passwords of ``url`` (user-info and query forms) to those redact() hides."""
    global _secrets
    try:
        parts = urlsplit(url)
    except ValueError:  # not one parse() passed: nothing to learn from it
        return
    user = unquote(parts.username or "")
    found = {parts.password or "", *(m["secret"] for m in _PARAM_VALUE.finditer(parts.query))}
    # Both forms: a driver may quote the password as written or as it decoded it. One equal to
    # the user name is shown with the user anyway, and hiding it would blank the user too.
    candidates = found | {unquote(s) for s in found}
    new = {s for s in candidates if len(s) >= MIN_SECRET and s != user} - set(_secrets)
    if new:
        _secrets = tuple(sorted({*_secrets, *new}, key=len, reverse=True))


def first_line(exc: BaseException, default: str | None = None) -> str:
    """The first line of an error's message (a driver's words: known passwords hidden too,
    see :func:`hide_known_secrets`); ``default`` (else the error's type name) when empty."""
    text = _QUOTED_QUERY.sub(r"\1: ", str(exc).strip(), count=1)
    lines = text.splitlines()
    line = lines[0] if lines else type(exc).__name__ if default is None else default
    return hide_known_secrets(line)


#: libpq's error through ADBC quotes the whole statement before the server's words, and a
#: statement of several lines left the first line without them.
_QUOTED_QUERY = re.compile(
    r"(Failed to execute query) '.*?': (?=(?:ERROR|FATAL|PANIC):)", re.DOTALL
)


def one_line(text: str) -> str:
    """``text`` redacted, with control characters (newlines from a hostile path) escaped."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), redact(text))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# A '%' that does not start a %XX escape: libpq refuses the URL and quotes the password.
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_RAW_DELIMITER = re.compile(r"[/?#]")


def _check_server(text: str, what: str) -> None:
    """Refuse a database server's URL (``postgresql://``) that Python and libpq would read
    differently, or that libpq would refuse quoting its password; the message never shows the
    password."""
    if any(c.isspace() for c in text):  # urlsplit drops tabs and newlines that libpq keeps
        raise ConfigError(f"{what} URL holds a space, tab or newline; percent-encode it (%20)")
    try:
        parts = urlsplit(text)
    except ValueError:  # its message may quote the user-info, password included
        raise ConfigError(
            f"{what} URL has a malformed host (an IPv6 address goes in [ ], both of them)"
        ) from None
    userinfo = parts.netloc.rpartition("@")[0]
    # Up to the last '@' of the whole URL: where a raw '/', '?' or '#' in the password moved
    # the rest of it out of the netloc (a '@' in a query value is rarer than that mistake).
    written = text.split("://", 1)[1].rpartition("@")[0]
    # A raw '@' splits the URL at its last '@' for Python and at its first for libpq; a '@' in
    # the path is one after a raw '/' in the password. Checked before any message shows the
    # URL: redact() finds the password by the '@' that ends it.
    if "@" in userinfo or _RAW_DELIMITER.search(written) or _BAD_PERCENT.search(userinfo):
        raise ConfigError(
            f"{what} URL: the user name or password holds a raw '@', '/', '?', '#' or '%'; "
            "percent-encode it ('@' as %40, '/' as %2F, '?' as %3F, '#' as %23, '%' as %25)"
        )
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(f"{what} URL has an invalid port: {redact(text)}")
    if not parts.hostname or not parts.path.strip("/"):
        raise ConfigError(
            f"{what} URL must look like {parts.scheme}://user:password@host:port/dbname, "
            f"got {redact(text)}"
        )


def _starts(dialects: Iterable[Dialect]) -> str:
    """``postgresql:// or sqlite:///``: how the URLs of ``dialects`` start."""
    return " or ".join(f"{d.schemes[0]}://{'/' if d.file else ''}" for d in dialects)


@dataclass(frozen=True)
class DatabaseUrl:
    """A checked URL of a database of :data:`DIALECTS` (``postgresql://``, ``sqlite:///PATH``,
    and, a source only, ``mysql://``); ``str()`` never shows a password."""

    url: str = field(repr=False)
    dialect: str
    """The name of its :class:`Dialect` (``postgresql``, ``sqlite``, ``mysql``)."""

    def __post_init__(self) -> None:
        if not self.sql_dialect.file:
            _remember_secrets(self.url)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled in another process (a Ray worker): its redact() must know the password too.
        for name, value in state.items():
            object.__setattr__(self, name, value)
        self.__post_init__()

    @property
    def sql_dialect(self) -> Dialect:
        """What this database says and does differently (dialects.py)."""
        return DIALECTS[self.dialect]

    @classmethod
    def parse(cls, url: str, *, what: str, source: bool = False) -> DatabaseUrl:
        """Check ``url`` and tell the user, by ``what`` it is for, when it is malformed.
        Only a ``source`` may be a database the tool never writes to (MySQL/MariaDB)."""
        text = (url or "").strip()
        scheme, sep, rest = text.partition("://")
        found = [d for d in DIALECTS.values() if sep and scheme.lower() in d.schemes]
        if found and not (source or found[0].target):
            targets = _starts(d for d in DIALECTS.values() if d.target)
            raise ConfigError(
                f"{what} URL: {found[0].title} can only be a source; write to {targets}"
            )
        if found and found[0].file and len(rest) > 1:
            # connectorx reads sqlite://PATH; we always hand it an absolute path. sqlite:////x
            # (SQLAlchemy's spelling) is /x too: POSIX keeps a leading "//" apart otherwise.
            path = Path("/" + rest.lstrip("/") if rest.startswith("//") else rest)
            path = path.expanduser().absolute()
            return cls(f"{found[0].schemes[0]}://{path}", found[0].name)
        if found and not found[0].file:
            text = f"{found[0].schemes[0]}://{rest}"
            _check_server(text, what)
            return cls(text, found[0].name)
        # Only the scheme: the rest may hold a password in a form no pattern recognises.
        shown = f"{scheme}://..." if sep else "a value with '@'" if "@" in text else repr(text)
        taken = [d for d in DIALECTS.values() if source or d.target]
        raise ConfigError(f"{what} URL must start with {_starts(taken)}, got {shown}")

    def driver_url(self, lock_timeout: float) -> str:
        """The URL for a source's driver (libpq, connectorx), asking the server for its
        session settings (``Dialect.text_settings``) and to give up waiting for a lock after
        ``lock_timeout`` seconds (0: the server's own setting applies): the ``options``
        startup parameter, added to any the URL has, since it works before any statement,
        where ``SET`` cannot be sent (connectorx). Unchanged where a URL cannot say it
        (SQLite)."""
        dialect = self.sql_dialect
        wanted = [dialect.text_settings] if dialect.text_settings else []
        if dialect.startup_lock_timeout is not None and lock_timeout:
            wanted.append(dialect.startup_lock_timeout.format(ms=round(lock_timeout * 1000)))
        if not wanted:
            return self.url
        option = "%20".join(wanted)
        base, _, query = self.url.partition("?")
        params = [p for p in query.split("&") if p]
        given = [i for i, p in enumerate(params) if p.lower().startswith("options=")]
        if given:  # a later -c wins over an earlier one of the same setting
            params[given[0]] += f"%20{option}"
        else:
            params.append(f"options={option}")
        return f"{base}?{'&'.join(params)}"

    @property
    def path(self) -> Path:
        """The file of an SQLite URL."""
        return Path(self.url.partition("://")[2])

    def __str__(self) -> str:
        return redact(self.url)


def source_zone(name: str) -> tzinfo:
    """The time zone called ``name`` (IANA: ``UTC``, ``America/Los_Angeles``); a ConfigError
    when there is none of that name."""
    if name == "UTC":  # the default works without a time zone database on the machine
        return UTC
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, TypeError, OSError):  # unknown, malformed, or not a zone file
        raise ConfigError(
            "source-timezone must be an IANA time zone name such as UTC or "
            f"America/Los_Angeles, got {name!r}"
        ) from None


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunConfig:
    """Everything one ``etl run`` needs; library code never reads the environment."""

    source: DatabaseUrl
    target: DatabaseUrl
    batch_size: int = DEFAULT_BATCH_SIZE
    """Source rows per batch (and per target transaction); more where an id repeats."""
    workers: int = DEFAULT_WORKERS
    """Batches being extracted and transformed at once."""
    max_retries: int = 3
    """Retries of a failed batch before it is marked failed."""
    retry_backoff: float = 0.5
    """Seconds before the first retry; doubles each time."""
    on_conflict: Literal["skip", "update"] = "skip"
    """What to do with a row whose key an earlier job already loaded."""
    fresh: bool = False
    """Start a new job even when the last one can be resumed."""
    dry_run: bool = False
    """Extract, transform and validate only; write nothing."""
    as_of: datetime = field(default_factory=_utc_now)
    """The job's clock, for rules such as "created_at cannot be in the future": an instant,
    kept in UTC. A naive value is read as wall-clock time in ``source_timezone`` (so a job an
    older version stored, with a naive local clock and no zone, keeps the verdicts it had)."""
    source_timezone: str = "UTC"
    """IANA time zone the legacy timestamps, which hold none, were written in."""
    executor: Literal["local", "ray"] = "local"
    """Where batches run: threads of this process, or Ray tasks (``columnar-etl[ray]``)."""
    ray_address: str | None = None
    """Ray cluster to join (``ray://head:10001``, ``auto``); None starts a local instance."""
    migration: str | None = None
    """The user's migration: a Python file, a folder or a module (migration.load_migration);
    None runs the built-in example. Ray workers load it by the same name."""
    fast_path: bool = True
    """Allow the fast path on an empty table (load.loading); ``--no-fast-path`` turns it off."""
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    """Seconds any statement waits for a lock held by another session (0: no limit); each
    step then retries ``max_retries`` times with backoff before the run stops."""

    def __post_init__(self) -> None:
        for name in ("batch_size", "workers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{name.replace('_', '-')} must be a positive integer, got {value!r}"
                )
        if self.batch_size > MAX_BATCH_SIZE:
            raise ConfigError(
                f"batch-size must be at most {MAX_BATCH_SIZE:,}, got {self.batch_size:,}"
            )
        if self.workers > MAX_WORKERS:
            raise ConfigError(f"workers must be at most {MAX_WORKERS}, got {self.workers}")
        if not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ConfigError(f"max-retries must be 0 or more, got {self.max_retries!r}")
        if self.on_conflict not in ("skip", "update"):
            raise ConfigError(f"on-conflict must be skip or update, got {self.on_conflict!r}")
        timeout = self.lock_timeout
        if not isinstance(timeout, int | float) or not 0 <= timeout <= MAX_LOCK_TIMEOUT:
            raise ConfigError(
                f"lock-timeout must be 0 (no limit) to {MAX_LOCK_TIMEOUT:,.0f} seconds, "
                f"got {timeout!r}"
            )
        if self.executor not in EXECUTORS:
            names = " or ".join(EXECUTORS)
            raise ConfigError(f"executor must be {names}, got {self.executor!r}")
        zone = source_zone(self.source_timezone)
        as_of = (
            self.as_of if self.as_of.utcoffset() is not None else self.as_of.replace(tzinfo=zone)
        )
        object.__setattr__(self, "as_of", as_of.astimezone(UTC))

    @property
    def source_as_of(self) -> datetime:
        """``as_of`` as the wall-clock time of ``source_timezone``: naive, like the legacy
        timestamps the rules compare it with (those are stored as they are, never shifted)."""
        return self.as_of.astimezone(source_zone(self.source_timezone)).replace(tzinfo=None)

    def with_clock_of(self, stored: dict[str, Any]) -> RunConfig:
        """This configuration with the clock and source time zone of ``stored`` (a job's
        :meth:`describe`): every batch of a job is judged at the same instant, however late it
        is resumed. A job stored without a zone (an older version) is read as UTC, which with
        its naive ``as_of`` gives the verdicts it had."""
        zone = stored.get("source_timezone", "UTC")
        as_of = self.as_of
        if "as_of" in stored:
            try:
                as_of = datetime.fromisoformat(stored["as_of"])
            except (TypeError, ValueError):
                raise TargetError(
                    f"a job's stored as_of is not a time: {stored['as_of']!r}; "
                    "--fresh starts a new job"
                ) from None
        return replace(self, as_of=as_of, source_timezone=zone)

    def describe(self) -> dict[str, Any]:
        """The configuration as stored in the ledger: URLs redacted."""
        data = asdict(self)
        data["source"], data["target"] = str(self.source), str(self.target)
        data["ray_address"] = redact(self.ray_address) if self.ray_address else None
        data["as_of"] = self.as_of.isoformat()
        return data
