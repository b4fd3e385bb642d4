"""The ``etl`` entry point: Ctrl-C while the CLI's modules import (polars, pyarrow, the
drivers: most of a second) is one line and exit 130, not a traceback from inside an import;
and once the command is over, the process ends without unloading them one by one."""

from __future__ import annotations

import atexit
import os
import sys
import threading

__all__ = ["main"]

#: 128 + SIGINT, as a shell reports it; the CLI exits so after Ctrl-C too.
EXIT_INTERRUPTED = 130
#: Python's exit code when it cannot flush standard output or error at exit.
_UNFLUSHED = 120


def main() -> None:
    """Import the CLI and run it; nothing heavy is imported before the guard is in place."""
    try:
        from columnar_etl.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    try:
        cli_main()
    except SystemExit as exc:
        if isinstance(exc.code, int) and threading.active_count() == 1:
            _end(exc.code)
        raise


def _end(code: int) -> None:
    """Exit with ``code`` as Python would, minus its teardown: freeing Polars, pandera, numpy
    and the drivers module by module took 0.15-0.25 s of every command. Only once no other
    thread runs; the exit handlers still run (a Ray driver's shutdown among them) and every
    stream and log is flushed first. A stream that cannot be flushed (a full disk, a reader
    gone) makes the exit code 120, as Python's own exit does."""
    import logging

    atexit._run_exitfuncs()  # what the interpreter runs before its teardown
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        if stream is None or stream.closed:
            continue
        try:
            stream.flush()
        except OSError:
            code = _UNFLUSHED
    os._exit(code)
