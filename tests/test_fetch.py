"""``sessionflow fetch alpaca`` against the local Alpaca data server, over real HTTP.

The server is as strict as Alpaca's documented REST API (docs/fetch.md lists each
behaviour and the test here that covers it): pages of at most ``limit`` bars with a
``next_page_token`` bound to its query, 429 with ``X-RateLimit-Reset``, 403 for SIP
the plan may not read, corporate actions on ``/v1/corporate-actions``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from sessionflow.feeds.alpaca_history import AlpacaHistory, HistoryFailed, HistoryRefused
from sessionflow.feeds.base import QuoteUpdate
from sessionflow.feeds.credentials import AlpacaCredentials
from sessionflow.fetch import FetchReport, fetch_alpaca
from sessionflow.models import MINUTE, Bar, Tick, to_us
from sessionflow.store import CommandStore, open_store
from sessionflow.testing.alpaca_server import FakeAlpaca
from sessionflow.time_provider import ExchangeCalendar
from tests.helpers import cli_result, error_line
from tests.live_support import KEY, SECRET

CAL = ExchangeCalendar()
CREDS = AlpacaCredentials(key_id=SecretStr(KEY), secret_key=SecretStr(SECRET))
START, END = date(2024, 11, 26), date(2024, 12, 2)  # holiday 11-28, early close 11-29
NOW = datetime(2025, 1, 6, tzinfo=UTC)
SYMBOLS = ["AAA", "BBB", "CCC"]
SECOND = timedelta(seconds=1)
STEP = 3  # a bar every 3 minutes: 130 a full session, 70 on the early close


def _bars(symbols: list[str] = SYMBOLS) -> list[Bar]:
    """Regular-session bars of every session, plus one pre-market and, on the early
    close, one after 13:00 (outside the session's hours: never stored)."""
    out: list[Bar] = []
    for s in CAL.sessions(START, END):
        for sym in symbols:
            out += [
                Bar(sym, s.open + i * MINUTE, 10.0, 11.0, 9.0, 10.5, 100 + i)
                for i in range(0, s.minutes, STEP)
            ]
            out.append(Bar(sym, s.open - 30 * MINUTE, 10.0, 11.0, 9.0, 10.5, 1))
            if s.early_close:
                out.append(Bar(sym, s.close + 60 * MINUTE, 10.0, 11.0, 9.0, 10.5, 1))
    return out


def _regular(bars: list[Bar]) -> list[Bar]:
    return [b for b in bars if (s := CAL.session_of(b.ts)) and s.open <= b.ts < s.close]


def _run(
    server: FakeAlpaca, store: CommandStore, feed: str = "iex", page_limit: int = 200, **kw: Any
) -> FetchReport:
    client = AlpacaHistory(CREDS, server.rest_url, feed, page_limit=page_limit, server_wait_s=0)
    return fetch_alpaca(store, client, CAL, SYMBOLS, START, END, NOW, **kw)


def _stored(store: CommandStore) -> set[tuple[str, int]]:
    batch = store.load_bars(SYMBOLS, datetime(2024, 11, 1, tzinfo=UTC), NOW, regular_only=False)
    return {(str(s), int(t)) for s, t in zip(batch.symbol, batch.ts_us, strict=True)}


def _keys(bars: list[Bar]) -> set[tuple[str, int]]:
    return {(b.symbol, to_us(b.ts)) for b in bars}


def test_a_download_stores_exactly_the_sessions_bars_over_many_pages(tmp_path: Path) -> None:
    bars = _bars()
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_bars(bars)
        report = _run(server, store)
        assert _stored(store) == _keys(_regular(bars))
        pages = [q for q in server.rest_requests if q.get("timeframe")]
    assert report.pages == len(pages) > len(bars) // 200  # every next_page_token followed
    assert {q["symbols"] for q in pages} == {"AAA,BBB,CCC"}  # one request for all symbols
    # 4 sessions (11-28 is a holiday): 3 pre-market bars on later sessions' windows and
    # 3 after the early close fall between the asked sessions' hours
    assert report.sessions == 4 and report.completed == 12 and report.empty == 0
    assert report.new == len(_regular(bars)) and not report.rejected
    assert report.rows == report.new + report.outside_hours


def test_a_rerun_asks_for_nothing_and_an_interrupted_run_resumes_where_it_stopped(
    tmp_path: Path,
) -> None:
    bars = _bars()
    stop_after = 3

    def interrupt(report: FetchReport, window: object) -> None:
        if report.pages == stop_after:
            raise KeyboardInterrupt

    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_bars(bars)
        with pytest.raises(KeyboardInterrupt) as stopped:
            _run(server, store, max_bars=400, on_page=interrupt)  # one session per window
        first: FetchReport = stopped.value.report  # type: ignore[attr-defined]
        kept = _stored(store)
        assert len(kept) == first.new > 0  # every page written before Ctrl-C stays
        assert 0 < first.completed < 12
        asked = len(server.rest_requests)
        second = _run(server, store, max_bars=400)
        assert _stored(store) == _keys(_regular(bars))
        assert second.already == first.completed
        assert second.new == len(_regular(bars)) - len(kept)
        resumed = {q["start"] for q in server.rest_requests[asked:] if q.get("timeframe")}
        done_sessions = {s for _, s in store.fetched_sessions(second.source, SYMBOLS)}
        assert len(done_sessions) == 4
        asked = len(server.rest_requests)
        third = _run(server, store, max_bars=400)
        assert third.pages == 0 and third.already == 12
        assert not [q for q in server.rest_requests[asked:] if q.get("timeframe")]
    first_window_start = CAL.sessions(START, END)[0].open.isoformat()
    assert first_window_start not in resumed  # the completed window was not asked again


def test_429_is_waited_out_as_the_reset_header_says_and_no_page_is_dropped(
    tmp_path: Path,
) -> None:
    bars = _bars()
    waits: list[float] = []
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_bars(bars)
        server.limit_rest(4, 0.0)  # more 429s in a row than the gap fill's 3 retries
        client = AlpacaHistory(CREDS, server.rest_url, "iex", page_limit=500, on_wait=waits.append)
        report = fetch_alpaca(store, client, CAL, SYMBOLS, START, END, NOW, actions=False)
        assert _stored(store) == _keys(_regular(bars))
    assert report.rate_limited == 4 == len(waits) and server.rate_limited == 4
    assert all(0 < w <= 1.0 for w in waits)


def test_sip_the_plan_may_not_read_is_one_refusal_naming_the_feed(tmp_path: Path) -> None:
    late = CAL.session(END).close + 5 * MINUTE  # the server's clock: END closed 5 minutes ago
    with (
        FakeAlpaca(KEY, SECRET, plan="basic", now=lambda: late) as server,
        closing(open_store(tmp_path / "s.duckdb")) as store,
    ):
        server.add_rest_bars(_bars())
        with pytest.raises(HistoryRefused, match=r"recent SIP data.*use --feed iex"):
            _run(server, store, feed="sip", max_bars=100_000)
        assert not _stored(store)
        _run(server, store, feed="iex")  # the free plan's IEX is fine
        assert _stored(store)


def test_wrong_keys_are_refused_at_the_first_request_without_showing_them(
    tmp_path: Path,
) -> None:
    with FakeAlpaca("other", "keys") as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        with pytest.raises(HistoryRefused, match=r"HTTP 403.*APCA_API_KEY_ID") as refused:
            _run(server, store)
        assert len(server.rest_requests) == 0  # refused before a page was served
    assert KEY not in str(refused.value) and SECRET not in str(refused.value)


def test_bad_bars_are_rejected_with_reasons_and_the_rest_written(tmp_path: Path) -> None:
    s = CAL.session(START)
    good = _bars(["AAA"])
    bad = [
        Bar("AAA", s.open + MINUTE, 10.0, 9.0, 11.0, 10.0, 5),  # high below low
        Bar("AAA", s.open + 2 * MINUTE, -1.0, 11.0, -1.0, 10.0, 5),  # non-positive
    ]
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_bars(good + bad)
        report = _run(server, store)
        assert _stored(store) == _keys(_regular(good))
    assert report.rejected == {"high_below_low": 1, "non_positive_price": 1}
    assert any("high_below_low" in r for r in report.rejections)
    assert report.rows == report.new + 2 + report.outside_hours


def test_splits_and_dividends_come_with_the_bars_through_the_actions_checks(
    tmp_path: Path,
) -> None:
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_bars(_bars())
        server.add_corporate_actions(
            "forward_splits",
            [{"symbol": "AAA", "new_rate": 4, "old_rate": 1, "ex_date": "2024-11-27"}],
        )
        server.add_corporate_actions(
            "reverse_splits",
            [{"symbol": "BBB", "new_rate": 1, "old_rate": 10, "ex_date": "2024-12-02"}],
        )
        server.add_corporate_actions(
            "cash_dividends",
            [
                {"symbol": "CCC", "rate": 0.21, "ex_date": "2024-11-29"},
                {"symbol": "CCC", "rate": 0.5, "ex_date": "2024-11-26"},  # no close before
                {"symbol": "ZZZ", "rate": 0.5, "ex_date": "2024-11-29"},  # not asked for
            ],
        )
        server.add_corporate_actions(
            "name_changes", [{"symbol": "AAA", "old_symbol": "AA0", "ex_date": "2024-11-27"}]
        )
        report = _run(server, store)
        actions = {(a.symbol, a.ex_date): a for a in store.load_actions(SYMBOLS)}
        again = _run(server, store)
    assert actions[("AAA", date(2024, 11, 27))].split == 4.0
    assert actions[("BBB", date(2024, 12, 2))].split == pytest.approx(0.1)
    ccc = actions[("CCC", date(2024, 11, 29))]
    assert ccc.dividend == 0.21 and ccc.dividend_factor == pytest.approx(1 - 0.21 / 10.5)
    assert len(actions) == 3
    a = report.actions
    assert a is not None and a.received == 5 and a.new == 3
    assert a.rejected == {"no_reference_close": 1} and a.not_modelled == {"name_changes": 1}
    assert again.actions is not None and again.actions.unchanged == 3 and again.actions.new == 0


def test_the_server_is_strict_about_tokens_and_limits() -> None:
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    base = {"symbols": "AAA", "timeframe": "1Min", "start": "2024-11-26T14:30:00Z", "limit": 10}
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(_bars(["AAA"]))
        url = f"{server.rest_url}/v2/stocks/bars"
        token = requests.get(url, base, headers=headers).json()["next_page_token"]
        other = {**base, "symbols": "AAA,BBB", "page_token": token}
        assert requests.get(url, other, headers=headers).status_code == 422
        garbage = {**base, "page_token": "bm90LWEtdG9rZW4="}
        assert requests.get(url, garbage, headers=headers).status_code == 422
        assert requests.get(url, {**base, "page_token": token}, headers=headers).ok
        actions = f"{server.rest_url}/v1/corporate-actions"
        too_many = requests.get(actions, {"symbols": "AAA", "limit": 1001}, headers=headers)
        assert too_many.status_code == 422


def test_a_replayed_server_serves_only_bars_whose_minute_has_ended() -> None:
    """Bars every 3 minutes from 14:30. By the server's clock at 14:33:30 the 14:33 bar
    does not exist yet; at 14:34 it does. A trade exists once printed. A server that
    filters by the request's range alone hands a live run its future."""
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    now = [datetime(2024, 11, 26, 14, 33, 30, tzinfo=UTC)]
    t0 = datetime(2024, 11, 26, 14, 33, 10, tzinfo=UTC)
    ticks = [Tick("AAA", t0, 10.0, 1, seq=1), Tick("AAA", t0 + 40 * SECOND, 10.0, 1, seq=2)]

    def times(server: FakeAlpaca, kind: str, end: str) -> list[str]:
        query = {"symbols": "AAA", "start": "2024-11-26T14:30:00Z", "end": f"2024-11-26T{end}:00Z"}
        if kind == "bars":
            query["timeframe"] = "1Min"
        got = requests.get(f"{server.rest_url}/v2/stocks/{kind}", query, headers=headers)
        return [x["t"][11:19] for x in got.json()[kind]["AAA"]]

    with FakeAlpaca(KEY, SECRET) as server:
        server.follow(lambda: now[0])
        server.add_rest_bars(_bars(["AAA"]))
        server.add_rest_trades(ticks)
        assert times(server, "bars", "14:40") == ["14:30:00"]
        assert times(server, "trades", "14:40") == ["14:33:10"]
        now[0] += 30 * SECOND
        assert times(server, "bars", "14:41") == ["14:30:00", "14:33:00"]


def test_cli_fetches_then_says_what_it_did_and_progress_goes_to_stderr(tmp_path: Path) -> None:
    env = {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}
    symbols = tmp_path / "symbols.txt"
    symbols.write_text("# universe\nAAA\nBBB, CCC\n")
    store = tmp_path / "s.duckdb"
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_bars(_bars())
        args = ["fetch", "alpaca", "--symbols-file", symbols, "--start", START.isoformat()]
        args += ["--end", END.isoformat(), "--rest-url", server.rest_url, "--store", store]
        res = cli_result(*args, env=env)
        again = cli_result(*args, "--json", env=env)
    assert res.exit_code == 0, res.stderr
    assert "fetch: window 1/1 (2024-11-26..2024-12-02, 3 symbols)" in res.stderr
    assert f"{len(_regular(_bars())):,} new" in res.stdout and "fetch:" not in res.stdout
    got = json.loads(again.stdout)  # stdout is the JSON alone
    assert again.exit_code == 0 and got["already_complete"] == 12 and got["pages"] == 0


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["--symbols", "AAA", "--symbols-file", "x.txt"], "one of them"),
        (["--symbols", "AAA", "--feed", "nasdaq"], "--feed 'nasdaq'"),
        (["--symbols", "AAA", "--no-bars"], "nothing to fetch"),
        (["--symbols", "A A"], "--symbols"),
        (["--symbols", "AAA", "--start", "2024-11-28", "--end", "2024-11-28"], "no XNYS session"),
        (["--symbols", "AAA", "--end", "2199-01-01"], "outside the XNYS calendar"),
    ],
)
def test_cli_bad_options_are_one_line_and_exit_2(args: list[str], text: str) -> None:
    env = {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}
    res = cli_result(
        "fetch", "alpaca", "--start", "2024-11-26", "--end", "2024-11-27", *args, env=env
    )
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and text in lines[0]


