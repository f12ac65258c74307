"""Progress for long commands, and what a Ctrl-C keeps.

The library never prints: the importer reports per chunk through a callback and the
replay is watched by an ordinary batch consumer, so the same progress works for any
caller. Progress goes to stderr (stdout stays the report or the JSON), only when it is a
terminal and not with ``--json``: a log or a pipe gets no redraw noise. The replay consumer
touches the display at most every REFRESH_S seconds, so at speed 0 it costs one clock read
per instant, not a redraw.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from sessionflow.cli.render import session_tables
from sessionflow.cli.shutdown import EXIT_INTERRUPTED, run_interruptible
from sessionflow.events import BarSliceEvent, BatchEvent, SessionEndEvent, SessionStartEvent
from sessionflow.importer import ImportReport
from sessionflow.importer.command import OnProgress
from sessionflow.session_data import SessionReport

if TYPE_CHECKING:  # the manager pulls in the data manager: not for an import
    from sessionflow.system_manager import SystemManager

REFRESH_S = 0.1


def _terminal(as_json: bool) -> Console | None:
    """stderr when it is a terminal and the output is not JSON; a log or a pipe gets nothing."""
    console = Console(stderr=True)
    if as_json or not console.is_terminal:
        return None
    return Console(stderr=True, width=max(console.width, 100))


@contextmanager
def import_progress(files: int, as_json: bool) -> Iterator[OnProgress | None]:
    """A progress callback for :func:`run_import` showing file i/n and rows read, or None."""
    console = _terminal(as_json)
    if console is None:
        yield None
        return
    columns = (
        TextColumn("[bold]import"),
        BarColumn(bar_width=20),
        TextColumn("{task.completed}/{task.total} files"),
        TextColumn("{task.fields[rows]:,} rows {task.fields[rate]}"),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("", total=files, rows=0, rate="")
        rows: dict[int, int] = {}
        total = 0  # kept as files report: summing every file's rows per call was quadratic
        t0 = time.monotonic()

        def on_progress(index: int, report: ImportReport) -> None:
            nonlocal total
            total += report.rows - rows.get(index, 0)
            rows[index] = report.rows
            elapsed = time.monotonic() - t0
            rate = f"({total / elapsed:,.0f}/s)" if elapsed > 0.5 else ""
            name = Path(report.file).name
            progress.update(task, completed=index + 1, rows=total, rate=rate, description=name)

        yield on_progress


def _tz_label(tz: ZoneInfo) -> str:
    return "ET" if tz.key == "America/New_York" else tz.key


class ReplayProgress:
    """A batch consumer that follows simulated time: session, minute, bars per second.

    Runs on the coordinator thread. It records the session and minute reached even when
    nothing is shown (``--json``), for the partial report after a Ctrl-C.
    """

    def __init__(self, progress: Progress | None, sessions: int, tz: ZoneInfo) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        if progress is not None:
            self.task = progress.add_task("", total=sessions)
        self.tz = tz
        self.session: date | None = None
        self.now: datetime | None = None
        self.bars = 0
        self.done = 0
        self._t0: float | None = None
        self._shown = 0.0

    def __call__(self, ev: BatchEvent) -> None:
        if isinstance(ev, BarSliceEvent):
            self.bars += len(ev.bars)
            self.now = ev.time
        elif isinstance(ev, SessionStartEvent):
            self.session, self.now = ev.session, ev.time
            self._shown = 0.0  # show a new session at once
        elif isinstance(ev, SessionEndEvent):
            self.done += 1
            self._shown = 0.0
        if self.progress is None:
            return
        t = time.monotonic()
        if self._t0 is None:
            self._t0 = t
        if t - self._shown >= REFRESH_S:
            self._shown = t
            self._show(t)

    def minute(self) -> str:
        if self.now is None:
            return "-"
        return f"{self.now.astimezone(self.tz):%H:%M} {_tz_label(self.tz)}"

    def _show(self, t: float) -> None:
        assert self.progress is not None and self.task is not None and self._t0 is not None
        rate = self.bars / (t - self._t0) if t > self._t0 else 0.0
        text = f"{self.session} {self.minute()}  {rate:,.0f} bars/s"
        self.progress.update(self.task, completed=self.done, description=text)


@dataclass
class Replay:
    """The outcome of a replay: completed sessions and, after a Ctrl-C, the partial one."""

    reports: list[SessionReport]
    interrupted: bool = False
    partial: SessionReport | None = None
    until: str = "-"  # the simulated minute reached, exchange time, for people
    until_iso: str | None = None  # the same instant for programs (ISO 8601, exchange offset)
    total: int = 0

    def session_dicts(self) -> list[dict[str, Any]]:
        out = [r.to_dict() for r in self.reports]
        if self.partial is not None:
            d = self.partial.to_dict()
            d["partial"], d["interrupted_at"] = True, self.until_iso
            out.append(d)
        return out

    def tables(self, intervals: list[int]) -> list[Table]:
        tables = session_tables(self.reports, intervals)
        if self.partial is not None:
            (table,) = session_tables([self.partial], intervals)
            table.title = f"{self.partial.session} (partial: interrupted at {self.until})"
            tables.append(table)
        return tables

    def exit_if_interrupted(self) -> None:
        """After the output: one line on stderr saying what completed, then exit 130."""
        if not self.interrupted:
            return
        line = f"interrupted: {len(self.reports)} of {self.total} session(s) completed"
        if self.partial is not None:
            line += f"; {self.partial.session} partial, up to {self.until}"
        typer.echo(line, err=True)
        raise typer.Exit(EXIT_INTERRUPTED)


def run_replay(system: SystemManager, as_json: bool) -> Replay:
    """Run ``system`` with progress on stderr (none with ``--json``); Ctrl-C keeps what ran."""
    sessions = len(system.data_manager.sessions)
    columns = (
        TextColumn("[bold]backtest"),
        BarColumn(bar_width=30),
        MofNCompleteColumn(),
        TextColumn("sessions"),
        TextColumn("{task.description}"),
    )
    console = _terminal(as_json)
    progress = None if console is None else Progress(*columns, console=console, transient=True)
    watch = ReplayProgress(progress, sessions, system.calendar.tz)
    system.on_batch(watch)
    if progress is None:
        interrupted = run_interruptible(system)
    else:
        with progress:
            interrupted = run_interruptible(system)
    replay = Replay(system.data_manager.reports, interrupted, total=sessions)
    if interrupted:
        replay.partial = partial_report(system)
        replay.until = watch.minute()
        if watch.now is not None:
            replay.until_iso = watch.now.astimezone(watch.tz).isoformat()
    return replay


def partial_report(system: SystemManager) -> SessionReport | None:
    """The report of the session a stop cut short, or None if no session was under way."""
    try:
        current = system.data_manager.session_data.report()
    except RuntimeError:  # no session had started
        return None
    done = system.data_manager.reports
    if done and done[-1].session == current.session:
        return None
    return current
