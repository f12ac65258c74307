"""docs/formats.md's vendor-layout examples run as written (issue 22, item 2).

Each ```csv NAME block is saved under NAME (and as NAME.gz / NAME.zst when a command
names those); a file no csv block holds is made by running the ```python NAME blocks
that name it (the DBN example); each ``sessionflow import bars`` line runs against a
fresh store, and every row of its file must be imported at the open the doc says.
"""

from __future__ import annotations

import gzip
import json
import re
import shlex
from pathlib import Path

import pyarrow as pa
import pytest

from sessionflow.importer.layout import PRESETS
from sessionflow.store import DuckDBStore
from tests.helpers import cli_result

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "formats.md").read_text()
FILES = dict(re.findall(r"^```csv (\S+)\n(.*?)^```", DOC, re.S | re.M))
SCRIPTS = dict(re.findall(r"^```python (\S+)\n(.*?)^```", DOC, re.S | re.M))
COMMANDS = [
    line
    for block in re.findall(r"^```sh\n(.*?)^```", DOC, re.S | re.M)
    for line in block.splitlines()
    if "--preset" in line or "--columns" in line or "--format" in line
]


def test_every_preset_has_an_example() -> None:
    for preset in PRESETS:
        assert any(f"--preset {preset}" in c for c in COMMANDS), preset
    assert any(".gz " in c for c in COMMANDS) and any(".zst " in c for c in COMMANDS)
    assert any("--format" in c for c in COMMANDS) and any("--time-is close" in c for c in COMMANDS)


def made_by_script(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run, in ``tmp_path``, the doc's python blocks that write ``name``."""
    scripts = [(n, code) for n, code in SCRIPTS.items() if f'"{name}"' in code]
    assert scripts, f"no csv or python block of docs/formats.md makes {name}"
    monkeypatch.chdir(tmp_path)
    for script, code in scripts:
        exec(compile(code, script, "exec"), {"__name__": "__main__"})
    return tmp_path / name


def save(tmp_path: Path, name: str) -> Path:
    plain = name.removesuffix(".gz").removesuffix(".zst")
    data = FILES[plain].encode()
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    elif name.endswith(".zst"):
        with pa.output_stream(str(path), compression="zstd") as out:
            out.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_the_command_imports_every_row(
    tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = shlex.split(command)
    assert args[:3] == ["sessionflow", "import", "bars"]
    text = FILES.get(args[3].removesuffix(".gz").removesuffix(".zst"))
    if text is None:
        path = made_by_script(tmp_path, args[3], monkeypatch)
    else:
        path = save(tmp_path, args[3])
    store = tmp_path / "s.duckdb"
    res = cli_result(*args[1:3], path, *args[4:], "--store", store, "--json")
    assert res.exit_code == 0, res.output
    (report,) = json.loads(res.stdout)
    rows = report["rows"] if text is None else len(text.splitlines()) - 1
    assert report["new"] == rows > 0 and not report["rejected"], report
    db = DuckDBStore(store)
    try:
        first = db._cursor().execute("SELECT epoch_us(min(ts)) FROM bars_1m").fetchone()
    finally:
        db.close()
    assert first is not None and first[0] == 1_732_631_400_000_000  # 2024-11-26 09:30 ET


def test_a_missing_column_names_what_is_accepted(tmp_path: Path) -> None:
    path = save(tmp_path, "closes.csv")
    res = cli_result("import", "bars", path, "--store", tmp_path / "s.duckdb")
    assert res.exit_code == 1
    assert "missing column(s) open, high, low, close, volume, time" in res.output
    assert "names accepted: open: open; " in res.output
    assert "time: timestamp, ts, time, datetime, date (--columns open=NAME maps another)" in (
        res.output
    )


def test_a_time_not_in_the_format_is_rejected_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(FILES["us_dates.csv"] + "IBM,2024-11-26 09:31,222.1,222.6,221.9,222.4,1500\n")
    args = ["--columns", "ts=date_time", "--format", "%m/%d/%Y %H:%M", "--tz", "exchange"]
    res = cli_result("import", "bars", path, *args, "--store", tmp_path / "s.duckdb", "--json")
    assert res.exit_code == 0, res.output
    (report,) = json.loads(res.stdout)
    assert report["rejections"] == [{
        "line": 4, "reason": "unparsable_time",
        "detail": "time '2024-11-26 09:31' does not match --format '%m/%d/%Y %H:%M'",
    }]  # fmt: skip
