"""Help, version and option meanings as a newcomer meets them; README lists every command."""

from __future__ import annotations

import csv
import json
import re
import shutil
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from sessionflow.cli.app import app
from sessionflow.cli.lazy import Placeholder

runner = CliRunner()
README = Path(__file__).parents[1] / "README.md"


def _command_paths() -> list[list[str]]:
    """Every runnable command, as the words a user types (``import bars``, ...)."""
    root = typer.main.get_command(app)
    out: list[list[str]] = []

    def walk(cmd: Any, path: list[str]) -> None:
        if isinstance(cmd, Placeholder):  # built only when named on the command line
            cmd = cmd.spec.load()
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            out.append(path)

    walk(root, [])
    return out


def test_version_flag_prints_the_package_version() -> None:
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.stdout.strip() == f"sessionflow {version('sessionflow')}"


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_top_level_help_lists_every_command_without_rst(flag: str) -> None:
    res = runner.invoke(app, [flag], terminal_width=120)
    assert res.exit_code == 0, res.output
    top = {path[0] for path in _command_paths()}
    listed = set(re.findall(r"^│ (\w[\w-]*) ", res.stdout, re.MULTILINE))
    assert top <= listed, top - listed
    assert "``" not in res.stdout


@pytest.mark.parametrize("path", _command_paths(), ids=" ".join)
def test_every_command_has_h_and_no_bool_type_after_flags(path: list[str]) -> None:
    res = runner.invoke(app, [*path, "-h"], terminal_width=120)
    assert res.exit_code == 0, res.output
    assert "<bool>" not in res.stdout
    assert "``" not in res.stdout
    assert "Usage:" in res.stdout


def test_readme_lists_every_command() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    for path in _command_paths():
        assert f"sessionflow {' '.join(path)}" in section, f"README: add `sessionflow {path}`"


def test_report_json_prints_and_output_writes(tmp_path: Path, demo_store_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    shutil.copy(demo_store_path, store)
    args = ["report", "--store", str(store), "--symbols", "AAPL,NVDA"]
    args += ["--start", "2024-11-25", "--end", "2024-11-26"]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)  # stdout is the JSON and nothing else
    assert [(r["session"], r["symbol"]) for r in rows][:2] == [
        ("2024-11-25", "AAPL"),
        ("2024-11-25", "NVDA"),
    ]
    assert list(tmp_path.glob("*.json")) == []  # --json never writes a file
    out = tmp_path / "rows.csv"
    res = runner.invoke(app, [*args, "--output", str(out)])
    assert res.exit_code == 0, res.output
    with out.open(newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert [int(r["bars"]) for r in table] == [r["bars"] for r in rows]
    odd = tmp_path / "rows.txt"
    res = runner.invoke(app, [*args, "--output", str(odd), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(odd.read_text()) == rows
    res = runner.invoke(app, [*args, "--output", str(tmp_path / "rows.txt")])
    assert res.exit_code == 2 and "--format" in res.output
