"""Bad input, a password the driver would quote, Ctrl-C: one clear line and the right exit code."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import adbc_driver_manager as adbc
import pytest
import typer

from columnar_etl import cli
from columnar_etl.errors import InterruptedRunError, TargetError
from tests.helpers import etl, legacy_sqlite

SECRET = "hunter2"


def one_error_line(done: subprocess.CompletedProcess[str], code: int) -> str:
    """The single line the command printed on stderr; checks the exit code and no secret."""
    output = done.stdout + done.stderr
    assert done.returncode == code, output
    assert "Traceback" not in output and SECRET not in output, output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


@pytest.mark.parametrize(
    "userinfo",
    [f"u:{SECRET}%pw", f"u:{SECRET} pw", f"u:hunt@er2pw{SECRET}"],
    ids=["bad-percent", "space", "raw-at"],
)
def test_a_password_libpq_would_quote_is_refused_unseen(userinfo: str, tmp_path: Path) -> None:
    url = f"postgresql://{userinfo}@127.0.0.1:1/db"
    line = one_error_line(etl("status", "--target", url, cwd=tmp_path), 2)
    assert "percent-encode" in line and "er2pw" not in line


@pytest.mark.parametrize(
    ("argv", "env", "code", "says"),
    [
        (("status",), {"DATABASE_URL": f"postgresql://u:{SECRET}@[::1/db"}, 2, "malformed host"),
        (("status", "--target", f"postgresql://u:{SECRET}@127.0.0.1:0/db"), {}, 2, "port"),
        (("rejects", "--job", "1", "--out", "nodir/x.csv"), {}, 2, "does not exist"),
        (("rejects", "--job", "99999999999999999999"), {}, 2, "--job"),
        (("verify", "--job", "99999999999999999999"), {}, 2, "--job"),
        (("rollback", "--job", "99999999999999999999"), {}, 2, "--job"),
        (("demo", "--dir", "a-file.txt"), {}, 2, "is not a folder"),
        (("run", "--entity", "bogus", "--source", "sqlite:///x.db"), {}, 2, "orders or all"),
    ],
    ids=[
        "ipv6",
        "port-0",
        "out-folder",
        "job-overflow",
        "verify-job",
        "rollback-job",
        "demo-dir",
        "entity",
    ],
)
def test_bad_input_is_one_clear_line(
    argv: tuple[str, ...], env: dict[str, str], code: int, says: str, tmp_path: Path
) -> None:
    (tmp_path / "a-file.txt").write_text("not a folder")
    line = one_error_line(etl(*argv, env=env, cwd=tmp_path), code)
    assert says in line
    assert "unexpected" not in line


def test_a_folder_as_sqlite_source_fails_at_once(tmp_path: Path) -> None:
    started = time.monotonic()
    done = etl(
        *("run", "--entity", "customers", "--source", f"sqlite://{tmp_path}"),
        *("--target", f"sqlite://{tmp_path / 'target.db'}"),
    )
    assert "is not a file" in one_error_line(done, 1)
    assert time.monotonic() - started < 15  # connectorx retried it for ~25 s


def test_rejects_out_suffix_in_any_case(tmp_path: Path) -> None:
    legacy = legacy_sqlite(tmp_path, 500, seed=2)
    target = f"sqlite://{tmp_path / 'target.db'}"
    done = etl("run", "--entity", "products", "--source", str(legacy), "--target", target)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "rejects.CSV"
    exported = etl("rejects", "--job", "1", "--target", target, "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.is_file() and exported.stdout.startswith("wrote ")


# -- Ctrl-C ---------------------------------------------------------------------------------


@pytest.fixture
def main_argv(monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    """Run cli.main() in this process with the given arguments; its exit code."""
    # Exiting on Ctrl-C, main ignores any further one: not in the test process.
    monkeypatch.setattr(cli, "_ignore_ctrl_c", lambda: None)
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)

    def run(*argv: str) -> int:
        monkeypatch.setattr(sys, "argv", ["etl", *argv])
        with pytest.raises(SystemExit) as done:
            cli.main()
        return int(done.value.code)

    return run


def _cancelled_on_postgresql() -> TargetError:
    """A target call cut short by the driver's SIGINT handler, wrapped as our modules do."""
    try:
        try:
            cancelled = adbc.AdbcStatusCode.CANCELLED
            raise adbc.OperationalError("CANCELLED: user", status_code=cancelled)
        except adbc.OperationalError as exc:
            raise TargetError(f"cannot roll back job 2: {exc}") from None
    except TargetError as exc:
        return exc


