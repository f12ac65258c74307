"""The corporate-actions round: adjusted history and export against factors worked out by hand.

A store of AAA and BBB over 2024-11-22 .. 12-04 (the holiday and the early close
inside) gets splits, a reverse split and cash dividends through ``import actions``'
own functions. The reference is computed here from the raw bars kept in memory,
never read back through the engine: a dividend's factor is ``1 - cash / close`` of
the symbol's last regular bar before the ex-date's open (the previous session, even
across the holiday), and a bar of day ``d`` seen as of session ``S`` is scaled by
every action with ``d < ex_date <= S``, in ex-date order, volumes rounded after each.
Compared: the stored actions, every 1m bar of a backtest's trailing history at each
session start, the actions each session reports, and ``export bars --as-of``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import numpy as np

from sessionflow.check.rounds import Findings, RoundResult, compare_rows, judged
from sessionflow.demo import synthetic_bars
from sessionflow.events import Event, SessionStartEvent
from sessionflow.export import export_chunks
from sessionflow.importer.actions import actions_csv, write
from sessionflow.models import from_us, to_us
from sessionflow.store import BarBatch, DuckDBStore
from sessionflow.system_manager import Settings, build_system
from sessionflow.time_provider import ExchangeCalendar

ACTIONS_SYMBOLS = ("AAA", "BBB")
ACTIONS_START = date(2024, 11, 22)
ACTIONS_END = date(2024, 12, 4)
RUN_START = date(2024, 12, 2)  # its 5 trailing days reach back to ACTIONS_START
TRAILING = 5
MODE = "split_dividend"
# symbol, ex_date, split, cash dividend: a split, a dividend after the holiday (its
# reference close is two calendar days back), a split and a dividend on one day, a split
ACTIONS_CSV = (
    "symbol,ex_date,split,dividend\n"
    "AAA,2024-11-26,2,\n"
    "BBB,2024-11-29,,0.5\n"
    "BBB,2024-12-02,3,\n"
    "AAA,2024-12-03,0.5,0.4\n"
)
Row = tuple[float, float, float, float, int]
HandAction = tuple[str, date, float, float, float]  # symbol, ex_date, split, cash, factor


def raw_actions_bars(calendar: ExchangeCalendar) -> BarBatch:
    return synthetic_bars(calendar, ACTIONS_SYMBOLS, ACTIONS_START, ACTIONS_END, seed=7)


def build_actions_store(path: Path, calendar: ExchangeCalendar) -> BarBatch:
    """The store, with its actions imported as ``import actions`` does; returns the raw bars."""
    bars = raw_actions_bars(calendar)
    src = path.with_suffix(".actions.csv")
    src.write_text(ACTIONS_CSV)
    store = DuckDBStore(path)
    try:
        store.upsert_bars(bars)
        error = write(store, [actions_csv(src, store, calendar)])
    finally:
        store.close()
    if error is not None:
        raise RuntimeError(f"import actions: {error}")
    return bars


def hand_actions(bars: BarBatch, calendar: ExchangeCalendar) -> list[HandAction]:
    """The file's actions with dividend factors from the raw bars, by (ex_date, symbol)."""
    out = []
    for line in ACTIONS_CSV.splitlines()[1:]:
        sym, ex_text, split_text, cash_text = line.split(",")
        ex = date.fromisoformat(ex_text)
        split, cash = float(split_text or 1.0), float(cash_text or 0.0)
        factor = 1.0
        if cash:
            before = (bars.symbol == sym) & (bars.ts_us < to_us(calendar.session(ex).open))
            factor = 1.0 - cash / float(bars.close[np.flatnonzero(before)[-1]])
        out.append((sym, ex, split, cash, factor))
    return sorted(out, key=lambda a: (a[1], a[0]))


def hand_adjusted(
    bars: BarBatch, actions: Sequence[HandAction], symbol: str, day: date, as_of: date
) -> dict[int, Row]:
    """``symbol``'s raw bars of ``day`` scaled for the actions with day < ex_date <= as_of."""
    calendar = ExchangeCalendar()
    s = calendar.session(day)
    pick = (bars.symbol == symbol) & (bars.ts_us >= to_us(s.open)) & (bars.ts_us < to_us(s.close))
    out: dict[int, Row] = {}
    for i in np.flatnonzero(pick).tolist():
        o, h, lo, c = (float(bars.open[i]), float(bars.high[i]), float(bars.low[i]),
                       float(bars.close[i]))  # fmt: skip
        v = int(bars.volume[i])
        for sym, ex, split, _, factor in actions:
            if sym == symbol and day < ex <= as_of:
                price = (1.0 / split) * factor
                o, h, lo, c = o * price, h * price, lo * price, c * price
                v = int(np.rint(v * split))
        out[int(bars.ts_us[i])] = (o, h, lo, c, v)
    return out


