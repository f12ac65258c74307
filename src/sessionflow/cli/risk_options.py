"""The pre-trade risk limit options, shared by ``backtest --strategy`` and ``live --strategy``
(the limits are ``[trading]`` settings; execution_manager/risk.py checks them)."""

from __future__ import annotations

from typing import Annotated

import typer

MaxOrderValueOpt = Annotated[
    float | None, typer.Option(help="risk: refuse an order worth more (quantity x price)")
]
MaxPositionValueOpt = Annotated[
    float | None,
    typer.Option(help="risk: refuse growing a position (open orders included) past this value"),
]
MaxOrdersPerMinuteOpt = Annotated[
    int | None, typer.Option(help="risk: refuse orders past this many in 60 s")
]
DailyLossLimitOpt = Annotated[
    float | None, typer.Option(help="risk: after this loss in a session, refuse new exposure")
]


def risk_settings(
    max_order_value: float | None,
    max_position_value: float | None,
    max_orders_per_minute: int | None,
    daily_loss_limit: float | None,
) -> dict[str, float | int]:
    """The given limits as ``[trading]`` keys."""
    given = {
        "max_order_value": max_order_value,
        "max_position_value": max_position_value,
        "max_orders_per_minute": max_orders_per_minute,
        "daily_loss_limit": daily_loss_limit,
    }
    return {k: v for k, v in given.items() if v is not None}
