"""``--scheduler`` at something that is not Dask fails in seconds with one line; ``--workers``
beyond the CPUs is capped with a note, not a cluster that chokes on itself.

Issue 20 item 16: an HTTP port kept the client waiting for minutes, an SSH banner read
as a frame length asked for 2.82 EiB (MemoryError), and ``--workers 64`` on 2 cores
logged a ``CommClosedError`` traceback. Real sockets and the installed command.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from sessionflow.cli.sharded import local_workers, usable_cpus
from sessionflow.sharding.probe import answers_as_dask, tcp_target
from tests.test_pg_errors import http_server  # a real web server: silent until a request

COMMAND = Path(sys.executable).with_name("sessionflow")
DAY = ["--symbols", "AAPL,MSFT", "--start", "2024-11-25", "--end", "2024-11-26"]
HTTP_REPLY = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
SSH_BANNER = b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n"


@contextmanager
def speaking(greeting: bytes) -> Iterator[int]:
    """A TCP server that writes ``greeting`` on accept and holds the connection open."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        held = []
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            conn.sendall(greeting)
            held.append(conn)
        for conn in held:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(10)
        listener.close()


def ssh_like() -> Iterator[int]:
    return speaking(SSH_BANNER)  # type: ignore[return-value]


def http_reply() -> Iterator[int]:
    return speaking(HTTP_REPLY)  # type: ignore[return-value]


SERVERS: list[Callable[[], Iterator[int]]] = [http_server, ssh_like, http_reply]  # type: ignore[list-item]


def sessionflow(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.mark.parametrize("server", SERVERS, ids=["http-silent", "ssh-banner", "http-reply"])
def test_a_port_that_is_not_a_dask_scheduler_is_one_line(
    demo_store_path: Path, server: Callable[[], Iterator[int]]
) -> None:
    with server() as port:  # type: ignore[attr-defined]
        address = f"tcp://127.0.0.1:{port}"
        assert answers_as_dask("127.0.0.1", port) is False
        # the old client waited minutes here (timeout: the test fails, it does not hang)
        done = sessionflow("backtest", "--store", str(demo_store_path), *DAY,
                           "--scheduler", address, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        f"error: scheduler {address}: 127.0.0.1:{port} did not answer as a Dask scheduler "
        "(another service on that port?)\n"
    )
    assert done.stdout == ""


def test_a_real_scheduler_answers_as_dask() -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address=None
    ) as cluster:
        target = tcp_target(str(cluster.scheduler_address))
        assert target is not None and answers_as_dask(*target) is True


def test_nothing_listening_is_left_to_the_client() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    assert answers_as_dask("127.0.0.1", port) is None


@pytest.mark.parametrize(
    ("address", "target"),
    [("tcp://10.0.0.1:8786", ("10.0.0.1", 8786)), ("localhost:8786", ("localhost", 8786)),
     ("tls://h:8786", None), ("tcp://h", None), ("tcp://h:x", None)],
)  # fmt: skip
def test_only_tcp_addresses_are_probed(address: str, target: tuple[str, int] | None) -> None:
    assert tcp_target(address) == target


def test_workers_beyond_the_cpus_are_capped_with_a_note(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cap = usable_cpus()
    assert local_workers(cap) == cap and capsys.readouterr().err == ""
    assert local_workers(64 * cap) == cap
    assert capsys.readouterr().err == (
        f"note: --workers {64 * cap} capped at {cap}, the CPUs this process may use "
        "(one single-threaded worker process per CPU)\n"
    )


def test_workers_64_runs_capped_without_a_traceback(demo_store_path: Path) -> None:
    single = sessionflow("backtest", "--store", str(demo_store_path), *DAY, "--json")
    done = sessionflow("backtest", "--store", str(demo_store_path), *DAY, "--json",
                       "--workers", "64")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"note: --workers 64 capped at {usable_cpus()}, the CPUs this process may use "
        "(one single-threaded worker process per CPU)"
    ]
    assert done.stdout == single.stdout
