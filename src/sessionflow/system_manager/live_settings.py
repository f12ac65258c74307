"""Live-mode settings (``[live]`` in TOML, ``SESSIONFLOW_LIVE__*`` in the environment).

Why a nested model: live options do not apply to backtests, and grouping them
keeps ``Settings`` readable. The API keys are ``SecretStr``: masked in repr,
logs, ``--json`` settings dumps and error messages; Alpaca's own
``APCA_API_KEY_ID``/``APCA_API_SECRET_KEY`` are used when these are unset.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class LiveSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feed_url: str | None = None  # None: Alpaca's wss://stream.data.alpaca.markets/v2/<feed>
    rest_url: str | None = None  # None: https://data.alpaca.markets
    # Trading API (live --strategy): None: Alpaca's paper endpoint (or live money, asked
    # for twice); the stream defaults to ws(s)://<trading_url host>/stream
    trading_url: str | None = None
    trading_stream_url: str | None = None
    feed: Literal["iex", "sip", "delayed_sip"] = "iex"
    key_id: SecretStr | None = None
    secret_key: SecretStr | None = None
    quotes: bool = False
    trades: bool = False
    sessions: int | None = Field(default=None, ge=1)  # stop after this many; None = run on
    bar_grace_seconds: float = Field(default=10.0, ge=0)
    silence_timeout_seconds: float = Field(default=90.0, gt=0)
    connect_timeout_seconds: float = Field(default=15.0, gt=0)
    reconnect_min_seconds: float = Field(default=1.0, gt=0)
    reconnect_max_seconds: float = Field(default=30.0, gt=0)
    batch_items: int = Field(default=500, ge=1)
    batch_seconds: float = Field(default=5.0, gt=0)
    rest_timeout_seconds: float = Field(default=10.0, gt=0)
    # a bar whose minute ends later than the live clock plus this is "from the future"
    future_tolerance_seconds: float = Field(default=2.0, ge=0)

    @model_validator(mode="after")
    def _backoff_order(self) -> LiveSettings:
        if self.reconnect_max_seconds < self.reconnect_min_seconds:
            raise ValueError("reconnect_max_seconds is below reconnect_min_seconds")
        return self