def test_a_session_not_yet_closed_is_not_fetched_or_marked(tmp_path: Path) -> None:
    today = CAL.session(END)
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_bars(_bars())
        client = AlpacaHistory(CREDS, server.rest_url, "iex", page_limit=1000)
        during = today.close - timedelta(hours=1)
        report = fetch_alpaca(store, client, CAL, SYMBOLS, START, END, during, actions=False)
        marked = store.fetched_sessions(report.source, SYMBOLS)
    assert report.not_closed == [END] and {d for _, d in marked} == {
        s.date for s in CAL.sessions(START, END) if s.date != END
    }


def test_server_errors_are_retried_then_stop_with_every_page_kept(tmp_path: Path) -> None:
    stop_at = {"page": 0}

    def fail_later(report: FetchReport, window: object) -> None:
        if report.pages == 2 and not stop_at["page"]:
            stop_at["page"] = 2
            server.fail_rest(10)  # more than SERVER_RETRIES in a row

    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_bars(_bars())
        server.fail_rest(2)
        report = _run(server, store, actions=False)
        assert report.server_errors == 2 and _stored(store) == _keys(_regular(_bars()))
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "t.duckdb")) as store:
        server.add_rest_bars(_bars())
        with pytest.raises(HistoryFailed, match="failed 4 times") as failed:
            _run(server, store, actions=False, on_page=fail_later)
        kept = failed.value.report.new  # type: ignore[attr-defined]
        assert 0 < kept == len(_stored(store))


