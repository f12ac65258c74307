"""The reference rounds of ``sessionflow check`` each fail for a planted bug (issue 20, item 10).

Every test plants one bug with ``monkeypatch`` on the production function the
feature's command calls, runs only the round that must catch it, and asserts the
round fails with a line naming what differed. The same rounds pass on the real code
in ``test_check_cmd`` (the whole command) and below where a round has more to show.
docs/reliability.md lists the plants.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from distributed import Client, LocalCluster
from rich.console import Console

import sessionflow.check.shard_round as shard_round
import sessionflow.export.bars as export_bars
import sessionflow.testing.postgres as postgres
import sessionflow.web.store_view as store_view
from sessionflow.check.actions_round import run_actions_round
from sessionflow.check.conflict_round import run_conflict_round
from sessionflow.check.export_round import run_export_round
from sessionflow.check.rounds import EngineRun, RoundResult, engine_run, judged
from sessionflow.check.runner import CheckReport
from sessionflow.check.shard_round import run_shard_round
from sessionflow.check.store_rounds import PrivatePostgres, run_copy_round, run_postgres_round
from sessionflow.check.stores import CHECK_END, CHECK_START, CHECK_SYMBOLS, build_check_store
from sessionflow.check.web_round import run_dashboard_round
from sessionflow.cli.check_cmd import render
from sessionflow.data_upkeep import UpkeepWorker
from sessionflow.export.bars import ExportChunk
from sessionflow.store import DuckDBStore
from sessionflow.store.base import BarBatch
from sessionflow.store.duckdb_staging import DuckDBStagedImport
from sessionflow.store.postgres_store import PostgresStore
from sessionflow.time_provider import ExchangeCalendar, SessionInfo
from tests.pg_support import PgServer

SYMS = list(CHECK_SYMBOLS)


@pytest.fixture(scope="module")
def check_store(tmp_path_factory: pytest.TempPathFactory, calendar: ExchangeCalendar) -> Path:
    path = tmp_path_factory.mktemp("reference") / "check.duckdb"
    build_check_store(path, calendar).close()
    return path


@pytest.fixture(scope="module")
def clean(check_store: Path) -> EngineRun:
    return engine_run(check_store, SYMS, CHECK_START, CHECK_END)


@contextlib.contextmanager
def on_server(pg: PgServer) -> Iterator[PrivatePostgres]:
    with contextlib.ExitStack() as stack:
        yield PrivatePostgres(stack, pg)


def failed(result: RoundResult) -> str:
    assert result.status == "fail", result
    return result.failure()


def test_dividend_reference_close_from_the_wrong_day_fails_the_actions_round(
    tmp_path: Path, calendar: ExchangeCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The close one calendar day earlier: right after the holiday (11-29) that is still the
    11-27 close, so only the 12-03 dividend (a session the day before) shows it."""
    before = DuckDBStore.last_close_before

    def a_day_early(self: DuckDBStore, symbol: str, ts: datetime) -> float | None:
        return before(self, symbol, ts - timedelta(days=1))

    monkeypatch.setattr(DuckDBStore, "last_close_before", a_day_early)
    text = failed(run_actions_round(tmp_path, calendar))
    assert "stored actions (split, dividend, factor): 1 of 4 differ, first AAA 2024-12-03" in text
    assert "history 1m bars (split_dividend) at session starts: " in text
    assert "export --as-of 2024-12-04 (split_dividend) 1m bars: " in text


