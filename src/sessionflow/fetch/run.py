"""One download: windows of pages, each page validated and written in its own transaction.

Every page goes through the importer's ``RowChecker`` (the checks and reasons of
``import bars``) and ``run_import`` (its staging and conflict policy), one page per
transaction: a Ctrl-C or a failure keeps every page written before it. A window's
(symbol, session) pairs are recorded in ``fetch_log`` once its last page is written,
so an interrupted window is asked for again (its rows come back ``unchanged``).

Bars of a window outside its sessions' hours (the night between two sessions, or
04:00-09:30 and 16:00-20:00 without ``--extended``) are not rows of this download:
they are counted as ``outside_hours``, not rejected. A bar repeated on two pages of
one window is not caught as a duplicate (each page is checked alone); the store keeps
one row and counts it unchanged or replaced.
"""

from __future__ import annotations

import bisect
import csv
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from sessionflow.feeds.alpaca_history import AlpacaHistory
from sessionflow.feeds.alpaca_parse import Malformed, parse_trade
from sessionflow.fetch.base import FetchStopped, page_items, report_dict
from sessionflow.fetch.plan import MAX_BARS, MAX_SYMBOLS, Plan, Window, plan_windows
from sessionflow.fetch.quotes import QUOTE_SYMBOLS, QuotesReport, quote_window
from sessionflow.importer import ImportReport, Job, run_import
from sessionflow.importer.actions import actions_csv, write
from sessionflow.importer.bars import RowChecker
from sessionflow.importer.validate import NaiveTime, RowProblem, parse_time
from sessionflow.models import Tick, from_us, to_us
from sessionflow.store import BarBatch, CommandStore, QuoteBatch
from sessionflow.store.base import I64
from sessionflow.time_provider import ExchangeCalendar

MAX_EXAMPLES = 20
TRADE_SYMBOLS = 10  # per trades request: a liquid symbol prints 100,000s of trades a session
_US = timedelta(microseconds=1)  # rejections listed in the report; all are counted
_PRICE_KEYS = ("o", "h", "l", "c", "v")
# Alpaca corporate-action types this store models; others are counted, not imported
SPLITS = ("forward_splits", "reverse_splits")
DIVIDENDS = ("cash_dividends",)


@dataclass
class ActionsReport:
    received: int = 0  # actions Alpaca sent for these symbols
    imported: int = 0
    new: int = 0
    unchanged: int = 0
    replaced: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejections: list[str] = field(default_factory=list)
    not_modelled: Counter[str] = field(default_factory=Counter)  # type -> count, not imported

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "imported": self.imported,
            "new": self.new,
            "unchanged": self.unchanged,
            "replaced": self.replaced,
            "rejected": dict(sorted(self.rejected.items())),
            "rejections": self.rejections,
            "not_modelled": dict(sorted(self.not_modelled.items())),
        }


@dataclass
class TradesReport:
    """``--trades``: prints Alpaca sent, stored in the ticks table, or not (with a reason)."""

    source: str
    already: int = 0
    completed: int = 0
    pages: int = 0
    rows: int = 0
    written: int = 0  # new or replacing a stored print with the same (symbol, time, id)
    outside_hours: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejections: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return report_dict(self)


