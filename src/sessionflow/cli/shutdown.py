"""How a command runs a system: Ctrl-C stops it within a budget, and a worker thread
that does not stop is named in one line and makes the command exit non-zero.

Why: a command that reports success while a consumer callback or an upkeep job is
still running would hide unfinished work (the threads are daemons and die with the
process).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:  # the manager pulls in the data manager: not for an import
    from sessionflow.system_manager import SystemManager


EXIT_INTERRUPTED = 130
EXIT_UNJOINED = 3
STOP_TIMEOUT_S = 2.0


def run_system(system: SystemManager) -> None:
    """``system.run()``; Ctrl-C stops the workers and exits 130, or 3 if one did not stop."""
    if run_interruptible(system):
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)


def run_interruptible(system: SystemManager) -> bool:
    """Like :func:`run_system`, but a Ctrl-C returns True once the workers have stopped,
    so the command can print what completed before it exits 130."""
    with quiet_stop_log():
        try:
            system.run()
        except KeyboardInterrupt:
            system.stop(STOP_TIMEOUT_S)
            exit_if_unjoined(system)
            return True
        except BaseException:
            exit_if_unjoined(system)
            raise
        exit_if_unjoined(system)
    return False


def _not_a_stop_report(record: logging.LogRecord) -> bool:
    return not hasattr(record, "stop_report")


@contextmanager
def quiet_stop_log() -> Iterator[None]:
    """While a command runs it prints the stop report itself: drop the library's log line."""
    logger = logging.getLogger("sessionflow.system_manager.manager")
    logger.addFilter(_not_a_stop_report)
    try:
        yield
    finally:
        logger.removeFilter(_not_a_stop_report)


def exit_if_unjoined(system: SystemManager) -> None:
    """After a stop: one line naming the threads that did not stop, then exit 3."""
    report = system.stop_report
    if report is not None and not report.joined:
        typer.echo(f"error: {report.message()}", err=True)
        raise typer.Exit(EXIT_UNJOINED)