def test_actions_round_passes_and_says_what_it_compared(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    result = run_actions_round(tmp_path, calendar)
    assert result.status == "pass", result
    assert "10620 trailing 1m bars at 3 session starts" in result.compared


def test_csv_stamped_at_the_bar_end_fails_the_export_round(
    tmp_path: Path, check_store: Path, clean: EngineRun, calendar: ExchangeCalendar,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    write = export_bars._write_csv

    def at_end(chunks: Iterable[ExportChunk], part: Path, counts: dict[str, int]) -> None:
        shifted = (dataclasses.replace(c, ts_us=c.ts_us + c.minutes * 60_000_000) for c in chunks)
        write(shifted, part, counts)

    monkeypatch.setattr(export_bars, "_write_csv", at_end)
    sessions = calendar.sessions(CHECK_START, CHECK_END)
    text = failed(run_export_round(tmp_path, check_store, SYMS, sessions, lambda: clean))
    assert "export csv 1m vs the store's bars: " in text and "missing, first AAA" in text
    assert "export csv 5m vs the engine's derived bars" in text
    assert "export parquet" not in text


def test_prices_read_as_float32_from_postgresql_fail_the_postgres_round(
    check_store: Path, clean: EngineRun, pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    load = PostgresStore.load_bar_rows

    def float32(self: PostgresStore, *args: Any, **kwargs: Any) -> tuple[Any, BarBatch]:
        rows, b = load(self, *args, **kwargs)
        o, h, lo, c = (np.asarray(x, np.float32).astype(np.float64)
                       for x in (b.open, b.high, b.low, b.close))  # fmt: skip
        return rows, BarBatch(b.symbol, b.ts_us, o, h, lo, c, b.volume, b.regular)

    monkeypatch.setattr(PostgresStore, "load_bar_rows", float32)
    with on_server(pg) as server:
        result = run_postgres_round(check_store, SYMS, CHECK_START, CHECK_END, lambda: clean,
                                    server)  # fmt: skip
    text = failed(result)
    assert "AAA 2024-11-27 1m bars: " in text and "differ from the reference" in text


def test_postgres_round_passes_on_the_real_code(
    check_store: Path, clean: EngineRun, pg: PgServer
) -> None:
    with on_server(pg) as server:
        result = run_postgres_round(check_store, SYMS, CHECK_START, CHECK_END, lambda: clean,
                                    server)  # fmt: skip
    assert result.status == "pass", result
    assert "delivered 1m/5m/15m bars and 9 report rows" in result.compared


def test_without_postgresql_binaries_the_rounds_skip_but_fail_under_ci(
    tmp_path: Path, check_store: Path, clean: EngineRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(postgres, "BIN", tmp_path / "no-bin")
    monkeypatch.delenv("CI", raising=False)

    def pg_round() -> RoundResult:
        with contextlib.ExitStack() as stack:
            return run_postgres_round(check_store, SYMS, CHECK_START, CHECK_END, lambda: clean,
                                      PrivatePostgres(stack))  # fmt: skip

    skipped = pg_round()
    assert skipped.status == "skipped" and skipped.ok
    assert skipped.compared == f"skipped: no PostgreSQL: {tmp_path}/no-bin/initdb not found " \
        "(Debian package postgresql-15)"  # fmt: skip
    with contextlib.ExitStack() as stack:
        copied = run_copy_round(tmp_path / "copy", check_store, PrivatePostgres(stack))
    assert copied.status == "pass" and "PostgreSQL legs skipped: no PostgreSQL" in copied.compared
    monkeypatch.setenv("CI", "true")
    assert "required under CI=true: no PostgreSQL" in failed(pg_round())


def test_a_copy_that_loses_a_symbol_on_both_sides_fails_the_copy_round(
    tmp_path: Path, check_store: Path, pg: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """store copy's own checksum reads both sides over the symbols it listed: it says equal."""
    import sessionflow.store.copy as copy_module

    listed = copy_module.table_symbols
    monkeypatch.setattr(copy_module, "table_symbols", lambda store, t: listed(store, t)[:-1])
    with on_server(pg) as server:
        text = failed(run_copy_round(tmp_path, check_store, server))
    assert "DuckDB -> DuckDB bars: 990 missing, first CCC 2024-11-27 14:30:00.000000Z" in text
    assert "DuckDB -> DuckDB ticks: 132 missing" in text
    assert "DuckDB -> PostgreSQL bars: 990 missing" in text
    assert "own check" not in text  # the copy itself noticed nothing


def test_copy_round_passes_both_ways_through_postgresql(
    tmp_path: Path, check_store: Path, pg: PgServer
) -> None:
    with on_server(pg) as server:
        result = run_copy_round(tmp_path, check_store, server)
    assert result.status == "pass", result
    assert result.compared.startswith(
        "DuckDB -> DuckDB and DuckDB -> PostgreSQL and PostgreSQL -> DuckDB: "
    )


@contextlib.contextmanager
def thread_workers(workers: int | None = None, scheduler: str | None = None) -> Iterator[Client]:
    """``dask_client`` with ``workers`` single-thread workers inside this process."""
    with (
        LocalCluster(
            n_workers=workers, processes=False, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def test_first_session_one_trailing_day_short_fails_the_shard_round(
    tmp_path: Path, calendar: ExchangeCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A system's first session loads its history one day short. The single process rolls
    its later history, so only the date shard starting 12-02 shows it, and only in the
    trailing-history figure: the reports are equal. The workers here are threads of this
    process, so they run the planted code too: spawned ones would import the real one, and
    forking a process that already runs threads (Dask's loop, DuckDB's pool) can fork a held
    lock, which hung a worker once in CI."""
    begin = UpkeepWorker._begin

    def short(self: UpkeepWorker, session: SessionInfo, load: bool, version: int | None) -> None:
        begin(self, session, load, version)
        if load:
            days = self.calendar.previous_sessions(session.date, self.session_data.trailing_days)
            self.session_data.trim_history(d.date for d in days[1:])

    monkeypatch.setattr(UpkeepWorker, "_begin", short)
    monkeypatch.setattr(shard_round, "dask_client", thread_workers)
    text = failed(run_shard_round(tmp_path / "actions.duckdb", calendar))
    assert "trailing-history figure at session starts" in text
    assert "first 2024-12-02 AAA 1m: (4, " in text
    assert "session reports" not in text


def test_shard_round_passes_with_two_date_ranges(
    tmp_path: Path, calendar: ExchangeCalendar
) -> None:
    result = run_shard_round(tmp_path / "actions.duckdb", calendar)
    assert result.status == "pass", result
    assert "2 shards, date ranges from 2024-11-22, 2024-12-02" in result.compared


def test_dashboard_bars_bucketed_by_the_clock_fail_the_dashboard_round(
    check_store: Path, calendar: ExchangeCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """5m windows agree either way on 09:30 sessions; 60m and 7m do not."""
    bar_dicts = store_view.bar_dicts

    def by_clock(store: Any, symbol: str, session: SessionInfo, k: int) -> list[dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for b in bar_dicts(store, symbol, session, 1):
            t = b["time"] // (k * 60) * (k * 60)
            w = out.setdefault(t, b | {"time": t, "minutes": k, "volume": 0})
            w["high"], w["low"] = max(w["high"], b["high"]), min(w["low"], b["low"])
            w["close"], w["volume"] = b["close"], w["volume"] + b["volume"]
        return list(out.values())

    monkeypatch.setattr(store_view, "bar_dicts", by_clock)
    text = failed(run_dashboard_round(check_store, SYMS, CHECK_START, CHECK_END, calendar))
    assert "/api/bars vs the engine's bars: " in text and "first 60m AAA 2024-11-27 14:00Z" in text
    assert "/api/report" not in text


def test_keep_treated_as_replace_fails_the_conflict_round(
    tmp_path: Path, calendar: ExchangeCalendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    merge = DuckDBStagedImport.merge

    def keep_is_replace(self: DuckDBStagedImport, policy: str) -> Any:
        return merge(self, "replace" if policy == "keep" else policy)

    monkeypatch.setattr(DuckDBStagedImport, "merge", keep_is_replace)
    text = failed(run_conflict_round(tmp_path, calendar))
    assert "--on-conflict keep with one.csv + two.csv: counts (new, unchanged, replaced, " \
        "kept): 2 of 2 differ, first one.csv: (2, 1, 1, 0) != (2, 1, 0, 1)" in text  # fmt: skip
    assert "--on-conflict keep with one.csv + two.csv: stored values: 2 of 8 differ" in text
    assert "--on-conflict replace" not in text and "--on-conflict error" not in text


def test_a_round_that_raises_or_compares_nothing_fails() -> None:
    def boom(_: Any) -> None:
        raise KeyError("no such table")

    assert failed(judged("x", boom)) == "x: raised KeyError: 'no such table'"
    assert failed(judged("y", lambda found: None)) == "y: nothing was compared"


def test_table_shows_each_reference_round_and_the_failure_line() -> None:
    report = CheckReport(reference=[
        RoundResult("export", "pass", "1m: 10 rows", [], 1.0),
        RoundResult("PostgreSQL", "skipped", "skipped: no PostgreSQL: initdb not found", [], 0.0),
        RoundResult("store copy", "fail", "DuckDB -> DuckDB", ["bars: 3 missing, first A"], 2.0),
    ])  # fmt: skip
    console = Console(record=True, width=250)
    render(console, report)
    text = console.export_text()
    assert "skipped: no PostgreSQL: initdb not found" in text
    assert "FAIL store copy: bars: 3 missing, first A" in text
    assert "reference rounds        │ 3 (1 passed, 1 skipped)" in text
    assert "store copy: bars: 3 missing, first A" in report.failures()
    assert not any(line.startswith(("export", "PostgreSQL")) for line in report.failures())
    assert report.to_dict()["reference"][1]["ok"] is True
    assert "reference rounds: no runs" in CheckReport().failures()
    left_out = CheckReport(reference_ran=False)
    assert not any("reference" in line for line in left_out.failures())
    console = Console(record=True, width=250)
    render(console, left_out)
    assert "reference rounds        │ not run (--no-reference)" in console.export_text()
