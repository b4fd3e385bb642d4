"""How the ``etl`` entry point ends its process (columnar_etl.launch)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# What the end of a command leaves: output still buffered, an exit handler registered.
_COMMAND = """
import atexit, sys
from columnar_etl.launch import _end
atexit.register(lambda: sys.stdout.write("exit handler ran\\n"))
sys.stdout.write("x" * int(sys.argv[2]) + "\\n")
_end(int(sys.argv[1]))
"""


def _run(code: int, stdout: object, size: int = 100_000) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return subprocess.run(
        [sys.executable, "-c", _COMMAND, str(code), str(size)], stdout=stdout, env=env, timeout=60
    )


@pytest.mark.parametrize("code", [0, 3])
def test_the_output_and_the_exit_handlers_are_all_there_and_the_code_kept(
    tmp_path: Path, code: int
) -> None:
    out = tmp_path / "out.txt"
    with out.open("wb") as stdout:
        assert _run(code, stdout).returncode == code
    assert out.read_text() == "x" * 100_000 + "\nexit handler ran\n"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_output_that_cannot_be_written_is_exit_120_as_python_has_it() -> None:
    with open("/dev/full", "wb") as full:
        # Less than a buffer's worth: only the flush at the end finds the disk full.
        assert _run(0, full, size=100).returncode == 120
