"""The one fixed job every engine runs, and what they share: data file, sessions, results.

Job: ``symbols`` x ``sessions`` NYSE sessions of 1-minute bars starting 2024-11-25 (so
the 13:00 ET early close on 2024-11-29 is inside), from sessionflow's seeded
``synthetic_bars`` with 2% of the minutes of every symbol missing, plus, per symbol, one
missing stretch of ``STRETCH`` minutes (so whole 5m, 8m and 15m windows are empty) and,
for every fourth symbol, the last ``TAIL`` minutes of one session (an empty last window).
8 minutes divides neither 390 nor 210, so every session ends with a short 8m window (6
minutes, 2 on the early close). The bars are written
once to a Parquet file under ``benchmarks/.data/``; the session table (open/close per
session, from the exchange calendar) travels in the file's schema metadata, so an
engine needs nothing but that file.

Parquet columns: ``symbol`` (string), ``ts_us`` (int64, bar open, epoch microseconds
UTC), ``open``/``high``/``low``/``close`` (float64), ``volume`` (int64), sorted by
(ts_us, symbol).

Every engine reports, per (symbol, session) and computed by its own consumer from the
bars it received: ``n_<m>m`` (bars of each series), ``volume``, ``high``, ``low``
(session aggregates of the 1m bars) and ``sum_<m>m``, a checksum of every bar of each
series: the sum, mod 2**64, of ``hash((open_ts_us, open, high, low, close, volume))``.
Python hashes ints and floats by value (``hash(5.0) == hash(5)``, no per-process salt),
so every engine's children agree; the sum does not depend on delivery order, but any
changed field, timestamp, missing or extra bar changes it.

Beside those (issue 23, item 4), an engine that can tell reports two more tables, both
compared with numpy's: ``at_<m>m`` (``TIMING``), per series the checksum of
``hash((open_ts_us, minutes, delivered_us))``: when its consumer was handed each bar
(the event's time) and the length the engine gave it, so a bar delivered a minute
late with a correct stamp, or a short last window labelled with the full length,
changes it; and the engine's own session figures (``FIGURES``: counts, volume, high,
low as its session report gives them, not recomputed by the consumer). The consumer
also counts deliveries out of order (time going back, or a 1m bar after a derived bar
of the same instant): ``order_errors``, which must be 0.
"""

from __future__ import annotations

import csv
import json
import resource
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    I64 = npt.NDArray[np.int64]
    F64 = npt.NDArray[np.float64]

START = date(2024, 11, 25)
MISSING_FRACTION = 0.02
SEED = 20241129
INTERVALS = (5, 8, 15)
STRETCH = 31
TAIL = 9
MINUTE_US = 60_000_000
SERIES = (1, *INTERVALS)
COLUMNS = (
    *(f"n_{m}m" for m in SERIES),
    "volume",
    "high",
    "low",
    *(f"sum_{m}m" for m in SERIES),
)
HASH_MASK = (1 << 64) - 1
TIMING = tuple(f"at_{m}m" for m in SERIES)
FIGURES = (*(f"n_{m}m" for m in SERIES), "volume", "high", "low")


@dataclass(frozen=True)
class Session:
    day: date
    open_us: int
    close_us: int

    @property
    def minutes(self) -> int:
        return (self.close_us - self.open_us) // MINUTE_US


@dataclass(frozen=True)
class Job:
    symbols: int
    sessions: int

    @property
    def names(self) -> list[str]:
        return [f"S{i:04d}" for i in range(self.symbols)]

    def data_path(self, data_dir: Path) -> Path:
        return data_dir / f"bars_{self.symbols}x{self.sessions}_seed{SEED}_gaps.parquet"


@dataclass(frozen=True)
class Columns:
    """The data file as arrays; ``code`` indexes ``names``."""

    names: list[str]
    code: I64
    ts_us: I64
    open: F64
    high: F64
    low: F64
    close: F64
    volume: I64
    sessions: list[Session]

    def __len__(self) -> int:
        return len(self.ts_us)


