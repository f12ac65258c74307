"""Adjusted history on real LEAN data: AAPL's 7-for-1 split and TWX's 2014-06-09 distribution.

Expected values are computed here from the factor files themselves (LEAN: a row holds
the factors of every date up to and including its own), never through sessionflow's
parser, and from the raw bars in the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sessionflow import Event, SessionStartEvent, Settings, build_system
from sessionflow.cli.app import app
from sessionflow.models import Bar
from sessionflow.session_data import SessionReport
from sessionflow.store import DuckDBStore
from tests.helpers import SHARED_DATA, shared_data

DATA = SHARED_DATA
DAYS = [date(2014, 6, 5), date(2014, 6, 6), date(2014, 6, 9)]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    shared_data("lean-minute", "aapl")
    shared_data("lean-factors")
    path = tmp_path_factory.mktemp("ca") / "s.duckdb"
    runner = CliRunner()
    for sym in ("aapl", "twx"):
        res = runner.invoke(
            app, ["import", "lean", str(DATA / "lean-minute" / sym), "--store", str(path)]
        )
        assert res.exit_code == 0, res.output
    res = runner.invoke(
        app, ["import", "factors", str(DATA / "lean-factors"), "--store", str(path)]
    )
    assert res.exit_code == 0, res.output
    yield path


def factor(sym: str, day: date, split_only: bool) -> float:
    """LEAN's cumulative factor for ``day``: the first row dated on or after it."""
    text = (DATA / "lean-factors" / "factor_files" / f"{sym}.csv").read_text()
    for line in text.split():
        d, pf, sf, _ = line.split(",")
        if date(int(d[:4]), int(d[4:6]), int(d[6:])) >= day:
            return float(sf) if split_only else float(pf) * float(sf)
    return 1.0


def raw_bars(path: Path, sym: str, day: date) -> list[Bar]:
    from sessionflow.time_provider import ExchangeCalendar

    s = ExchangeCalendar("XNYS").session(day)
    db = DuckDBStore(path, read_only=True)
    try:
        return list(db.load_bars([sym], s.open, s.close).iter_bars())
    finally:
        db.close()


def run(path: Path, start: date, end: date, adjustment: str) -> tuple[
    dict[date, dict[tuple[str, int, date], tuple[Bar, ...]]], list[SessionReport]
]:  # fmt: skip
    settings = Settings(
        store_path=path, symbols=["AAPL", "TWX"], start=start, end=end, trailing_days=2,
        historical_intervals=[1, 15], adjustment=adjustment,
    )  # fmt: skip
    system = build_system(settings)
    seen: dict[date, dict[tuple[str, int, date], tuple[Bar, ...]]] = {}

    def on_event(ev: Event) -> None:
        if isinstance(ev, SessionStartEvent):
            dm = system.data_manager
            seen[ev.session] = {
                (s, k, d): dm.history(s, k, d)
                for s in ("AAPL", "TWX") for k in (1, 15) for d in DAYS if d < ev.session
            }  # fmt: skip

    system.on_event(on_event)
    try:
        system.run()
    finally:
        system.store.close()
    return seen, system.data_manager.reports


@pytest.mark.parametrize("start", [DAYS[0], DAYS[2]])  # rolled into history, or loaded at start
def test_history_as_of_0609_is_split_adjusted(store: Path, start: date) -> None:
    seen, reports = run(store, start, DAYS[2], "split")
    hist = seen[DAYS[2]]
    ratio = factor("aapl", DAYS[1], True) / factor("aapl", DAYS[2], True)
    assert ratio == pytest.approx(1 / 7, rel=1e-5)
    raw = raw_bars(store, "AAPL", DAYS[1])
    got = hist[("AAPL", 1, DAYS[1])]
    assert len(got) == len(raw) > 300
    for r, g in zip(raw, got, strict=True):
        assert g.ts == r.ts
        assert g.close == pytest.approx(r.close * ratio, rel=1e-6)
        assert g.low == pytest.approx(r.low * ratio, rel=1e-6)
        assert g.volume == round(r.volume / ratio) or abs(g.volume - r.volume * 7) <= 1
    last15 = hist[("AAPL", 15, DAYS[1])][-1]
    assert round(last15.close, 2) == round(645.57 / 7, 2) == 92.22
    raw15 = sum(b.volume for b in raw if b.ts >= last15.ts)
    assert abs(last15.volume - raw15 * 7) <= 15
    # TWX: no split on 06-09, so split-adjusted history is raw
    twx_raw = raw_bars(store, "TWX", DAYS[1])
    assert [b.close for b in hist[("TWX", 1, DAYS[1])]] == [b.close for b in twx_raw]
    # every action in the window is listed (docs/corporate-actions.md), TWX's too, though
    # under ``split`` its distribution changes nothing
    applied = {r.session: r.actions for r in reports}
    assert [(a["symbol"], a["ex_date"], a["split"]) for a in applied[DAYS[2]]] == [
        ("AAPL", "2014-06-09", 7.0), ("TWX", "2014-06-09", 1.0)
    ]  # fmt: skip


