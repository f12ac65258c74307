"""Option parsing and error lines shared by the commands.

Why here: ``--symbols`` is parsed by several commands and must be normalised the
same way as every other entry point (``models.normalize_symbol``), and a settings
error must reach the user as one line, not pydantic's multi-line report.
"""

from __future__ import annotations

from pydantic import ValidationError

from sessionflow.models import SymbolError, normalize_symbol


def parse_symbols(text: str | None, option: str = "--symbols") -> list[str] | None:
    """Comma-separated symbols, normalised; None if the option was not given."""
    if text is None:
        return None
    out: list[str] = []
    for raw in text.split(","):
        try:
            sym = normalize_symbol(raw)
        except SymbolError as exc:
            raise SymbolError(f"{option}: {exc}") from None
        if sym in out:
            raise SymbolError(f"{option}: duplicate symbol {sym!r} (given as {raw!r})")
        out.append(sym)
    return out


def one_line(exc: BaseException) -> str:
    """The error as one line; a settings ValidationError becomes ``field: reason; ...``."""
    if isinstance(exc, ValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err["loc"]) or "settings"
            msg = str(err["msg"]).removeprefix("Value error, ")
            parts.append(f"{where}: {msg}")
        return "settings: " + "; ".join(parts)
    return " ".join(str(exc).split())
