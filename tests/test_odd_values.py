"""Values that parse but are not market data are refused (issue 20 item 20).

A price of 1e-300 (positive, finite: it passed every check, and divided into anything
it overflows), a volume written in Arabic-Indic digits (``int()`` reads them), and
``{"speed": true}`` (pydantic coerces a JSON boolean to 1.0).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sessionflow.importer.validate import RowProblem, parse_volume
from sessionflow.models import MIN_PRICE, price_problem
from tests.helpers import cli_result
from tests.web_support import demo_app

HEADER = "timestamp,open,high,low,close,volume\n"


def import_json(tmp_path: Path, rows: list[str]) -> dict[str, object]:
    f = tmp_path / "odd.csv"
    f.write_text(HEADER + "".join(rows))
    res = cli_result("import", "bars", f, "--symbol", "X", "--store", tmp_path / "s.duckdb",
                     "--json")  # fmt: skip
    (report,) = json.loads(res.stdout)
    return dict(report)


def test_a_price_below_the_minimum_is_rejected_naming_field_and_bound(tmp_path: Path) -> None:
    report = import_json(tmp_path, [
        "2024-11-29T09:30:00-05:00,1e-300,1e-300,1e-300,1e-300,100\n",
        "2024-11-29T09:31:00-05:00,0.0001,0.0002,0.0001,0.0002,100\n",  # sub-penny: a price
    ])  # fmt: skip
    assert report["rejections"] == [
        {"line": 2, "reason": "price_out_of_range", "detail": "open '1e-300' below 1e-06"}
    ]
    assert report["imported"] == 1


def test_live_and_lean_share_the_minimum() -> None:
    assert MIN_PRICE == 1e-6
    assert price_problem(1e-300, 1.0, 1e-300, 1.0, 10) == "price_out_of_range"
    assert price_problem(MIN_PRICE, MIN_PRICE, MIN_PRICE, MIN_PRICE, 10) is None


@pytest.mark.parametrize("cell", ["١٢٣", "۱۲۳", "１２３", "1٢3"])
def test_a_volume_in_other_digits_is_refused(cell: str) -> None:
    with pytest.raises(RowProblem) as caught:
        parse_volume(cell)
    assert caught.value.reason == "bad_number"
    assert parse_volume("123") == 123


def test_a_csv_volume_in_arabic_indic_digits_is_rejected_by_line(tmp_path: Path) -> None:
    report = import_json(tmp_path, [
        "2024-11-29T09:30:00-05:00,10,11,9,10.5,١٠٠\n",
        "2024-11-29T09:31:00-05:00,10,11,9,10.5,100\n",
    ])  # fmt: skip
    assert report["rejections"] == [{"line": 2, "reason": "bad_number", "detail": "volume '١٠٠'"}]


def test_a_boolean_speed_is_a_422_on_both_controls(demo_store_path: Path) -> None:
    body = {"symbols": "AAPL", "start": "2024-11-29", "end": "2024-11-29"}
    with demo_app(demo_store_path) as (app, _), TestClient(app) as client:
        for speed in (True, False):
            r = client.post("/api/system/start", json=body | {"speed": speed})
            assert r.status_code == 422, r.text
            word = "true" if speed else "false"
            assert r.json()["detail"] == f"speed: speed {word} is a boolean, not a number"
        assert client.post("/api/system/start", json=body | {"speed": 0}).status_code == 200
        r = client.post("/api/system/speed", json={"speed": True})
        assert r.status_code == 422 and "boolean, not a number" in r.json()["detail"]
        assert client.post("/api/system/stop").status_code == 200