def test_every_test_docs_fetch_names_exists() -> None:
    root = Path(__file__).resolve().parent.parent
    text = (root / "docs" / "fetch.md").read_text()
    table = text[text.index("## Local server behaviours") : text.index("## Not done yet")]
    named = re.findall(r"`::(test_[a-z0-9_]+)`", table)
    source = Path(__file__).read_text()
    assert len(named) >= 10
    for name in named:
        assert f"def {name}(" in source, f"test_fetch.py::{name} in docs/fetch.md"


def test_fetch_log_on_both_backends_starts_empty_and_keeps_one_row_per_pair(
    store_backend: str,
) -> None:
    with closing(open_store(store_backend)) as store:
        assert store.fetched_sessions("alpaca:iex:bars", ["AAA"]) == set()  # no table yet
        day = date(2024, 11, 26)
        store.record_fetched("alpaca:iex:bars", [("AAA", day, 130), ("BBB", day, 0)])
        store.record_fetched("alpaca:iex:bars", [("AAA", day, 131)])  # again: one row
        store.record_fetched("alpaca:sip:bars", [("CCC", day, 5)])
        assert store.fetched_sessions("alpaca:iex:bars", ["AAA", "CCC"]) == {("AAA", day)}
        assert store.table_count("fetch_log") == 3
    with closing(open_store(store_backend, read_only=True)) as reader:
        assert reader.fetched_sessions("alpaca:sip:bars", ["CCC"]) == {("CCC", day)}


