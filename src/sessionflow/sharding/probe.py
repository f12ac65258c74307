"""Telling a Dask scheduler from another service on the address, in about a second.

A Dask comm opens with both sides writing a handshake: eight bytes of little-endian
length, then the frame count and lengths, then msgpack. The client reads the other
side's first eight bytes as a length, so an SSH banner (``SSH-2.0-``) became a 2.8 EiB
allocation, and an HTTP server, which waits for a request, kept the client waiting for
minutes. A scheduler writes its handshake as soon as it accepts, so one socket that
reads sixteen bytes tells them apart: a plausible length and frame count, or not
Dask. A port where nothing listens is left to the client (it says "cannot connect").
"""

from __future__ import annotations

import socket
import struct
import time
from urllib.parse import urlsplit

ANSWER_S = 2.0  # a scheduler writes its handshake at once; a loaded machine gets slack
MAX_HANDSHAKE = 1 << 20  # a handshake is a small dict: a few hundred bytes
MAX_FRAMES = 64


def tcp_target(address: str) -> tuple[str, int] | None:
    """``tcp://host:port`` or ``host:port`` as (host, port); None for other schemes."""
    text = address.strip()
    if "://" not in text:
        text = f"tcp://{text}"
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme != "tcp" or not parts.hostname or port is None:
        return None
    return parts.hostname, port


def answers_as_dask(host: str, port: int, timeout: float = ANSWER_S) -> bool | None:
    """True: a Dask handshake arrived; False: something else or nothing; None: no TCP."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    with sock:
        head = _read(sock, 16, time.monotonic() + timeout)
    if len(head) < 16:
        return False
    total, frames = (int(x) for x in struct.unpack("<QQ", head))
    return 1 <= frames <= MAX_FRAMES and 8 * (frames + 1) <= total <= MAX_HANDSHAKE


def _read(sock: socket.socket, n: int, deadline: float) -> bytes:
    """Up to ``n`` bytes before ``deadline``; fewer if the peer is silent or closes."""
    got = b""
    while len(got) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(n - len(got))
        except OSError:  # includes the timeout: no answer
            break
        if not chunk:
            break
        got += chunk
    return got
