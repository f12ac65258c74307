"""The bad-input matrix: one small real case per class, and what sessionflow did with it.

Each case writes a real file (or asks for a real backtest/session) against a
DuckDB store that already holds data, and records the outcome: the error message,
or the rejection reasons with counts. ``store_intact`` compares the store after
the case with what it must hold: unchanged after an error, the old rows plus
exactly the good rows after a partial rejection.
"""

from __future__ import annotations

import dataclasses
import io
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sessionflow.check.stores import CHECK_SYMBOLS, store_checksum
from sessionflow.demo import synthetic_bars
from sessionflow.events import BarSliceEvent, BatchEvent
from sessionflow.importer import ImportError_, bar_job, import_bars, import_lean, run_import
from sessionflow.models import MINUTE, Bar, Quote, Tick, to_us
from sessionflow.store import DuckDBStore
from sessionflow.system_manager import Settings, build_system
from sessionflow.time_provider import ExchangeCalendar

FRIDAY = date(2024, 11, 29)  # 13:00 ET early close
HOLIDAY = date(2024, 11, 28)
HEADER = "timestamp,open,high,low,close,volume\n"
A = "2024-11-29T09:30:00-05:00,10,11,9,10.5,100\n"
B = "2024-11-29T09:31:00-05:00,10.5,11.5,10,11,250\n"
C = "2024-11-29T09:32:00-05:00,11,12,10.5,11.5,75\n"


@dataclass(frozen=True)
class BadInputResult:
    case: str
    where: str
    outcome: str  # "rejected" (rows refused with reasons) or "error" (nothing written)
    detail: str
    store_intact: bool | None  # None where no store is written
    ok: bool


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{r} x{n}" for r, n in sorted(counts.items()))


class _Case:
    """A fresh file store holding 210 older bars, so 'unchanged' means something."""

    def __init__(self, workdir: Path, calendar: ExchangeCalendar, name: str) -> None:
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.calendar = calendar
        self.store = DuckDBStore(self.dir / "store.duckdb")
        self.store.upsert_bars(synthetic_bars(calendar, ["OLD"], FRIDAY, FRIDAY))
        self.before = store_checksum(self.store)
        self.rows_before = self.store.count_bars()

    def csv_rows(
        self, name: str, rows: list[str], want: dict[str, int], good: int
    ) -> BadInputResult:
        path = self.dir / "bars.csv"
        path.write_text(HEADER + "".join(rows))
        report = import_bars(self.store, path, self.calendar, "NEW")
        intact = (
            self.store.count_bars()
            == self.rows_before + good
            == self.rows_before + (report.imported)
        )
        lines = ", ".join(f"line {ln}" for ln, _, _ in report.rejections)
        kept = f"{report.imported} good row{'s' if report.imported != 1 else ''} kept"
        detail = f"{_reasons(dict(report.rejected))} ({lines}); {kept}"
        ok = dict(report.rejected) == want and report.imported == good and intact
        self.store.close()
        return BadInputResult(name, "import bars (CSV)", "rejected", detail, intact, ok)

    def aborted(
        self, name: str, where: str, run: Callable[[], object], message: str
    ) -> BadInputResult:
        try:
            run()
        except (ImportError_, ValueError) as exc:
            text = str(exc).replace(str(self.dir) + "/", "")
            intact = store_checksum(self.store) == self.before
            self.store.close()
            return BadInputResult(name, where, "error", text, intact, message in text and intact)
        self.store.close()
        return BadInputResult(name, where, "accepted", "no error raised", None, False)


def lean_trade_zip(rows: int = 390) -> bytes:
    """A valid LEAN trade zip: one row per minute from 09:30 ET, prices x 10,000."""
    lines = [
        f"{34_200_000 + 60_000 * i},{1_000_000 + i},{1_010_000 + i},{990_000 + i},"
        f"{1_000_000 + i},{100 + i}"
        for i in range(rows)
    ]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("data.csv", "\n".join(lines) + "\n")
    return buf.getvalue()