def _cancelled_on_sqlite() -> TargetError:
    """SQLite cannot cancel: the driver raises the cancel's own error from KeyboardInterrupt."""
    try:
        try:
            raise adbc.NotSupportedError("NOT_IMPLEMENTED") from KeyboardInterrupt
        except adbc.NotSupportedError:
            raise TargetError("cannot link orders: NOT_IMPLEMENTED") from None
    except TargetError as exc:
        return exc


@pytest.mark.parametrize(
    ("command", "raised"),
    [
        (("status",), KeyboardInterrupt()),
        (("verify",), KeyboardInterrupt()),
        (("rollback", "--job", "2"), _cancelled_on_postgresql()),
        (("link",), _cancelled_on_sqlite()),
    ],
    ids=["status-python", "verify-python", "rollback-postgresql", "link-sqlite"],
)
def test_ctrl_c_in_a_command_is_one_line_and_130(
    command: tuple[str, ...],
    raised: BaseException,
    main_argv: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise raised

    monkeypatch.setattr(cli, "Target", interrupted)
    assert main_argv(*command, "--target", "sqlite:///x.db") == 130
    err = capsys.readouterr().err
    assert err.startswith("error: interrupted: ") and len(err.splitlines()) == 1, err
    assert "CANCELLED" not in err and "NOT_IMPLEMENTED" not in err


def test_ctrl_c_typer_turns_into_exit_130_is_still_reported(
    main_argv: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Outside a command's own guard (while typer parses the options, say) typer turns the
    KeyboardInterrupt into a bare exit 130 that main() must still report."""
    app = typer.Typer()

    @app.command()
    def status() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", app)
    assert main_argv() == 130
    assert capsys.readouterr().err == "interrupted\n"


#: Ctrl-C while the CLI's modules import (most of a second): simulated where it lands, in the
#: import of columnar_etl.cli, for ``python -m columnar_etl`` (the ``etl`` script's twin).
CTRL_C_ON_IMPORT = """
import importlib.abc, runpy, sys

class CtrlC(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "columnar_etl.cli":
            raise KeyboardInterrupt

sys.meta_path.insert(0, CtrlC())
sys.argv = ["etl", "status"]
runpy.run_module("columnar_etl", run_name="__main__", alter_sys=True)
"""


def test_ctrl_c_while_the_cli_imports_is_one_line_and_130() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_ON_IMPORT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr == "interrupted\n"


def test_ctrl_c_during_generate_keeps_no_rows(tmp_path: Path) -> None:
    """End to end: Ctrl-C stops at the next chunk, and the transaction is lost."""
    out = tmp_path / "legacy.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "columnar_etl", "generate", "--rows", "3000000", "--out",
         f"sqlite://{out}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not out.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # into the orders' ingest
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip() and "rows (" not in line]
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(lines) == 1, err
    assert lines[0].startswith("error: interrupted: etl generate writes all its rows"), err
    with sqlite3.connect(out) as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0


SECOND_PRESS = """
import os, signal, time
from columnar_etl.interrupt import ctrl_c_as_flag
with ctrl_c_as_flag(notice=None, again="interrupted again: nothing was written"):
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.5)  # nothing checks the flag: the second press must end the process
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)
"""


def test_a_second_ctrl_c_ends_the_process_with_the_caller_s_words() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SECOND_PRESS], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 130 and done.stderr == "interrupted again: nothing was written\n"


def test_ctrl_c_in_the_demo_s_run_says_the_demo_starts_over(
    tmp_path: Path,
    main_argv: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The run's own message ("running the same command again resumes it") is untrue for
    the demo, which deletes its databases when it starts."""

    def interrupted(*args: object, **kwargs: object) -> None:
        raise InterruptedRunError("interrupted: ... running the same command again resumes it")

    monkeypatch.setattr(cli.pipeline, "run", interrupted)
    assert main_argv("demo", "--rows", "200", "--dir", str(tmp_path / "demo")) == 130
    err = [line for line in capsys.readouterr().err.splitlines() if "rows (" not in line]
    assert err == ["error: interrupted: etl demo starts over when run again"]
