"""A TCP proxy on loopback in front of PostgreSQL that can lose the reply to a COMMIT.

The fault it makes is the one a flaky network makes: the server receives a batch's COMMIT and
commits, then the connection breaks before the reply reaches the client, which cannot tell
whether its transaction committed. Only the frontend's messages are parsed (type byte and
length), enough to see which COMMIT follows a batch's ledger update.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from types import TracebackType
from typing import Self

#: Bytes of the ledger statement that marks a batch completed (ledger.complete_batch).
BATCH_MARKER = b"SET status = 'completed'"


class CommitReplyCutter:
    """Forward 127.0.0.1:``port`` to the server at ``upstream``; the reply to the COMMIT that
    follows the ``cut_after``-th (and each ``every``-th after it) batch completion is lost, and
    that connection is closed from both ends once the server has had time to commit."""

    def __init__(self, upstream: tuple[str, int], *, cut_after: int = 1, every: int = 0) -> None:
        self.upstream = upstream
        self.cut_after = cut_after
        self.every = every
        self.cuts = 0
        self.batch_commits = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            _Link(self, client, server).start()

    def _should_cut(self) -> bool:
        """Called at each COMMIT that follows a batch completion."""
        with self._lock:
            self.batch_commits += 1
            n = self.batch_commits - self.cut_after
            cut = n == 0 or (self.every > 0 and n > 0 and n % self.every == 0)
            self.cuts += cut
            return cut


class _Link:
    def __init__(self, proxy: CommitReplyCutter, client: socket.socket, server: socket.socket):
        self.proxy, self.client, self.server = proxy, client, server
        self.muted = threading.Event()
        self.armed = False

    def start(self) -> None:
        threading.Thread(target=self._frontend, daemon=True).start()
        threading.Thread(target=self._backend, daemon=True).start()

    def _close(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.client.recv(n - len(data))
            if not chunk:
                raise ConnectionError
            data += chunk
        return data

    def _frontend(self) -> None:
        try:
            length = struct.unpack("!I", self._read(4))[0]  # the startup message: no type byte
            self.server.sendall(struct.pack("!I", length) + self._read(length - 4))
            while True:
                head = self._read(5)
                kind, length = head[:1], struct.unpack("!I", head[1:])[0]
                body = self._read(length - 4)
                if BATCH_MARKER in body:
                    self.armed = True
                is_commit = kind in (b"Q", b"P") and body.lstrip(b"\x00").upper().startswith(
                    b"COMMIT"
                )
                if is_commit and self.armed:
                    self.armed = False
                    if self.proxy._should_cut():
                        self.muted.set()  # the reply is dropped from here on
                        self.server.sendall(head + body)
                        time.sleep(0.5)  # the server commits meanwhile
                        self._close()
                        return
                self.server.sendall(head + body)
        except (ConnectionError, OSError):
            self._close()

    def _backend(self) -> None:
        try:
            while True:
                data = self.server.recv(65536)
                if not data:
                    break
                if not self.muted.is_set():
                    self.client.sendall(data)
        except OSError:
            pass
        self._close()