@dataclass
class FetchReport:
    """What one run did; every row Alpaca sent is new, unchanged, replaced, kept,
    rejected (with a reason) or outside_hours."""

    source: str
    symbols: int = 0
    sessions: int = 0
    not_closed: list[date] = field(default_factory=list)
    already: int = 0  # symbol-sessions complete before this run: not asked for
    completed: int = 0  # symbol-sessions completed by this run
    empty: int = 0  # of those, with no bar at all
    windows: int = 0
    windows_done: int = 0
    pages: int = 0
    requests: int = 0
    rows: int = 0  # bars received
    outside_hours: int = 0
    new: int = 0
    unchanged: int = 0
    replaced: int = 0
    kept: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    rejections: list[str] = field(default_factory=list)
    rate_limited: int = 0
    rate_limit_wait_s: float = 0.0
    server_errors: int = 0
    actions: ActionsReport | None = None
    trades: TradesReport | None = None
    quotes: QuotesReport | None = None
    interrupted: bool = False
    error: str | None = None

    @property
    def imported(self) -> int:
        return self.new + self.unchanged + self.replaced + self.kept

    def add_page(self, page: ImportReport) -> None:
        self.new += page.new
        self.unchanged += page.unchanged
        self.replaced += page.replaced
        self.kept += page.kept
        self.rejected.update(page.rejected)
        for _, reason, detail in page.rejections:
            if len(self.rejections) < MAX_EXAMPLES:
                self.rejections.append(f"{reason}: {detail}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "symbols": self.symbols,
            "sessions": self.sessions,
            "not_closed": [d.isoformat() for d in self.not_closed],
            "already_complete": self.already,
            "completed": self.completed,
            "empty": self.empty,
            "windows": self.windows,
            "windows_done": self.windows_done,
            "pages": self.pages,
            "requests": self.requests,
            "rows": self.rows,
            "imported": self.imported,
            "new": self.new,
            "unchanged": self.unchanged,
            "replaced": self.replaced,
            "kept": self.kept,
            "outside_hours": self.outside_hours,
            "rejected": dict(sorted(self.rejected.items())),
            "rejections": self.rejections,
            "rate_limited": self.rate_limited,
            "rate_limit_wait_s": round(self.rate_limit_wait_s, 3),
            "server_errors": self.server_errors,
            "actions": self.actions.to_dict() if self.actions is not None else None,
            "trades": self.trades.to_dict() if self.trades is not None else None,
            "quotes": self.quotes.to_dict() if self.quotes is not None else None,
            "interrupted": self.interrupted,
        }
        if self.error is not None:
            out["error"] = self.error
        return out


OnPage = Callable[[FetchReport, Window], None]  # after each written page (progress)


def source_key(feed: str, extended: bool) -> str:
    """The ``fetch_log`` source: a session fetched from one feed or hours is not the other's."""
    return f"alpaca:{feed}:bars" + (":extended" if extended else "")


def fetch_alpaca(
    store: CommandStore,
    client: AlpacaHistory,
    calendar: ExchangeCalendar,
    symbols: Sequence[str],
    start: date,
    end: date,
    now: datetime,
    extended: bool = False,
    on_conflict: str = "error",
    on_page: OnPage | None = None,
    actions: bool = True,
    trades: bool = False,
    max_symbols: int = MAX_SYMBOLS,
    max_bars: int = MAX_BARS,
    quotes: bool = False,
    bars: bool = True,
) -> FetchReport:
    """Fill ``store`` with what is missing; raises KeyboardInterrupt, ``HistoryRefused``,
    ``HistoryFailed`` or :class:`FetchStopped` with ``report`` attached (``exc.report``).

    ``bars=False`` fetches only the trades and quotes asked for (and no corporate
    actions, which come with the bars)."""
    source = source_key(client.feed.value, extended)
    report = FetchReport(source, symbols=len(set(symbols)))
    try:
        done = store.fetched_sessions(source, symbols)
        plan = plan_windows(
            calendar, symbols, start, end, done, now, extended, max_symbols, max_bars
        )
        report.sessions, report.not_closed = len(plan.sessions), plan.not_closed
        bar_windows = plan.windows if bars else []
        report.already, report.windows = plan.already if bars else 0, len(bar_windows)
        trade_plan = None

        def by_session(kind: str, per: int) -> Plan:
            """One window per session and ``per`` symbols, of what ``kind`` lacks."""
            done = store.fetched_sessions(source.replace(":bars", kind), symbols)
            got = plan_windows(calendar, symbols, start, end, done, now, extended, per, 1)
            report.windows += len(got.windows)
            return got

        if trades:
            report.trades = TradesReport(source.replace(":bars", ":trades"))
            trade_plan = by_session(":trades", TRADE_SYMBOLS)
            report.trades.already = trade_plan.already
        quote_plan = None
        if quotes:
            report.quotes = QuotesReport(source.replace(":bars", ":quotes"))
            quote_plan = by_session(":quotes", QUOTE_SYMBOLS)
            report.quotes.already = quote_plan.already
        for window in bar_windows:
            _window(store, client, calendar, window, source, extended, on_conflict, report, on_page)
        for window in trade_plan.windows if trade_plan is not None else []:
            _trade_window(store, client, window, report, on_page)
        for window in quote_plan.windows if quote_plan is not None else []:
            _quote_window(store, client, calendar, window, on_conflict, report, on_page)
        if actions and bars and plan.sessions:
            report.actions = _actions(store, client, calendar, symbols, plan, report)
    except BaseException as exc:
        _tally(report, client)
        exc.report = report  # type: ignore[attr-defined]
        raise
    _tally(report, client)
    return report


