"""Running a strategy live: the backtest's wiring with Alpaca's Trading API as the broker.

The live twin of run.py. Two parts differ from a backtest: the data source (the live
feed, ``mode=live``) and the broker (``AlpacaBroker`` instead of the fill model). The
ExecutionManager with its risk limits, the portfolio, the results recorder, the strategy
runner and the result are ``Backtest``'s, built by the same code (``build_system`` with
the broker in ``LiveParts``). What live adds:

- the endpoint: paper unless live money is asked for twice, by an option and by
  ``SESSIONFLOW_LIVE_MONEY=yes`` in the environment; a trading URL naming Alpaca's
  live-money host counts as asking, so an override cannot slip past the check;
- the account's cash as the portfolio's starting cash (read before anything starts,
  which also proves the keys and the endpoint);
- the kill switch at stop: open orders cancelled and, with ``flatten_on_stop``,
  positions closed with market orders; each waited for on the venue's own events
  (bounded), so the stop line says what the venue confirmed, not what was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.stream import TradingStream

from sessionflow.data_manager.live import LiveParts
from sessionflow.execution_manager import Order, Side, parse_commission
from sessionflow.execution_manager.alpaca_broker import AlpacaBroker
from sessionflow.feeds.credentials import AlpacaCredentials
from sessionflow.results import BacktestResult
from sessionflow.store import Store
from sessionflow.strategy.base import Strategy
from sessionflow.strategy.loader import load_strategy
from sessionflow.strategy.run import Backtest, with_trading
from sessionflow.system_manager import Settings

log = logging.getLogger(__name__)

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_MONEY_URL = "https://api.alpaca.markets"
LIVE_MONEY_HOST = "api.alpaca.markets"
CONFIRM_VAR = "SESSIONFLOW_LIVE_MONEY"
CONFIRM_VALUE = "yes"


class LiveMoneyRefused(ValueError):
    """Live money asked for once, not twice (or a URL pointing there without asking)."""

    TEMPLATE = "live money refused: {why}; it needs --live-money and {var}={value}"

    def __init__(self, why: str) -> None:
        super().__init__(self.TEMPLATE.format(why=why, var=CONFIRM_VAR, value=CONFIRM_VALUE))


class TradingEndpointError(ValueError):
    TEMPLATE = "trading endpoint {url}: {why}"

    def __init__(self, url: str, why: str) -> None:
        super().__init__(self.TEMPLATE.format(url=url, why=why))


@dataclass(frozen=True)
class BrokerSettings:
    """How the strategy's orders reach Alpaca (the URLs are ``settings.live.trading_url``
    and ``trading_stream_url``).

    ``live_money``: the real-money endpoint, only with ``SESSIONFLOW_LIVE_MONEY=yes`` too;
    ``run_id``: the client order id prefix (default: ``sf`` and the UTC start time);
    ``flatten_on_stop``: the kill switch also closes positions; ``stop_wait_s``: how long
    it waits for the venue to confirm each step; ``timeout_s``: per REST request;
    ``resume``: the run ids of killed runs this one continues (their orders are adopted,
    never resent: docs/live.md, Reconciliation) and ``resume_cash`` the cash the first of
    them started with, which the adopted fills are booked against (the account's cash
    already holds them).
    """

    live_money: bool = False
    run_id: str | None = None
    flatten_on_stop: bool = False
    stop_wait_s: float = 10.0
    timeout_s: float = 10.0
    resume: tuple[str, ...] = ()
    resume_cash: float | None = None


@dataclass(frozen=True)
class Endpoint:
    kind: str  # "paper" or "live money"
    url: str
    stream_url: str | None  # None: the SDK's default for ``kind``
    overridden: bool

    def describe(self) -> str:
        where = f"{self.url} (from the settings)" if self.overridden else self.url
        return f"trading endpoint: {self.kind}, {where}"


def resolve_endpoint(
    settings: Settings, broker: BrokerSettings, environ: Mapping[str, str]
) -> Endpoint:
    """Paper by default; live money only when asked for by option and environment."""
    given = settings.live.trading_url
    if given is not None and urlsplit(given).hostname == LIVE_MONEY_HOST and not broker.live_money:
        raise LiveMoneyRefused(f"the trading URL {given} is Alpaca's live-money endpoint")
    if broker.live_money:
        confirmed = environ.get(CONFIRM_VAR, "").strip().lower() == CONFIRM_VALUE
        if not confirmed:
            raise LiveMoneyRefused(f"{CONFIRM_VAR} is not {CONFIRM_VALUE!r}")
    kind = "live money" if broker.live_money else "paper"
    url = given or (LIVE_MONEY_URL if broker.live_money else PAPER_URL)
    stream = settings.live.trading_stream_url
    if stream is None and given is not None:
        stream = stream_url_for(given)
    return Endpoint(kind, url, stream, given is not None)


def stream_url_for(url: str) -> str:
    """``ws(s)://host/stream`` beside a trading REST URL (Alpaca serves both on one host)."""
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, "/stream", "", ""))


