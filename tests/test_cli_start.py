"""The command line starts without the engine's libraries; each command builds when named.

Issue 23, item 3: ``--version``, ``-h`` and a command's argument errors used to import
pandas, exchange_calendars, DuckDB and Dask (1.6-1.8 s before anything happened). The
time itself is measured by benchmarks/cli_start.py; here, what is imported.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
import typer

from sessionflow.cli.app import Commands, app
from sessionflow.cli.lazy import Placeholder

HEAVY = ("numpy", "pandas", "pyarrow", "duckdb", "exchange_calendars", "dask", "uvicorn")

PROBE = """
import json, sys
heavy = set(json.loads(sys.argv[2]))
sys.argv = ["sessionflow", *json.loads(sys.argv[1])]
from sessionflow.cli.app import main
try:
    main()
except SystemExit:
    pass
loaded = sorted({m.split(".")[0] for m in sys.modules} & heavy)
print(json.dumps(loaded), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["-h"],
        ["import", "bars", "--help"],
        ["import", "bars"],  # missing argument
        ["backtest", "--no-such-option"],
        ["report", "--workers", "0"],  # a value out of range
    ],
    ids=" ".join,
)
def test_start_imports_none_of_the_engines_libraries(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    *_, last = done.stderr.splitlines()
    assert json.loads(last) == [], f"sessionflow {' '.join(args)} imported {last}"


def test_every_listed_help_line_is_its_commands_own() -> None:
    """A placeholder's line in ``sessionflow -h`` is the first paragraph of the help the
    command shows when built; a changed docstring without its line fails here."""
    specs = Commands(name="sessionflow").specs()
    names = {"demo", "backtest", "report", "import", "store", "export", "live", "check"}
    assert names <= {s.name for s in specs}
    for spec in specs:
        built = spec.load()
        assert not isinstance(built, Placeholder)
        first = inspect.cleandoc(built.help or "").split("\n\n")[0]
        assert first == spec.help, spec.name


def test_a_named_command_is_built_and_others_stay_placeholders() -> None:
    group = typer.main.get_command(app)
    assert isinstance(group, Commands)
    assert all(isinstance(c, Placeholder) for c in group.commands.values())
    ctx = group.make_context("sessionflow", ["import", "bars", "-h"], resilient_parsing=True)
    name, command, rest = group.resolve_command(ctx, ["import", "bars", "-h"])
    assert name == "import" and rest == ["bars", "-h"]
    assert not isinstance(command, Placeholder)
    assert sorted(command.commands) == ["actions", "bars", "factors", "lean"]
    assert isinstance(group.commands["live"], Placeholder)