def _tally(report: FetchReport, client: AlpacaHistory) -> None:
    report.requests = client.requests
    report.rate_limited, report.rate_limit_wait_s = client.rate_limited, client.rate_limit_wait_s
    report.server_errors = client.server_errors


def _window(
    store: CommandStore,
    client: AlpacaHistory,
    calendar: ExchangeCalendar,
    window: Window,
    source: str,
    extended: bool,
    on_conflict: str,
    report: FetchReport,
    on_page: OnPage | None,
) -> None:
    starts = [lo for lo, _ in window.bounds]
    counts: Counter[tuple[str, int]] = Counter()  # (symbol, session index) -> rows accepted
    wanted = set(window.symbols)
    for rows in client.bar_pages(window.symbols, window.start, window.end):
        report.pages += 1
        page = ImportReport(f"alpaca {client.feed.value} page {report.pages}")
        checker = RowChecker(Path(page.file), page, calendar, None, extended, "utc_us")
        line = report.rows
        for symbol, bars in sorted(rows.items()):
            for bar in bars if isinstance(bars, list) else [bars]:
                line += 1
                report.rows += 1
                if symbol not in wanted:
                    page.rows += 1
                    page.reject(line, "unknown_symbol", f"{symbol!r} was not asked for")
                    continue
                us = _bar_time(bar, page, line)
                if us is None:
                    page.rows += 1
                    continue
                i = bisect.bisect_right(starts, us) - 1
                if i < 0 or us >= window.bounds[i][1]:
                    report.outside_hours += 1
                    continue
                page.rows += 1
                checker.add(line, symbol, us, [bar.get(k) for k in _PRICE_KEYS])
        if page.rows:
            batch = _write_page(store, page, checker, on_conflict)
            session = np.searchsorted(starts, batch.ts_us, side="right") - 1
            counts.update(zip(batch.symbol.tolist(), session.tolist(), strict=True))
            report.add_page(page)
        if on_page is not None:
            on_page(report, window)
    done = [
        (sym, s.date, counts[(sym, i)])
        for i, s in enumerate(window.sessions)
        for sym in window.symbols
    ]
    store.record_fetched(source, done)
    report.completed += len(done)
    report.empty += sum(1 for _, _, n in done if n == 0)
    report.windows_done += 1
    if on_page is not None:
        on_page(report, window)


def _trade_window(
    store: CommandStore,
    client: AlpacaHistory,
    window: Window,
    report: FetchReport,
    on_page: OnPage | None,
) -> None:
    """One session of trades: each page checked as the live feed checks a trade
    (``parse_trade``, plus a price above 0) and written in one transaction."""
    out = report.trades
    assert out is not None
    lo, hi = window.bounds[0]
    wanted = set(window.symbols)
    for rows in client.trade_pages(window.symbols, window.start, from_us(hi) - _US):
        out.pages += 1
        ticks: list[Tick] = []
        for symbol, item in page_items(rows):
            out.rows += 1
            try:
                if symbol not in wanted:
                    raise Malformed("unknown_symbol", f"{symbol!r} was not asked for")
                tick = parse_trade({**item, "S": symbol})
                if tick.price <= 0:
                    raise Malformed("non_positive_price", f"price {tick.price!r}")
            except (Malformed, TypeError) as exc:
                reason = exc.reason if isinstance(exc, Malformed) else "malformed_row"
                out.rejected[reason] += 1
                if len(out.rejections) < MAX_EXAMPLES:
                    out.rejections.append(f"{reason}: {symbol} {exc}")
                continue
            if not lo <= to_us(tick.ts) < hi:
                out.outside_hours += 1
                continue
            ticks.append(tick)
        if ticks:
            out.written += store.upsert_ticks(ticks)
        if on_page is not None:
            on_page(report, window)
    session = window.sessions[0].date
    store.record_fetched(out.source, [(sym, session, 0) for sym in window.symbols])
    out.completed += len(window.symbols)
    report.windows_done += 1
    if on_page is not None:
        on_page(report, window)


def _quote_window(
    store: CommandStore,
    client: AlpacaHistory,
    calendar: ExchangeCalendar,
    window: Window,
    on_conflict: str,
    report: FetchReport,
    on_page: OnPage | None,
) -> None:
    """One session of quotes (:func:`~sessionflow.fetch.quotes.quote_window`), with progress."""
    assert report.quotes is not None

    def page() -> None:
        if on_page is not None:
            on_page(report, window)

    quote_window(store, client, calendar, window, on_conflict, report.quotes, page)
    report.windows_done += 1
    page()


