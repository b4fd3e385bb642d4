"""A throwaway MariaDB server for tests, as :mod:`pgserver` is for PostgreSQL.

``MariaDBServer`` runs ``mariadb-install-db`` into a fresh temporary directory, starts
``mariadbd`` on a free TCP port on 127.0.0.1 only (and a private Unix socket), and stops that
process and removes everything again on ``stop()``.  Accounts:

* ``root``: no password, over the private Unix socket (the admin commands use it);
* ``etl``@``127.0.0.1`` (password ``s3cret-Pa55``): granted each database the tests create,
  over TCP, so tests use a real password and can check that it never leaks.

When run as root, the data directory belongs to, and the server runs as, the ``mysql`` OS
user (Debian's ``mariadb-server`` creates it). The server's time zone is a fixed +02:00, not
UTC, so that a reading of ``timestamp`` values that ignores the server's zone fails a test.
Commands are argument lists; SQL is sent on standard input.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

sys.path.insert(0, str(Path(__file__).parent))

from pgserver import (
    ThrowawayServer,
    free_port,
    kill_server,
    log_tail,
    loopback_url,
    start_watchdog,
)

ETL_USER = "etl"
ETL_PASSWORD = "s3cret-Pa55"
#: The server's own time zone (a fixed offset: named zones need the zone tables loaded).
SERVER_TIME_ZONE = "+02:00"

# Database names are ours (t_<hex>), checked before they go into SQL text.
_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")


def find_programs() -> dict[str, Path]:
    """``mariadbd``, ``mariadb-install-db`` and the ``mariadb`` client, from PATH or the
    places Debian installs them."""
    found: dict[str, Path] = {}
    for name in ("mariadbd", "mariadb-install-db", "mariadb"):
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
        if path is None:
            raise RuntimeError(
                f"MariaDB program {name!r} not found; install the 'mariadb-server' package "
                "(apt-get install -y --no-install-recommends mariadb-server)"
            )
        found[name] = Path(path)
    return found


def _watchdog(datadir: Path, tmpdir: Path) -> None:
    """Block until stdin hits EOF (the test process closed it or died), then make sure the
    server is down and its temp dir gone."""
    sys.stdin.buffer.read()
    kill_server(tmpdir / "mariadbd.pid", datadir, (signal.SIGTERM,))
    shutil.rmtree(tmpdir, ignore_errors=True)


class MariaDBServer(ThrowawayServer):
    """A private MariaDB server in a temp dir, listening on 127.0.0.1 only."""

    def __init__(self, os_user: str = "mysql", options: Sequence[str] = ()) -> None:
        """``options``: more ``mariadbd`` options (``--lower-case-table-names=1``)."""
        self.programs = find_programs()
        self.options = tuple(options)
        self._pw: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._pw = pwd.getpwnam(os_user)
            except KeyError as exc:
                raise RuntimeError(
                    f"running as root but OS user {os_user!r} does not exist; the server "
                    "should not run as root"
                ) from exc
        self.tmpdir: Path | None = None
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    # -- paths ------------------------------------------------------------------------
    def _path(self, name: str) -> Path:
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / name

    @property
    def datadir(self) -> Path:
        return self._path("data")

    @property
    def socket(self) -> Path:
        return self._path("mariadbd.sock")

    @property
    def logfile(self) -> Path:
        return self._path("server.log")

    # -- process helpers --------------------------------------------------------------
    def _as_owner(self) -> dict[str, Any]:
        if self._pw is None:
            return {}
        return {"user": self._pw.pw_uid, "group": self._pw.pw_gid, "extra_groups": []}

    def _log_tail(self) -> str:
        return "" if self.tmpdir is None else log_tail(self.logfile)

    def _client(self, sql: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.programs["mariadb"]), "--no-defaults", "--batch", "--skip-column-names"]
        cmd += ["--socket", str(self.socket), "--user", "root"]
        return subprocess.run(cmd, input=sql, capture_output=True, text=True, timeout=60)

    def sql(self, sql: str) -> str:
        """Run ``sql`` as root over the Unix socket; tab-separated rows, no header."""
        proc = self._client(sql)
        if proc.returncode != 0:
            raise RuntimeError(f"mariadb failed (exit {proc.returncode}): {proc.stderr}")
        return proc.stdout

    def _install(self) -> None:
        cmd = [str(self.programs["mariadb-install-db"]), "--no-defaults"]
        cmd += [f"--datadir={self.datadir}", "--auth-root-authentication-method=normal"]
        cmd += ["--skip-test-db", "--skip-name-resolve"]
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            cwd=self.tmpdir,
            timeout=120,
            check=False,
            **self._as_owner(),
        )
        if proc.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {proc.stdout}\n{proc.stderr}")

    def _launch(self, port: int) -> bool:
        """Start ``mariadbd`` on ``port``; True once it answers, False if it exited (the
        port was taken meanwhile)."""
        assert self.tmpdir is not None
        cmd = [str(self.programs["mariadbd"]), "--no-defaults", f"--datadir={self.datadir}"]
        cmd += [f"--socket={self.socket}", f"--port={port}", "--bind-address=127.0.0.1"]
        cmd += [f"--pid-file={self.tmpdir / 'mariadbd.pid'}", f"--log-error={self.logfile}"]
        cmd += [f"--tmpdir={self.tmpdir}", f"--default-time-zone={SERVER_TIME_ZONE}"]
        cmd += ["--skip-name-resolve", "--skip-log-bin", "--character-set-server=utf8mb4"]
        cmd += ["--innodb-buffer-pool-size=32M", "--innodb-flush-log-at-trx-commit=0"]
        cmd += ["--innodb-doublewrite=0", "--max-connections=50", *self.options]
        self._process = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=self.tmpdir,
            **self._as_owner(),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                return False
            if self.socket.exists() and self._client("SELECT 1").returncode == 0:
                return True
            time.sleep(0.1)
        raise RuntimeError("mariadbd did not answer within 60 s" + self._log_tail())

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> Self:
        """Install a data dir, start the server, create the ``etl`` account."""
        if self._process is not None:
            return self
        self.tmpdir = Path(tempfile.mkdtemp(prefix="mariadbtest-", dir="/tmp"))
        self._watchdog = start_watchdog(__file__, self.datadir, self.tmpdir)
        try:
            if self._pw is not None:
                os.chown(self.tmpdir, self._pw.pw_uid, self._pw.pw_gid)
            self._install()
            for attempt in range(3):
                self.port = free_port()
                if self._launch(self.port):
                    break
                if attempt == 2:
                    raise RuntimeError("mariadbd exited at start" + self._log_tail())
            self.sql(f"CREATE USER '{ETL_USER}'@'127.0.0.1' IDENTIFIED BY '{ETL_PASSWORD}';\n")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server this object started (SIGTERM: a clean shutdown; SIGKILL after
        30 s) and remove the temp dir.  Safe to call more than once."""
        if self.tmpdir is None:
            return
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=30)
            self._process = None
        self._remove_tmpdir()

    # -- databases and URLs -----------------------------------------------------------
    def create_database(self, name: str) -> str:
        """Create database ``name`` (utf8mb4), all of it granted to ``etl``; returns ``name``."""
        if not _NAME.match(name):
            raise ValueError(f"not a test database name: {name!r}")
        self.sql(
            f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4;\n"
            f"GRANT ALL ON `{name}`.* TO '{ETL_USER}'@'127.0.0.1';\n"
        )
        return name

    def drop_database(self, name: str) -> None:
        """Drop database ``name``."""
        if not _NAME.match(name):
            raise ValueError(f"not a test database name: {name!r}")
        self.sql(f"DROP DATABASE IF EXISTS `{name}`;\n")

    def url(self, dbname: str, user: str = ETL_USER, password: str | None = None) -> str:
        """``mysql://user:password@127.0.0.1:PORT/dbname``; the password defaults to the
        ``etl`` account's when ``user`` is ``etl``."""
        assert self.port is not None, "server not started"
        if password is None and user == ETL_USER:
            password = ETL_PASSWORD
        return loopback_url("mysql", self.port, dbname, user, password)


def connect(url: str) -> Any:
    """A PyMySQL connection (autocommit) to a ``mysql://`` URL of the test server: a client
    independent of connectorx, for writing test data and reading it back."""
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(
        host=parts.hostname,
        port=parts.port,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=unquote(parts.path.lstrip("/")),
        autocommit=True,
    )


if __name__ == "__main__" and sys.argv[1:2] == ["--watchdog"]:
    _watchdog(Path(sys.argv[2]), Path(sys.argv[3]))
