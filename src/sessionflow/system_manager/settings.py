"""Configuration: defaults < TOML file < ``SESSIONFLOW_*`` env vars < explicit overrides."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_serializer, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from sessionflow.models import normalize_symbol
from sessionflow.store.open import has_password, is_url, store_label
from sessionflow.system_manager.config_file import (
    ConfigError,
    check_keys,
    describe,
    env_error,
    read_config,
)
from sessionflow.system_manager.live_settings import LiveSettings
from sessionflow.system_manager.trading_settings import TradingSettings

MIN_SPEED = 0.001  # slower, one simulated minute waits ~17 hours
MAX_SPEED = 1_000_000.0  # faster, waits are below a microsecond: 0 is the same, and bounded


def not_a_bool(value: object) -> object:
    """JSON ``true`` is not a speed of 1: pydantic would coerce it, so refuse it first."""
    if isinstance(value, bool):
        raise ValueError(f"speed {str(value).lower()} is a boolean, not a number")
    return value


def check_speed(speed: float) -> float:
    """0 (as fast as possible) or a pace the pacer's clock arithmetic can follow."""
    if speed == 0 or MIN_SPEED <= speed <= MAX_SPEED:
        return float(speed)
    raise ValueError(
        f"speed {speed:g}: use 0 (as fast as possible) or {MIN_SPEED:g} to {MAX_SPEED:.0f}"
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SESSIONFLOW_", extra="forbid", env_nested_delimiter="__"
    )

    mode: Literal["backtest", "live"] = "backtest"
    # A DuckDB file, or a PostgreSQL URL postgresql://user@host:port/db (docs/store-and-export.md)
    store_path: Path | str = Path("data/sessionflow.duckdb")
    calendar: str = "XNYS"
    symbols: Annotated[list[str], NoDecode] = Field(default_factory=list)
    start: date | None = None
    end: date | None = None
    speed: float = Field(default=0.0, ge=0)
    trailing_days: int = Field(default=5, ge=0)
    # History (trailing days) as of each session: raw, split or split_dividend adjusted.
    adjustment: Literal["raw", "split", "split_dividend"] = "split"
    historical_intervals: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [1, 5])
    derived_intervals: Annotated[list[int], NoDecode] = Field(default_factory=lambda: [5, 15])
    check_interval_seconds: float = Field(default=60.0, gt=0)
    max_fill_attempts: int = Field(default=5, ge=0)
    end_of_data_timeout_seconds: float = Field(default=0.0, ge=0)
    include_extended_hours: bool = False
    # Backtest waits for every upkeep check. False runs it in lockstep on the coordinator
    # thread (no thread hand-off per check, same results); True hands it to thread 2.
    checks_on_upkeep_thread: bool = False
    live: LiveSettings = Field(default_factory=LiveSettings)  # mode=live only
    trading: TradingSettings = Field(default_factory=TradingSettings)  # orders, portfolio
    # A LEAN zip whose CSV expands beyond this many MiB is refused (a minute file is ~0.15 MiB).
    import_max_unzipped_mb: float = Field(default=16.0, gt=0)

    @field_validator("symbols", "historical_intervals", "derived_intervals", mode="before")
    @classmethod
    def _list_from_text(cls, v: Any) -> Any:
        """``AAPL,MSFT`` as well as ``["AAPL", "MSFT"]`` (how an env var gives a list)."""
        if not isinstance(v, str):
            return v
        if v.strip().startswith("["):
            try:
                return json.loads(v)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a JSON list ({exc})") from None
        return [part for part in v.split(",")] if v.strip() else []

    @field_validator("speed")
    @classmethod
    def _speed(cls, v: float) -> float:
        return check_speed(v)

    @field_validator("store_path", mode="before")
    @classmethod
    def _store_name(cls, v: Any) -> Any:
        """A ``postgresql://`` URL stays text (a Path would fold its ``//``); else a path."""
        if isinstance(v, str) and not is_url(v):
            return Path(v)
        if has_password(v):
            raise ValueError(
                "a password in the store URL would show in process lists and logs; "
                "give it in PGPASSWORD or ~/.pgpass"
            )
        return v

    @field_serializer("store_path")
    def _store_shown(self, v: Path | str) -> str:
        return store_label(v)

    @field_validator("symbols")
    @classmethod
    def _normalise(cls, v: list[str]) -> list[str]:
        """One spelling everywhere (models.normalize_symbol); a bad one is refused, not dropped."""
        out: list[str] = []
        for raw in v:
            sym = normalize_symbol(raw)
            if sym in out:
                raise ValueError(f"duplicate symbol {sym!r} (given as {raw!r})")
            out.append(sym)
        return out

    @field_validator("derived_intervals", "historical_intervals")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(k <= 0 for k in v):
            raise ValueError(f"intervals must be positive minutes, got {v}")
        return sorted(set(v))

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @classmethod
    def load(cls, toml_file: Path | None = None, **overrides: Any) -> Settings:
        """Build settings; ``overrides`` with value None are ignored (unset CLI options).

        Raises ConfigError (one line naming the file, variable or key) or FileNotFoundError.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        data = read_config(toml_file) if toml_file is not None else {}
        if toml_file is not None:
            check_keys(toml_file, data, cls)
        try:
            return cls._build(toml_file, given)
        except ValidationError as exc:
            raise ConfigError(describe(exc, toml_file, data, given)) from None
        except SettingsError as exc:  # an environment variable that is not valid JSON
            raise ConfigError(env_error(exc)) from None

    @classmethod
    def _build(cls, toml_file: Path | None, given: dict[str, Any]) -> Settings:
        if toml_file is None:
            return cls(**given)

        class _FromFile(cls):  # type: ignore[valid-type,misc]
            model_config = SettingsConfigDict(
                env_prefix="SESSIONFLOW_",
                extra="forbid",
                toml_file=toml_file,
                env_nested_delimiter="__",
            )

        return cls.model_validate(_FromFile(**given).model_dump())