def test_trades_are_stored_as_ticks_checked_and_not_asked_for_twice(tmp_path: Path) -> None:
    sessions = CAL.sessions(START, END)
    ticks = [
        Tick(sym, s.open + i * MINUTE + timedelta(microseconds=250), 10.0 + i / 100, 5, 1000 + i)
        for s in sessions
        for sym in SYMBOLS
        for i in range(0, s.minutes, 30)
    ]
    early = next(s for s in sessions if s.early_close)
    after = Tick("AAA", early.close + MINUTE, 10.0, 5, 1)  # after the early close
    free = Tick("BBB", sessions[0].open + MINUTE, 0.0, 5, 2)  # a price of 0
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_trades([*ticks, after, free])
        report = _run(server, store, trades=True, actions=False, page_limit=10)
        stored = store.load_ticks(SYMBOLS, sessions[0].open, NOW)
        asked = len(server.rest_requests)
        again = _run(server, store, trades=True, actions=False, page_limit=10)
        trade_requests = [q for q in server.rest_requests[asked:] if q.get("path") == "trades"]
    t = report.trades
    # one request per session's hours: the print after the early close is never sent
    assert t is not None and t.rows == len(ticks) + 1 and t.pages > len(sessions)
    assert {(x.symbol, x.ts, x.seq, x.price) for x in stored} == {
        (x.symbol, x.ts, x.seq, x.price) for x in ticks
    }
    assert t.rejected == {"non_positive_price": 1} and t.written == len(ticks)
    assert t.completed == 12 and again.trades is not None and again.trades.already == 12
    assert not trade_requests