def test_no_look_ahead_history_on_0606_is_raw(store: Path) -> None:
    seen, reports = run(store, DAYS[0], DAYS[2], "split_dividend")
    on_0606 = seen[DAYS[1]][("AAPL", 1, DAYS[0])]
    assert [b.close for b in on_0606] == [b.close for b in raw_bars(store, "AAPL", DAYS[0])]
    assert [b.close for b in seen[DAYS[1]][("TWX", 1, DAYS[0])]] == [
        b.close for b in raw_bars(store, "TWX", DAYS[0])
    ]
    # as of 06-09, split_dividend: TWX's distribution applies too, by the factor-file ratio
    twx_ratio = factor("twx", DAYS[1], False) / factor("twx", DAYS[2], False)
    assert twx_ratio < 0.97
    for d in DAYS[:2]:
        raw = raw_bars(store, "TWX", d)
        got = seen[DAYS[2]][("TWX", 1, d)]
        assert [g.close for g in got] == pytest.approx([r.close * twx_ratio for r in raw], rel=1e-6)
        assert [g.volume for g in got] == [r.volume for r in raw]  # a dividend moves no volume
    aapl_ratio = factor("aapl", DAYS[1], False) / factor("aapl", DAYS[2], False)
    got = seen[DAYS[2]][("AAPL", 1, DAYS[0])]
    raw = raw_bars(store, "AAPL", DAYS[0])
    assert [g.close for g in got] == pytest.approx([r.close * aapl_ratio for r in raw], rel=1e-6)
    applied = {r.session: [(a["symbol"], a["ex_date"]) for a in r.actions] for r in reports}
    assert applied == {
        DAYS[0]: [], DAYS[1]: [], DAYS[2]: [("AAPL", "2014-06-09"), ("TWX", "2014-06-09")]
    }  # fmt: skip


def test_raw_setting_leaves_history_raw(store: Path) -> None:
    seen, reports = run(store, DAYS[2], DAYS[2], "raw")
    got = seen[DAYS[2]][("AAPL", 1, DAYS[1])]
    assert [b.close for b in got] == [b.close for b in raw_bars(store, "AAPL", DAYS[1])]
    assert reports[0].actions == []


def _export(store: Path, out: Path, *extra: str) -> list[dict[str, str]]:
    import csv

    args = ["export", "bars", "--start", "2014-06-05", "--end", "2014-06-09", "--symbols", "AAPL"]
    res = CliRunner().invoke(
        app, [*args, "--interval", "15m", "-o", str(out), "--store", str(store), *extra]
    )
    assert res.exit_code == 0, res.output
    with out.open() as fh:
        return list(csv.DictReader(fh))


def test_export_as_of(store: Path, tmp_path: Path) -> None:
    last_0606 = "2014-06-06T19:45:00+00:00"
    raw = {r["timestamp"]: r for r in _export(store, tmp_path / "raw.csv")}
    split = {r["timestamp"]: r for r in _export(store, tmp_path / "a.csv", "--as-of", "2014-06-09")}
    early = {r["timestamp"]: r for r in _export(store, tmp_path / "b.csv", "--as-of", "2014-06-06")}
    assert float(raw[last_0606]["close"]) == 645.57
    assert round(float(split[last_0606]["close"]), 2) == 92.22
    assert int(split[last_0606]["volume"]) == 7 * int(raw[last_0606]["volume"])
    assert early[last_0606] == raw[last_0606]  # as of 06-06 the action has not happened
    on_0609 = [t for t in raw if t.startswith("2014-06-09")]
    assert on_0609 and all(split[t] == raw[t] for t in on_0609)  # the as-of session is raw
    ratio = factor("aapl", DAYS[0], True) / factor("aapl", DAYS[2], True)
    for t in (t for t in raw if t.startswith("2014-06-05")):
        assert float(split[t]["open"]) == pytest.approx(float(raw[t]["open"]) * ratio, rel=1e-6)
    bad = ["--adjustment", "bogus", "-o", str(tmp_path / "x.csv"), "--store", str(store)]
    res = CliRunner().invoke(
        app, ["export", "bars", "--start", "2014-06-05", "--end", "2014-06-09", *bad]
    )
    assert res.exit_code == 2 and "bogus" in res.stderr and not (tmp_path / "x.csv").exists()
