"""SessionData: the shared, locked home of all session state.

The coordinator thread writes bars here and the upkeep thread writes fills,
derived bars and quality, at the same time. The seed guarded this with
``asyncio.Lock``, which only orders coroutines on one event loop and does
nothing between OS threads. A ``threading.RLock`` does: every public method takes
it, mutations happen under it, and readers get immutable snapshots taken under
it, so a reader never sees a half-applied write.

Storage is columnar (see ``grid.py``): symbols are rows in sorted order, session
minutes are columns. All bars that share a timestamp are written with one call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import date

import numpy as np

from sessionflow.corporate_actions.adjust import Action, AdjustmentError
from sessionflow.models import MAX_PRICE, MAX_VOLUME, Bar, Quote, Tick, price_problem, to_us
from sessionflow.session_data import _kernels
from sessionflow.session_data.grid import (
    BOOL,
    F64,
    I64,
    IDX,
    MINUTE_US,
    BarGrid,
    derive_grid,
    runs,
)
from sessionflow.session_data.report import ReportInputs, SessionReport
from sessionflow.session_data.symbol_session_data import (
    DATA_TYPES,
    SymbolSessionData,
    SymbolSnapshot,
)
from sessionflow.store import BarBatch
from sessionflow.time_provider import SessionInfo


class SessionData:
    """State of the running session for every symbol, plus trailing history."""

    def __init__(
        self,
        symbols: Sequence[str],
        derived_intervals: Sequence[int] = (5, 15),
        historical_intervals: Sequence[int] = (1, 5),
        trailing_days: int = 5,
    ) -> None:
        self._lock = threading.RLock()
        self.derived_intervals = tuple(sorted(set(derived_intervals)))
        self.historical_intervals = tuple(sorted(set(historical_intervals)))
        self.trailing_days = trailing_days
        self.names: tuple[str, ...] = tuple(sorted(set(symbols)))
        self.names_array = np.array(self.names, dtype=object)
        # 0..n-1, shared by every all-symbol slice event's rows: read-only
        self.all_rows: IDX = np.arange(len(self.names), dtype=np.intp)
        self.all_rows.flags.writeable = False
        # n True values, read-only: sliced as the ``regular`` column of derived batches
        # (a BarBatch built without one allocates it: half the cost of building it)
        self.all_regular: BOOL = np.ones(len(self.names), dtype=np.bool_)
        self.all_regular.flags.writeable = False
        self._index = {s: i for i, s in enumerate(self.names)}
        self._symbols = {s: SymbolSessionData(self, i, s) for s, i in self._index.items()}
        n = len(self.names)
        self.current_session: SessionInfo | None = None
        self.session_ended = False
        self.unknown_symbols: dict[str, int] = {}
        self.grid: BarGrid | None = None
        self.derived: dict[int, BarGrid] = {}
        self.history: dict[int, dict[date, BarGrid]] = {}
        self.applied_actions: list[Action] = []  # applied to history as this session began
        # each symbol's volume over the trailing days held as this session began (adjusted
        # as of it): a figure of history, so a run that loads the wrong days shows it
        self.trailing_volume = np.zeros(len(set(symbols)), dtype=np.int64)
        self.volume = np.zeros(n, dtype=np.int64)
        self.high = np.full(n, np.nan)
        self.low = np.full(n, np.nan)
        self.received = np.zeros(n, dtype=np.int64)
        self.last_slot = np.full(n, -1, dtype=np.int64)
        # the highest 1m slot written this session: a later slot is free for every symbol
        # and after every symbol's last bar, so the replay's write skips both checks
        self._top_slot = -1
        self.quality = np.zeros(n)
        self.expected_so_far = 0
        self.gap_open = np.zeros((0, n), dtype=np.bool_)
        self.flags: dict[str, BOOL] = {t: np.zeros(n, dtype=np.bool_) for t in DATA_TYPES}
        self._corrections: list[tuple[int, int]] = []  # (row, slot) not yet re-derived
        # slots below this lie in a derived window already announced (``seal``): a bar
        # written there later revises that window, as a fill or a correction does
        self._sealed = 0
        self.late_bars = 0  # such bars over the run (live: a minute's bar after its window)
        self._kernel_figures = self._figures_view()

    def _figures_view(self) -> _kernels.Figures:
        """The compiled write's views of the figures (taken again with each new gap_open)."""
        return _kernels.Figures(
            self.volume, self.high, self.low, self.received, self.last_slot,
            self.flags["bars"], self.gap_open, self.quality, self.flags["quality"],
        )  # fmt: skip

    def rate(self, table_row: F64, expected: int) -> None:
        """Each symbol's bar quality as ``table_row[received]``, flagged where it changed
        (everywhere when ``expected`` moved), in one compiled pass. A received count
        beyond the row raises IndexError and changes nothing."""
        with self._lock:
            _kernels.rate(self._kernel_figures, table_row, expected != self.expected_so_far)
            self.expected_so_far = expected

    @property
    def lock(self) -> threading.RLock:
        """For multi-step read-modify-write by the upkeep worker; hold it briefly."""
        return self._lock

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.names

    def index_of(self, symbols: Sequence[str]) -> IDX:
        """Row numbers of known symbols (vectorised; the caller ensures they are known)."""
        return np.searchsorted(self.names_array, np.asarray(symbols, dtype=object)).astype(np.intp)

    def symbol(self, symbol: str) -> SymbolSessionData:
        """The live per-symbol view. Callers must hold :attr:`lock` while using it."""
        return self._symbols[symbol]

    def start_session(self, session: SessionInfo) -> None:
        with self._lock:
            n = len(self.names)
            self.current_session = session
            self.session_ended = False
            self.grid = BarGrid.windows(n, session.minutes, session.open_us, 1)
            self.derived = {
                k: BarGrid.windows(n, session.minutes, session.open_us, k)
                for k in self.derived_intervals
            }
            self.volume[:] = 0
            self.high[:] = np.nan
            self.low[:] = np.nan
            self.received[:] = 0
            self.last_slot[:] = -1
            self._top_slot = -1
            self.quality[:] = 0.0
            self.expected_so_far = 0
            self.gap_open = np.zeros((session.minutes, n), dtype=np.bool_)
            self._kernel_figures = self._figures_view()
            for flags in self.flags.values():
                flags[:] = False
            self._corrections = []
            self._sealed = 0
            for data in self._symbols.values():
                data.reset()

    def end_session(self) -> None:
        with self._lock:
            self.session_ended = True

    def write_instant(
        self,
        rows: IDX,
        ts_us: int,
        o: F64,
        h: F64,
        lo: F64,
        c: F64,
        v: I64,
        checked: bool = False,
    ) -> bool:
        """Write regular bars that all open at ``ts_us``, at most one per symbol.

        The replay fast path: about half the numpy calls of :meth:`write_bars`. It
        writes nothing and returns False when any bar needs a rejection (outside the
        session, duplicate, out of order, a symbol twice); the caller then uses
        :meth:`write_bars`, which counts the reasons. ``checked``: the caller already
        knows the rows are strictly ascending (so each symbol occurs once) and every
        volume is in bounds (replay payloads are checked once per session), so those
        two checks are skipped.
        """
        with self._lock:
            grid = self.grid
            if grid is None:
                raise RuntimeError("write_instant before start_session")
            offset = ts_us - grid.open_us
            slot = offset // MINUTE_US
            if offset % MINUTE_US or not 0 <= slot < grid.n_slots:
                return False
            if not checked and (not _unique_rows(rows) or not _volume_ok(v).all()):
                return False
            fresh = slot > self._top_slot
            if not fresh and (
                grid.present[slot][rows].any() or self.last_slot[rows].max(initial=-1) > slot
            ):
                return False
            if fresh:  # the replay's usual instant: one compiled pass
                _kernels.write_fresh(grid.columns, self._kernel_figures, rows, slot, o, h, lo, c, v)
                self._top_slot = slot
            else:
                grid.put_slot(rows, slot, o, h, lo, c, v)
                self.gap_open[slot][rows] = False
                self._figures(rows, h, lo, v, slot)
            if slot < self._sealed:
                self._late(rows, slot)
            return True

    def write_bars(
        self,
        rows: IDX,
        ts_us: I64,
        o: F64,
        h: F64,
        lo: F64,
        c: F64,
        v: I64,
        regular: BOOL | None = None,
        filled: bool = False,
    ) -> BOOL:
        """Write 1m bars given as columns; returns which were accepted.

        Rejections (duplicate, out_of_order, outside_session, not_minute_aligned,
        and a volume outside 0..MAX_VOLUME, so no volume sum can wrap) are counted
        per symbol by reason. Non-regular (extended-hours) bars are
        kept aside in ``extended_bars`` and never touch the session figures.
        """
        with self._lock:
            grid = self.grid
            if grid is None:
                raise RuntimeError("write_bars before start_session")
            if len(rows) > 1 and not _unique_rows(rows):
                # a symbol twice in one call (live batches): apply in order, one at a time
                out = np.zeros(len(rows), dtype=np.bool_)
                for i in range(len(rows)):
                    at = slice(i, i + 1)
                    reg = None if regular is None else regular[at]
                    out[i] = self.write_bars(
                        rows[at], ts_us[at], o[at], h[at], lo[at], c[at], v[at], reg, filled
                    )[0]
                return out
            offset = ts_us - grid.open_us
            slot = offset // MINUTE_US
            ok = (offset % MINUTE_US == 0) & (slot >= 0) & (slot < grid.n_slots)
            if regular is not None:
                ok &= regular
            sane = _volume_ok(v)
            if not sane.all():
                self._bad_volume(np.flatnonzero(~sane), rows, o, h, lo, c, v)
                ok &= sane
            accepted: BOOL = ok.copy()
            if not ok.all():
                off = np.flatnonzero(~ok & sane)
                self._off_grid(off, rows, ts_us, o, h, lo, c, v, regular, accepted)
            if ok.all():
                idx: IDX | slice = slice(None)
                r, m = rows, slot
            else:
                idx = np.flatnonzero(ok)
                r, m = rows[idx], slot[idx]
            if not len(r):
                return accepted
            one = int(m[0]) if bool((m == m[0]).all()) else None
            dup = grid.present[one][r] if one is not None else grid.present[m, r]
            bad = dup | ((m < self.last_slot[r]) & (not filled))
            if bad.any():
                where = np.arange(len(accepted))[idx]
                for i in np.flatnonzero(bad).tolist():
                    reason = "duplicate" if dup[i] else "out_of_order"
                    self._symbols[self.names[int(r[i])]].rejections[reason] += 1
                accepted[where[bad]] = False
                idx, r, m = where[~bad], r[~bad], m[~bad]
            vals = (o[idx], h[idx], lo[idx], c[idx], v[idx])
            if len(r):
                self._top_slot = max(self._top_slot, one if one is not None else int(m.max()))
            if one is not None:
                grid.put_slot(r, one, *vals)
                self.gap_open[one][r] = False  # a late bar is no longer a gap
                if filled:
                    grid.filled[one][r] = True
            else:
                grid.put(r, m, *vals)
                self.gap_open[m, r] = False
                if filled:
                    grid.filled[m, r] = True
            self._figures(r, vals[1], vals[2], vals[4], np.maximum(self.last_slot[r], m))
            if not filled and len(r) and int(m.min()) < self._sealed:
                late = m < self._sealed
                self._late(r[late], m[late])
            return accepted

    def seal(self, slot: int) -> None:
        """Derived windows covering the slots below ``slot`` were announced (the upkeep
        worker, lock held): a bar written there from now on revises its windows."""
        self._sealed = max(self._sealed, slot)

    def _late(self, rows: IDX, slots: int | I64) -> None:
        """Bars written into announced windows: re-derived (and announced as revised) by
        the next check, like a correction; counted in ``late_bars``."""
        at = np.broadcast_to(np.asarray(slots, dtype=np.int64), rows.shape)
        self._corrections.extend(zip(rows.tolist(), at.tolist(), strict=True))
        self.late_bars += len(rows)

    def _figures(self, rows: IDX, h: F64, lo: F64, v: I64, last: int | I64) -> None:
        """Session volume/high/low, counts and flags after bars landed in ``rows``."""
        self.volume[rows] += v
        self.high[rows] = np.fmax(self.high[rows], h)
        self.low[rows] = np.fmin(self.low[rows], lo)
        self.received[rows] += 1
        self.last_slot[rows] = last
        self.flags["bars"][rows] = True

    def _bad_volume(self, where: IDX, rows: IDX, o: F64, h: F64, lo: F64, c: F64, v: I64) -> None:
        """Count bars whose volume is out of bounds, under price_problem's reason."""
        for i in where.tolist():
            reason = price_problem(o[i], h[i], lo[i], c[i], int(v[i])) or "volume_out_of_range"
            self._symbols[self.names[int(rows[i])]].rejections[reason] += 1

    def _off_grid(
        self,
        where: IDX,
        rows: IDX,
        ts_us: I64,
        o: F64,
        h: F64,
        lo: F64,
        c: F64,
        v: I64,
        regular: BOOL | None,
        accepted: BOOL,
    ) -> None:
        """Bars that are not regular-session minutes: keep extended ones, reject the rest."""
        batch = BarBatch(self.names_array[rows[where]], ts_us[where], o[where], h[where],
                         lo[where], c[where], v[where])  # fmt: skip
        for i, bar in zip(where.tolist(), batch.iter_bars(), strict=True):
            data = self._symbols[bar.symbol]
            is_regular = True if regular is None else bool(regular[i])
            if ts_us[i] % MINUTE_US:
                data.rejections["not_minute_aligned"] += 1
            elif not is_regular:
                data.extended_bars.append(bar._replace(regular=False))
                self.flags["bars"][data.index] = True
                accepted[i] = True
                continue
            else:
                data.rejections["outside_session"] += 1
            accepted[i] = False

    def add_bars(self, bars: Iterable[Bar]) -> list[Bar]:
        """Write bar objects (live feeds, tests); returns the accepted ones.

        These never went through the importer's checks, so bad prices are refused
        here under the importer's reasons (``nan_or_inf``, ``high_below_low``, ...):
        accepted, such a bar would poison the session figures and, holding its
        minute, turn the real bar into a "duplicate".
        """
        with self._lock:
            known = [bar for _, bar in self._checked(bars)]
            if not known:
                return []
            batch = BarBatch.from_bars(known)
            ok = self.write_bars(
                self.index_of(batch.symbol.tolist()),
                batch.ts_us,
                batch.open,
                batch.high,
                batch.low,
                batch.close,
                batch.volume,
                batch.regular,
                filled=all(b.filled for b in known),
            )
            return [b for b, keep in zip(known, ok.tolist(), strict=True) if keep]

    def _known(self, symbol: str) -> SymbolSessionData | None:
        """The symbol's data, or None after counting it in ``unknown_symbols`` (lock held)."""
        data = self._symbols.get(symbol)
        if data is None:
            self.unknown_symbols[symbol] = self.unknown_symbols.get(symbol, 0) + 1
        return data

    def _checked(self, bars: Iterable[Bar]) -> list[tuple[SymbolSessionData, Bar]]:
        """Bars of known symbols with possible prices; the rest counted by reason (lock held)."""
        out: list[tuple[SymbolSessionData, Bar]] = []
        for bar in bars:
            data = self._known(bar.symbol)
            if data is None:
                continue
            problem = price_problem(bar.open, bar.high, bar.low, bar.close, bar.volume)
            if problem is None:
                out.append((data, bar))
            else:
                data.rejections[problem] += 1
        return out

    def correct_bars(self, bars: Iterable[Bar]) -> list[Bar]:
        """Replace each bar's minute with its correction (Alpaca ``updatedBars``).

        A correction is the vendor's latest word on a minute, so it wins over the
        stream bar or REST fill holding the minute, and holds an empty minute itself.
        Session volume, high and low follow; derived windows holding the minute are
        re-derived (and re-announced as revised) by the next upkeep check. Returns
        the corrections applied; each counts as ``corrected``, never ``duplicate``.
        """
        applied: list[Bar] = []
        with self._lock:
            grid = self.grid
            if grid is None:
                raise RuntimeError("correct_bars before start_session")
            for data, bar in self._checked(bars):
                offset = to_us(bar.ts) - grid.open_us
                slot, row = offset // MINUTE_US, data.index
                if offset % MINUTE_US:
                    data.rejections["not_minute_aligned"] += 1
                    continue
                if not bar.regular:
                    kept = [b for b in data.extended_bars if b.ts != bar.ts]
                    data.extended_bars = [*kept, bar]
                elif not 0 <= slot < grid.n_slots:
                    data.rejections["outside_session"] += 1
                    continue
                else:
                    self._replace(grid, row, slot, bar)
                data.corrected += 1
                self.flags["bars"][row] = True
                applied.append(bar)
        return applied

    def _replace(self, grid: BarGrid, row: int, slot: int, bar: Bar) -> None:
        """Put ``bar`` in its slot, whatever held it, and redo the session figures."""
        held = bool(grid.present[slot, row])
        old = int(grid.volume[slot, row]) if held else 0
        r, s = np.array([row], dtype=np.intp), np.array([slot], dtype=np.intp)
        o, h, lo, c = (np.array([x]) for x in (bar.open, bar.high, bar.low, bar.close))
        grid.put(r, s, o, h, lo, c, np.array([bar.volume], dtype=np.int64))
        self._top_slot = max(self._top_slot, slot)
        self.gap_open[slot, row] = False
        self.volume[row] += bar.volume - old
        col = grid.present[:, row]
        self.high[row] = np.max(grid.high[col, row])
        self.low[row] = np.min(grid.low[col, row])
        if not held:
            self.received[row] += 1
            self.last_slot[row] = max(int(self.last_slot[row]), slot)
        self._corrections.append((row, slot))

    def take_corrections(self) -> list[tuple[int, int]]:
        """(row, slot) of corrections since the last call, for re-deriving their windows."""
        with self._lock:
            out, self._corrections = self._corrections, []
            return out

    @property
    def has_corrections(self) -> bool:
        """Whether :meth:`take_corrections` has any to give (a cheap test, lock held)."""
        return bool(self._corrections)

    def reject(self, symbol: str, reason: str) -> None:
        """Count a bar refused before it got here (live: ``from_future``) against its symbol."""
        with self._lock:
            data = self._known(symbol)
            if data is not None:
                data.rejections[reason] += 1

    def add_quotes(self, quotes: Iterable[Quote]) -> None:
        """Regular-session quotes go to ``quotes``, extended-hours ones to ``extended_quotes``."""
        regular: list[Quote] = []
        extended: list[Quote] = []
        for q in quotes:
            (regular if q.regular else extended).append(q)
        self._append("quotes", regular)
        self._append("quotes", extended, into="extended_quotes")

    def add_ticks(self, ticks: Iterable[Tick]) -> None:
        self._append("ticks", ticks)

    def _append(self, kind: str, items: Iterable[Quote | Tick], into: str | None = None) -> None:
        """Append quotes or ticks to their symbol's list; unknown symbols are counted."""
        with self._lock:
            for item in items:
                data = self._known(item.symbol)
                if data is None:
                    continue
                getattr(data, into or kind).append(item)
                self.flags[kind][data.index] = True

    def snapshot(self, symbol: str) -> SymbolSnapshot:
        with self._lock:
            return self._symbols[symbol].snapshot()

    def snapshots(self) -> dict[str, SymbolSnapshot]:
        """All symbols, taken under one lock hold so they agree with each other."""
        with self._lock:
            return {s: d.snapshot() for s, d in self._symbols.items()}

    def bars(self, symbol: str, interval: int = 1) -> tuple[Bar, ...]:
        """One symbol's bars of one interval in this session, built under the lock."""
        with self._lock:
            grid = self.grid if interval == 1 else self.derived.get(interval)
            return tuple(grid.bars(self._index[symbol], symbol)) if grid is not None else ()

    def history_bars(self, symbol: str, interval: int, day: date) -> tuple[Bar, ...]:
        """One trailing day of one symbol and interval, without snapshotting the rest."""
        with self._lock:
            grid = self.history.get(interval, {}).get(day)
            return tuple(grid.bars(self._index[symbol], symbol)) if grid is not None else ()

    def last_close(self, symbol: str) -> float | None:
        """The latest regular-session close of ``symbol`` (cheap; no snapshot)."""
        with self._lock:
            row = self._index[symbol]
            if self.grid is None or self.last_slot[row] < 0:
                return None
            return float(self.grid.close[self.last_slot[row], row])

    def latest_close(self, symbol: str) -> float | None:
        """:meth:`last_close`, else the last close of the latest trailing day (as adjusted
        now); None when the symbol has neither."""
        last = self.last_close(symbol)
        if last is not None:
            return last
        with self._lock:
            row = self._index[symbol]
            days = self.history.get(1, {})
            for day in sorted(days, reverse=True):
                present = np.flatnonzero(days[day].present[:, row])
                if len(present):
                    return float(days[day].close[present[-1], row])
        return None

    def latest_closes(self, symbols: Sequence[str]) -> list[float | None]:
        """:meth:`latest_close` of each of ``symbols`` (None for one not in this session
        data), under one hold of the lock: a strategy's burst of orders reads them all at
        one instant."""
        with self._lock:
            index = self._index
            return [self.latest_close(s) if s in index else None for s in symbols]

    def take_updates(self, symbol: str) -> frozenset[str]:
        """Data types changed for ``symbol`` since the last call; clears the flags."""
        with self._lock:
            row = self._index[symbol]
            changed = frozenset(t for t, f in self.flags.items() if f[row])
            for f in self.flags.values():
                f[row] = False
            return changed

    def set_history(self, day: date, grid_1m: BarGrid) -> None:
        """Keep a finished session's 1m grid (and its derived grids) as history."""
        with self._lock:
            for k in self.historical_intervals:
                grid = grid_1m if k == 1 else derive_grid(grid_1m, k)
                self.history.setdefault(k, {})[day] = grid

    def adjust_history(self, actions: Sequence[Action], mode: str) -> None:
        """Scale the history held now by each action in turn (``corporate_actions.
        due_actions`` chose them, in ex-date order): prices by its price factor, volumes
        by its volume factor, rounded after each, so history rolled over the actions one
        session at a time and history adjusted at once hold the same bits.

        An action whose result would leave a price or volume out of bounds (the bounds
        every bar meets on entry, ``models.price_problem``) raises AdjustmentError
        naming it, before it changes anything: no sum of history volumes can wrap.
        """
        for a in actions:
            self._scale(a, a.price_factor(mode), a.volume_factor(mode))

    def _scale(self, action: Action, price: float, volume: float) -> None:
        if (price == 1.0 and volume == 1.0) or action.symbol not in self._index:
            return
        row = self._index[action.symbol]
        with self._lock:
            grids = list(
                {id(g): g for days in self.history.values() for g in days.values()}.values()
            )
            scaled = []  # every grid checked before any is changed
            for grid in grids:
                held = grid.present[:, row]
                cols = (grid.open, grid.high, grid.low, grid.close)
                prices = [col[held, row] * price for col in cols]
                volumes = np.rint(grid.volume[held, row] * volume)
                _check_adjusted(action, prices, volumes)
                scaled.append((grid, held, cols, prices, volumes))
            for grid, held, cols, prices, volumes in scaled:
                for col, values in zip(cols, prices, strict=True):
                    col[held, row] = values
                grid.volume[held, row] = volumes.astype(np.int64)

    def take_trailing_volume(self) -> None:
        """Sum the history held now into ``trailing_volume`` (as a session begins)."""
        with self._lock:
            self.trailing_volume[:] = 0
            if not self.history:
                return
            for grid in self.history[min(self.history)].values():
                self.trailing_volume += grid.volume.sum(axis=0)

    def trim_history(self, keep: Iterable[date]) -> None:
        """Drop history for days not in ``keep`` (the trailing trading days)."""
        keep_set = set(keep)
        with self._lock:
            for per_day in self.history.values():
                for day in [d for d in per_day if d not in keep_set]:
                    del per_day[day]

    def grid_from_batch(
        self, batch: BarBatch, session: SessionInfo, rows: IDX | None = None
    ) -> BarGrid:
        """A 1m grid of a past session from stored bars (history before the first session).

        ``rows``: each bar's row in ``names`` when the store already gave it
        (``Store.load_bar_rows`` over ``names``), which saves the lookup per bar.
        """
        grid = BarGrid.windows(len(self.names), session.minutes, session.open_us, 1)
        if rows is None:
            # one dict lookup per bar: np.isin/searchsorted on object arrays took ~2 s per
            # 500-symbol day, paid by every first session and every date shard
            get = self._index.get
            rows = np.fromiter((get(s, -1) for s in batch.symbol.tolist()), np.intp, len(batch))
        slot = (batch.ts_us - grid.open_us) // MINUTE_US
        inside = (rows >= 0) & (slot >= 0) & (slot < grid.n_slots) & batch.regular
        inside &= batch.ts_us % MINUTE_US == 0
        b = batch.take(inside)
        grid.put(rows[inside], slot[inside], b.open, b.high, b.low, b.close, b.volume)
        return grid

    def nbytes(self) -> int:
        """Bytes held in the bar grids (session, derived and history)."""
        with self._lock:
            grids = [self.grid, *self.derived.values()]
            grids += [g for days in self.history.values() for g in days.values()]
            seen: set[int] = set()
            total = 0
            for g in grids:
                if g is not None and id(g) not in seen:
                    seen.add(id(g))
                    total += g.nbytes()
            return total + self.gap_open.nbytes

    def report(self, so_far: bool = False) -> SessionReport:
        """The per-symbol summary of the current session, as the CLI prints it.

        The figures are copied now (vectorised); the per-symbol rows and gap ranges are
        built when the report's ``rows`` are first read. ``so_far``: expected is the
        minutes elapsed at the last check, not the whole session, so quality is the
        engine's own figure of a session under way (the dashboard's "so far" row).
        """
        with self._lock:
            session, grid = self.current_session, self.grid
            if session is None or grid is None:
                raise RuntimeError("no session has started")
            data = [self._symbols[name] for name in self.names]
            inputs = ReportInputs(
                names=self.names,
                expected=self.expected_so_far if so_far else session.minutes,
                received=self.received.tolist(),
                volume=self.volume.tolist(),
                high=self.high.tolist(),
                low=self.low.tolist(),
                filled=grid.filled.sum(axis=0).tolist(),
                missing=self.gap_open.sum(axis=0).tolist(),
                derived={k: g.present.sum(axis=0).tolist() for k, g in self.derived.items()},
                derived_intervals=self.derived_intervals,
                gap_open=self.gap_open.copy(),
                open_us=grid.open_us,
                rejections={
                    i: dict(sorted(d.rejections.items()))
                    for i, d in enumerate(data)
                    if d.rejections
                },
                counts=[
                    (len(d.quotes), len(d.extended_bars), len(d.extended_quotes), d.corrected)
                    for d in data
                ],
                trailing_volume=self.trailing_volume.tolist(),
            )
            return SessionReport(
                session=session.date,
                early_close=session.early_close,
                actions=[a.to_dict() for a in self.applied_actions],
                inputs=inputs,
            )