def test_a_real_ctrl_c_during_a_rate_limit_wait_keeps_what_was_written(tmp_path: Path) -> None:
    """The command in its own process, a real SIGINT while it waits out a 429."""
    first, second = CAL.sessions(START, END)[:2]
    bars = [
        Bar(sym, s.open + i * MINUTE, 10.0, 11.0, 9.0, 10.5, 100)
        for s in (first, second)
        for sym in ("AAA", "BBB")
        for i in range(s.minutes)
    ]
    store = tmp_path / "s.duckdb"
    with closing(open_store(store)) as db:  # AAA's first session is done: two requests
        db.record_fetched("alpaca:iex:bars", [("AAA", first.date, 390)])
    env = {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}
    with FakeAlpaca(KEY, SECRET, rate_limit=1) as server:  # the 2nd request waits ~60 s
        server.add_rest_bars(bars)
        args = ["fetch", "alpaca", "--symbols", "AAA,BBB", "--start", first.date.isoformat()]
        args += ["--end", second.date.isoformat(), "--rest-url", server.rest_url]
        args += ["--store", str(store)]
        code = "from sessionflow.cli.app import main; main()"
        proc = subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env={**os.environ, **env},
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.wait_rest_requests(2, timeout=120)
            with server._cond:  # the 429 is sent (or about to be): the client waits
                assert server._cond.wait_for(lambda: server.rate_limited >= 1, 30)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, stderr
        assert "Traceback" not in stderr
        assert "interrupted: every page written so far is kept" in stderr
        with closing(open_store(store, read_only=True)) as kept:
            assert kept.count_bars() == 390  # BBB's first session, written before the wait
        server.rate_limit = None
        again = cli_result(*args, "--json", env=env)
    got = json.loads(again.stdout)
    assert got["already_complete"] == 2 and got["new"] == 780 and got["completed"] == 2


