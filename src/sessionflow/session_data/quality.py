"""Bar quality: the one rounding rule that the engine, the report and the dashboard share.

quality % = 100 x received / expected, rounded ONCE to ``digits`` decimals (4 for the
figure, 1 for the heat map's cell), to nearest with ties to even, decided on the exact
fraction in integer arithmetic (no float error picks a side); 0 while nothing is expected.
Every place that shows a quality calls ``quality_array`` (or ``quality_percent``), so a
cell can never truncate where the report rounds, and a shorter figure is never a rounding
of a rounded one (99.74996 is 99.7 in a cell, not 99.75 -> 99.8). docs/real-data.md.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

DIGITS = 4  # decimals of the quality figure (report, engine, API)
CELL_DIGITS = 1  # decimals of the dashboard's heat-map cell

IntLike = int | npt.NDArray[np.int64]


def quality_array(
    received: IntLike, expected: IntLike, digits: int = DIGITS
) -> npt.NDArray[np.float64]:
    """Elementwise (numpy broadcasting) quality % of ``received`` bars of ``expected``."""
    r = np.asarray(received, dtype=np.int64)
    e = np.asarray(expected, dtype=np.int64)
    e_safe = np.where(e > 0, e, 1)
    scaled = r * 10 ** (digits + 2)
    whole = scaled // e_safe  # np.divmod is several times slower on int64
    twice = 2 * (scaled - whole * e_safe)
    up = (twice > e_safe) | ((twice == e_safe) & (whole % 2 == 1))
    out: npt.NDArray[np.float64] = (whole + up) / 10.0**digits
    return np.where(e > 0, out, 0.0)


def quality_percent(received: int, expected: int, digits: int = DIGITS) -> float:
    """One quality %: ``quality_array`` for a single count."""
    return float(quality_array(received, expected, digits))


def cell_label(received: int, expected: int) -> str:
    """The heat-map cell's text: ``100`` when every expected minute is there, else the
    quality at ``CELL_DIGITS`` decimals by the same rule (99.95% of a day is "100.0");
    ``-`` while nothing is expected yet (a session under way before its first minute)."""
    if not expected:
        return "-"
    if received == expected:
        return "100"
    return f"{quality_percent(received, expected, CELL_DIGITS):.{CELL_DIGITS}f}"


def quality_table(minutes: int) -> npt.NDArray[np.float64]:
    """``table[e, r]``: the quality of ``r`` bars received of ``e`` expected, for every
    pair up to ``minutes``, so the engine's per-minute check is one gather. 1.2 MB for a
    390-minute session, built once per length."""
    n = np.arange(minutes + 1)
    return quality_array(n[None, :], n[:, None])
