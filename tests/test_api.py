"""The public Python API: ``sessionflow.__all__`` pinned, and docs/api.md run as written."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sessionflow
from sessionflow import events

ROOT = Path(__file__).resolve().parent.parent
API_DOC = ROOT / "docs" / "api.md"

PUBLIC = {
    "BacktestResult",
    "Bar",
    "BarBatch",
    "BarEvent",
    "BarSliceEvent",
    "BatchEvent",
    "Context",
    "DerivedBarEvent",
    "DerivedSliceEvent",
    "Event",
    "Fill",
    "Mode",
    "ExecutionManager",
    "Order",
    "OrderStatus",
    "OrderType",
    "Portfolio",
    "Position",
    "Side",
    "TimeInForce",
    "Quote",
    "QuoteEvent",
    "SessionEndEvent",
    "SessionReport",
    "SessionStartEvent",
    "Settings",
    "State",
    "StopReport",
    "Strategy",
    "SymbolReport",
    "SymbolSnapshot",
    "SystemManager",
    "Tick",
    "TickEvent",
    "build_system",
    "iter_bars",
    "read_bars",
    "run_backtest",
}


def test_public_surface_is_exactly_all() -> None:
    assert set(sessionflow.__all__) == PUBLIC
    assert len(sessionflow.__all__) == len(PUBLIC)
    for name in sessionflow.__all__:
        assert getattr(sessionflow, name) is not None


def test_every_event_type_is_importable_from_the_package() -> None:
    kinds = [
        name
        for name, obj in vars(events).items()
        if name.endswith("Event") and isinstance(obj, type) and obj.__module__ == events.__name__
    ]
    assert "BarSliceEvent" in kinds and "DerivedSliceEvent" in kinds
    for name in kinds:
        assert getattr(sessionflow, name, None) is getattr(events, name), name
        assert name in sessionflow.__all__


def _blocks(doc: Path = API_DOC) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", doc.read_text(), re.S | re.M)


def test_api_doc_has_the_promised_examples() -> None:
    text = "\n".join(_blocks())
    for needle in ("build_system", "on_event", "on_batch", "events()", "snapshot(",
                   "history(", "execution_manager", "submit("):  # fmt: skip
        assert needle in text, needle


@pytest.mark.parametrize("index", range(len(_blocks()) if API_DOC.exists() else 1))
def test_api_doc_example_runs(index: int, tmp_path: Path, demo_store_path: Path) -> None:
    """Each ```python block of docs/api.md runs as is in a fresh interpreter, in a temp dir
    whose ``data/sessionflow.duckdb`` is the demo store (what ``sessionflow demo`` makes)."""
    blocks = _blocks()
    assert blocks, f"no python examples in {API_DOC}"
    _run_block(blocks[index], f"block {index}", tmp_path, demo_store_path)


def test_readme_python_example_runs(tmp_path: Path, demo_store_path: Path) -> None:
    """The README's snippet had ``start=...`` placeholders that fail as written."""
    (block,) = _blocks(ROOT / "README.md")
    out = _run_block(block, "README", tmp_path, demo_store_path)
    assert out.count("Bar(symbol='AAPL'") == 210  # the 2024-11-29 early close
    assert out.strip().splitlines()[-1] == "100.0"  # the demo's AAPL has every minute


def _run_block(block: str, name: str, tmp_path: Path, demo_store_path: Path) -> str:
    """Run ``block`` in a fresh interpreter in ``tmp_path``, as after ``sessionflow demo``."""
    (tmp_path / "data").mkdir()
    shutil.copyfile(demo_store_path, tmp_path / "data" / "sessionflow.duckdb")
    script = tmp_path / "example.py"
    script.write_text(block)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env = {k: v for k, v in env.items() if not k.startswith("SESSIONFLOW_")}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"{name}:\n{block}\n{done.stderr}"
    return done.stdout