def test_cli_refused_keys_exit_1_with_one_line_and_leave_no_empty_store(tmp_path: Path) -> None:
    store = tmp_path / "new.duckdb"
    env = {"APCA_API_KEY_ID": "wrong", "APCA_API_SECRET_KEY": "keys"}
    with FakeAlpaca(KEY, SECRET) as server:
        res = cli_result(
            "fetch", "alpaca", "--symbols", "AAA", "--start", "2024-11-26", "--end", "2024-11-26",
            "--rest-url", server.rest_url, "--store", store, env=env,
        )  # fmt: skip
    assert res.exit_code == 1
    assert error_line(res, "error:").startswith(
        "error: Alpaca refused bars of 1 symbol(s) (HTTP 403"
    )
    assert "wrong" not in res.stderr and not store.exists()


QUOTE_STEP = 30  # quotes in every 30th minute: two updates each, at :05 and :40


def _updates(symbols: list[str] = SYMBOLS) -> list[QuoteUpdate]:
    """Two NBBO updates in every QUOTE_STEP-th minute of each session: the second moves
    the bid up and the ask down, so the minute's open, high, low and close differ."""
    out: list[QuoteUpdate] = []
    for s in CAL.sessions(START, END):
        for sym in symbols:
            for i in range(0, s.minutes, QUOTE_STEP):
                us = to_us(s.open + i * MINUTE)
                bid = 10.0 + i / 100
                out.append(QuoteUpdate(sym, us + 5_000_000, bid, 3, bid + 0.04, 4))
                out.append(QuoteUpdate(sym, us + 40_000_000, bid + 0.01, 5, bid + 0.03, 6))
    return out


def _expected_quote_bars(updates: list[QuoteUpdate]) -> set[tuple[Any, ...]]:
    """Per (symbol, minute): bid and ask open/high/low/close and the last sizes."""
    minutes: dict[tuple[str, int], list[QuoteUpdate]] = {}
    for u in updates:
        minutes.setdefault((u.symbol, u.ts_us - u.ts_us % 60_000_000), []).append(u)
    out = set()
    for (sym, us), got in minutes.items():
        bids, asks = [u.bid for u in got], [u.ask for u in got]
        out.add((sym, us, bids[0], max(bids), min(bids), bids[-1], got[-1].bid_size,
                 asks[0], max(asks), min(asks), asks[-1], got[-1].ask_size))  # fmt: skip
    return out


def _stored_quotes(store: CommandStore) -> set[tuple[Any, ...]]:
    got = store.load_quotes(SYMBOLS, datetime(2024, 11, 1, tzinfo=UTC), NOW, regular_only=False)
    return {(q.symbol, to_us(q.ts), q.bid_open, q.bid_high, q.bid_low, q.bid_close, q.bid_size,
             q.ask_open, q.ask_high, q.ask_low, q.ask_close, q.ask_size)
            for q in got.iter_quotes()}  # fmt: skip


def _quote_requests(server: FakeAlpaca, since: int = 0) -> list[dict[str, str]]:
    return [q for q in server.rest_requests[since:] if q.get("path") == "quotes"]


def test_quotes_are_folded_into_minute_bars_across_pages(tmp_path: Path) -> None:
    """Pages of 7 updates split minutes between pages: a minute folded from two pages
    must equal the one folded from one. A dropped last page or a page read twice shows."""
    updates = _updates()
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_quotes(updates)
        report = _run(server, store, quotes=True, bars=False, page_limit=7)
        stored = _stored_quotes(store)
        asked = _quote_requests(server)
        regular = store.load_quotes(SYMBOLS, datetime(2024, 11, 1, tzinfo=UTC), NOW)
    q = report.quotes
    assert q is not None and stored == _expected_quote_bars(updates)
    assert len(regular) == len(stored)  # every bar flagged regular (no --extended)
    assert q.pages == len(asked) > len(updates) // 7  # every next_page_token followed
    assert {r["symbols"] for r in asked} == {"AAA,BBB,CCC"}  # one request per session
    assert q.rows == q.folded == len(updates) and not q.rejected and not q.bars_rejected
    assert q.bars == q.new == len(stored) and q.completed == 12
    assert report.pages == 0 and report.actions is None  # --no-bars: no bars, no actions
    assert not [r for r in server.rest_requests if r.get("timeframe")]