@dataclass
class Row:
    """What one consumer received for one (symbol, session)."""

    n: dict[int, int] = field(default_factory=lambda: dict.fromkeys(SERIES, 0))
    sums: dict[int, int] = field(default_factory=lambda: dict.fromkeys(SERIES, 0))
    volume: int = 0
    high: float = float("-inf")
    low: float = float("inf")
    at: dict[int, int] = field(default_factory=lambda: dict.fromkeys(SERIES, 0))

    def deliver(self, series: int, ts_us: int, minutes: int, at_us: int) -> None:
        """When one bar of ``series`` (opening at ``ts_us``, ``minutes`` long) was handed over."""
        self.at[series] = (self.at[series] + hash((ts_us, minutes, at_us))) & HASH_MASK

    def add(
        self, series: int, ts_us: int, o: float, h: float, lo: float, c: float, v: float
    ) -> None:
        """One delivered bar of ``series`` (1 or a derived interval), stamped at its open."""
        self.n[series] += 1
        self.sums[series] = (self.sums[series] + hash((ts_us, o, h, lo, c, v))) & HASH_MASK
        if series == 1:
            self.volume += int(v)
            if h > self.high:
                self.high = h
            if lo < self.low:
                self.low = lo

    def values(self) -> tuple[Any, ...]:
        return (
            *(self.n[m] for m in SERIES),
            self.volume,
            self.high,
            self.low,
            *(self.sums[m] for m in SERIES),
        )


Rows = dict[tuple[str, str], Row]
Table = dict[tuple[str, str], tuple[Any, ...]]


def timing_table(rows: Rows) -> Table:
    return {key: tuple(r.at[m] for m in SERIES) for key, r in rows.items()}


def figures_of(rows: Rows) -> Table:
    """The ``FIGURES`` columns of consumer rows (the reference's are its own)."""
    return {key: r.values()[: len(FIGURES)] for key, r in rows.items()}


@dataclass
class EngineResult:
    """What an engine hands back to the child runner."""

    rows: Rows
    load_s: float
    replay_s: float
    bars_1m: int
    derived: dict[int, int]
    extra: dict[str, Any] = field(default_factory=dict)
    timing: Table | None = None  # TIMING per (symbol, session), when the consumer recorded it
    figures: Table | None = None  # FIGURES from the engine itself, when it reports them

    @classmethod
    def from_rows(
        cls, rows: Rows, load_s: float, replay_s: float, extra: dict[str, Any]
    ) -> EngineResult:
        """A result whose bar counts are the totals of its per-(symbol, session) rows."""
        bars_1m, derived = totals(rows.values())
        return cls(rows, load_s, replay_s, bars_1m, derived, extra)


def job_sessions(count: int) -> list[Session]:
    """The first ``count`` XNYS sessions from START (sessionflow's calendar)."""
    from sessionflow.models import to_us
    from sessionflow.time_provider import ExchangeCalendar

    infos = ExchangeCalendar().sessions(START, START + timedelta(days=count * 2 + 14))[:count]
    if len(infos) < count:
        raise ValueError(f"only {len(infos)} sessions found after {START}")
    return [Session(s.date, to_us(s.open), to_us(s.close)) for s in infos]


