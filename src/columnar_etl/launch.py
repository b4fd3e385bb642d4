"""The ``etl`` entry point: Ctrl-C while the CLI's modules import (polars, pyarrow, the
drivers: most of a second) is one line and exit 130, not a traceback from inside an import;
and once the command is over, the process ends without unloading them one by one."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading

__all__ = ["main"]

#: 128 + SIGINT, as a shell reports it; the CLI exits so after Ctrl-C too.
EXIT_INTERRUPTED = 130


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
    stream and log is flushed first."""
    import logging

    atexit._run_exitfuncs()  # what the interpreter runs before its teardown
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        # A reader that went away, a closed stream: nothing more to say to them.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
