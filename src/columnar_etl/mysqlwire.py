"""A quick check that a MySQL/MariaDB source answers and lets us in, before connectorx is
asked to read it.

connectorx's connection pool retries a failed connection for 30 s, logging every attempt to
stderr. The tool has no MySQL driver of its own, so this speaks just enough of the protocol
to log in: it reads the server's handshake (or an error packet such as "too many
connections") and answers it with the URL's user and password, by ``mysql_native_password``
or the fast path of ``caching_sha2_password``. An unknown host, a closed port, something that
is not a MySQL server, or a wrong user or password then fails here, at once, in one line.
Where the server asks for more than this (TLS, an RSA key exchange, another plugin), the probe
stops without judging and connectorx decides.
"""

from __future__ import annotations

import hashlib
import socket
from urllib.parse import unquote, urlsplit

from columnar_etl.config import DatabaseUrl
from columnar_etl.errors import SourceError

__all__ = ["probe"]

DEFAULT_PORT = 3306
#: Seconds to wait for the connection and the server's first packet.
TIMEOUT = 10.0
#: The protocol version byte that starts a handshake (MySQL 3.21 onwards, MariaDB).
HANDSHAKE_V10 = 0x0A
OK_PACKET = 0x00
ERROR_PACKET = 0xFF
AUTH_SWITCH = 0xFE
AUTH_MORE_DATA = 0x01
#: caching_sha2_password's "fast authentication succeeded" after AUTH_MORE_DATA.
FAST_AUTH_OK = 0x03
# Capability flags of the handshake response: long password, connect with a database,
# protocol 4.1, secure (length-prefixed) authentication, plugin authentication.
CLIENT_LONG_PASSWORD = 0x1
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
UTF8MB4 = 45


def probe(url: DatabaseUrl, timeout: float = TIMEOUT) -> None:
    """Connect to ``url``'s server and log in; a SourceError when it does not answer as
    MySQL/MariaDB or refuses the URL's user and password."""
    parts = urlsplit(url.url)
    address = (parts.hostname or "localhost", parts.port or DEFAULT_PORT)
    try:
        with socket.create_connection(address, timeout=timeout) as conn:
            greeting = _read_packet(conn)[1]
            _refuse_error(url, greeting)
            if greeting[:1] != bytes([HANDSHAKE_V10]):
                raise SourceError(
                    f"cannot connect to source {url}: it does not answer as MySQL/MariaDB"
                )
            _log_in(conn, url, greeting)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SourceError(f"cannot connect to source {url}: {reason}") from None


def _log_in(conn: socket.socket, url: DatabaseUrl, greeting: bytes) -> None:
    """Answer the handshake with the URL's credentials; raise on the server's refusal."""
    parts = urlsplit(url.url)
    user = unquote(parts.username or "")
    password = unquote(parts.password or "").encode()
    database = unquote(parts.path.lstrip("/"))
    plugin, nonce = _handshake_auth(greeting)
    flags = (
        CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
    )
    if database:
        flags |= CLIENT_CONNECT_WITH_DB
    scramble = _scramble(plugin, password, nonce)
    if scramble is None:
        return  # a plugin we do not speak: connectorx will tell
    response = (
        flags.to_bytes(4, "little")
        + (1 << 24).to_bytes(4, "little")
        + bytes([UTF8MB4])
        + bytes(23)
        + user.encode()
        + b"\0"
        + bytes([len(scramble)])
        + scramble
        + (database.encode() + b"\0" if database else b"")
        + plugin.encode()
        + b"\0"
    )
    _send_packet(conn, 1, response)
    sequence, answer = _read_packet(conn)
    if answer[:1] == bytes([AUTH_SWITCH]):
        plugin, _, rest = answer[1:].partition(b"\0")
        scramble = _scramble(plugin.decode(), password, rest.rstrip(b"\0"))
        if scramble is None:
            return
        _send_packet(conn, sequence + 1, scramble)
        sequence, answer = _read_packet(conn)
    if answer[:2] == bytes([AUTH_MORE_DATA, FAST_AUTH_OK]):
        answer = _read_packet(conn)[1]
    _refuse_error(url, answer)


def _handshake_auth(greeting: bytes) -> tuple[str, bytes]:
    """The authentication plugin a v10 handshake names, and its 20-byte nonce."""
    at = greeting.index(b"\0", 1) + 1 + 4  # server version, connection id
    nonce = greeting[at : at + 8]
    at += 8 + 1 + 2 + 1 + 2 + 2  # filler, capabilities, charset, status, capabilities
    data_length = greeting[at]
    at += 1 + 10
    tail = max(13, data_length - 8)
    nonce += greeting[at : at + tail].rstrip(b"\0")
    plugin = greeting[at + tail :].split(b"\0", 1)[0].decode() or "mysql_native_password"
    return plugin, nonce[:20]


def _scramble(plugin: str, password: bytes, nonce: bytes) -> bytes | None:
    """The auth response ``plugin`` expects for ``password``; None for a plugin not spoken."""
    if not password:
        return b""
    if plugin == "mysql_native_password":
        stage1 = hashlib.sha1(password).digest()
        mask = hashlib.sha1(nonce + hashlib.sha1(stage1).digest()).digest()
        return _xor(stage1, mask)
    if plugin == "caching_sha2_password":
        stage1 = hashlib.sha256(password).digest()
        mask = hashlib.sha256(hashlib.sha256(stage1).digest() + nonce).digest()
        return _xor(stage1, mask)
    return None


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _refuse_error(url: DatabaseUrl, packet: bytes) -> None:
    """Raise the server's own message when ``packet`` is an error packet."""
    if packet[:1] != bytes([ERROR_PACKET]):
        return
    # 0xFF, a 2-byte code, then an optional '#' and 5-character SQL state, then the message.
    message = packet[3:]
    if message[:1] == b"#":
        message = message[6:]
    raise SourceError(f"cannot connect to source {url}: {message.decode('utf-8', 'replace')}")


def _read_packet(conn: socket.socket) -> tuple[int, bytes]:
    """The sequence number and payload of the next packet (3-byte length, 1-byte sequence)."""
    header = _read(conn, 4)
    return header[3], _read(conn, int.from_bytes(header[:3], "little"))


def _send_packet(conn: socket.socket, sequence: int, payload: bytes) -> None:
    conn.sendall(len(payload).to_bytes(3, "little") + bytes([sequence & 0xFF]) + payload)


def _read(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError(0, "the server closed the connection")
        data += chunk
    return data
