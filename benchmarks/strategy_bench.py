"""What a strategy costs on top of the engine, and against backtrader and NautilusTrader
(issue 21, item 7).

One run, on compare.py's generated job (``peers/job.py``: N symbols x D sessions from
2024-11-25, the early close included, 2% of minutes missing plus emptied windows),
written once into a DuckDB store under ``benchmarks/.data/``. Each mode runs in its own
child process (``--repeat`` times, fastest replay shown):

- ``batch``: the engine's columnar run without a strategy (``on_batch``, a no-op consumer);
- ``bars``: the 5m crossover through the columnar ``on_bars`` path
  (``peers.trading_sessionflow.CrossoverColumnar``), run by ``Backtest``;
- ``event``: the engine's per-bar run without a strategy (``on_event``, a no-op consumer
  taking every 1m and 5m bar event);
- ``bar``: the crossover through the per-bar callbacks (``CrossoverPerBar``: ``on_bar`` for
  every 1m bar, decisions in ``on_derived_bar``);
- ``backtrader``: the same crossover on backtrader (``peers.trading_backtrader.Crossover``),
  1m and the engine's 5m bars as feeds, one cerebro for all symbols (``one``) or one per
  symbol (``per_symbol``), preload and runonce on;
- ``nautilus``: the same crossover on NautilusTrader
  (``peers.trading_nautilus.NautilusCrossover``, peers venv only): one ``BacktestEngine``,
  the engine's 5m bars and a quote at each 1m bar's open (what a market order fills
  against), the commission as a ``FeeModel`` (``--nt-config open``); ``close``: Nautilus's
  own rule instead (1m bars move the market, the order fills at once at the close of the
  bar ending the 5m window), whose fills differ by design: only its orders (side and
  quantity per symbol, in turn) are checked equal, and it is left out of the goals.

Every mode with a strategy writes its fills; the run fails unless all are equal (time,
symbol, side, quantity, price, commission), but for ``nautilus_close``'s, whose orders
must be. Replay: ``system.run()`` for the engine
modes (store reads, matching, the portfolio, the strategy's callbacks, the equity curve),
backtrader's ``start()`` to ``stop()``, Nautilus's strategy ``on_start()`` to ``on_stop()``
(``engine.run()``); the results (statistics, trades) after the data
end are timed apart (``results s``). Load (store opened, system built; backtrader's
frames, feeds and preload; Nautilus's ``Bar`` and ``QuoteTick`` objects and ``add_data``)
is not in the ratios. Each goal row says how many times faster it is than the fastest
backtrader and the fastest Nautilus run.

Usage:
    python3 benchmarks/strategy_bench.py [--symbols 500] [--sessions 5] [--repeat 1]
        [--modes batch,bars,event,bar,backtrader,nautilus] [--bt-config one,per_symbol]
        [--nt-config open,close]
        [--python PATH] [--no-readme]

The table goes to stdout and, between markers, into ``benchmarks/README.md``; the raw
records to ``benchmarks/results/strategy_<time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compare import DATA_DIR, MARK, PEERS_PY, README, RESULTS, checkout, machine, spawn

HERE = Path(__file__).resolve().parent
MODES = ("batch", "bars", "event", "bar", "backtrader", "nautilus")
PEERS = {"backtrader": "backtrader", "nautilus": "Nautilus"}
# modes that fill by another rule on purpose: their orders are compared, not their fills
OTHER_RULE = {"nautilus_close": "Nautilus's own rule: filled at the decision bar's close"}
BEGIN, END = "<!-- strategy:begin -->", "<!-- strategy:end -->"
CASH = 10_000_000.0  # never binds: every symbol can buy at every signal
COMMISSION = {"per_share": 0.005, "minimum": 1.0, "max_share": 0.01}
GOALS = {"bars": ("batch", 2.0), "bar": ("event", 1.5)}


# --------------------------------------------------------------------------- children


def child_store(symbols: int, sessions: int) -> dict[str, Any]:
    """The job's Parquet file, and a DuckDB store holding it (both written once)."""
    sys.path.insert(0, str(HERE))
    import numpy as np
    from peers.job import Job, ensure_data, read_columns

    from sessionflow.store import BarBatch, DuckDBStore

    job = Job(symbols, sessions)
    data = ensure_data(job, DATA_DIR)
    path = DATA_DIR / f"strategy_{symbols}x{sessions}.duckdb"
    if not path.exists():
        c = read_columns(data)
        tmp = path.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        store = DuckDBStore(tmp)
        names = np.array(c.names, dtype=object)[c.code]
        store.upsert_bars(BarBatch(names, c.ts_us, c.open, c.high, c.low, c.close, c.volume))
        store.close()
        tmp.replace(path)
    sess = [s.day.isoformat() for s in job_sessions(data)]
    return {"store": str(path), "symbols": job.names, "start": sess[0], "end": sess[-1]}


