"""The WebSocket fan-out (web/events.py): off the engine thread, coalesced, bounded, capped.

Speed is the benchmark's (benchmarks/ws_viewers.py); these check what it relies on.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from sessionflow.events import BarSliceEvent, DerivedSliceEvent, SessionStartEvent
from sessionflow.models import to_us
from sessionflow.store import BarBatch, open_store
from sessionflow.web import create_app
from sessionflow.web.events import MAX_PENDING, MAX_WINDOW_BARS, Client, coalesce
from tests.web_support import ws_messages

OPEN = datetime(2024, 11, 29, 14, 30, tzinfo=UTC)


def _slice(minute: int, symbols: int = 2) -> BarBatch:
    n = symbols
    ts = to_us(OPEN + timedelta(minutes=minute))
    return BarBatch.from_columns(
        [f"S{i}" for i in range(n)], [ts] * n, [1.0] * n, [2.0] * n, [0.5] * n, [1.5] * n,
        [10] * n, [True] * n,
    )  # fmt: skip


def test_a_windows_bars_are_merged_per_kind_in_time_order() -> None:
    at = [OPEN + timedelta(minutes=m + 1) for m in range(5)]
    start = SessionStartEvent(date(2024, 11, 29), OPEN, OPEN + timedelta(hours=3.5), OPEN)
    items: list[Any] = [start]
    for m in range(5):
        items.append(BarSliceEvent(_slice(m), at[m]))
        if m == 4:
            items.append(DerivedSliceEvent(_slice(0), at[m], 5, 5))
    items.append(BarSliceEvent(_slice(2), at[4], filled=True))
    items.append(DerivedSliceEvent(_slice(0), at[4], 5, 5, revised=True))
    items.append({"type": "status", "status": {"state": "running"}})
    messages, left_out = coalesce(items)
    assert left_out == 0
    kinds = [(m["type"], m.get("filled"), m.get("revised")) for m in messages]
    assert kinds == [("session_start", None, None), ("bars", False, None),
                     ("derived", None, False), ("bars", True, None), ("derived", None, True),
                     ("status", None, None)]  # fmt: skip
    live = messages[1]
    assert [b["time"] for b in live["bars"]] == [
        to_us(OPEN + timedelta(minutes=m)) // 1_000_000 for m in range(5) for _ in range(2)
    ]
    assert live["at"] == at[4].isoformat()
    json.dumps(messages)  # as sent


def test_a_window_with_more_bars_than_a_viewer_uses_becomes_one_counted_notice() -> None:
    per = 100
    n = MAX_WINDOW_BARS // per + 1
    items: list[Any] = [BarSliceEvent(_slice(m, per), OPEN) for m in range(n)]
    items.append({"type": "status", "status": {}})
    messages, left_out = coalesce(items)
    assert left_out == n and [m["type"] for m in messages] == ["status"]


def test_a_client_that_falls_behind_loses_its_oldest_texts_counted() -> None:
    c = Client()
    for i in range(MAX_PENDING + 7):
        c.offer(str(i))
    frame = c.take()  # one frame: a JSON array of what it has
    assert frame is not None
    sent = json.loads(frame)
    assert sent[0] == {"type": "dropped", "count": 7}
    assert sent[1:] == list(range(7, MAX_PENDING + 7))
    assert c.take() is None and not c.ready.is_set()
    c.offer('{"type": "status"}')
    assert c.take() == '{"type": "status"}'  # alone: the message itself


@pytest.fixture
def store(demo_store_path: Path) -> Any:
    s = open_store(demo_store_path, read_only=True)
    yield s
    s.close()


def test_viewers_beyond_the_cap_are_refused_with_the_reason(store: Any) -> None:
    app = create_app(None, store, max_clients=2)
    with TestClient(app) as c, c.websocket_connect("/ws/events") as one:
        assert one.receive_json()["type"] == "status"
        with c.websocket_connect("/ws/events") as two:
            assert two.receive_json()["type"] == "status"
            with (
                pytest.raises(WebSocketDenialResponse) as refused,
                c.websocket_connect("/ws/events"),
            ):
                pass
            assert refused.value.status_code == 503
            assert refused.value.json() == {"error": "too many viewers (2); close another tab"}
            assert app.state.slot.hub.refused == 1
        with c.websocket_connect("/ws/events") as again:  # a place came free
            assert again.receive_json()["type"] == "status"


def test_many_viewers_share_one_sender_and_all_get_the_run(
    store: Any, demo_store_path: Path
) -> None:
    """Forty connections: one sender for their loop; each gets the session's start and its
    bars (or a counted notice in their place) and the status every interval."""
    app = create_app(None, store, status_interval_s=0.2)
    body = {"symbols": "SPY", "start": "2024-11-29", "end": "2024-11-29", "speed": 0}
    with TestClient(app) as c:
        sockets = [c.websocket_connect("/ws/events") for _ in range(40)]
        opened = [s.__enter__() for s in sockets]
        try:
            for ws in opened:
                assert ws.receive_json()["type"] == "status"
            hub = app.state.slot.hub
            assert len(hub._fanouts) == 1  # one sender, whatever the number of viewers
            assert c.post("/api/system/start", json=body).status_code == 200
            for ws in opened:
                kinds: set[str] = set()
                messages = ws_messages(ws)
                while not {"session_end", "status"} <= kinds:
                    kinds.add(next(messages)["type"])
                assert "session_start" in kinds and kinds & {"bars", "dropped"}
        finally:
            for s in sockets:
                s.__exit__(None, None, None)
