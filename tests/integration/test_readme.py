"""The README's runnable parts, run as a new user would: its two commands in a fresh venv from
a clean clone, with no server for the first; and its notebook example."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO_MARKER = "<!-- demo-command"
TEST_MARKER = "<!-- test-command"
#: What the test command's pytest runs here: the whole suite would run this test again.
A_FEW_TESTS = ("tests/unit/test_doc_links.py", "tests/unit/test_expressions.py")


def readme_command(marker: str) -> str:
    """The first line of the fenced block that follows ``marker`` in README.md."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(marker))
    fence = next(i for i in range(start, len(lines)) if lines[i].startswith("```"))
    return lines[fence + 1].strip()


def clone_and_venv(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A clean clone of the repository, a fresh venv, and the environment that runs it."""
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
    return clone, venv, env


def test_demo_command_works_in_a_fresh_venv_from_a_clean_clone(tmp_path: Path) -> None:
    command = readme_command(DEMO_MARKER)
    assert "pip install" in command and "etl demo" in command
    clone, venv, env = clone_and_venv(tmp_path)
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
        env=env,  # without the caller's PYTHONPATH, which may name a checkout's src/
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


def test_test_command_installs_the_dev_extra_and_runs_pytest(tmp_path: Path) -> None:
    """The README's test command, as written, with a few test files named after it: the dev
    extra installs into a fresh venv from a clean clone, and its pytest runs the suite's tests
    (.ci/run runs the same line with nothing added)."""
    command = readme_command(TEST_MARKER)
    assert "\n" not in command and command.endswith("python3 -m pytest -q"), command
    clone, venv, env = clone_and_venv(tmp_path)
    done = subprocess.run(
        ["bash", "-c", f"{command} {' '.join(A_FEW_TESTS)}"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"^\d+ passed", done.stdout.splitlines()[-1]), done.stdout[-500:]
    # The dev extra came with it: pytest, ruff and Ray, in the venv.
    tools = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import pytest, ray, hypothesis; print('ok')"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert tools.stdout.strip() == "ok", tools.stderr[-500:]
    assert (venv / "bin" / "ruff").exists()


def test_notebook_example_runs() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## In a notebook", 1)[1]
    [code] = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue()
    # The example's messy order comes out clean: a generated order number, the item sum as
    # the total ("n/a" does not parse), the mapped status.
    assert "ORD-1" in printed and "shipped" in printed and "23.48" in printed
    assert '"product_id": "P2"' in printed


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