def _bar_time(bar: Any, page: ImportReport, line: int) -> int | None:
    """The bar's open as epoch microseconds, or None (rejected with a reason)."""
    if not isinstance(bar, dict) or any(k not in bar for k in ("t", *_PRICE_KEYS)):
        page.reject(line, "malformed_row", f"not a bar map with t, o, h, l, c, v: {bar!r:.120}")
        return None
    try:
        return parse_time(str(bar["t"]), None)
    except RowProblem as p:
        page.reject(line, p.reason, p.detail)
    except NaiveTime as naive:
        page.reject(line, "unparsable_time", f"time {naive.text!r} has no UTC offset")
    return None


def _write_page(
    store: CommandStore, page: ImportReport, checker: RowChecker, on_conflict: str
) -> BarBatch:
    """The page's good rows written in one transaction; returns them (none if all rejected)."""
    batch, lines = checker.take()

    def chunks() -> Iterator[tuple[BarBatch | QuoteBatch, I64]]:
        yield batch, lines

    result = run_import(store, [Job(page, chunks)], on_conflict)
    if result.committed or page.imported == 0:  # a page of rejected rows writes nothing: fine
        return batch
    raise FetchStopped(result.error or page.error or "the store refused the page")


def _actions(
    store: CommandStore,
    client: AlpacaHistory,
    calendar: ExchangeCalendar,
    symbols: Sequence[str],
    plan: Plan,
    report: FetchReport,
) -> ActionsReport:
    """Splits and cash dividends of ``symbols`` over the sessions, through ``import actions``."""
    out = ActionsReport()
    names = sorted(set(symbols))
    first, last = plan.sessions[0].date, plan.sessions[-1].date
    merged: dict[tuple[str, str], list[float]] = {}  # (symbol, ex_date) -> [split, dividend]
    for i in range(0, len(names), MAX_SYMBOLS):
        chunk = names[i : i + MAX_SYMBOLS]
        wanted = set(chunk)
        for kind, items in client.corporate_actions(chunk, first, last).items():
            for item in items:
                symbol = str(item.get("symbol", ""))
                if symbol not in wanted:
                    continue
                out.received += 1
                if kind not in SPLITS and kind not in DIVIDENDS:
                    out.not_modelled[kind] += 1
                    continue
                key = (symbol, str(item.get("ex_date", "")))
                row = merged.setdefault(key, [1.0, 0.0])
                try:
                    if kind in SPLITS:
                        row[0] *= float(item["new_rate"]) / float(item["old_rate"])
                    else:
                        row[1] += float(item["rate"])
                except (KeyError, TypeError, ValueError, ZeroDivisionError):
                    out.rejected["bad_factor"] += 1
                    out.rejections.append(f"bad_factor: {kind} {item!r:.120}")
                    merged.pop(key, None)
    if merged:
        _write_actions(store, calendar, merged, out)
    return out


def _write_actions(
    store: CommandStore,
    calendar: ExchangeCalendar,
    merged: dict[tuple[str, str], list[float]],
    out: ActionsReport,
) -> None:
    """Through ``import actions``' own reader: the same checks (ex-date a session, factor
    bounds, a dividend below the stored close before it) and one transaction."""
    with tempfile.TemporaryDirectory(prefix="sessionflow-fetch-") as tmp:
        path = Path(tmp) / "alpaca-corporate-actions.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["symbol", "ex_date", "split", "dividend"])
            for (symbol, ex), (split, cash) in sorted(merged.items()):
                w.writerow([symbol, ex, repr(split), repr(cash) if cash else ""])
        parsed = actions_csv(path, store, calendar)
    rep = parsed.report
    rep.file = "alpaca corporate actions"
    out.rejected.update(rep.rejected)
    for line, reason, detail in rep.rejections:
        if len(out.rejections) < MAX_EXAMPLES:
            symbol, ex = sorted(merged)[line - 2]
            out.rejections.append(f"{reason}: {symbol} ex {ex}: {detail}")
    if not parsed.parsed.actions:
        return
    error = write(store, [parsed])
    if error is not None:
        raise FetchStopped(f"corporate actions: {error}")
    out.imported = rep.imported
    out.new, out.unchanged, out.replaced = rep.new, rep.unchanged, rep.replaced


__all__ = [
    "ActionsReport",
    "FetchReport",
    "FetchStopped",
    "QuotesReport",
    "TradesReport",
    "fetch_alpaca",
    "source_key",
]
