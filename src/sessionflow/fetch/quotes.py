"""``fetch alpaca --quotes``: Alpaca's NBBO updates folded into the store's one-minute quote bars.

Why fold: the store's quotes table holds one-minute quote bars (bid and ask OHLC, the
last sizes), the ``Quote`` a backtest replays; ``/v2/stocks/quotes`` lists every
update, millions a symbol and day. The live feed folds its updates with
:class:`QuoteBarBuilder`; a download folds with the same builder, so a minute fetched
afterwards equals the minute a live run stored.

Each update is checked as the live feed checks one (``parse_quote``: a zoned time,
prices, whole sizes) plus both prices above 0 (Alpaca sends 0 for an empty side);
updates outside the session's hours are counted ``outside_hours``; one for a minute
already closed (out of time order) is rejected ``out_of_order``. Each page's closed
bars then get the quote import's row checks (``price_problem`` per side, nothing from
the future) and are written through ``run_import`` in one transaction. A symbol's last
open bar waits for the next page (at most one per symbol: memory is bounded by a
page) and the window's last bars are written after its last page, before the window
is marked complete in ``fetch_log``; an interrupted window is fetched again whole
(its bars come back ``unchanged``).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from sessionflow.feeds.alpaca_history import AlpacaHistory
from sessionflow.feeds.alpaca_parse import Malformed, parse_quote
from sessionflow.feeds.base import QuoteUpdate
from sessionflow.fetch.base import FetchStopped, page_items, report_dict
from sessionflow.fetch.plan import Window
from sessionflow.importer import ImportReport, Job, run_import
from sessionflow.importer.validate import SessionFilter, latest_bar_open_us
from sessionflow.models import Quote, from_us, price_problem, to_us
from sessionflow.store import BarBatch, CommandStore, QuoteBatch
from sessionflow.store.base import I64
from sessionflow.stream_coordinator.live.quotes import QuoteBarBuilder
from sessionflow.stream_coordinator.live.store import quote_batch
from sessionflow.time_provider import ExchangeCalendar

QUOTE_SYMBOLS = 10  # per quotes request: a liquid symbol updates its NBBO 100,000s of times
MAX_EXAMPLES = 20
_US = timedelta(microseconds=1)


@dataclass
class QuotesReport:
    """Every update received is folded, rejected (by reason) or outside_hours; every
    quote bar built is new, unchanged, replaced, kept or rejected (by reason)."""

    source: str
    already: int = 0  # symbol-sessions complete before this run: not asked for
    completed: int = 0
    pages: int = 0
    rows: int = 0  # updates received
    folded: int = 0  # updates folded into a bar
    outside_hours: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # updates, by reason
    bars: int = 0  # one-minute quote bars built from the folded updates
    new: int = 0
    unchanged: int = 0
    replaced: int = 0
    kept: int = 0
    bars_rejected: Counter[str] = field(default_factory=Counter)  # quote bars, by reason
    rejections: list[str] = field(default_factory=list)  # examples of both; all are counted

    def note(self, reason: str, detail: str, counter: Counter[str]) -> None:
        counter[reason] += 1
        if len(self.rejections) < MAX_EXAMPLES:
            self.rejections.append(f"{reason}: {detail}")

    def to_dict(self) -> dict[str, Any]:
        return report_dict(self)


def quote_window(
    store: CommandStore,
    client: AlpacaHistory,
    calendar: ExchangeCalendar,
    window: Window,
    on_conflict: str,
    out: QuotesReport,
    on_page: Callable[[], None],
) -> None:
    """One session of ``window.symbols``' quotes, page by page, then marked complete."""
    lo, hi = window.bounds[0]
    wanted = set(window.symbols)
    builder = QuoteBarBuilder()
    written: Counter[str] = Counter()  # symbol -> bars accepted
    for rows in client.quote_pages(window.symbols, window.start, from_us(hi) - _US):
        out.pages += 1
        closed: list[Quote] = []
        for symbol, item in page_items(rows):
            out.rows += 1
            update = _update(symbol, item, wanted, out)
            if update is None:
                continue
            if not lo <= update.ts_us < hi:
                out.outside_hours += 1
                continue
            late = builder.late
            closed += builder.add(update)
            if builder.late > late:
                out.note("out_of_order", f"{symbol} {item.get('t')!r}", out.rejected)
            else:
                out.folded += 1
        _write(store, calendar, closed, on_conflict, out, written)
        on_page()
    _write(store, calendar, builder.close_all(), on_conflict, out, written)
    session = window.sessions[0].date
    store.record_fetched(out.source, [(sym, session, written[sym]) for sym in window.symbols])
    out.completed += len(window.symbols)


