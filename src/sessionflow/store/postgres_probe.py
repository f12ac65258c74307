"""Telling a PostgreSQL server from another service on the URL's port, in about a second.

libpq waits ``connect_timeout`` (10 s) for an answer to its first packet, and a web
server waits as long for a request line, so a wrong port looked like a slow server.
The connection is opened on a helper thread; if it has not finished after
:data:`PATIENCE_S`, a second socket asks the port the question every PostgreSQL
server answers at once with one byte (an SSLRequest: ``S`` or ``N``). No answer, or
another one, means the port is not PostgreSQL: the open fails then. A host that does
not answer at all (firewall, wrong address) is left to ``connect_timeout`` as before.
Only slow opens are probed, so a server's log sees the probe only then.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

T = TypeVar("T")
PATIENCE_S = 1.0  # a local or LAN server is connected by then; only slower opens are probed
ANSWER_S = 1.0  # a PostgreSQL server answers an SSLRequest in one round trip
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
POSTGRES_ANSWERS = (b"S", b"N", b"E")  # TLS yes, TLS no, or a pre-7.0 server's error


def tcp_target(url: str) -> tuple[str, int] | None:
    """The one TCP (host, port) ``url`` names; None for a unix socket or several hosts."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return None
    host = str(parts.get("hostaddr") or parts.get("host") or "")
    port = str(parts.get("port") or "5432")
    if not host or host.startswith("/") or "," in host or "," in port or not port.isdigit():
        return None
    return host, int(port)


def answers_as_postgres(host: str, port: int, timeout: float = ANSWER_S) -> bool | None:
    """True: it answered as PostgreSQL; False: it did not; None: no TCP connection at all."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    with sock:
        try:
            sock.sendall(SSL_REQUEST)
            reply = sock.recv(1)
        except OSError:  # includes the timeout: no answer
            return False
    return reply in POSTGRES_ANSWERS


class _Attempt(Generic[T]):
    """One connect on a helper thread; abandoned, its connection is closed when it arrives."""

    def __init__(self, connect: Callable[[], T], close: Callable[[T], None]) -> None:
        self.done = threading.Event()
        self._connect, self._close = connect, close
        self._lock = threading.Lock()
        self._abandoned = False
        self._value: T | None = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, name="sessionflow-pg-connect", daemon=True).start()

    def _run(self) -> None:
        try:
            value = self._connect()
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc
        else:
            with self._lock:
                if self._abandoned:
                    self._close(value)
                else:
                    self._value = value
        finally:
            self.done.set()

    def result(self) -> T:
        self.done.wait()
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value

    def abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            value, self._value = self._value, None
        if value is not None:
            self._close(value)


def connect_watched(
    url: str,
    connect: Callable[[], T],
    close: Callable[[T], None],
    not_postgres: Callable[[str], BaseException],
) -> T:
    """``connect()``, or ``not_postgres("host:port")`` as soon as the port proves to be
    another service."""
    attempt = _Attempt(connect, close)
    try:
        if not attempt.done.wait(PATIENCE_S):
            target = tcp_target(url)
            if target is not None and answers_as_postgres(*target) is False:
                raise not_postgres(f"{target[0]}:{target[1]}")
        return attempt.result()
    except BaseException:
        attempt.abandon()
        raise
