"""``sessionflow backtest --strategy`` as a user runs it: table, JSON, files, bad input, faults."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import sessionflow
from sessionflow.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
CROSSOVER = f"{ROOT / 'tests' / 'strategies.py'}:Crossover"
SPAN = ["--symbols", "AAPL,MSFT", "--start", "2024-11-25", "--end", "2024-11-26"]


def cli(*args: str | Path) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, ["backtest", *[str(a) for a in args]])
    return res.exit_code, res.stdout, res.stderr


def test_results_table_json_and_output_files_agree(tmp_path: Path, demo_store_path: Path) -> None:
    common = [*SPAN, "--store", demo_store_path, "--strategy", CROSSOVER, "--param", "fast=3",
              "--commission", "per_share:0.005,min=1,max=0.01"]  # fmt: skip
    code, table, err = cli(*common, "--output", tmp_path / "csv")
    assert code == 0, err
    for name in ("total return", "annual return", "Sharpe", "Sortino", "max drawdown",
                 "win rate", "profit factor", "trades", "exposure", "fees"):  # fmt: skip
        assert name in table
    code, out, err = cli(*common, "--json", "--output", tmp_path / "pq", "--format", "parquet")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["complete"] is True and summary["params"]["fast"] == 3
    stats = summary["statistics"]
    assert f"{stats['final_equity']:,.2f}" in table
    fills = pd.read_csv(tmp_path / "csv" / "fills.csv")
    assert len(fills) == summary["fills"] == len(pd.read_parquet(tmp_path / "pq" / "fills.parquet"))
    assert fills["commission"].sum() == pytest.approx(stats["fees"])
    equity = pd.read_csv(tmp_path / "csv" / "equity.csv")
    assert len(equity) == 2 * 390 and equity["equity"].iloc[-1] == pytest.approx(
        stats["final_equity"]
    )  # one point a minute
    for name in ("orders", "trades", "positions"):
        assert (tmp_path / "csv" / f"{name}.csv").exists()
    assert json.loads((tmp_path / "csv" / "summary.json").read_text())["complete"] is True


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--strategy", "missing.py:X"], "no file missing.py"),
        (
            ["--strategy", f"{ROOT / 'tests' / 'strategies.py'}:ClassVar"],
            "not a sessionflow.Strategy",
        ),
        (["--strategy", CROSSOVER, "--param", "fast=five"], "not an int"),
        (["--strategy", CROSSOVER, "--param", "nope=1"], "has no parameter 'nope'"),
        (["--strategy", CROSSOVER, "--commission", "flat"], "commission 'flat'"),
        (["--strategy", CROSSOVER, "--slippage", "bps:-3"], "slippage 'bps:-3'"),
        (["--strategy", CROSSOVER, "--workers", "2"], "per_symbol_independent"),
        (["--cash", "5"], "need --strategy"),
    ],
)
def test_bad_strategy_input_is_one_line_and_exit_2(
    demo_store_path: Path, args: list[str], reason: str
) -> None:
    code, out, err = cli(*SPAN, "--store", demo_store_path, *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and reason in err, err


FAILING = """
from sessionflow import Strategy


class Fails(Strategy):
    def on_bar(self, ctx, bar):
        if not ctx.open_orders():
            ctx.buy(bar.symbol, 1, limit=1.0, tif="gtc")
        if bar.ts.minute == 45:
            helper(bar)


def helper(bar):
    return 1 / 0
"""


def test_a_failing_strategy_exits_1_with_its_traceback_and_incomplete_results(
    tmp_path: Path, demo_store_path: Path
) -> None:
    path = tmp_path / "fails.py"
    path.write_text(FAILING)
    code, out, err = cli(*SPAN, "--store", demo_store_path, "--strategy", f"{path}:Fails",
                         "--json", "--output", tmp_path / "out")  # fmt: skip
    assert code == 1
    assert err.startswith("Traceback (most recent call last):")
    assert f'File "{path}", line 10, in on_bar' in err and "line 14, in helper" in err
    package = str(Path(sessionflow.__file__).parent)  # not the clone's folder, named anything
    assert package not in err.split("ZeroDivisionError")[0]  # only the user's frames
    assert err.rstrip().splitlines()[-1].startswith("error: strategy callback on_bar raised")
    summary = json.loads(out)
    assert summary["complete"] is False and "ZeroDivisionError" in summary["error"]
    orders = pd.read_csv(tmp_path / "out" / "orders.csv")
    assert list(orders["status"]) == ["cancelled"]  # the open order, cancelled on the stop
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["complete"] is False


SLOW = """
import sys
from sessionflow import Strategy


class Slow(Strategy):
    def on_bar(self, ctx, bar):
        if not ctx.open_orders() and not ctx.position(bar.symbol).quantity:
            ctx.buy(bar.symbol, 1, limit=1.0, tif="gtc")
            print("READY", file=sys.stderr, flush=True)
"""


def test_ctrl_c_stops_cleanly_exits_130_and_writes_incomplete_results(
    tmp_path: Path, demo_store_path: Path
) -> None:
    path = tmp_path / "slow.py"
    path.write_text(SLOW)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONFLOW_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionflow.cli.app", "backtest", *SPAN, "--store",
         str(demo_store_path), "--strategy", f"{path}:Slow", "--speed", "60", "--json",
         "--output", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert line.strip() == "READY", line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: results so far are marked incomplete" in err
    summary = json.loads(out)
    assert summary["complete"] is False and summary["interrupted"] is True
    orders = pd.read_csv(tmp_path / "out" / "orders.csv")
    assert set(orders["status"]) == {"cancelled"}
