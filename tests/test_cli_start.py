"""The command line starts without the engine's libraries; each command builds when named.

Issue 23, item 3: ``--version``, ``-h`` and a command's argument errors used to import
pandas, exchange_calendars, DuckDB and Dask (1.6-1.8 s before anything happened). The
time itself is measured by benchmarks/cli_start.py; here, what is imported.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from sessionflow.cli import rich_help
from sessionflow.cli.app import Commands, app
from sessionflow.cli.lazy import Placeholder

HEAVY = ("numpy", "pandas", "pyarrow", "duckdb", "exchange_calendars", "dask", "uvicorn")
# what typer loads beyond typer and rich for a help page or an option it processes, and
# sessionflow cuts from help and argument errors: pydantic (cli/coercion.py), markdown-it
# and pygments (cli/rich_help.py), importlib.metadata (only for --version)
TYPER_EXTRAS = ("pydantic", "markdown_it", "pygments", "importlib.metadata")

PROBE = """
import json, sys
watched = set(json.loads(sys.argv[2]))
sys.argv = ["sessionflow", *json.loads(sys.argv[1])]
from sessionflow.cli.app import main
try:
    main()
except SystemExit:
    pass
loaded = sorted({m for m in sys.modules if m in watched or m.split(".")[0] in watched})
print(json.dumps(loaded), file=sys.stderr)
"""


def probe(args: list[str], watched: tuple[str, ...]) -> list[str]:
    """The watched modules (or their packages) that ``sessionflow ARGS`` imported."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(watched)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    *_, last = done.stderr.splitlines()
    loaded: list[str] = json.loads(last)
    return loaded


@pytest.mark.parametrize(
    ("args", "needs"),
    [
        pytest.param(args, needs, id=" ".join(args))
        for args, needs in [
            (["--version"], ("importlib.metadata",)),
            (["-h"], ()),
            (["import", "bars", "--help"], ()),
            (["import", "bars"], ()),  # missing argument
            (["backtest", "--no-such-option"], ()),
            (["report", "--workers", "0"], TYPER_EXTRAS),  # a value to check: typer's pydantic
        ]
    ],
)
def test_start_imports_none_of_the_engines_libraries(
    args: list[str], needs: tuple[str, ...]
) -> None:
    loaded = probe(args, HEAVY + TYPER_EXTRAS)
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    assert heavy == [], f"sessionflow {' '.join(args)} imported {heavy}"
    extras = [m for m in loaded if m in TYPER_EXTRAS and m not in needs]
    assert extras == [], f"sessionflow {' '.join(args)} imported {extras}"


def test_an_import_command_leaves_the_system_manager_unloaded(tmp_path: Path) -> None:
    """An import needs Settings, not the manager and the data manager's feeds (0.3 s)."""
    manager = ("sessionflow.system_manager.manager", "sessionflow.data_manager")
    assert probe(["import", "lean", str(tmp_path / "missing")], manager) == []


HELP_PROBE = """
import json, sys
sys.argv = ["sessionflow", "import", "bars", "-h"]
if PLAIN:
    import typer.rich_utils  # typer's own import, markdown and traceback modules real
from sessionflow.cli.app import main
try:
    main()
except SystemExit:
    pass
import typer.rich_utils
from sessionflow.cli.rich_help import Finder
after = {
    "stand_in_left": "rich.markdown" in sys.modules or "rich.traceback" in sys.modules,
    "finder_left": any(isinstance(f, Finder) for f in sys.meta_path),
    "markdown": type(typer.rich_utils.Markdown("*x*")).__module__,
}
print(json.dumps(after), file=sys.stderr)
"""


def test_help_without_the_markdown_modules_is_typers_own_help() -> None:
    """cli/rich_help.py: the page is the one typer renders with rich.markdown and
    rich.traceback imported for real; afterwards neither stand-in is left in sys.modules
    (another import gets the real module) and typer's Markdown builds the real one."""
    out = {}
    for mode in ("plain", "main"):
        done = subprocess.run(
            [sys.executable, "-c", HELP_PROBE.replace("PLAIN", str(mode == "plain"))],
            capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "100"},
        )  # fmt: skip
        *_, last = done.stderr.splitlines()
        out[mode] = (done.stdout, json.loads(last))
    assert "Import 1m bars" in out["main"][0]
    assert out["main"][0] == out["plain"][0]
    assert out["main"][1] == {
        "stand_in_left": False,
        "finder_left": False,
        "markdown": "rich.markdown",
    }


def test_the_stand_ins_build_the_real_rich_objects() -> None:
    from rich.markdown import Markdown
    from rich.traceback import Traceback

    assert isinstance(rich_help.Markdown("*x*"), Markdown)
    try:
        raise ValueError("x")
    except ValueError as exc:
        built = rich_help.Traceback.from_exception(type(exc), exc, exc.__traceback__)
    assert isinstance(built, Traceback)


def test_a_module_wanting_more_than_the_stand_ins_gets_the_real_modules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typer whose rich_utils imports another name from rich.markdown still loads."""
    monkeypatch.delitem(sys.modules, "rich.markdown", raising=False)
    path = tmp_path / "wants_more.py"
    path.write_text("from rich.markdown import Markdown, Heading\n")
    spec = importlib.util.spec_from_file_location("wants_more", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    rich_help.Loader(spec.loader).exec_module(module)
    assert module.Heading.__module__ == "rich.markdown"
    assert module.Markdown is not rich_help.Markdown
    assert getattr(sys.modules["rich.markdown"], "__file__", None)  # the real one, kept


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