def default_run_id() -> str:
    return f"sf{datetime.now(UTC):%Y%m%dT%H%M%S}"


@dataclass
class StopSummary:
    """What the kill switch asked for and what the venue confirmed within the wait."""

    cancel_sent: int = 0
    still_open: int = 0  # orders the venue had not confirmed closed when the wait ended
    flatten_sent: int = 0
    flatten_unfilled: int = 0
    flatten_skipped: str | None = None  # why positions were left as they are
    positions_left: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        text = f"stop: {self.cancel_sent} open order(s) cancelled"
        if self.still_open:
            text += f", {self.still_open} not confirmed by the venue"
        if self.flatten_skipped is not None:
            text += f"; positions not closed: {self.flatten_skipped}"
        elif self.flatten_sent:
            text += f"; {self.flatten_sent} position(s) closed with market orders"
            if self.flatten_unfilled:
                text += f", {self.flatten_unfilled} not filled in time"
        return text

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class LiveStrategy(Backtest):
    """A ``Backtest`` whose data is the live feed and whose broker is Alpaca's API."""

    def __init__(
        self,
        settings: Settings,
        strategy: type[Strategy],
        params: dict[str, Any] | None = None,
        broker_settings: BrokerSettings | None = None,
        *,
        parts: LiveParts | None = None,
        environ: Mapping[str, str] | None = None,
        store: Store | None = None,
    ) -> None:
        if settings.mode != "live":
            raise ValueError("a live strategy run needs settings with mode='live'")
        env = os.environ if environ is None else environ
        bs = broker_settings or BrokerSettings()
        self.broker_settings = bs
        self.endpoint = resolve_endpoint(settings, bs, env)
        creds = AlpacaCredentials.resolve(settings.live.key_id, settings.live.secret_key, env)
        key, secret = creds.key_id.get_secret_value(), creds.secret_key.get_secret_value()
        paper = not bs.live_money
        over = self.endpoint.url if self.endpoint.overridden else None
        client = TradingClient(key, secret, paper=paper, url_override=over)
        if self.endpoint.stream_url is None:
            stream = TradingStream(key, secret, paper=paper)
        else:
            stream = TradingStream(key, secret, paper=paper, url_override=self.endpoint.stream_url)
        commission = parse_commission(settings.trading.commission)
        self.broker = AlpacaBroker(
            client, stream, bs.run_id or default_run_id(), commission=commission,
            timeout_s=bs.timeout_s, resume=bs.resume,
        )  # fmt: skip
        if bs.resume:  # the account's cash already holds the adopted fills
            if bs.resume_cash is None:
                raise ValueError("resuming a run needs the cash its first run started with")
            cash = bs.resume_cash
        else:
            cash = float(self._venue(creds, lambda: _field(client.get_account(), "cash")))
        if not cash > 0:
            raise TradingEndpointError(self.endpoint.url, f"the account's cash is {cash:,.2f}")
        settings = with_trading(settings, cash=cash)  # the portfolio starts as the account
        self.stop_summary = StopSummary()
        base = parts or LiveParts(environ=environ)
        super().__init__(
            settings, strategy, params, store, live=dataclasses.replace(base, broker=self.broker)
        )

    def _venue(self, creds: AlpacaCredentials, call: Callable[[], Any]) -> Any:
        """One REST call whose failure is a one-line error naming the endpoint."""
        try:
            return call()
        except APIError as err:
            raise TradingEndpointError(
                self.endpoint.url, creds.scrub(f"alpaca {err.status_code}: {err}")
            ) from None
        except requests.RequestException as exc:
            why = creds.scrub(f"cannot reach it ({type(exc).__name__})")
            raise TradingEndpointError(self.endpoint.url, why) from None

    def run(self) -> BacktestResult:
        self.broker.start()
        try:
            return super().run()
        finally:
            sdk = logging.getLogger(TradingStream.__module__)
            quiet = _OurClose()
            sdk.addFilter(quiet)
            try:
                self._stop_stream()
                self.broker.stop()
            finally:
                sdk.removeFilter(quiet)

    def _stop_stream(self) -> None:
        """The SDK sees its stop flag only between 5 s receive timeouts: closing the socket
        once the flag is set ends its loop at once (stop() then joins a finished thread)."""
        stream = self.broker.stream
        loop = stream._loop
        if loop is None or not loop.is_running():
            return
        stream.stop()
        closing = asyncio.run_coroutine_threadsafe(stream.close(), loop)
        with contextlib.suppress(Exception):  # already closed or the loop gone: stopped
            closing.result(self.broker_settings.timeout_s)

    def wind_down(self, why: str) -> None:
        """The kill switch (the coordinator has stopped: this thread alone drives the
        manager): cancel every open order and wait for the venue to confirm; with
        ``flatten_on_stop``, close each position with a market order and wait for the
        fills, while the venue's market is open."""
        em, s, wait = self.system.execution_manager, self.stop_summary, self.broker_settings
        self.settle(lambda: True, 0.0)  # updates heard since the last instant first
        s.cancel_sent = len(em.open_orders())
        em.cancel_all(why)
        self.settle(lambda: not em.open_orders(), wait.stop_wait_s)
        s.still_open = len(em.open_orders())
        if wait.flatten_on_stop:
            self._flatten(why)
        s.positions_left = {
            sym: p.quantity for sym, p in em.portfolio.positions.items() if p.quantity
        }
        log.info("%s", s.line())

    def _flatten(self, why: str) -> None:
        em, s = self.system.execution_manager, self.stop_summary
        held = {sym: p.quantity for sym, p in em.portfolio.positions.items() if p.quantity}
        if not held:
            return
        try:
            market_open = bool(_field(self.broker.client.get_clock(), "is_open"))
        except (APIError, requests.RequestException) as exc:
            s.flatten_skipped = f"the venue's clock could not be read ({type(exc).__name__})"
            return
        if not market_open:
            s.flatten_skipped = "the market is closed (a market order would wait for the open)"
            return
        orders: list[Order] = []
        with em.risk.exempt():  # the kill switch's own orders: never refused by the limits
            for sym, qty in sorted(held.items()):
                side = Side.SELL if qty > 0 else Side.BUY
                orders.append(em.submit(sym, side, abs(qty)))
        s.flatten_sent = len(orders)
        self.settle(lambda: not any(o.is_open for o in orders), self.broker_settings.stop_wait_s)
        s.flatten_unfilled = sum(1 for o in orders if o.is_open)
        log.info("flatten on stop (%s): %d order(s)", why, len(orders))

    def settle(self, done: Callable[[], bool], timeout: float) -> bool:
        """Apply the venue's updates as they come until ``done()`` or ``timeout`` seconds
        (waits on the broker's condition, never sleeps)."""
        deadline = time.monotonic() + timeout
        while True:
            heard = self.broker.received
            self.broker.drain()
            if done():
                return True
            left = deadline - time.monotonic()
            if left <= 0 or not self.broker.wait_received(heard + 1, left):
                self.broker.drain()
                return done()