def job_sessions(data: Path) -> list[Any]:
    from peers.job import read_sessions

    return read_sessions(data)


def _settings(store: str, symbols: list[str], start: str, end: str) -> Any:
    from peers.trading_backtrader import CommissionSpec

    from sessionflow import Settings
    from sessionflow.system_manager.trading_settings import TradingSettings

    trading = TradingSettings(
        cash=CASH, commission=CommissionSpec(**COMMISSION).spec, max_volume_share=None
    )
    return Settings.load(
        store_path=store,
        symbols=symbols,
        start=datetime.fromisoformat(start).date(),
        end=datetime.fromisoformat(end).date(),
        derived_intervals=[5],
        trading=trading,
    )


def _engine_only(settings: Any, batch: bool) -> dict[str, Any]:
    from sessionflow import build_system

    system = build_system(settings)
    seen = [0]

    def consume(_ev: Any) -> None:
        seen[0] += 1

    (system.on_batch if batch else system.on_event)(consume)
    t0 = time.perf_counter()
    system.run()
    return {"replay_s": time.perf_counter() - t0, "events": seen[0]}


def _with_strategy(settings: Any, columnar: bool) -> dict[str, Any]:
    from peers import trading_sessionflow as sf
    from peers.trading_compare import sf_fills

    from sessionflow.strategy.run import Backtest

    strategy = sf.CrossoverColumnar if columnar else sf.CrossoverPerBar
    run = Backtest(settings, strategy)
    run.runner.start()
    t0 = time.perf_counter()
    run.system.run()
    t1 = time.perf_counter()
    result = run.finish(False)
    t2 = time.perf_counter()
    assert result.complete, result.error
    return {
        "replay_s": t1 - t0,
        "results_s": t2 - t1,
        "fills": sf_fills(result.fills),
        "final_equity": round(result.final_equity, 2),
    }


def _backtrader(settings: Any, config: str) -> dict[str, Any]:
    from peers import trading_backtrader as bt_side
    from peers.trading_compare import ref_fills
    from peers.trading_data import load_feeds

    feeds = load_feeds(
        Path(settings.store_path), list(settings.symbols), settings.start, settings.end
    )
    spec = bt_side.CommissionSpec(**COMMISSION)
    timings: list[float] = []
    res = bt_side.run_backtrader(
        bt_side.Crossover,
        feeds,
        list(settings.symbols),
        CASH,
        spec,
        per_symbol=config == "per_symbol",
        replay_times=timings,
    )
    return {
        "replay_s": sum(timings),
        "fills": ref_fills(res.fills),
        "final_equity": round(res.final_equity, 2),
    }


def _nautilus(settings: Any, config: str) -> dict[str, Any]:
    from peers import trading_nautilus as nt_side
    from peers.trading_backtrader import CommissionSpec
    from peers.trading_compare import ref_fills
    from peers.trading_data import load_feeds

    if config not in ("open", "close"):
        raise ValueError(f"unknown --nt-config {config!r} (open, close)")
    feeds = load_feeds(
        Path(settings.store_path), list(settings.symbols), settings.start, settings.end
    )
    timings: list[float] = []
    res = nt_side.run_nautilus(
        feeds,
        list(settings.symbols),
        CASH,
        CommissionSpec(**COMMISSION),
        replay_times=timings,
        at_close=config == "close",
    )
    return {
        "replay_s": sum(timings),
        "fills": ref_fills(res.fills),
        "final_equity": round(res.final_equity, 2),
    }


