"""A ``.env`` file in the working directory: the reference's ``cp migration.env .env``.

Its ``NAME=VALUE`` lines fill in the environment variables the process was not given (the
real environment wins), before the CLI reads its options from them, so every variable an
option names (``DATABASE_URL``, ``MIGRATION_BATCH_SIZE``, ``ENABLE_PROGRESS_TRACKING``...)
may come from it. Read at the CLI edge only; the library never reads the environment.

The format is python-dotenv's common subset: blank lines and ``#`` comments, an optional
``export``, values bare (a `` #`` after whitespace starts a comment), in single quotes (taken
as written) or in double quotes (``\\"``, ``\\\\`` and ``\\n`` escapes), each on one line. A
line that is none of these stops the command naming the file and the line, never its text,
which may hold a password.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from columnar_etl.errors import ConfigError

__all__ = ["ENV_FILE", "load_env_file", "parse_env"]

#: The file read, relative to the working directory.
ENV_FILE = Path(".env")

_ENTRY = re.compile(r"(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.*)")
_BARE_COMMENT = re.compile(r"\s+#.*$")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n"}
_DOUBLE_QUOTED = re.compile(r'"(?P<body>(?:[^"\\]|\\.)*)"\s*(?:#.*)?')
_SINGLE_QUOTED = re.compile(r"'(?P<body>[^']*)'\s*(?:#.*)?")


def _value(text: str) -> str | None:
    """The value written as ``text`` (after the ``=``); None when its quotes do not close."""
    if text.startswith('"'):
        found = _DOUBLE_QUOTED.fullmatch(text)
        if found is None:
            return None
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m[1], m[0]), found["body"])
    if text.startswith("'"):
        found = _SINGLE_QUOTED.fullmatch(text)
        return None if found is None else found["body"]
    return _BARE_COMMENT.sub("", text).strip()


def parse_env(text: str, where: str = str(ENV_FILE)) -> Iterator[tuple[str, str]]:
    """The ``(name, value)`` entries of an env file's ``text``, in order; a ConfigError
    naming ``where`` and the line for a line that is not one."""
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        entry = _ENTRY.fullmatch(stripped)
        if entry is None:
            raise ConfigError(f"{where} line {number}: expected NAME=VALUE")
        value = _value(entry["value"])
        if value is None:
            raise ConfigError(
                f"{where} line {number}: {entry['name']}'s value opens a quote it does not "
                "close (a value is on one line)"
            )
        yield entry["name"], value


def load_env_file(environ: MutableMapping[str, str], path: Path = ENV_FILE) -> dict[str, str]:
    """Set in ``environ`` every entry of the env file at ``path`` whose name it lacks (a
    variable set in the real environment, even empty, wins); the entries set. No file,
    nothing set."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:  # a folder, no permission, not UTF-8
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise ConfigError(f"cannot read {path}: {reason}") from None
    added = {name: value for name, value in parse_env(text, str(path)) if name not in environ}
    environ.update(added)
    return added