class _OurClose(logging.Filter):
    """Drops the SDK's "websocket error, restarting" warning for the close we made."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "restarting" not in record.getMessage()


def _field(answer: Any, name: str) -> Any:
    """A field of an alpaca-py model, or of its raw dict (``raw_data=True`` clients)."""
    return answer[name] if isinstance(answer, dict) else getattr(answer, name)


def run_live_strategy(
    settings: Settings,
    strategy_spec: str | type[Strategy],
    broker_settings: BrokerSettings | None = None,
    params: dict[str, Any] | None = None,
    *,
    parts: LiveParts | None = None,
    environ: Mapping[str, str] | None = None,
    on_ready: Callable[[LiveStrategy], None] | None = None,
) -> BacktestResult:
    """Run a strategy (``FILE.py:Class`` or the class) live with Alpaca as the broker.

    ``settings``: mode ``live`` (feed, keys, ``trading_url``; ``[trading]`` for
    commission and the risk limits); ``parts``: live replacements (a replay clock);
    ``on_ready``: called with the run once built, before it starts (the CLI prints the
    endpoint; a test keeps the handle to stop it). Returns the backtest's result type;
    ``run.stop_summary`` says what the kill switch did. Raises ValueError (one line)
    for a refused endpoint, missing keys or an unreachable venue.
    """
    cls = load_strategy(strategy_spec) if isinstance(strategy_spec, str) else strategy_spec
    run = LiveStrategy(settings, cls, params, broker_settings, parts=parts, environ=environ)
    if on_ready is not None:
        on_ready(run)
    return run.run()


__all__ = [
    "BrokerSettings",
    "Endpoint",
    "LiveMoneyRefused",
    "LiveStrategy",
    "StopSummary",
    "TradingEndpointError",
    "resolve_endpoint",
    "run_live_strategy",
]