def _mode_name(mode: str, config: str) -> str:
    return f"{mode}_{config}" if mode in PEERS else mode


def child_mode(mode: str, store: str, start: str, end: str, out: Path, config: str) -> Any:
    sys.path.insert(0, str(HERE))
    from peers.job import peak_rss_mb, preload_libraries

    preload_libraries()
    load_before = os.getloadavg()
    symbols = sorted(json.loads(Path(store).with_suffix(".symbols.json").read_text()))
    t0 = time.perf_counter()
    settings = _settings(store, symbols, start, end)
    if mode in ("batch", "event"):
        rec = _engine_only(settings, batch=mode == "batch")
    elif mode in ("bars", "bar"):
        rec = _with_strategy(settings, columnar=mode == "bars")
    elif mode == "nautilus":
        rec = _nautilus(settings, config)
    else:
        rec = _backtrader(settings, config)
    wall = time.perf_counter() - t0
    fills = rec.pop("fills", None)
    if fills is not None:
        out.write_text(json.dumps(fills))
    return {
        "mode": _mode_name(mode, config),
        "symbols": len(symbols),
        "python": platform.python_version(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "wall_s": round(wall, 3),
        "fills_file": None if fills is None else str(out),
        "fills": None if fills is None else len(fills),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        **{k: round(v, 3) if isinstance(v, float) else v for k, v in rec.items()},
    }


# --------------------------------------------------------------------------- parent


def _table(records: list[dict[str, Any]]) -> list[str]:
    best: dict[str, dict[str, Any]] = {}
    for r in records:
        if r["status"] == "ok" and (
            r["mode"] not in best or r["replay_s"] < best[r["mode"]]["replay_s"]
        ):
            best[r["mode"]] = r
    lines = [
        "| mode | replay s | results s | vs its baseline | goal | fills | final equity "
        "| peak MB | load avg |",
        "|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    fastest = {
        peer: min(
            (r["replay_s"] for m, r in best.items() if m.startswith(peer) and m not in OTHER_RULE),
            default=None,
        )
        for peer in PEERS
    }
    for mode, r in best.items():
        ratio, goals = "", []
        if mode in GOALS:
            base, limit = GOALS[mode]
            if base in best:
                x = r["replay_s"] / best[base]["replay_s"]
                ratio = f"{x:.2f}x {base}"
                goals.append(f"<= {limit}x: {'met' if x <= limit else 'not met'}")
            for peer, label in PEERS.items():
                if fastest[peer] is not None:
                    faster = fastest[peer] / r["replay_s"]
                    met = "met" if faster >= 10 else "not met"
                    goals.append(f"{faster:.1f}x faster than {label} (>= 10x: {met})")
        goal = "; ".join(goals)
        loads = ", ".join(f"{x:.1f}" for x in r["loadavg_runs"])
        lines.append(
            f"| {mode} | {r['replay_s']:.2f} | {r.get('results_s', '')} | {ratio} | {goal} "
            f"| {r.get('fills') or ''} | {r.get('final_equity', '')} | {r['peak_rss_mb']:.0f} "
            f"| {loads} |"
        )
    return lines


def _orders(fills: list[Any]) -> dict[str, list[tuple[str, int]]]:
    """Per symbol, the (side, quantity) of its fills in time order: the decisions."""
    out: dict[str, list[tuple[str, int]]] = {}
    for _time, symbol, side, quantity, *_ in sorted(fills):
        out.setdefault(symbol, []).append((side, quantity))
    return out


def _same_orders(ours: list[Any], theirs: list[Any]) -> str:
    """'' unless a symbol's orders differ; else which. Filling at the decision bar's close,
    a rule may fill a last decision sessionflow never can (no bar after it): allowed."""
    mine, other = _orders(ours), _orders(theirs)
    bad = [
        s
        for s in mine.keys() | other.keys()
        if mine.get(s, []) != other.get(s, [])[: len(mine.get(s, []))]
    ]
    return ", ".join(sorted(bad)[:5])


def _check_fills(records: list[dict[str, Any]]) -> str:
    files = {r["mode"]: r["fills_file"] for r in records if r["status"] == "ok" and r["fills"]}
    seen: dict[str, list[Any]] = {m: json.loads(Path(f).read_text()) for m, f in files.items()}
    other_rule = {m: seen.pop(m) for m in list(seen) if m in OTHER_RULE}
    if not seen:
        return "no fills to compare"
    first_mode, first = next(iter(seen.items()))
    bad = [m for m, f in seen.items() if f != first]
    if bad:
        return f"fills differ from {first_mode}'s: {', '.join(bad)}"
    notes = [f"equal fills ({len(first)}) in {', '.join(seen)}"]
    for mode, fills in other_rule.items():
        differ = _same_orders(first, fills)
        if differ:
            notes.append(f"{mode}: orders differ from {first_mode}'s for {differ}")
            continue
        notes.append(
            f"{mode} ({OTHER_RULE[mode]}): the same orders, side and quantity, per symbol "
            f"({len(fills)} fills, {len(fills) - len(first)} more at the data's end); "
            f"time and price differ by that rule"
        )
    return "; ".join(notes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--sessions", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--bt-config", default="one")
    ap.add_argument("--nt-config", default="open")
    ap.add_argument("--python", default=str(PEERS_PY) if PEERS_PY.exists() else sys.executable)
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--no-readme", action="store_true")
    ap.add_argument("--child-store", nargs=2, type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-mode", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_store:
        rec = child_store(*args.child_store)
        Path(rec["store"]).with_suffix(".symbols.json").write_text(json.dumps(rec["symbols"]))
        rec["symbols"] = len(rec["symbols"])
        print(MARK + json.dumps(rec))
        return
    if args.child_mode:
        mode, store, start, end, out, config = args.child_mode
        print(MARK + json.dumps(child_mode(mode, store, start, end, Path(out), config)))
        return

    me = Path(__file__).resolve()
    prep = spawn(args.python, ["--child-store", str(args.symbols), str(args.sessions)], None, me)
    if prep["status"] != "ok":
        sys.exit(f"error: preparing the store failed: {prep}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    records: list[dict[str, Any]] = []
    runs = []
    for mode in args.modes.split(","):
        configs = {"backtrader": args.bt_config, "nautilus": args.nt_config}.get(mode, "-")
        for config in configs.split(","):
            runs.append((mode, config))
    for mode, config in runs:
        tries = []
        for i in range(args.repeat):
            out = RESULTS / f"strategy_{stamp}_{mode}_{config}_{i}.json"
            argv = ["--child-mode", mode, prep["store"], prep["start"], prep["end"], str(out)]
            rec = spawn(args.python, [*argv, config], args.timeout, me)
            rec.setdefault("mode", _mode_name(mode, config))
            print(f"{rec['mode']}: {rec.get('replay_s', rec['status'])}", file=sys.stderr)
            tries.append(rec)
        ok = [t for t in tries if t["status"] == "ok"]
        best = min(ok, key=lambda t: t["replay_s"]) if ok else tries[0]
        best["loadavg_runs"] = [t["loadavg_before"][0] for t in ok]
        records.append(best)
    fills = _check_fills(records)
    command = "python3 benchmarks/strategy_bench.py " + " ".join(sys.argv[1:])
    block = [
        f"Command: `{command.strip()}`  ",
        f"Run: {stamp}; {machine()}; Python {platform.python_version()}; checkout {checkout()}; "
        f"{args.symbols} symbols x {args.sessions} sessions; fastest of {args.repeat}.",
        "",
        *_table(records),
        "",
        f"Fills: {fills}.",
    ]
    print("\n".join(block))
    (RESULTS / f"strategy_{stamp}.json").write_text(json.dumps(records, indent=1, default=str))
    if not args.no_readme:
        text = README.read_text()
        if BEGIN in text:
            head, rest = text.split(BEGIN, 1)
            text = head + BEGIN + "\n" + "\n".join(block) + "\n" + END + rest.split(END, 1)[1]
            README.write_text(text)
    if " differ from " in fills:
        sys.exit(f"error: {fills}")


if __name__ == "__main__":
    main()
