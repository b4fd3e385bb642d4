"""A quick check that a MySQL/MariaDB source answers, before connectorx is asked to read it.

connectorx's connection pool retries a failed connection for 30 s, logging every attempt to
stderr. The tool has no MySQL driver of its own, so this reads only what the server sends
first on a TCP connection (its handshake, or an error packet such as "too many
connections"): an unknown host, a closed port or something that is not a MySQL server fails
here, at once, in one line. A wrong password is still found by connectorx's pool.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from columnar_etl.config import DatabaseUrl
from columnar_etl.errors import SourceError

__all__ = ["probe"]

DEFAULT_PORT = 3306
#: Seconds to wait for the connection and the server's first packet.
TIMEOUT = 10.0
#: The protocol version byte that starts a handshake (MySQL 3.21 onwards, MariaDB).
HANDSHAKE_V10 = 0x0A
ERROR_PACKET = 0xFF


def probe(url: DatabaseUrl, timeout: float = TIMEOUT) -> None:
    """Connect to ``url``'s server and read its greeting; a SourceError when none comes."""
    parts = urlsplit(url.url)
    address = (parts.hostname or "localhost", parts.port or DEFAULT_PORT)
    try:
        with socket.create_connection(address, timeout=timeout) as conn:
            packet = _first_packet(conn)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SourceError(f"cannot connect to source {url}: {reason}") from None
    if packet[:1] == bytes([ERROR_PACKET]):
        # 0xFF, a 2-byte code, then (no '#' state before the handshake) the message.
        message = packet[3:].decode("utf-8", "replace")
        raise SourceError(f"cannot connect to source {url}: {message}")
    if packet[:1] != bytes([HANDSHAKE_V10]):
        raise SourceError(f"cannot connect to source {url}: it does not answer as MySQL/MariaDB")


def _first_packet(conn: socket.socket) -> bytes:
    """The payload of the first packet the server sends (3-byte length, 1-byte sequence)."""
    header = _read(conn, 4)
    return _read(conn, int.from_bytes(header[:3], "little"))


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError(0, "the server closed the connection")
        data += chunk
    return data
