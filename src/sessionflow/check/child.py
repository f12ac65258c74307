"""Child processes for the crash checks: do real work, say when, get killed.

``python -m sessionflow.check.child import STORE FILE SYMBOL`` imports a bar file
and prints ``merging`` right before DuckDB writes its staged rows (MERGE, or INSERT
when all are new), inside the open transaction. ``python -m
sessionflow.check.child backtest STORE SYMBOLS START END`` runs a backtest at speed
0 and prints ``session <date>`` at each session start. The parent reads these lines
and sends SIGKILL, so the kill lands in the middle of real work rather than at a
point the code chose to stop.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

from sessionflow.events import Event, SessionStartEvent
from sessionflow.importer import import_bars
from sessionflow.store import DuckDBStore
from sessionflow.system_manager import Settings, build_system
from sessionflow.time_provider import ExchangeCalendar


class _AnnouncingCursor:
    """Passes everything to a DuckDB cursor; says ``merging`` before the write of the
    staged rows starts (a MERGE, or an INSERT when every row is new)."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, *args: Any) -> Any:
        head = sql.lstrip().upper().split("(")[0]
        if head.startswith("MERGE") or (head.startswith("INSERT") and "STAGE" not in head):
            print("merging", flush=True)
        return self._cursor.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class AnnouncingStore(DuckDBStore):
    """The real store; only its cursor announces the MERGE."""

    def _cursor(self) -> Any:
        return _AnnouncingCursor(super()._cursor())


def _import(store: str, file: str, symbol: str) -> None:
    db = AnnouncingStore(store)
    report = import_bars(db, Path(file), ExchangeCalendar(), symbol)
    db.close()
    print(f"done {report.imported}", flush=True)


def _backtest(store: str, symbols: str, start: str, end: str) -> None:
    settings = Settings.load(
        store_path=Path(store),
        symbols=symbols.split(","),
        start=date.fromisoformat(start),
        end=date.fromisoformat(end),
        speed=0.0,
    )
    system = build_system(settings)

    def announce(ev: Event) -> None:
        if isinstance(ev, SessionStartEvent):
            print(f"session {ev.session.isoformat()}", flush=True)

    system.on_event(announce)
    system.run()
    print("done", flush=True)


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[0] == "import":
        _import(*argv[1:])
        return 0
    if len(argv) == 5 and argv[0] == "backtest":
        _backtest(*argv[1:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