def _csv_cases(workdir: Path, cal: ExchangeCalendar) -> list[BadInputResult]:
    def case(name: str) -> _Case:
        return _Case(workdir, cal, name.replace(" ", "_").replace("/", "_"))

    out = [
        case("dup").csv_rows("duplicate bars", [A, B, A], {"duplicate": 1}, 2),
        case("order").csv_rows("out-of-order rows", [A, C, B], {"out_of_order": 1}, 2),
        case("nan").csv_rows(
            "NaN price", [A, B.replace("10.5,11.5", "nan,11.5")], {"nan_or_inf": 1}, 1
        ),
        case("inf").csv_rows("inf price", [A, B.replace("11.5", "inf")], {"nan_or_inf": 1}, 1),
        case("hl").csv_rows(
            "high < low", [A, B.replace("11.5,10,", "9.5,10,")], {"high_below_low": 1}, 1
        ),
        case("vol").csv_rows(
            "negative volume", [A, B.replace(",250", ",-250")], {"negative_volume": 1}, 1
        ),
        case("align").csv_rows(
            "not minute-aligned",
            [A, B.replace("09:31:00", "09:31:30")],
            {"not_minute_aligned": 1},
            1,
        ),
        case("outside").csv_rows(
            "bars outside the session",
            [
                A.replace("09:30", "09:29"),
                A,
                A.replace("11-29T09:30", "11-28T10:00"),
                A.replace("09:30", "13:00"),
            ],
            {"outside_session": 3},
            1,
        ),
        case("tz").csv_rows(
            "mixed UTC offsets in one file",
            [
                A,
                "2024-11-29T14:31:00Z,10,11,9,10,5\n",
                "2024-11-29T14:30:00+00:00,10,11,9,10,5\n",
                "2024-11-29T10:33:00-04:00,10,11,9,10,5\n",
                "2024-11-29T15:32:00+01:00,10,11,9,10,5\n",
            ],
            {"duplicate": 1, "out_of_order": 1},
            3,
        ),
        case("cut").csv_rows("file truncated mid-row", [A, B, C[:17]], {"malformed_row": 1}, 2),
        case("bigvol").csv_rows(
            "volume >= 2^63", [A, B.replace(",250", f",{2**63}")], {"volume_out_of_range": 1}, 1
        ),
        case("y9999").csv_rows(
            "year 9999", [A, B.replace("2024-", "9999-")], {"time_out_of_range": 1}, 1
        ),
        case("zero").csv_rows(
            "price 0", [A, B.replace("10.5,11.5", "0,11.5")], {"non_positive_price": 1}, 1
        ),
        case("under").csv_rows(
            "number 1_000", [A, B.replace(",250", ",1_000")], {"bad_number": 1}, 1
        ),
        case("nano").csv_rows(
            "sub-microsecond time",
            [A, B.replace("09:31:00", "09:31:00.000000001")],
            {"not_minute_aligned": 1},
            1,
        ),
    ]
    n = case("naive")
    (n.dir / "naive.csv").write_text(HEADER + A + B.replace("-05:00", ""))
    out.append(n.aborted(
        "naive time without --tz", "import bars (CSV)",
        lambda: import_bars(n.store, n.dir / "naive.csv", cal, "NEW"), "has no UTC offset",
    ))  # fmt: skip
    y = case("symcol")
    (y.dir / "sym.csv").write_text("symbol," + HEADER + "IBM," + A + "ORCL," + B)
    out.append(y.aborted(
        "--symbol with a symbol column", "import bars (CSV)",
        lambda: import_bars(y.store, y.dir / "sym.csv", cal, "NEW"), "has a symbol column",
    ))  # fmt: skip
    x = case("conflict")
    (x.dir / "one.csv").write_text(HEADER + A + B)
    (x.dir / "two.csv").write_text(HEADER + A.replace(",10.5,100", ",10.75,100") + B)

    def both() -> object:
        jobs = [bar_job(x.dir / f, cal, "NEW") for f in ("one.csv", "two.csv")]
        result = run_import(x.store, jobs)
        result.raise_on_error()
        return result

    out.append(x.aborted(
        "conflict across files of one import", "import bars (CSV)", both, "1 row(s) conflict"
    ))  # fmt: skip
    c = case("empty")
    (c.dir / "empty.csv").write_bytes(b"")
    out.append(c.aborted(
        "zero-length file", "import bars (CSV)",
        lambda: import_bars(c.store, c.dir / "empty.csv", cal, "NEW"), "file is empty",
    ))  # fmt: skip
    w = case("cols")
    (w.dir / "cols.csv").write_text("timestamp,open,hi,lo,close,volume\n" + A)
    out.append(w.aborted(
        "wrong column names", "import bars (CSV)",
        lambda: import_bars(w.store, w.dir / "cols.csv", cal, "NEW"), "missing column(s) high, low",
    ))  # fmt: skip
    b = case("binary")
    (b.dir / "bin.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    out.append(b.aborted(
        "binary file", "import bars (CSV)",
        lambda: import_bars(b.store, b.dir / "bin.csv", cal, "NEW"), "not a UTF-8 text file",
    ))  # fmt: skip
    return out


