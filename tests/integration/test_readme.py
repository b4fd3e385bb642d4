"""The README's first command, run as a new user would: fresh venv, clean clone, no server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO_MARKER = "<!-- demo-command"


def readme_command(marker: str) -> str:
    """The first line of the fenced block that follows ``marker`` in README.md."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(marker))
    fence = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    return lines[fence + 1].strip()


def test_demo_command_works_in_a_fresh_venv_from_a_clean_clone(tmp_path: Path) -> None:
    command = readme_command(DEMO_MARKER)
    assert "pip install" in command and "etl demo" in command
    clone = tmp_path / "clone"
    # A clone holds what is committed, not what happens to lie in the working tree.
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(venv),
    }
    env.pop("DATABASE_URL", None)
    env.pop("LEGACY_DATABASE_URL", None)
    demo = subprocess.run(
        ["bash", "-c", command],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    # The package came from the clone, installed (not editable) into the fresh venv.
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import columnar_etl; print(columnar_etl.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(venv))
    assert (clone / "columnar_etl_demo" / "target.db").exists()
    assert re.search(r"orders: \d[\d,]*/\d[\d,]* rows \(100\.0%", demo.stderr), demo.stderr[-500:]
