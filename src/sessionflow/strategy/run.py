"""Running a strategy over a backtest and collecting its results.

``Backtest`` wires the pieces onto one system in the order of work: the
ExecutionManager (built by build_system, first consumer), the results recorder, then
the strategy runner. A strategy exception or a Ctrl-C stops the run cleanly: open
orders are cancelled and the result is returned marked incomplete.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from sessionflow.data_manager.live import LiveParts
from sessionflow.execution_manager import OrderStatus
from sessionflow.results import BacktestResult, Recorder, compute_statistics, round_trips
from sessionflow.results.result import fills_of
from sessionflow.store import Store
from sessionflow.strategy.base import Strategy
from sessionflow.strategy.loader import merged_params
from sessionflow.strategy.runner import StrategyError, StrategyRunner
from sessionflow.stream_coordinator.publisher import ConsumerError
from sessionflow.system_manager import Settings, SystemManager, build_system
from sessionflow.system_manager.trading_settings import TradingSettings

STOP_TIMEOUT_S = 2.0
_ENGINE = Path(__file__).resolve().parents[1]  # src/sessionflow: the engine's own frames


def with_trading(settings: Settings, **over: Any) -> Settings:
    """``settings`` with ``[trading]`` keys replaced (None values ignored), validated."""
    given = {k: v for k, v in over.items() if v is not None}
    if not given:
        return settings
    trading = TradingSettings.model_validate({**settings.trading.model_dump(), **given})
    return settings.model_copy(update={"trading": trading})


class Backtest:
    def __init__(
        self,
        settings: Settings,
        strategy: type[Strategy],
        params: dict[str, Any] | None = None,
        store: Store | None = None,
        live: LiveParts | None = None,
    ) -> None:
        if not (isinstance(strategy, type) and issubclass(strategy, Strategy)):
            raise TypeError(f"{strategy!r} is not a sessionflow.Strategy subclass")
        self.strategy_class = strategy
        self.params = merged_params(strategy, params)
        self.system: SystemManager = build_system(settings, store, live=live)
        self.recorder = Recorder(self.system.portfolio)
        self.system.on_batch(self.recorder.on_event)
        log = logging.getLogger(f"sessionflow.strategy.{strategy.__name__}")
        self.runner = StrategyRunner(self.system, strategy(), self.params, log)

    def run(self) -> BacktestResult:
        """Play every session; Ctrl-C returns the result so far, marked interrupted."""
        interrupted = False
        try:
            self.runner.start()
            self.system.run()
        except KeyboardInterrupt:
            self.system.stop(STOP_TIMEOUT_S)
            interrupted = True
        except (ConsumerError, StrategyError):
            if self.runner.failure is None:
                raise
            self.system.stop(STOP_TIMEOUT_S)
        return self.finish(interrupted)

    def finish(self, interrupted: bool) -> BacktestResult:
        failure = self.runner.failure
        if failure is None and not interrupted:
            try:
                self.runner.stop()
            except StrategyError:
                failure = self.runner.failure
        complete = failure is None and not interrupted
        self.wind_down("run ended" if complete else "run stopped early")
        return self._result(complete, interrupted, failure)

    def wind_down(self, why: str) -> None:
        """Cancel the open orders (the backtest broker confirms at once; a live run waits
        for the venue, strategy/live.py)."""
        self.system.execution_manager.cancel_all(why)

    def _result(
        self, complete: bool, interrupted: bool, failure: StrategyError | None
    ) -> BacktestResult:
        em, pf, rec = self.system.execution_manager, self.system.portfolio, self.recorder
        fills = fills_of(em.orders)
        trades, still_open = round_trips(fills)
        initial, final = float(pf.initial_cash), float(pf.equity)
        stats = compute_statistics(
            initial, final, rec.daily, rec.times, rec.equity, rec.exposure, trades,
            float(pf.fees), still_open,
        )  # fmt: skip
        stats["orders"] = len(em.orders)
        stats["rejected"] = sum(o.status is OrderStatus.REJECTED for o in em.orders)
        return BacktestResult(
            strategy=self.strategy_class.__name__,
            params=self.params,
            orders=list(em.orders),
            fills=fills,
            trades=trades,
            positions=[p.to_dict() for p in pf.positions.values()],
            equity_curve=list(zip(rec.times, rec.equity, strict=True)),
            daily_equity=list(rec.daily),
            final_equity=final,
            cash=float(pf.cash),
            statistics=stats,
            rejections=dict(em.rejections),
            complete=complete,
            interrupted=interrupted,
            error=None if failure is None else str(failure),
            traceback=None if failure is None else user_traceback(failure.original),
        )


def user_traceback(exc: BaseException) -> str:
    """The exception's traceback from the first frame outside sessionflow: the user's
    code, not the engine that called it."""
    tb = traceback.TracebackException.from_exception(exc)
    frames = list(tb.stack)
    first = next(
        (i for i, f in enumerate(frames) if not Path(f.filename).resolve().is_relative_to(_ENGINE)),
        0,
    )
    tb.stack = traceback.StackSummary.from_list(frames[first:])
    return "".join(tb.format())


def run_backtest(
    settings: Settings,
    strategy: type[Strategy],
    params: dict[str, Any] | None = None,
    *,
    cash: float | None = None,
    commission: str | None = None,
    slippage: str | None = None,
    store: Store | None = None,
) -> BacktestResult:
    """Run ``strategy`` over ``settings``' sessions; ``cash``/``commission``/``slippage``
    override ``[trading]`` (specs as on the command line, docs/strategies.md)."""
    settings = with_trading(settings, cash=cash, commission=commission, slippage=slippage)
    return Backtest(settings, strategy, params, store).run()
