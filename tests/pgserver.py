"""A throwaway PostgreSQL cluster for tests.

``PostgresServer`` runs ``initdb`` into a fresh temporary directory, starts the server on a
free TCP port on 127.0.0.1 with ``pg_ctl -w start`` and removes everything again on
``stop()``.  Authentication:

* superuser ``postgres``: ``trust`` over the private Unix socket and 127.0.0.1;
* role ``etl`` (password ``s3cret-Pa55``, ``CREATEDB``): ``scram-sha-256`` over 127.0.0.1,
  so tests can use a real password and check that it never leaks.

When run as root the cluster is owned by, and the server runs as, the ``postgres`` OS user
(``initdb`` refuses to run as root); otherwise everything runs as the current user.
Values are never pasted into shell strings or SQL text: commands are argument lists and
SQL values go through psql variables (``:'value'`` / ``:"identifier"``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

SUPERUSER = "postgres"
ETL_USER = "etl"
ETL_PASSWORD = "s3cret-Pa55"

_PG_ENV_VARS = re.compile(r"^PG[A-Z_]*$")


def find_bindir() -> Path:
    """Directory holding ``initdb``/``pg_ctl``: ``pg_config --bindir``, else the newest
    ``/usr/lib/postgresql/*/bin``, else wherever ``pg_ctl`` is on PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))

    def version(p: str) -> tuple[int, ...]:
        m = re.search(r"/postgresql/(\d+)(?:\.(\d+))?/", p)
        return tuple(int(g) for g in m.groups() if g) if m else (0,)

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    ]
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(Path(pg_ctl).resolve().parent)
    for d in candidates:
        if all((d / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return d
    raise RuntimeError(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found; install the "
        "'postgresql' package (apt-get install -y postgresql)"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kill_postmaster(datadir: Path) -> None:
    """Shut down the postmaster named in ``datadir``'s pid file (fast, then immediate, then
    SIGKILL), but only if that process really serves ``datadir``."""
    kill_server(datadir / "postmaster.pid", datadir, (signal.SIGINT, signal.SIGQUIT))


def kill_server(pidfile: Path, datadir: Path, signals: tuple[signal.Signals, ...]) -> None:
    """Send the server named in ``pidfile`` each of ``signals`` then SIGKILL, 10 s apart until
    it is gone, but only if that process really serves ``datadir`` (its command line names
    it): a stale pid file's pid may belong to someone else by now."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(OSError):  # no /proc: trust the pid file
        if str(datadir).encode() not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return  # stale pid file, pid reused by someone else
    for sig in (*signals, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        for _ in range(100):
            time.sleep(0.1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return


def _watchdog(datadir: Path, tmpdir: Path) -> None:
    """Block until stdin hits EOF (the test process closed it or died), then make sure the
    server is down and its temp dir gone."""
    sys.stdin.buffer.read()
    kill_postmaster(datadir)
    shutil.rmtree(tmpdir, ignore_errors=True)


def start_watchdog(script: str, datadir: Path, tmpdir: Path) -> subprocess.Popen[bytes]:
    """``python script --watchdog datadir tmpdir`` in its own session: it stops the server
    even if this process is killed (SIGTERM/SIGKILL) before ``stop()``."""
    return subprocess.Popen(
        [sys.executable, script, "--watchdog", str(datadir), str(tmpdir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def end_watchdog(watchdog: subprocess.Popen[bytes]) -> None:
    """Release a watchdog of :func:`start_watchdog` (the server is already down)."""
    assert watchdog.stdin is not None
    watchdog.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        watchdog.wait(timeout=30)


def log_tail(logfile: Path, n: int = 30) -> str:
    """The last ``n`` lines of a server's log, for an error message ("" when unreadable)."""
    try:
        lines = logfile.read_text(errors="replace").splitlines()[-n:]
    except OSError:
        return ""
    return "\n--- server log tail ---\n" + "\n".join(lines)


def loopback_url(scheme: str, port: int, dbname: str, user: str, password: str | None) -> str:
    """``scheme://user:password@127.0.0.1:port/dbname``, each part percent-encoded."""
    auth = quote(user, safe="")
    if password is not None:
        auth += ":" + quote(password, safe="")
    return f"{scheme}://{auth}@127.0.0.1:{port}/{quote(dbname, safe='')}"


class ThrowawayServer:
    """What the test servers share: a temp dir, a watchdog, a ``with`` block."""

    tmpdir: Path | None = None
    _watchdog: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _remove_tmpdir(self) -> None:
        """Once the server is down: its temp dir gone, its watchdog released."""
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
        if self._watchdog is not None:
            end_watchdog(self._watchdog)
            self._watchdog = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PostgresServer(ThrowawayServer):
    """A private PostgreSQL cluster in a temp dir, listening on 127.0.0.1 only."""

    def __init__(self, bindir: Path | None = None, os_user: str = "postgres") -> None:
        self.bindir = bindir or find_bindir()
        self.as_root = os.geteuid() == 0
        self._pw: pwd.struct_passwd | None = None
        if self.as_root:
            try:
                self._pw = pwd.getpwnam(os_user)
            except KeyError as exc:
                raise RuntimeError(
                    f"running as root but OS user {os_user!r} does not exist; the server "
                    "cannot run as root"
                ) from exc
        self.tmpdir: Path | None = None
        self.port: int | None = None
        self.running = False
        self._watchdog: subprocess.Popen[bytes] | None = None

    # -- paths ------------------------------------------------------------------------
    @property
    def datadir(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "data"

    @property
    def sockdir(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "sock"

    @property
    def logfile(self) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "server.log"

    # -- process helpers --------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not _PG_ENV_VARS.match(k)}
        env["LC_ALL"] = "C"
        env.pop("LANG", None)
        if self._pw is not None:
            env.update(HOME=self._pw.pw_dir, USER=self._pw.pw_name, LOGNAME=self._pw.pw_name)
        return env

    def _run(
        self,
        args: list[str],
        *,
        as_owner: bool = True,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program (by name in bindir), as the cluster owner if asked."""
        kwargs: dict[str, Any] = {}
        if as_owner and self._pw is not None:
            kwargs.update(user=self._pw.pw_uid, group=self._pw.pw_gid, extra_groups=[])
        cmd = [str(self.bindir / args[0]), *args[1:]]
        proc = subprocess.run(
            cmd,
            input=input,
            capture_output=True,
            text=True,
            env=self._env(),
            cwd=self.tmpdir,
            timeout=timeout,
            check=False,
            **kwargs,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
                + self._log_tail()
            )
        return proc

    def _log_tail(self) -> str:
        return "" if self.tmpdir is None else log_tail(self.logfile)

    def log_mark(self) -> int:
        """Where the server's log ends now; :meth:`log_since` reads what follows."""
        return self.logfile.stat().st_size

    def log_since(self, mark: int) -> list[str]:
        """The lines the server logged after ``mark`` (:meth:`log_mark`). Its messages go
        straight to the file (``pg_ctl -l``, no collector), so a line is there once the
        statement that caused it has answered."""
        with self.logfile.open("rb") as log:
            log.seek(mark)
            return log.read().decode(errors="replace").splitlines()

    def psql(self, sql: str, dbname: str = "postgres", **variables: str) -> str:
        """Run ``sql`` as the superuser over the Unix socket; ``variables`` are psql
        variables usable as ``:'name'`` (literal) or ``:"name"`` (identifier)."""
        args = [
            "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.sockdir),
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            dbname,
        ]
        for k, v in variables.items():
            args += ["-v", f"{k}={v}"]
        return self._run(args, as_owner=False, input=sql).stdout

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> Self:
        """initdb + configure + ``pg_ctl -w start`` + create the ``etl`` role."""
        if self.running:
            return self
        base = tempfile.gettempdir()
        if self.as_root or len(base) > 40:  # postgres must traverse it; socket paths are short
            base = "/tmp"
        self.tmpdir = Path(tempfile.mkdtemp(prefix="pgtest-", dir=base))
        self._watchdog = start_watchdog(__file__, self.datadir, self.tmpdir)
        try:
            self.sockdir.mkdir()
            if self._pw is not None:
                for p in (self.tmpdir, self.sockdir):
                    os.chown(p, self._pw.pw_uid, self._pw.pw_gid)
            self._run(
                [
                    "initdb",
                    "-D",
                    str(self.datadir),
                    "-U",
                    SUPERUSER,
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
            (self.datadir / "pg_hba.conf").write_text(
                "# TYPE  DATABASE  USER      ADDRESS       METHOD\n"
                f"local   all       {SUPERUSER}              trust\n"
                f"host    all       {SUPERUSER}  127.0.0.1/32  trust\n"
                "host    all       all       127.0.0.1/32  scram-sha-256\n"
            )
            for attempt in range(3):
                self.port = free_port()
                with (self.datadir / "postgresql.auto.conf").open("w") as f:
                    f.write(
                        "listen_addresses = '127.0.0.1'\n"
                        f"port = {self.port}\n"
                        f"unix_socket_directories = '{self.sockdir}'\n"
                        "password_encryption = 'scram-sha-256'\n"
                        "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                        "max_connections = 50\nshared_buffers = '64MB'\n"
                    )
                proc = self._run(
                    [
                        "pg_ctl",
                        "-D",
                        str(self.datadir),
                        "-l",
                        str(self.logfile),
                        "-w",
                        "-t",
                        "60",
                        "start",
                    ],
                    check=attempt == 2,
                )
                if proc.returncode == 0:
                    break
            self.running = True
            self.psql(
                "CREATE ROLE :\"user\" LOGIN CREATEDB PASSWORD :'password';\n",
                user=ETL_USER,
                password=ETL_PASSWORD,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def pause(self) -> None:
        """Stop the server but keep its data and port, as a crash or a restart would."""
        self._run(["pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "30", "stop"])
        self.running = False

    def resume(self) -> None:
        """Start a paused server again on the same port."""
        cmd = ["pg_ctl", "-D", str(self.datadir), "-l", str(self.logfile), "-w", "-t", "60"]
        self._run([*cmd, "start"])
        self.running = True

    def stop(self) -> None:
        """Stop the server this object started (``pg_ctl -m fast stop``) and remove the
        temp dir.  Safe to call more than once."""
        if self.tmpdir is None:
            return
        if self.datadir.joinpath("postmaster.pid").exists():
            try:
                ok = (
                    self._run(
                        ["pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "-t", "30", "stop"],
                        check=False,
                        timeout=60,
                    ).returncode
                    == 0
                )
            except subprocess.TimeoutExpired:
                ok = False
            if not ok:
                kill_postmaster(self.datadir)
        self.running = False
        self._remove_tmpdir()

    # -- databases and URLs -----------------------------------------------------------
    def create_database(self, name: str, owner: str = ETL_USER) -> str:
        """Create database ``name`` owned by ``owner``; returns ``name``."""
        self.psql('CREATE DATABASE :"name" OWNER :"owner";\n', name=name, owner=owner)
        return name

    def drop_database(self, name: str) -> None:
        """Drop database ``name`` (disconnecting any sessions)."""
        self.psql('DROP DATABASE IF EXISTS :"name" WITH (FORCE);\n', name=name)

    def url(self, dbname: str, user: str = ETL_USER, password: str | None = None) -> str:
        """``postgresql://user:password@127.0.0.1:PORT/dbname``.  The password defaults to
        the ``etl`` role's when ``user`` is ``etl``; the superuser needs none."""
        assert self.port is not None, "server not started"
        if password is None and user == ETL_USER:
            password = ETL_PASSWORD
        return loopback_url("postgresql", self.port, dbname, user, password)


if __name__ == "__main__" and sys.argv[1:2] == ["--watchdog"]:
    _watchdog(Path(sys.argv[2]), Path(sys.argv[3]))