def run_actions_round(workdir: Path, calendar: ExchangeCalendar) -> RoundResult:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "actions.duckdb"

    def body(found: Findings) -> None:
        bars = build_actions_store(path, calendar)
        hand = hand_actions(bars, calendar)
        store = DuckDBStore(path, read_only=True)
        try:
            stored = store.load_actions(list(ACTIONS_SYMBOLS))
            found.differ(compare_rows(
                "stored actions (split, dividend, factor)",
                {(a.symbol, a.ex_date): (a.split, a.dividend, a.dividend_factor) for a in stored},
                {(a[0], a[1]): a[2:] for a in hand}, rel=1e-12,
            ))  # fmt: skip
            found.saw(f"{len(hand)} stored actions vs the file with factors from the raw bars")
            _history(found, store, bars, hand)
            _export(found, store, bars, hand, calendar)
        finally:
            store.close()

    return judged("corporate actions", body)


def _history(found: Findings, store: DuckDBStore, bars: BarBatch, hand: list[HandAction]) -> None:
    """Every trailing 1m bar at each session start, and the actions each session lists."""
    settings = Settings.load(
        store_path=store.path, symbols=list(ACTIONS_SYMBOLS), start=RUN_START, end=ACTIONS_END,
        trailing_days=TRAILING, adjustment=MODE, historical_intervals=[1],
    )  # fmt: skip
    system = build_system(settings, store=store)
    calendar = system.calendar
    got: dict[tuple[date, str, date, int], Row] = {}

    def probe(ev: Event) -> None:
        if not isinstance(ev, SessionStartEvent):
            return
        for d in calendar.previous_sessions(ev.session, TRAILING):
            for sym in ACTIONS_SYMBOLS:
                for b in system.data_manager.history(sym, 1, d.date):
                    row = (b.open, b.high, b.low, b.close, b.volume)
                    got[(ev.session, sym, d.date, to_us(b.ts))] = row

    system.on_event(probe)
    system.run()
    want: dict[tuple[date, str, date, int], Row] = {}
    listed, expected = {}, {}
    previous: date | None = None
    for s in calendar.sessions(RUN_START, ACTIONS_END):
        days = calendar.previous_sessions(s.date, TRAILING)
        for d in days:
            for sym in ACTIONS_SYMBOLS:
                for ts, row in hand_adjusted(bars, hand, sym, d.date, s.date).items():
                    want[(s.date, sym, d.date, ts)] = row
        after = previous if previous is not None else days[0].date
        expected[(s.date,)] = tuple(f"{a[0]} {a[1]}" for a in hand if after < a[1] <= s.date)
        previous = s.date
    for rep in system.data_manager.reports:
        listed[(rep.session,)] = tuple(f"{a['symbol']} {a['ex_date']}" for a in rep.actions)
    found.differ(compare_rows(
        f"history 1m bars ({MODE}) at session starts", _shown(got), _shown(want), rel=1e-12
    ))  # fmt: skip
    found.differ(compare_rows("actions each session reports applied", listed, expected))
    found.saw(
        f"{len(want)} trailing 1m bars at {len(expected)} session starts and the actions "
        "each session lists vs the same by hand"
    )


def _shown(rows: dict[tuple[date, str, date, int], Row]) -> dict[tuple[str, ...], Row]:
    """Keys a reader can find: as-of session, symbol, bar open (UTC)."""
    return {(f"as of {s}", sym, f"{from_us(ts):%Y-%m-%d %H:%MZ}"): v
            for (s, sym, _, ts), v in rows.items()}  # fmt: skip


def _export(
    found: Findings,
    store: DuckDBStore,
    bars: BarBatch,
    hand: list[HandAction],
    calendar: ExchangeCalendar,
) -> None:
    sessions = calendar.sessions(ACTIONS_START, ACTIONS_END)
    got: dict[tuple[str, str], Row] = {}
    for c in export_chunks(store, list(ACTIONS_SYMBOLS), sessions, 1, ACTIONS_END, MODE):
        for i in range(len(c)):
            row = (float(c.open[i]), float(c.high[i]), float(c.low[i]), float(c.close[i]),
                   int(c.volume[i]))  # fmt: skip
            got[(str(c.symbol[i]), f"{from_us(int(c.ts_us[i])):%Y-%m-%d %H:%MZ}")] = row
    want: dict[tuple[str, str], Row] = {
        (sym, f"{from_us(ts):%Y-%m-%d %H:%MZ}"): row
        for s in sessions
        for sym in ACTIONS_SYMBOLS
        for ts, row in hand_adjusted(bars, hand, sym, s.date, ACTIONS_END).items()
    }
    found.differ(compare_rows(f"export --as-of {ACTIONS_END} ({MODE}) 1m bars", got, want,
                              rel=1e-12))  # fmt: skip
    found.saw(f"{len(want)} exported 1m bars as of {ACTIONS_END} vs the same by hand")
