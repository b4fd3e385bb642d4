"""The pure modules import no database driver and no CLI library (notebooks can use them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import columnar_etl

HEAVY = (
    "adbc_driver_manager",
    "adbc_driver_postgresql",
    "adbc_driver_sqlite",
    "connectorx",
    "typer",
    "rich",
)
PURE = ("columnar_etl.entities", "columnar_etl.expressions", "columnar_etl.contracts")


def test_pure_modules_import_no_driver_or_cli() -> None:
    code = (
        "import json, sys\n"
        f"for name in {PURE!r}:\n"
        "    __import__(name)\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
        f"print(json.dumps([m for m in {PURE!r} if m in sys.modules]))\n"
    )
    # Import the same columnar_etl this test process sees, however it was installed.
    package_root = str(Path(columnar_etl.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    heavy, pure = (json.loads(line) for line in done.stdout.splitlines())
    assert pure == list(PURE)
    assert heavy == []
