"""Session reports are copied at the session's end and their rows built when first read."""

from __future__ import annotations

import json
import pickle
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from sessionflow import BarEvent, Event, SessionEndEvent, SessionStartEvent, build_system
from tests.helpers import demo_settings


def test_report_rows_read_late_describe_their_own_session(demo_store_path: Path) -> None:
    """Rows read after the run (later sessions have reset SessionData) still count the
    bars each session delivered; pickling and to_dict keep them."""
    system = build_system(
        demo_settings(demo_store_path, start=date(2024, 11, 27), end=date(2024, 11, 29))
    )
    delivered: dict[date, Counter[str]] = {}
    ends: list[SessionEndEvent] = []
    day: list[date] = []

    def consume(ev: Event) -> None:
        if isinstance(ev, SessionStartEvent):
            day.append(ev.session)
            delivered[ev.session] = Counter()
        elif isinstance(ev, BarEvent):
            delivered[day[-1]][ev.bar.symbol] += 1
        elif isinstance(ev, SessionEndEvent):
            ends.append(ev)

    system.on_event(consume)
    system.run()
    assert [e.session for e in ends] == [date(2024, 11, 27), date(2024, 11, 29)]
    for ev in ends:
        rep = ev.report
        assert {r.symbol: r.bars for r in rep.rows} == dict(delivered[ev.session])
        early = ev.session == date(2024, 11, 29)
        assert rep.early_close is early
        assert {r.expected for r in rep.rows} == {210 if early else 390}
        with pytest.raises(AttributeError):
            rep.early_close = not early
        copy = pickle.loads(pickle.dumps(rep))
        assert copy == rep and copy.rows == rep.rows
        out = json.loads(json.dumps(rep.to_dict()))
        assert out["session"] == ev.session.isoformat()
        assert [r["bars"] for r in out["rows"]] == [r.bars for r in rep.rows]
    # the data manager keeps the same reports for the CLI
    assert system.data_manager.reports == [e.report for e in ends]
