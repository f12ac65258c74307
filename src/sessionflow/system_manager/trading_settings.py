"""Trading settings (``[trading]`` in TOML, ``SESSIONFLOW_TRADING__*`` in the environment).

A nested model for the same reason as ``[live]``: they apply only when orders are
placed. Commission and slippage are the CLI's spec strings (docs/strategies.md), checked
here so a bad one is refused when settings load, not at the first fill.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sessionflow.execution_manager.commission import parse_commission
from sessionflow.execution_manager.fill_model import DEFAULT_MAX_VOLUME_SHARE
from sessionflow.execution_manager.manager import DEFAULT_MAX_QUANTITY
from sessionflow.execution_manager.slippage import parse_slippage


class TradingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cash: float = Field(default=100_000.0, gt=0, allow_inf_nan=False)
    account: Literal["cash", "margin"] = "cash"
    allow_short: bool = False  # margin accounts only
    max_quantity: int = Field(default=DEFAULT_MAX_QUANTITY, ge=1)
    # share of a 1m bar's volume one bar can fill; None: no cap
    max_volume_share: float | None = Field(default=DEFAULT_MAX_VOLUME_SHARE, gt=0, le=1)
    # market orders fill at the stored quote's ask/bid instead of the next bar's open
    market_at_quote: bool = False
    # pre-trade risk limits (execution_manager/risk.py); None: off
    max_order_value: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_position_value: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    max_orders_per_minute: int | None = Field(default=None, ge=1)
    daily_loss_limit: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    commission: str = "zero"
    slippage: str = "zero"

    @field_validator("commission")
    @classmethod
    def _commission(cls, v: str) -> str:
        parse_commission(v)
        return v

    @field_validator("slippage")
    @classmethod
    def _slippage(cls, v: str) -> str:
        parse_slippage(v)
        return v