def test_bad_quotes_are_rejected_with_reasons_and_their_minute_kept(tmp_path: Path) -> None:
    s = CAL.session(START)
    at = to_us(s.open + 10 * MINUTE)
    good = [QuoteUpdate("AAA", at + 1_000_000, 10.0, 1, 10.1, 1),
            QuoteUpdate("AAA", at + 9_000_000, 10.02, 2, 10.08, 3)]  # fmt: skip
    bad = [
        QuoteUpdate("AAA", at + 3_000_000, 0.0, 0, 10.1, 1),  # an empty bid side
        QuoteUpdate("AAA", at + 5_000_000, 10.0, 1, -10.1, 1),  # a negative ask
        QuoteUpdate("BBB", at, 2e9, 1, 2e9, 1),  # a bar above MAX_PRICE
    ]
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_quotes(good + bad)
        report = _run(server, store, quotes=True, bars=False)
        stored = _stored_quotes(store)
    q = report.quotes
    assert q is not None and stored == _expected_quote_bars(good)
    assert q.rejected == {"non_positive_price": 1, "bad_number": 1}
    assert q.bars_rejected == {"price_out_of_range": 1} and q.bars == 2 and q.new == 1
    assert any(r.startswith("bad_number: AAA") for r in q.rejections)
    assert q.rows == q.folded + sum(q.rejected.values()) + q.outside_hours


def test_an_interrupted_quotes_fetch_resumes_and_a_rerun_asks_for_none(tmp_path: Path) -> None:
    updates = _updates()
    stop_after = 5

    def interrupt(report: FetchReport, window: object) -> None:
        if report.quotes is not None and report.quotes.pages == stop_after:
            raise KeyboardInterrupt

    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_quotes(updates)
        with pytest.raises(KeyboardInterrupt) as stopped:
            _run(server, store, quotes=True, bars=False, page_limit=20, on_page=interrupt)
        first = stopped.value.report.quotes  # type: ignore[attr-defined]
        kept = _stored_quotes(store)
        assert 0 < len(kept) == first.new and 0 < first.completed < 12
        asked = len(server.rest_requests)
        second = _run(server, store, quotes=True, bars=False, page_limit=20).quotes
        assert second is not None and _stored_quotes(store) == _expected_quote_bars(updates)
        assert second.already == first.completed and second.unchanged > 0
        assert second.new == len(_expected_quote_bars(updates)) - len(kept)
        resumed = {r["start"] for r in _quote_requests(server, asked)}
        asked = len(server.rest_requests)
        third = _run(server, store, quotes=True, bars=False, page_limit=20).quotes
        assert third is not None and third.already == 12 and third.pages == 0
        assert not _quote_requests(server, asked)
    assert CAL.sessions(START, END)[0].open.isoformat() not in resumed  # done: not asked


def test_quotes_429_is_waited_out_and_no_page_dropped(tmp_path: Path) -> None:
    updates = _updates(["AAA"])
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_quotes(updates)
        server.limit_rest(2, 0.0)
        client = AlpacaHistory(CREDS, server.rest_url, "iex", page_limit=50)
        report = fetch_alpaca(store, client, CAL, ["AAA"], START, END, NOW, quotes=True, bars=False)
        stored = _stored_quotes(store)
    assert report.rate_limited == 2 == server.rate_limited
    assert stored == _expected_quote_bars(updates)