def _lean_cases(workdir: Path, cal: ExchangeCalendar) -> list[BadInputResult]:
    out = []
    data = lean_trade_zip()
    for name, cut in (("zip truncated mid-file", len(data) // 2), ("zero-length zip", 0)):
        c = _Case(workdir, cal, f"lean_{cut}")
        folder = c.dir / "lean" / "zzz"
        folder.mkdir(parents=True)
        (folder / "20131004_trade.zip").write_bytes(data)  # good, and must not be written either
        (folder / "20131007_trade.zip").write_bytes(data[:cut])
        root = c.dir / "lean"

        def run(store: DuckDBStore = c.store, root: Path = root) -> object:
            return import_lean(store, root, cal)

        out.append(c.aborted(name, "import lean (zip)", run, "unreadable zip"))
    return out


def _backtest_cases(store_path: Path, cal: ExchangeCalendar) -> list[BadInputResult]:
    def attempt(name: str, message: str, **over: Any) -> BadInputResult:
        base: dict[str, Any] = {
            "store_path": store_path, "symbols": ["AAA"], "start": FRIDAY, "end": FRIDAY,
        }  # fmt: skip
        base.update(over)
        try:
            build_system(Settings.load(**base)).run()
        except ValueError as exc:
            return BadInputResult(name, "backtest", "error", str(exc), None, message in str(exc))
        return BadInputResult(name, "backtest", "accepted", "ran", None, False)

    out = [
        attempt("unknown symbol", "symbols not in the store: ZZZZ", symbols=["AAA", "ZZZZ"]),
        attempt(
            "holiday-only date range",
            "no XNYS sessions between 2024-11-28 and 2024-11-28",
            start=HOLIDAY,
            end=HOLIDAY,
        ),
        attempt(
            "weekend-only date range",
            "no XNYS sessions between 2024-11-30 and 2024-12-01",
            start=date(2024, 11, 30),
            end=date(2024, 12, 1),
        ),
    ]
    try:
        cal.session(HOLIDAY)
        out.append(BadInputResult("session on a holiday", "calendar", "accepted", "", None, False))
    except ValueError as exc:
        ok = "2024-11-28 is not a XNYS trading session" in str(exc)
        out.append(BadInputResult("session on a holiday", "calendar", "error", str(exc), None, ok))
    return out


def _session_case(store_path: Path, cal: ExchangeCalendar) -> BadInputResult:
    """Junk written into a running session from a callback; the session must carry on."""
    symbols = list(CHECK_SYMBOLS)
    settings = Settings.load(store_path=store_path, symbols=symbols, start=FRIDAY, end=FRIDAY)
    clean = build_system(settings)
    clean.run()
    s = cal.session(FRIDAY)
    at = s.open + timedelta(minutes=30)
    hole = _first_hole(store_path, "BBB", s.open, 30)
    nan, inf = math.nan, math.inf
    junk = [
        Bar("AAA", at, 1, 2, 0.5, 1, 10),  # duplicate of the bar just delivered
        Bar("BBB", s.open + hole * MINUTE, 1, 2, 0.5, 1, 10),  # a missed earlier minute
        Bar("AAA", s.open - timedelta(minutes=1), 1, 2, 0.5, 1, 10),  # 09:29: outside
        Bar("AAA", s.close, 1, 2, 0.5, 1, 10),  # 13:00 on the early close: outside
        Bar("AAA", s.open - timedelta(days=1), 1, 2, 0.5, 1, 10),  # the holiday: outside
        Bar("AAA", at + timedelta(minutes=1, seconds=30), 1, 2, 0.5, 1, 10),  # not aligned
        Bar("AAA", at + timedelta(minutes=5), nan, 2, 0.5, 1, 10),
        Bar("CCC", at + timedelta(minutes=5), 1, inf, 0.5, 1, 10),
        Bar("CCC", at + timedelta(minutes=6), 1, 0.4, 0.5, 1, 10),  # high < low
        Bar("CCC", at + timedelta(minutes=7), 1, 2, 0.5, 1, -10),  # negative volume
        Bar("ZZZ", at + timedelta(minutes=5), 1, 2, 0.5, 1, 10),  # unknown symbol
    ]
    system = build_system(settings)
    kept: list[list[Bar]] = []

    def inject(ev: BatchEvent) -> None:
        if isinstance(ev, BarSliceEvent) and ev.time == at + timedelta(minutes=1) and not kept:
            sd = system.data_manager.session_data
            kept.append(sd.add_bars(junk))
            sd.add_quotes([Quote("ZZZ", at, 1, 1, 1, 1, 1, 2, 2, 2, 2, 1)])
            sd.add_ticks([Tick("ZZZ", at, 1.5, 100)])

    system.on_batch(inject)
    error = None
    try:
        system.run()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    rows = system.data_manager.reports[0].rows if system.data_manager.reports else []
    counts: dict[str, int] = {}
    for row in rows:
        for reason, n in row.rejections.items():
            counts[reason] = counts.get(reason, 0) + n
    unknown = dict(system.data_manager.session_data.unknown_symbols)
    same = [dataclasses.replace(r, rejections={}) for r in rows] == clean.data_manager.reports[
        0
    ].rows
    want = {"duplicate": 1, "out_of_order": 1, "outside_session": 3, "not_minute_aligned": 1,
            "nan_or_inf": 2, "high_below_low": 1, "negative_volume": 1}  # fmt: skip
    ok = error is None and kept == [[]] and counts == want and unknown == {"ZZZ": 3} and same
    detail = (
        f"{_reasons(counts)}; unknown_symbols ZZZ x{unknown.get('ZZZ', 0)} (bar, quote, tick); "
        f"session {'completed' if error is None else 'FAILED: ' + error}, "
        f"{'same bars and figures as a clean run' if same else 'DIFFERS from a clean run'}"
    )
    return BadInputResult(
        "bad bars written into a running session", "session write", "rejected", detail, None, ok
    )


def _first_hole(store_path: Path, symbol: str, start: datetime, minutes: int) -> int:
    """The first minute ``symbol`` has no bar in the store (BBB is the gappy one)."""
    store = DuckDBStore(store_path, read_only=True)
    bars = store.load_bars([symbol], start, start + minutes * MINUTE)
    store.close()
    have = {int((t - to_us(start)) // 60_000_000) for t in bars.ts_us.tolist()}
    missing = sorted(set(range(minutes)) - have)
    if not missing:
        raise RuntimeError(f"{symbol} has no missing minute in the first {minutes}")
    return missing[0]


def run_bad_input(
    workdir: Path, store_path: Path, calendar: ExchangeCalendar
) -> list[BadInputResult]:
    """Every class of bad input the check knows, in a fixed order."""
    return [
        *_csv_cases(workdir, calendar),
        *_lean_cases(workdir, calendar),
        *_backtest_cases(store_path, calendar),
        _session_case(store_path, calendar),
        *_live_cases(workdir / "live"),
    ]


def _live_cases(workdir: Path) -> list[BadInputResult]:
    from sessionflow.check.bad_live import run_live_bad_input  # it imports this module

    return run_live_bad_input(workdir)
