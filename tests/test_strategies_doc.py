"""docs/strategies.md runs as written: every python block, the crossover file, the CLI line."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "strategies.md"
FILE_BLOCK = re.compile(r'^"""(\w+\.py): ')  # a block that is a file opens with its name


def _blocks(kind: str = "python") -> list[str]:
    return re.findall(rf"^```{kind}\n(.*?)^```", DOC.read_text(), re.S | re.M)


def _workdir(tmp_path: Path, demo_store_path: Path) -> dict[str, str]:
    """A user's directory: the demo store in data/, the page's files saved by name."""
    (tmp_path / "data").mkdir()
    shutil.copyfile(demo_store_path, tmp_path / "data" / "sessionflow.duckdb")
    for block in _blocks():
        named = FILE_BLOCK.match(block)
        if named:
            (tmp_path / named.group(1)).write_text(block)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONFLOW_")}
    return {**env, "PYTHONPATH": str(ROOT / "src")}


def test_the_crossover_on_the_page_is_the_tests_crossover() -> None:
    files = [b for b in _blocks() if FILE_BLOCK.match(b)]
    assert files == [(ROOT / "tests" / "strategies.py").read_text()]


@pytest.mark.parametrize("index", range(len(_blocks())))
def test_strategies_doc_example_runs(index: int, tmp_path: Path, demo_store_path: Path) -> None:
    env = _workdir(tmp_path, demo_store_path)
    script = tmp_path / f"example_{index}.py"
    script.write_text(_blocks()[index])
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, f"block {index}:\n{_blocks()[index]}\n{done.stderr}"


def test_the_command_line_on_the_page_runs(tmp_path: Path, demo_store_path: Path) -> None:
    env = _workdir(tmp_path, demo_store_path)
    (command,) = [b for b in _blocks("sh") if b.startswith("sessionflow backtest --strategy")]
    argv = shlex.split(command.replace("\\\n", " "))
    done = subprocess.run(
        [sys.executable, "-m", "sessionflow.cli.app", *argv[1:]], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "total return" in done.stdout and "Sharpe" in done.stdout
    for name in ("orders", "fills", "trades", "positions", "equity"):
        assert (tmp_path / "results" / f"{name}.csv").stat().st_size > 0
