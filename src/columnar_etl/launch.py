"""The ``etl`` entry point: Ctrl-C while the CLI's modules import (polars, pyarrow, the
drivers: most of a second) is one line and exit 130, not a traceback from inside an import."""

from __future__ import annotations

import sys

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
    cli_main()
