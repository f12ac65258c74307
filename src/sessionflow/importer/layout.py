"""Which header names hold which field of a bar file: defaults, ``--columns``, presets.

A vendor file names its columns its own way (Polygon's flat files: ``ticker``,
``window_start`` in epoch nanoseconds); ``--columns time=window_start,symbol=ticker``
says which is which, and a preset is a named set of those plus the time's unit and
whether it marks the bar's open or its close. Every field keeps a list of the names
it accepts, so a missing column's error can list them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sessionflow.importer.report import ImportError_

FIELDS = ("symbol", "time", "open", "high", "low", "close", "volume", "minutes")
_REQUIRED = ("open", "high", "low", "close", "volume", "time")
_ALIASES = {"ts": "time", "timestamp": "time", "datetime": "time", "date": "time"}
DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol",),
    "time": ("timestamp", "ts", "time", "datetime", "date"),
    **{k: (k,) for k in ("open", "high", "low", "close", "volume")},
    "minutes": ("minutes",),  # what `export bars` writes: the bar length in minutes
}


@dataclass(frozen=True)
class Layout:
    """Accepted header names per field, the epoch unit and the time's meaning."""

    names: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_NAMES))
    epoch: str | None = None
    time_is_close: bool = False  # a close time is one minute after the bar's open
    time_format: str | None = None  # --format: a strptime layout for text times
    dbn: bool = False  # Databento DBN records, not a table: see importer/dbn.py

    @property
    def shift_us(self) -> int:
        return 60_000_000 if self.time_is_close else 0

    def columns(self, path: Path, header: Sequence[str]) -> dict[str, int]:
        """Field -> column index; ImportError_ naming the accepted names of a missing one."""
        names = [h.strip().lower() for h in header]
        index: dict[str, int] = {}
        for name in FIELDS:
            found = next((n for n in self.names[name] if n in names), None)
            if found is not None:
                index[name] = names.index(found)
        missing = [n for n in _REQUIRED if n not in index]
        if missing:
            accepted = "; ".join(f"{n}: {', '.join(self.names[n])}" for n in missing)
            raise ImportError_(
                f"{path}: missing column(s) {', '.join(missing)}; header is {list(header)}; "
                f"names accepted: {accepted} (--columns {missing[0]}=NAME maps another)"
            )
        return index


PRESETS: dict[str, Layout] = {
    # Polygon/Massive flat files (us_stocks_sip/minute_aggs_v1):
    # ticker,volume,open,close,high,low,window_start,transactions; window_start in ns.
    "polygon-flat": Layout(
        {**DEFAULT_NAMES, "symbol": ("ticker",), "time": ("window_start",)}, epoch="ns"
    ),
    # Alpaca's bars as its REST API names them (t, o, h, l, c, v; S in the stream), or as
    # alpaca-py's DataFrame writes them (symbol, timestamp, open, ...): RFC 3339 times.
    "alpaca": Layout(
        {
            **DEFAULT_NAMES,
            "symbol": ("symbol", "s"),
            "time": ("timestamp", "t"),
            **{k: (k, k[0]) for k in ("open", "high", "low", "close", "volume")},
        }
    ),
    # yfinance's download(..., interval="1m").to_csv(): Datetime,Open,High,Low,Close,...
    "yahoo": Layout({**DEFAULT_NAMES, "time": ("datetime", "date")}),
    # Databento DBN ohlcv-1m files (.dbn, .dbn.zst): binary records, read by importer/dbn.py.
    "databento": Layout(dbn=True),
}


def layout(
    columns: str | None = None,
    preset: str | None = None,
    epoch: str | None = None,
    time_is: str = "open",
    time_format: str | None = None,
) -> Layout:
    """The layout of ``--preset``, ``--columns``, ``--epoch``, ``--time-is`` and ``--format``."""
    if preset is not None:
        if preset not in PRESETS:
            raise ValueError(f"--preset {preset!r}: use one of {', '.join(PRESETS)}")
        base = PRESETS[preset]
    else:
        base = Layout()
    if base.dbn and (columns or epoch or time_is != "open" or time_format):
        raise ValueError(
            f"--preset {preset} reads DBN records, whose fields and UTC nanosecond times "
            "are fixed: drop --columns, --epoch, --time-is and --format"
        )
    names = dict(base.names)
    for item in (columns or "").split(","):
        if not item.strip():
            continue
        role, sep, name = item.partition("=")
        role = _ALIASES.get(role.strip().lower(), role.strip().lower())
        if not sep or role not in FIELDS or not name.strip():
            raise ValueError(
                f"--columns {item.strip()!r}: use FIELD=NAME with FIELD one of "
                f"{', '.join(FIELDS)} (ts for time), e.g. --columns ts=window_start,symbol=ticker"
            )
        names[role] = (name.strip().lower(),)
    if time_is not in ("open", "close"):
        raise ValueError(f"--time-is {time_is!r}: use open (the default) or close")
    if epoch is not None and base.epoch is not None and epoch != base.epoch:
        raise ValueError(f"--epoch {epoch} and --preset {preset} (epoch {base.epoch}) disagree")
    if time_format is not None and (epoch or base.epoch):
        raise ValueError("--format and --epoch together: --format is for text times; drop one")
    return replace(
        base,
        time_format=time_format,
        names=names,
        epoch=epoch or base.epoch,
        time_is_close=time_is == "close" or base.time_is_close,
    )
