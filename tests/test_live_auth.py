"""Bad keys fail fast and clearly; API keys never reach logs, reports, output or exceptions."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from sessionflow import build_system
from sessionflow.data_manager.live import LiveParts
from sessionflow.feeds.base import FeedAuthError
from sessionflow.system_manager import State
from sessionflow.testing.alpaca_server import FakeAlpaca
from sessionflow.time_provider import ExchangeCalendar
from tests.live_support import (
    KEY,
    SECRET,
    LiveRun,
    by_minute,
    day_bars,
    live_settings,
    short_session,
)


def _leaks(text: str) -> list[str]:
    """Every way a key could show up: plain, or in a hex frame dump (as websockets logs)."""
    found = []
    for secret in (KEY, SECRET):
        raw = secret.encode()
        forms = [secret, raw[:6].hex(" "), raw[-6:].hex(" "), raw[:6].hex(), raw[-6:].hex()]
        found += [f for f in forms if f in text]
    return found


def test_auth_failure_is_a_clear_error_and_nothing_starts(tmp_path: Path) -> None:
    with FakeAlpaca(KEY, "the-real-secret") as server:
        system = build_system(live_settings(tmp_path, server))
        events: list[object] = []
        system.on_event(events.append)
        with pytest.raises(FeedAuthError, match="402 auth failed") as caught:
            system.run()
        assert server.refused[402] == 1  # refused once, not retried in a loop
    assert events == []
    assert system.state is State.STOPPED
    assert not system.data_manager.upkeep.alive and not system.data_manager.coordinator.alive
    assert not [t for t in threading.enumerate() if t.name.startswith("sessionflow-")]
    assert system.store.count_bars() == 0  # type: ignore[attr-defined]
    assert _leaks(str(caught.value)) == [] and _leaks(repr(caught.value)) == []


def test_missing_keys_name_the_variables_not_values(tmp_path: Path) -> None:
    with FakeAlpaca(KEY, SECRET) as server:
        settings = live_settings(tmp_path, server, key_id=None, secret_key=None)
        with pytest.raises(ValueError, match="APCA_API_KEY_ID"):
            build_system(settings, live=LiveParts(environ={}))
        env = {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}
        system = build_system(settings, live=LiveParts(environ=env))
        system.start()  # Alpaca's own variables work as a fallback
        system.stop()


def test_keys_never_appear_in_logs_reports_or_dumps(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, including websockets' frame logging
    session = short_session(6)
    bars = [b for b in day_bars(ExchangeCalendar()) if b.ts < session.close]
    minutes = by_minute(bars)
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(bars)
        server.fail_rest(1)  # an error path through the REST client
        settings = live_settings(tmp_path, server)
        run = LiveRun(settings, server, session)
        run.start()
        for i, (ts, group) in enumerate(minutes.items()):
            if i == 2:
                server.drop_connections()
                assert run.coordinator.sink.wait_subscribed(2, 10)
            run.minute(ts, [] if i in (2, 3) else group)
        run.finish()
        assert server.received[0]["secret"] == SECRET  # the SDK did send it, to the server

    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert "auth" in logs or "connect" in logs  # DEBUG logging was really on
    dumps = [
        logs,
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        json.dumps(run.system.data_manager.reports[0].to_dict()),
        json.dumps(run.coordinator.health),
        repr(run.coordinator.feed),
        repr(run.system.data_manager.upkeep.fill_source),
        str(run.system.data_manager.upkeep.last_fill_error),
    ]
    assert [_leaks(d) for d in dumps] == [[]] * len(dumps)
    assert run.system.counters["fill_errors"] == 1
