"""A Dask client for the run: a local cluster of processes, or an existing scheduler.

Local workers are processes with one thread each: a shard is a whole system with
its own two threads, and a DuckDB reader per process is what the store allows
beside other readers. No dashboard (the scheduler's health routes take a random
loopback port, not 8787), the cluster's own logs are silenced (the command prints its
progress), workers ignore Ctrl-C (the command handles it) and the cluster is closed
however the run ends.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sessionflow.sharding.probe import answers_as_dask, tcp_target

if TYPE_CHECKING:
    from distributed import Client

CONNECT_TIMEOUT_S = 5.0


class ClusterError(RuntimeError):
    """A scheduler that cannot be reached or a local cluster that cannot start."""


@contextmanager
def _children_ignore_sigint() -> Iterator[None]:
    """Worker processes started in here inherit an ignored SIGINT: a Ctrl-C reaches the
    whole process group, and only the command should act on it (it closes the cluster)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Client]:
    """A client of the scheduler at ``scheduler``, or of ``workers`` local processes."""
    from distributed import Client, LocalCluster

    if scheduler is not None:
        target = tcp_target(scheduler)
        if target is not None and answers_as_dask(*target) is False:
            raise ClusterError(
                f"scheduler {scheduler}: {target[0]}:{target[1]} did not answer as a Dask "
                "scheduler (another service on that port?)"
            )
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"scheduler {scheduler}: cannot connect ({exc})") from None
        try:
            yield client
        finally:
            client.close()
        return
    if workers is None or workers < 1:
        raise ClusterError(f"workers must be at least 1, got {workers}")
    try:
        with _children_ignore_sigint():
            cluster = LocalCluster(
                n_workers=workers,
                processes=True,
                threads_per_worker=1,
                dashboard_address=None,
                scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # health routes only
                silence_logs=logging.ERROR,
            )
    except (OSError, TimeoutError, RuntimeError) as exc:
        raise ClusterError(f"local cluster of {workers} worker(s) did not start ({exc})") from None
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()
