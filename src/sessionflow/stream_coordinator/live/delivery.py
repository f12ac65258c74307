"""One drained batch of feed items -> session_data, the store batcher and events.

Why separate from the loop: this is the part live shares in spirit with the
backtest's ``_deliver`` (write, then publish what was accepted), while the loop
in ``live.py`` is about time. Bars go through ``SessionData.add_bars``, which
rejects duplicates and late bars; quote updates are folded into minute quote
bars; anything stamped outside the session window is counted, not written.
Items the sink marked as from the future are never delivered: a bar among them
is counted against its symbol (``from_future``), so it neither reaches a
consumer nor takes the minute its real bar will fill.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sessionflow.events import BarSliceEvent, BatchEvent, QuoteEvent, TickEvent
from sessionflow.feeds.base import Correction, FromFuture, QuoteUpdate, SinkItem
from sessionflow.models import Bar, Quote, Tick, to_us
from sessionflow.session_data import SessionData
from sessionflow.store import BarBatch
from sessionflow.stream_coordinator.live.quotes import QuoteBarBuilder
from sessionflow.stream_coordinator.live.store import StoreBatcher
from sessionflow.time_provider import SessionInfo


@dataclass(frozen=True)
class Window:
    """The session being played and the span it accepts data for."""

    session: SessionInfo
    start: datetime  # the open, or 04:00 ET with extended hours
    end: datetime  # the close, or 20:00 ET with extended hours
    extended: bool

    def regular(self, ts: datetime) -> bool:
        return self.session.open <= ts < self.session.close


class Delivery:
    def __init__(
        self,
        session_data: SessionData,
        batcher: StoreBatcher,
        publish: Callable[[list[BatchEvent]], None],
    ) -> None:
        self.session_data = session_data
        self.batcher = batcher
        self.publish = publish
        self.quotes = QuoteBarBuilder()
        self.outside_session = 0

    def items(self, w: Window, items: Sequence[SinkItem], now: datetime) -> None:
        bars: list[Bar] = []
        ticks: list[Tick] = []
        quotes: list[Quote] = []
        fixes: list[Bar] = []
        events: list[BatchEvent] = []
        for item in items:
            if isinstance(item, Bar | Correction):
                # without extended hours an outside bar stays regular: add_bars rejects it
                bar = item if isinstance(item, Bar) else item.bar
                if w.extended and not w.regular(bar.ts):
                    bar = bar._replace(regular=False)
                if isinstance(item, Bar) and fixes:  # keep arrival order around corrections
                    self._bars(bars, fixes, events, now)
                    bars, fixes = [], []
                (bars if isinstance(item, Bar) else fixes).append(bar)
            elif isinstance(item, QuoteUpdate):
                quotes.extend(self.quotes.add(item))
            elif isinstance(item, Quote):  # a feed that sends minute quote bars itself
                quotes.append(item)
            elif isinstance(item, FromFuture):
                if isinstance(item.item, Bar | Correction):
                    bar = item.item if isinstance(item.item, Bar) else item.item.bar
                    self.session_data.reject(bar.symbol, "from_future")
            elif w.start <= item.ts < w.end:
                ticks.append(item)
            else:
                self.outside_session += 1
        self._bars(bars, fixes, events, now)
        if ticks:
            self.batcher.add((), (), now, ticks)
            self.session_data.add_ticks(ticks)
            events.extend(TickEvent(t, now) for t in ticks)
        self.publish(events)
        self.quote_bars(w, quotes, now)

    def _bars(
        self, bars: list[Bar], fixes: list[Bar], events: list[BatchEvent], now: datetime
    ) -> None:
        """Plain bars, then the corrections that arrived after them."""
        kept = self.session_data.add_bars(bars) if bars else []
        if kept:
            kept.sort(key=lambda b: (b.ts, b.symbol))
            events.append(self._slice(kept, now))
            self.batcher.add(kept, (), now)
        fixed = self.session_data.correct_bars(fixes) if fixes else []
        if fixed:
            fixed.sort(key=lambda b: (b.ts, b.symbol))
            events.append(self._slice(fixed, now, corrected=True))
            self.batcher.add(fixed, (), now)

    def _slice(self, bars: list[Bar], now: datetime, corrected: bool = False) -> BarSliceEvent:
        batch = BarBatch.from_bars(bars)
        rows = self.session_data.index_of(batch.symbol.tolist())
        return BarSliceEvent(batch, now, corrected=corrected, rows=rows)

    def quote_bars(self, w: Window, quotes: Sequence[Quote], now: datetime) -> None:
        keep: list[Quote] = []
        for q in quotes:
            if not w.start <= q.ts < w.end:
                self.outside_session += 1
                continue
            keep.append(q if w.regular(q.ts) else replace(q, regular=False))
        if keep:
            self.session_data.add_quotes(keep)
            self.batcher.add((), keep, now)
            self.publish([QuoteEvent(q, now) for q in keep])

    def before_session(self, items: Sequence[SinkItem], start: datetime) -> list[SinkItem]:
        """Between sessions: drop (and count) data stamped before ``start``, keep the rest."""
        start_us = to_us(start)
        keep: list[SinkItem] = []
        for i in items:
            if isinstance(i, FromFuture):
                continue  # counted by the sink; no session to count it against yet
            if _stamp_us(i) >= start_us:
                keep.append(i)
            else:
                self.outside_session += 1
        return keep


def _stamp_us(item: Bar | Quote | Tick | QuoteUpdate | Correction) -> int:
    return item.ts_us if isinstance(item, QuoteUpdate) else to_us(item.ts)
