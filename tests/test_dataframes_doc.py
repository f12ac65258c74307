"""docs/dataframes.md runs as written: every python block, the chart a PNG file."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "dataframes.md"
PNG = b"\x89PNG\r\n\x1a\n"


def _blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.S | re.M)


def test_the_chart_is_five_lines() -> None:
    chart = _blocks()[0]
    assert len([line for line in chart.splitlines() if line.strip()]) <= 5
    assert "read_bars" in chart and "savefig" in chart


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_dataframes_doc_example_runs(
    index: int, tmp_path: Path, demo_store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each block runs as a script would, in this process (a fresh interpreter per block
    cost 20-60 s of imports on a loaded machine), in a directory holding the demo store."""
    import matplotlib

    matplotlib.use("Agg")  # what matplotlib picks by itself without a display
    (tmp_path / "data").mkdir()
    shutil.copyfile(demo_store_path, tmp_path / "data" / "sessionflow.duckdb")
    for name in [k for k in os.environ if k.startswith("SESSIONFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    block = _blocks()[index]
    exec(compile(block, f"{DOC.name} block {index}", "exec"), {"__name__": "__main__"})
    for name in re.findall(r'savefig\("(\w+\.png)"\)', block):
        image = (tmp_path / name).read_bytes()
        assert image.startswith(PNG) and len(image) > 10_000, name
