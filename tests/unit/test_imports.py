"""The pure modules import no database driver and no CLI library (notebooks can use them)."""

from __future__ import annotations

import ast
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


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` run by a new interpreter, which must succeed."""
    # Import the same columnar_etl this test process sees, however it was installed.
    package_root = str(Path(columnar_etl.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done


def test_pure_modules_import_no_driver_or_cli() -> None:
    code = (
        "import json, sys\n"
        f"for name in {PURE!r}:\n"
        "    __import__(name)\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
        f"print(json.dumps([m for m in {PURE!r} if m in sys.modules]))\n"
    )
    done = _python(code)
    heavy, pure = (json.loads(line) for line in done.stdout.splitlines())
    assert pure == list(PURE)
    assert heavy == []


def _imported_on_load(path: Path, package: str) -> set[str]:
    """The package's modules ``path`` imports when it is loaded: its top-level imports, not
    those inside functions or under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith(package)}


def _module_graph() -> dict[str, set[str]]:
    """Each module of columnar_etl -> the modules of columnar_etl it imports on load."""
    root = Path(columnar_etl.__file__).resolve().parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return {
        name: {m for m in _imported_on_load(path, "columnar_etl") if m in modules and m != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (a path that ends where it starts), or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for imported in sorted(graph.get(name, ())):
            found = visit(imported, [*path, name])
            if found:
                return found
        done.add(name)
        return None

    return next(filter(None, (visit(name, []) for name in sorted(graph))), None)


def test_no_module_imports_back_what_imports_it() -> None:
    # A package's __init__ re-exporting its modules is not a cycle worth reporting.
    graph = {name: deps - {"columnar_etl"} for name, deps in _module_graph().items()}
    assert _cycle(graph) is None


def test_executors_depend_on_their_interface_never_back() -> None:
    graph = _module_graph()
    assert "columnar_etl.executors" in graph["columnar_etl.ray_executor"]
    assert "columnar_etl.executors" in graph["columnar_etl.local_executor"]
    assert not graph["columnar_etl.executors"] & {
        "columnar_etl.pipeline",
        "columnar_etl.local_executor",
        "columnar_etl.ray_executor",
    }
    assert "columnar_etl.pipeline" not in graph["columnar_etl.ray_executor"]


def test_ray_is_imported_only_when_a_run_asks_for_it() -> None:
    code = (
        "import sys\n"
        "import columnar_etl.cli, columnar_etl.pipeline\n"
        "from columnar_etl.executors import executor\n"
        "executor('local')\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith(('ray.', "
        "'columnar_etl.ray_executor'))))\n"
    )
    assert _python(code).stdout.strip() == "[]"