def _update(symbol: str, item: Any, wanted: set[str], out: QuotesReport) -> QuoteUpdate | None:
    """One of Alpaca's quote maps as an update, or None (rejected with its reason)."""
    try:
        if symbol not in wanted:
            raise Malformed("unknown_symbol", f"{symbol!r} was not asked for")
        if not isinstance(item, dict):
            raise Malformed("malformed_row", f"not a quote map: {item!r:.80}")
        update = parse_quote({**item, "S": symbol})
        if update.bid <= 0 or update.ask <= 0:
            raise Malformed("non_positive_price", f"bid {update.bid!r}, ask {update.ask!r}")
    except Malformed as exc:
        out.note(exc.reason, f"{symbol} {exc}", out.rejected)
        return None
    return update


def _write(
    store: CommandStore,
    calendar: ExchangeCalendar,
    bars: Sequence[Quote],
    on_conflict: str,
    out: QuotesReport,
    written: Counter[str],
) -> None:
    """Closed quote bars checked as the quote import checks rows, written in one transaction."""
    if not bars:
        return
    first = out.bars + 1
    out.bars += len(bars)
    batch = quote_batch(bars)
    regular, _ = SessionFilter(calendar).classify_many(batch.ts_us)
    batch = dataclasses.replace(batch, regular=regular)
    page = ImportReport(f"alpaca quotes page {out.pages}", rows=len(bars))
    future = latest_bar_open_us()
    keep = np.ones(len(bars), dtype=np.bool_)
    for i, bar in enumerate(bars):
        reason = _problem(bar, future)
        if reason is not None:
            keep[i] = False
            page.reject(first + i, reason, f"{bar.symbol} {bar.ts.isoformat()}")
            out.note(reason, f"{bar.symbol} quote bar {bar.ts.isoformat()}", out.bars_rejected)
    good = _take(batch, keep)
    lines = np.arange(first, first + len(bars), dtype=np.int64)[keep]

    def chunks() -> Iterator[tuple[BarBatch | QuoteBatch, I64]]:
        yield good, lines

    if not len(good):
        return
    result = run_import(store, [Job(page, chunks)], on_conflict)
    if not result.committed:
        raise FetchStopped(result.error or page.error or "the store refused the quote bars")
    out.new += page.new
    out.unchanged += page.unchanged
    out.replaced += page.replaced
    out.kept += page.kept
    written.update(str(s) for s in good.symbol)


def _problem(bar: Quote, future_us: int) -> str | None:
    """The quote import's reasons: each side's OHLC and size, then a bar from the future."""
    for side in (
        (bar.bid_open, bar.bid_high, bar.bid_low, bar.bid_close, bar.bid_size),
        (bar.ask_open, bar.ask_high, bar.ask_low, bar.ask_close, bar.ask_size),
    ):
        reason = price_problem(*side)
        if reason is not None:
            return reason
    if to_us(bar.ts) > future_us:
        return "from_future"
    return None


def _take(batch: QuoteBatch, keep: Any) -> QuoteBatch:
    return QuoteBatch(
        batch.symbol[keep],
        batch.ts_us[keep],
        batch.bid[keep],
        batch.bid_size[keep],
        batch.ask[keep],
        batch.ask_size[keep],
        batch.regular[keep],
    )


__all__ = ["QUOTE_SYMBOLS", "QuotesReport", "quote_window"]
