"""What one backtest delivered, as values, so a faulty run can be compared with a clean one.

Counting bars is not enough: a fill whose volume is added twice, or a derived bar
built from the wrong minutes, leaves every count right. :class:`RunDigest` keeps, per
session and symbol, the last value delivered for every 1m bar and every derived
window (a revision replaces the first announcement) and the report's volume,
high, low and bar count; :func:`compare` lists each place two digests differ, with
the bars the faulty run was allowed to lose left out of the reference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Set
from dataclasses import dataclass, field
from datetime import date

from sessionflow.events import (
    BarSliceEvent,
    BatchEvent,
    DerivedSliceEvent,
    SessionEndEvent,
    SessionStartEvent,
)
from sessionflow.models import from_us

MINUTE_US = 60_000_000
OHLCV = tuple[float, float, float, float, int]
Figures = tuple[int, int, float | None, float | None]  # bars, volume, high, low
MAX_LINES = 6  # differences listed word for word; the count covers all


@dataclass
class RunDigest:
    """A batch consumer; ``series[(session, symbol, interval)]`` maps ts_us to OHLCV."""

    series: dict[tuple[date, str, int], dict[int, OHLCV]] = field(default_factory=dict)
    figures: dict[tuple[date, str], Figures] = field(default_factory=dict)
    _session: date | None = None

    def __call__(self, ev: BatchEvent) -> None:
        if isinstance(ev, SessionStartEvent):
            self._session = ev.session
        elif isinstance(ev, BarSliceEvent | DerivedSliceEvent):
            assert self._session is not None
            k = ev.interval if isinstance(ev, DerivedSliceEvent) else 1
            b = ev.bars
            for sym, ts, o, h, lo, c, v, reg in zip(
                b.symbol.tolist(), b.ts_us.tolist(), b.open.tolist(), b.high.tolist(),
                b.low.tolist(), b.close.tolist(), b.volume.tolist(), b.regular.tolist(),
                strict=True,
            ):  # fmt: skip
                if reg:
                    self.series.setdefault((self._session, sym, k), {})[ts] = (o, h, lo, c, v)
        elif isinstance(ev, SessionEndEvent):
            for r in ev.report.rows:
                self.figures[(ev.session, r.symbol)] = (r.bars, r.volume, r.high, r.low)

    def checksum(self, session: date, symbol: str, interval: int) -> str:
        bars = sorted(self.series.get((session, symbol, interval), {}).items())
        return hashlib.sha256(repr(bars).encode()).hexdigest()[:12]


def _hm(ts_us: int) -> str:
    return f"{from_us(ts_us):%H:%MZ}"


def compare(
    reference: RunDigest, got: RunDigest, lost: Set[tuple[str, int]] = frozenset()
) -> list[str]:
    """Every difference of ``got`` from ``reference``; ``lost`` (symbol, ts_us) are the 1m
    bars ``got`` could not have (a fill source that never answered): their minutes are
    taken out of the reference's figures, and the derived windows holding them skipped."""
    out: list[str] = []
    for key in sorted(reference.figures.keys() | got.figures.keys()):
        session, sym = key
        name = f"{sym} {session}"
        ref_1m = reference.series.get((session, sym, 1), {})
        gone = {ts for ts in ref_1m if (sym, ts) in lost}
        want_1m = {ts: v for ts, v in ref_1m.items() if ts not in gone}
        have_1m = got.series.get((session, sym, 1), {})
        if want_1m != have_1m:
            diff = sorted(ts for ts in want_1m.keys() | have_1m.keys()
                          if want_1m.get(ts) != have_1m.get(ts))  # fmt: skip
            first = diff[0]
            out.append(
                f"{name} 1m bars: {len(diff)} differ from the reference, first at "
                f"{_hm(first)}: {have_1m.get(first)} != {want_1m.get(first)}"
            )
        if key not in reference.figures or key not in got.figures:
            out.append(
                f"{name}: in {'the reference' if key in reference.figures else 'this run'} only"
            )
            continue
        want = _figures(want_1m) if gone else reference.figures[key]
        have = got.figures[key]
        for i, what in ((1, "volume"), (0, "bars")):
            if have[i] != want[i]:
                out.append(f"{name} session {what} {have[i]} != {want[i]} (reference)")
        if (have[2], have[3]) != (want[2], want[3]):
            out.append(
                f"{name} session high/low {have[2]}/{have[3]} != {want[2]}/{want[3]} (reference)"
            )
        for k in sorted({k for (d, s, k) in reference.series if (d, s) == key and k > 1}):
            ref_k = reference.series[(session, sym, k)]
            have_k = got.series.get((session, sym, k), {})
            span = k * MINUTE_US
            keep = [ts for ts in ref_k if not any(ts <= g < ts + span for g in gone)]
            bad = [ts for ts in sorted(keep) if have_k.get(ts) != ref_k[ts]]
            if bad:
                first = bad[0]
                out.append(
                    f"{name} {k}m bars: {len(bad)} of {len(keep)} differ from the reference, "
                    f"first at {_hm(first)}: {have_k.get(first)} != {ref_k[first]}"
                )
    if len(out) > MAX_LINES:
        out = [*out[:MAX_LINES], f"... {len(out) - MAX_LINES} more differences"]
    return out


def _figures(bars: dict[int, OHLCV]) -> Figures:
    if not bars:
        return 0, 0, None, None
    vals = bars.values()
    return len(bars), sum(v[4] for v in vals), max(v[1] for v in vals), min(v[2] for v in vals)