def gap_ranges(gap_open: BOOL, open_us: int) -> dict[int, list[tuple[str, str]]]:
    """Per symbol row, open gaps as ISO-8601 UTC [start, end) pairs, all rows at once."""
    rows, starts, ends = runs(gap_open)
    stamp = np.datetime64(open_us, "us")
    minute = np.timedelta64(MINUTE_US, "us")
    a = np.datetime_as_string(stamp + starts * minute, unit="s", timezone="UTC")
    b = np.datetime_as_string(stamp + ends * minute, unit="s", timezone="UTC")
    out: dict[int, list[tuple[str, str]]] = {}
    for r, x, y in zip(rows.tolist(), a.tolist(), b.tolist(), strict=True):
        out.setdefault(r, []).append((x, y))
    return out


def _check_adjusted(action: Action, prices: list[F64], volumes: F64) -> None:
    """Raise AdjustmentError if adjusted prices or volumes leave the bounds of a bar."""
    for values in prices:
        bad = ~((values > 0) & (values <= MAX_PRICE))  # NaN and inf too
        if bad.any():
            value = float(values[bad][0])
            raise AdjustmentError(action, "a price", value, f"(0, {MAX_PRICE:g}]")
    bad = ~((volumes >= 0) & (volumes <= MAX_VOLUME))
    if bad.any():
        raise AdjustmentError(action, "a volume", float(volumes[bad][0]), f"0..{MAX_VOLUME:g}")


def _volume_ok(v: I64) -> BOOL:
    """0 <= v <= MAX_VOLUME per bar; on int64 one unsigned compare (negatives wrap high)."""
    if v.dtype == np.int64:
        ok: BOOL = v.view(np.uint64) <= MAX_VOLUME
        return ok
    return (v >= 0) & (v <= MAX_VOLUME)


def _unique_rows(rows: IDX) -> bool:
    """True if no symbol row repeats; replay slices arrive sorted, so that case is O(n)."""
    if bool((rows[1:] > rows[:-1]).all()):
        return True
    return len(np.unique(rows)) == len(rows)
