"""Live bad input: what a vendor can send that must cost only the bad message.

One short live session runs against the local Alpaca-protocol server
(``sessionflow.testing.alpaca_server``: real websocket, msgpack, the real SDK) on a
test-driven clock. Every minute's frame mixes the good bars with one message of
each bad class: a bar stamped minutes ahead, a volume of 2^63 (msgpack uint64), a
timestamp no datetime holds, and a symbol with a space. Each class passes if it
was counted under its reason, the good bars of the same frames all arrived, and
the store holds exactly what consumers were given.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgpack

from sessionflow.check.bad_input import BadInputResult
from sessionflow.check.local_live import KEY, OPEN, SECRET, WAIT, local_live
from sessionflow.events import BarSliceEvent, BatchEvent
from sessionflow.models import MINUTE, Bar
from sessionflow.testing.alpaca_server import FakeAlpaca, bar_msg

_MINUTES = 3
_SYMBOLS = ("AAA", "BBB")


def _bad(good: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """One message per class (by the reason it must get), each a good bar with one flaw."""
    ahead = msgpack.Timestamp.from_unix_nano(good["t"].to_unix_nano() + 3 * 60 * 10**9)
    return {
        "from_future": {**good, "t": ahead, "v": 7},
        "volume_out_of_range": {**good, "v": 2**63},
        "time_out_of_range": {**good, "t": msgpack.Timestamp(2**40, 0)},
        "bad_symbol": {**good, "S": "AA A"},
    }


_NAMES = {
    "from_future": "live: bar stamped in the future",
    "volume_out_of_range": "live: volume 2^63 (uint64)",
    "time_out_of_range": "live: timestamp beyond year 9999",
    "bad_symbol": "live: symbol with a space",
}


def run_live_bad_input(workdir: Path) -> list[BadInputResult]:
    workdir.mkdir(parents=True, exist_ok=True)
    feed_log = logging.getLogger("sessionflow.feeds")
    level = feed_log.level
    feed_log.setLevel(logging.ERROR)  # the skipped messages are the point here, not news
    try:
        with (
            tempfile.TemporaryDirectory(dir=workdir) as tmp,
            FakeAlpaca(KEY, SECRET) as server,
        ):
            return _play(Path(tmp), server)
    finally:
        feed_log.setLevel(level)


def _play(tmp: Path, server: FakeAlpaca) -> list[BadInputResult]:
    live = local_live(tmp, server, _SYMBOLS, _MINUTES, OPEN)
    settings, session, clock, system = live.settings, live.session, live.clock, live.system
    coordinator = live.coordinator
    delivered: list[Bar] = []

    def collect(ev: BatchEvent) -> None:
        if isinstance(ev, BarSliceEvent):
            delivered.extend(ev.bars.iter_bars())

    system.on_batch(collect)
    system.start()
    sent = 0
    for m in range(_MINUTES):
        ts = OPEN + m * MINUTE
        clock.set(ts + MINUTE)
        good = [bar_msg(Bar(s, ts, 10.0, 11.0, 9.0, 10.5, 100 + m)) for s in _SYMBOLS]
        bad = list(_bad(good[0]).values())
        server.push_raw(msgpack.packb([*bad[:2], good[0], *bad[2:], *good[1:]]))
        sent += len(good) + 1  # the future bar reaches the sink, then is refused
        if not coordinator.sink.wait_taken(sent, WAIT):
            break
    clock.set(session.close + timedelta(seconds=settings.live.bar_grace_seconds + 1))
    finished = system.wait(WAIT)
    system.stop()
    counters = dict(system.counters)
    stored = sorted(system.store.load_bars(list(_SYMBOLS), session.open, session.close).iter_bars())
    system.store.close()
    kept = len(delivered) == _MINUTES * len(_SYMBOLS) and stored == sorted(delivered)
    state = f"{len(delivered)} good bars delivered, {len(stored)} stored" + (
        "" if finished and system.error is None else f"; session FAILED: {system.error}"
    )
    out = []
    for reason, name in _NAMES.items():
        key = reason if reason == "from_future" else f"feed_malformed_reason_{reason}"
        n = counters.get(key, 0)
        ok = n == _MINUTES and kept and finished and system.error is None
        detail = f"{reason} x{n} (one per frame); {state}"
        out.append(BadInputResult(name, "live feed (msgpack)", "rejected", detail, kept, ok))
    return out
