"""API credentials as secrets: masked in repr, str, logs, settings dumps and error messages."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

ENV_KEY_ID = "APCA_API_KEY_ID"
ENV_SECRET = "APCA_API_SECRET_KEY"


@dataclass(frozen=True)
class AlpacaCredentials:
    key_id: SecretStr
    secret_key: SecretStr

    @classmethod
    def resolve(
        cls,
        key_id: SecretStr | None,
        secret_key: SecretStr | None,
        environ: Mapping[str, str],
    ) -> AlpacaCredentials:
        """Settings first, then Alpaca's ``APCA_API_*`` variables; errors name, never show, them."""
        key = key_id or _env(environ, ENV_KEY_ID)
        secret = secret_key or _env(environ, ENV_SECRET)
        if key is None or secret is None:
            raise ValueError(
                "live mode needs Alpaca API keys: set SESSIONFLOW_LIVE__KEY_ID and "
                f"SESSIONFLOW_LIVE__SECRET_KEY, or {ENV_KEY_ID} and {ENV_SECRET}"
            )
        return cls(key, secret)

    def scrub(self, text: str) -> str:
        """Remove the secrets from text that came from elsewhere (e.g. a server's reply)."""
        for s in (self.key_id.get_secret_value(), self.secret_key.get_secret_value()):
            if s:
                text = text.replace(s, "**********")
        return text


def _env(environ: Mapping[str, str], name: str) -> SecretStr | None:
    value = environ.get(name, "").strip()
    return SecretStr(value) if value else None
