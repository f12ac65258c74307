"""The one quality rounding rule (docs/real-data.md) and that every figure uses it."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sessionflow.data_upkeep.worker import quality_table as engine_table
from sessionflow.session_data.quality import (
    cell_label,
    quality_array,
    quality_percent,
    quality_table,
)
from tests.helpers import demo_settings, run_collect
from tests.web_support import demo_app


def exact(received: int, expected: int, digits: int) -> float:
    """Half to even on the exact fraction, by Fraction: the rule written out."""
    return float(round(Fraction(100 * received, expected), digits))


def test_the_rule_rounds_the_exact_fraction_half_to_even() -> None:
    assert quality_percent(1, 16, 1) == 6.2  # 6.25: a tie, to even
    assert quality_percent(3, 16, 1) == 18.8  # 18.75: a tie, to even
    assert quality_percent(388, 390) == 99.4872
    assert quality_percent(388, 390, 1) == 99.5  # truncation would give 99.4
    assert quality_percent(0, 0) == 0.0 and quality_percent(5, 0) == 0.0
    for expected in (7, 16, 210, 390):
        for digits in (1, 2, 4):
            got = quality_array(np.arange(expected + 1), expected, digits)
            assert got.tolist() == [exact(r, expected, digits) for r in range(expected + 1)]


def test_a_short_figure_is_rounded_once_not_from_the_rounded_long_one() -> None:
    """100 x 935 / 1007 = 92.85004..: one decimal is 92.9; rounding the 4-decimal figure
    (92.85) again gives 92.8. The cell says 100 only when nothing is missing."""
    assert quality_percent(935, 1007) == 92.85
    assert cell_label(935, 1007) == "92.9" == f"{exact(935, 1007, 1):.1f}"
    assert cell_label(9999, 10001) == "100.0"
    assert cell_label(390, 390) == "100"
    assert cell_label(0, 0) == "-"


@pytest.mark.parametrize("minutes", [7, 210, 390])
def test_the_engines_table_is_the_rule(minutes: int) -> None:
    assert engine_table is quality_table
    table = quality_table(minutes)
    n = np.arange(minutes + 1)
    for e in (0, 1, minutes // 3, minutes):
        assert table[e].tolist() == quality_array(n, e).tolist()


def test_report_engine_and_dashboard_show_one_figure(demo_store_path: Path) -> None:
    """A gappy symbol's session: the report's quality, the engine's, and the heat map's."""
    settings = demo_settings(demo_store_path, symbols=["NVDA", "QQQ"])
    system, _ = run_collect(settings)
    with demo_app(demo_store_path) as (app, _), TestClient(app) as c:
        cells = {(x["symbol"], x["session"]): x for x in c.get("/api/quality").json()["cells"]}
    seen = 0
    for rep in system.data_manager.reports:
        for row in rep.rows:
            cell = cells[(row.symbol, rep.session.isoformat())]
            assert row.quality == cell["quality"] == quality_percent(row.bars, row.expected)
            assert cell["label"] == cell_label(row.bars, row.expected)
            seen += row.bars < row.expected
    assert seen