def ensure_data(job: Job, data_dir: Path) -> Path:
    """Write the job's Parquet file once (atomically); later calls reuse it."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sessionflow.demo import synthetic_bars
    from sessionflow.time_provider import ExchangeCalendar

    path = job.data_path(data_dir)
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    sessions = job_sessions(job.sessions)
    names = job.names
    batch = synthetic_bars(
        ExchangeCalendar(),
        names,
        sessions[0].day,
        sessions[-1].day,
        {n: MISSING_FRACTION for n in names},
        seed=SEED,
    )
    keep = ~_gaps(batch.symbol.astype(str), batch.ts_us, names, sessions)
    order = np.lexsort((batch.symbol[keep].astype(str), batch.ts_us[keep]))
    order = np.flatnonzero(keep)[order]
    table = pa.table(
        {
            "symbol": pa.array(batch.symbol[order].astype(str), type=pa.string()),
            "ts_us": pa.array(batch.ts_us[order], type=pa.int64()),
            "open": pa.array(batch.open[order], type=pa.float64()),
            "high": pa.array(batch.high[order], type=pa.float64()),
            "low": pa.array(batch.low[order], type=pa.float64()),
            "close": pa.array(batch.close[order], type=pa.float64()),
            "volume": pa.array(batch.volume[order], type=pa.int64()),
        }
    )
    meta = {
        "sessions": [[s.day.isoformat(), s.open_us, s.close_us] for s in sessions],
        "symbols": names,
        "missing_fraction": MISSING_FRACTION,
        "stretch_minutes": STRETCH,
        "tail_minutes": TAIL,
        "seed": SEED,
    }
    table = table.replace_schema_metadata({"sessionflow_job": json.dumps(meta)})
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, compression="zstd")
    tmp.replace(path)
    return path


def _gaps(symbol: Any, ts_us: I64, names: list[str], sessions: list[Session]) -> Any:
    """Mask of the bars taken out on top of the random 2%: symbol i loses ``STRETCH``
    minutes of session ``i % D`` from minute ``20 + 7i % 150``; symbols 1, 5, 9, ...
    also lose the last ``TAIL`` minutes of session ``i % D + 1``."""
    import numpy as np

    drop = np.zeros(len(ts_us), dtype=bool)
    for i, name in enumerate(names):
        mine = symbol == name
        s = sessions[i % len(sessions)]
        start = s.open_us + (20 + 7 * i % 150) * MINUTE_US
        drop |= mine & (ts_us >= start) & (ts_us < start + STRETCH * MINUTE_US)
        if i % 4 == 1:
            t = sessions[(i % len(sessions) + 1) % len(sessions)]
            drop |= mine & (ts_us >= t.close_us - TAIL * MINUTE_US) & (ts_us < t.close_us)
    return drop


def read_meta(path: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    raw = pq.read_schema(path).metadata[b"sessionflow_job"]
    meta: dict[str, Any] = json.loads(raw)
    return meta


def read_sessions(path: Path) -> list[Session]:
    return [Session(date.fromisoformat(d), o, c) for d, o, c in read_meta(path)["sessions"]]


def read_columns(path: Path) -> Columns:
    """The whole file as numpy arrays (symbols dictionary-encoded)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    enc = pc.dictionary_encode(table.column("symbol")).combine_chunks()
    names = [str(x) for x in enc.dictionary.to_pylist()]

    def col(name: str) -> Any:
        return table.column(name).to_numpy()

    return Columns(
        names=names,
        code=enc.indices.to_numpy().astype(np.int64),
        ts_us=col("ts_us"),
        open=col("open"),
        high=col("high"),
        low=col("low"),
        close=col("close"),
        volume=col("volume"),
        sessions=read_sessions(path),
    )


class SessionLookup:
    """Maps timestamps to sessions without any engine's help."""

    def __init__(self, sessions: Sequence[Session]) -> None:
        self.sessions = list(sessions)
        self._opens = [s.open_us for s in sessions]
        self.labels = [s.day.isoformat() for s in sessions]

    def of_open_stamp(self, ts_us: int) -> str:
        """Session of a bar stamped at its open (open <= ts < close)."""
        i = bisect_left(self._opens, ts_us + 1) - 1
        if i < 0 or ts_us >= self.sessions[i].close_us:
            raise ValueError(f"bar opening at {ts_us} is outside every session")
        return self.labels[i]

    def of_close_stamp(self, ts_us: int) -> str:
        """Latest session opened strictly before ``ts_us``: a bar stamped at its close,
        or one an engine emitted late (after the close) still belongs to it."""
        i = bisect_left(self._opens, ts_us) - 1
        if i < 0:
            raise ValueError(f"bar closing at {ts_us} is before the first session")
        return self.labels[i]

    def window_of_close_stamp(self, ts_us: int, minutes: int) -> tuple[str, int]:
        """Session and open of the ``minutes`` window (aligned to the session open) that a
        bar stamped at ``ts_us`` closes: the window holding the minute before the stamp.
        Right for a short last window stamped at the session close, and for a window
        emitted late but stamped at its edge."""
        i = bisect_left(self._opens, ts_us) - 1
        if i < 0:
            raise ValueError(f"bar closing at {ts_us} is before the first session")
        open_us = self._opens[i]
        step = minutes * MINUTE_US
        return self.labels[i], open_us + (ts_us - MINUTE_US - open_us) // step * step


def write_csv(path: Path, rows: Rows) -> None:
    write_table(path, {key: r.values() for key, r in rows.items()}, COLUMNS)