def test_the_quotes_endpoint_is_strict_and_serves_only_quotes_already_sent() -> None:
    headers = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    now = [datetime(2024, 11, 26, 14, 33, 30, tzinfo=UTC)]
    t0 = to_us(datetime(2024, 11, 26, 14, 33, 10, tzinfo=UTC))
    base = {"symbols": "AAA", "start": "2024-11-26T14:30:00Z", "end": "2024-11-26T15:00:00Z"}

    def get(**params: Any) -> requests.Response:
        url = f"{server.rest_url}/v2/stocks/quotes"
        return requests.get(url, {**base, **params}, headers=headers)

    with FakeAlpaca(KEY, SECRET) as server:
        server.follow(lambda: now[0])
        sent = [QuoteUpdate("AAA", t0 + i * 40_000_000, 10.0, 1, 10.1, 2) for i in (0, 1)]
        server.add_rest_quotes(sent)
        first = get().json()["quotes"]["AAA"]
        now[0] += 30 * SECOND
        both = get().json()["quotes"]["AAA"]
        refused = {
            "unknown": get(timeframe="1Min"),
            "limit 0": get(limit=0),
            "limit 10001": get(limit=10_001),
            "feed": get(feed="nasdaq"),
            "zoneless": get(start="2024-11-26T14:30:00"),
            "no symbols": get(symbols=""),
        }
    assert [x["t"] for x in first] == ["2024-11-26T14:33:10.000000000Z"]  # 14:33:50 not yet
    assert len(both) == 2 and set(both[0]) == {"t", "ax", "ap", "as", "bx", "bp", "bs", "c", "z"}
    assert {k: r.status_code for k, r in refused.items()} == dict.fromkeys(refused, 422)
    assert "timeframe" in refused["unknown"].json()["message"]


def test_cli_quotes_without_bars_says_what_it_did(tmp_path: Path) -> None:
    env = {"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET}
    store = tmp_path / "s.duckdb"
    with FakeAlpaca(KEY, SECRET) as server:
        server.add_rest_quotes(_updates())
        args = ["fetch", "alpaca", "--symbols", "AAA,BBB,CCC", "--start", START.isoformat()]
        args += ["--end", END.isoformat(), "--rest-url", server.rest_url, "--store", store]
        res = cli_result(*args, "--quotes", "--no-bars", env=env)
        again = cli_result(*args, "--quotes", "--no-bars", "--json", env=env)
    bars = len(_expected_quote_bars(_updates()))
    assert res.exit_code == 0, res.stderr
    assert "fetch: window 4/4" in res.stderr and "quote bars" in res.stderr
    assert f"folded into {bars:,} quote bars ({bars:,} new" in res.stdout
    got = json.loads(again.stdout)
    assert got["quotes"]["already_complete"] == 12 and got["quotes"]["pages"] == 0
    assert got["pages"] == 0 and got["actions"] is None


def test_extended_quotes_are_kept_flagged_and_regular_ones_not(tmp_path: Path) -> None:
    s = CAL.session(START)
    pre, regular = to_us(s.open - 30 * MINUTE), to_us(s.open + MINUTE)
    updates = [QuoteUpdate("AAA", us, 10.0, 1, 10.1, 1) for us in (pre, regular)]
    since = datetime(2024, 11, 1, tzinfo=UTC)
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_quotes(updates)
        plain = _run(server, store, quotes=True, bars=False).quotes
        assert store.load_quotes(["AAA"], since, NOW, regular_only=False).ts_us.tolist() == [
            regular
        ]
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "e.duckdb")) as store:
        server.add_rest_quotes(updates)
        extended = _run(server, store, quotes=True, bars=False, extended=True).quotes
        every = store.load_quotes(["AAA"], since, NOW, regular_only=False)
        flagged = store.load_quotes(["AAA"], since, NOW)
    assert plain is not None and plain.source == "alpaca:iex:quotes" and plain.new == 1
    assert extended is not None and extended.source == "alpaca:iex:quotes:extended"
    assert every.ts_us.tolist() == [pre, regular] and flagged.ts_us.tolist() == [regular]


def test_a_server_repeating_its_page_token_stops_the_download_instead_of_looping(
    tmp_path: Path,
) -> None:
    with FakeAlpaca(KEY, SECRET) as server, closing(open_store(tmp_path / "s.duckdb")) as store:
        server.add_rest_quotes(_updates(["AAA"]))
        server.ignore_page_tokens = True  # every page is the first, with the same token
        with pytest.raises(HistoryFailed, match="next_page_token again") as failed:
            _run(server, store, quotes=True, bars=False, page_limit=10)
        kept = failed.value.report.quotes  # type: ignore[attr-defined]
        assert len(_quote_requests(server)) == 2 == kept.pages  # the token came back once
        assert kept.completed == 0 and not store.fetched_sessions(kept.source, ["AAA"])
