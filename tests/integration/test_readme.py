"""The README's first command, run as a new user would: fresh venv, clean clone, no server."""

from __future__ import annotations

import json
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
    assert re.search(r"orders: \d[\d,]*/\d[\d,]* rows \(100\.0%", demo.stderr), demo.stderr[-500:]
    assert "verify: passed" in demo.stdout

    # The figures the demo printed are the ones `etl verify --json` finds afterwards.
    folder = clone / "columnar_etl_demo"
    urls = (
        "--source",
        f"sqlite://{folder / 'legacy.db'}",
        "--target",
        f"sqlite://{folder / 'target.db'}",
    )
    verify = subprocess.run(
        [str(venv / "bin" / "etl"), "verify", "--json", *urls],
        capture_output=True,
        text=True,
        env=env,
        cwd=clone,
        check=True,
    )
    report = json.loads(verify.stdout)
    assert report["passed"] is True
    conservation = {
        c["entity"]: c["figures"] for c in report["checks"] if c["name"] == "conservation"
    }
    printed = dict(_summary_rows(demo.stdout))
    assert set(printed) == {"customers", "products", "orders"}
    for entity, figures in conservation.items():
        assert printed[entity] == {
            key: figures[key]
            for key in ("loaded", "rejected", "filtered", "skipped_existing", "extracted")
        }
    [orphans] = [c["figures"] for c in report["checks"] if c["name"] == "orphans"]
    linked, orphaned = _relationships(demo.stdout)
    assert (linked, orphaned) == (orphans["linked"], orphans["orphans"])


def _summary_rows(text: str):
    """(entity, figures) from the summary table the demo prints."""
    row = re.compile(
        r"^\s*(customers|products|orders)\s+\d+\s+\w+\s+(\d+)\s+(\d+)(?: \(.*?\))?"
        r"\s+(\d+)\s+(\d+)\s+(\d+)\s*$"
    )
    for line in text.splitlines():
        if match := row.match(line):
            loaded, rejected, filtered, skipped, total = map(int, match.groups()[1:])
            yield (
                match.group(1),
                {
                    "loaded": loaded,
                    "rejected": rejected,
                    "filtered": filtered,
                    "skipped_existing": skipped,
                    "extracted": total,
                },
            )


def _relationships(text: str) -> tuple[int, int]:
    match = re.search(
        r"Relationships: orders\.\S+ -> \S+: linked (\d+) of .*?; (\d+) orphans", text
    )
    assert match, text
    return int(match.group(1)), int(match.group(2))