def write_table(path: Path, table: Table, columns: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(("symbol", "session", *columns))
        for (sym, day), values in sorted(table.items()):
            w.writerow((sym, day, *(repr(x) for x in values)))


def read_csv(
    path: Path, columns: Sequence[str] = COLUMNS
) -> dict[tuple[str, str], tuple[int | float, ...]]:
    out = {}
    with path.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            out[(rec["symbol"], rec["session"])] = tuple(
                float(rec[name]) if name in ("high", "low") else int(rec[name]) for name in columns
            )
    return out


def compare_csv(reference: Path, other: Path, columns: Sequence[str] = COLUMNS) -> dict[str, Any]:
    """Per-column equality of ``other`` against ``reference`` (exact, floats included);
    ``reference`` may hold more columns than ``columns``."""
    ref, got = read_csv(reference, columns), read_csv(other, columns)
    missing = sorted(set(ref) - set(got))
    extra = sorted(set(got) - set(ref))
    differ: dict[str, int] = {}
    example: dict[str, Any] = {}
    for key in sorted(set(ref) & set(got)):
        for i, name in enumerate(columns):
            if ref[key][i] != got[key][i]:
                differ[name] = differ.get(name, 0) + 1
                example.setdefault(
                    name, {"row": list(key), "reference": ref[key][i], "engine": got[key][i]}
                )
    return {
        "equal": not (missing or extra or differ),
        "rows": len(ref),
        "missing_rows": len(missing),
        "extra_rows": len(extra),
        "columns_differ": differ,
        "examples": example,
    }


def preload_libraries() -> None:
    """Import the shared heavy libraries before any timer starts."""
    import numpy  # noqa: F401
    import pyarrow.compute
    import pyarrow.parquet  # noqa: F401


def peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def totals(rows: Iterable[Row]) -> tuple[int, dict[int, int]]:
    sums = dict.fromkeys(SERIES, 0)
    for r in rows:
        for m in SERIES:
            sums[m] += r.n[m]
    return sums[1], {m: sums[m] for m in INTERVALS}


class WindowBuilder:
    """Derived bars built by a consumer from the 1m bars it receives (the peers' variants).

    Windows are aligned to the session open; a window is emitted into its Row when the
    symbol's next bar falls in another window, and the rest by ``flush()`` at the end, so
    the short last window of a session is kept and an empty window yields nothing. The
    emission is later than at the window's close (at the symbol's next bar), which does
    not change what is delivered.
    """

    def __init__(self, sessions: Sequence[Session], rows: Rows) -> None:
        self.lookup = SessionLookup(sessions)
        self.rows = rows
        # per symbol: [session label, session open, session close, *one list per interval]
        self.state: dict[str, list[Any]] = {}

    def add(self, sym: str, ts_us: int, o: float, h: float, lo: float, c: float, v: float) -> Row:
        """One 1m bar (stamped at its open) of ``sym``; returns the bar's Row."""
        st = self.state.get(sym)
        if st is None or not st[1] <= ts_us < st[2]:
            if st is not None:
                self._emit(sym, st)
            label = self.lookup.of_open_stamp(ts_us)
            s = self.lookup.sessions[self.lookup.labels.index(label)]
            st = self.state[sym] = [label, s.open_us, s.close_us] + [None] * len(INTERVALS)
        key = (sym, st[0])
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = Row()
        offset = ts_us - st[1]
        for j, m in enumerate(INTERVALS, start=3):
            start = st[1] + offset // (m * MINUTE_US) * (m * MINUTE_US)
            w = st[j]
            if w is not None and w[0] == start:
                if h > w[2]:
                    w[2] = h
                if lo < w[3]:
                    w[3] = lo
                w[4] = c
                w[5] += v
                continue
            if w is not None:
                row.add(m, *w)
            st[j] = [start, o, h, lo, c, v]
        return row

    def _emit(self, sym: str, st: list[Any]) -> None:
        row = self.rows[(sym, st[0])]
        for j, m in enumerate(INTERVALS, start=3):
            if st[j] is not None:
                row.add(m, *st[j])
                st[j] = None

    def flush(self) -> None:
        for sym, st in self.state.items():
            self._emit(sym, st)
