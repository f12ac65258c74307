"""Every anticipated mistake is one line ``error: ...`` naming what was wrong, and exit 2."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import sessionflow
from sessionflow.cli.app import app

runner = CliRunner()
DAY = ["--start", "2024-11-25", "--end", "2024-11-25"]


def one_error_line(args: list[str], env: dict[str, str] | None = None) -> str:
    res = runner.invoke(app, args, env=env)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output and "pydantic.dev" not in res.output
    return lines[0]


@pytest.fixture
def store(tmp_path: Path, demo_store_path: Path) -> Path:
    path = tmp_path / "s.duckdb"
    shutil.copy(demo_store_path, path)
    return path


def test_unknown_calendar(tmp_path: Path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("timestamp,open,high,low,close,volume\n2024-11-29T09:30:00-05:00,1,1,1,1,1\n")
    line = one_error_line(
        ["import", "bars", str(csv), "--symbol", "X", "--store", str(tmp_path / "s.duckdb"),
         "--calendar", "XXXX"]
    )  # fmt: skip
    assert "--calendar" in line and "XXXX" in line
    assert not (tmp_path / "s.duckdb").exists()


def test_negative_speed(tmp_path: Path) -> None:
    line = one_error_line(["demo", "--speed", "-5", "--store", str(tmp_path / "d.duckdb")])
    assert "--speed" in line and "greater than or equal to 0" in line


def test_report_output_into_a_missing_directory(store: Path) -> None:
    line = one_error_line(
        ["report", "--store", str(store), "--symbols", "AAPL", *DAY,
         "--output", "/no/such/dir/x.csv"]
    )  # fmt: skip
    assert "--output" in line and "/no/such/dir" in line and "does not exist" in line


def test_corrupt_store_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"this is not a database" * 100)
    line = one_error_line(["backtest", "--store", str(bad), "--symbols", "AAPL", *DAY])
    assert str(bad) in line and "damaged" in line
    assert bad.read_bytes() == b"this is not a database" * 100


def test_duplicate_symbols(store: Path) -> None:
    line = one_error_line(["backtest", "--store", str(store), "--symbols", "AAPL,AAPL", *DAY])
    assert "--symbols" in line and "duplicate symbol 'AAPL'" in line


@pytest.mark.parametrize(
    ("text", "key", "suggestion"),
    [
        ('symbolz = ["AAPL"]\n', "symbolz", "symbols"),
        ('[live]\nfed = "iex"\n', "live.fed", "live.feed"),
        ("speeed = 1\n", "speeed", "speed"),
    ],
)
def test_config_file_typo_names_file_key_and_closest_key(
    tmp_path: Path, store: Path, text: str, key: str, suggestion: str
) -> None:
    cfg = tmp_path / "my.toml"
    cfg.write_text(text)
    line = one_error_line(["backtest", "--store", str(store), "--config", str(cfg), *DAY])
    assert str(cfg) in line and f"unknown key '{key}'" in line
    assert f"did you mean '{suggestion}'" in line
    assert "_FromFile" not in line


def test_config_file_bad_value_names_file_and_key(tmp_path: Path, store: Path) -> None:
    cfg = tmp_path / "my.toml"
    cfg.write_text('symbols = ["AAPL"]\nspeed = "fast"\n')
    line = one_error_line(["backtest", "--store", str(store), "--config", str(cfg), *DAY])
    assert str(cfg) in line and "speed" in line and "'fast'" in line


def test_toml_syntax_error_names_file_and_line(tmp_path: Path, store: Path) -> None:
    cfg = tmp_path / "broken.toml"
    cfg.write_text('speed = 0\nsymbols = ["AAPL"\ntrailing_days = 2\n')
    line = one_error_line(["backtest", "--store", str(store), "--config", str(cfg), *DAY])
    assert str(cfg) in line and "line 3" in line


def test_env_symbols_accept_the_comma_form_and_json(store: Path) -> None:
    for value in ("AAPL,msft", '["AAPL", "msft"]'):
        res = runner.invoke(
            app, ["backtest", "--store", str(store), *DAY, "--json"],
            env={"SESSIONFLOW_SYMBOLS": value},
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        assert '"symbol": "MSFT"' in res.stdout and '"symbol": "AAPL"' in res.stdout


def test_bad_env_value_names_the_variable(store: Path) -> None:
    line = one_error_line(
        ["backtest", "--store", str(store), "--symbols", "AAPL", *DAY],
        env={"SESSIONFLOW_SPEED": "fast"},
    )
    assert "SESSIONFLOW_SPEED" in line and "'fast'" in line


def test_unknown_option_is_one_line(store: Path) -> None:
    line = one_error_line(["live", "--symbols", "AAPL", "--speed", "3"])
    assert "--speed" in line and "live -h" in line


def test_live_without_network_is_one_line_per_reconnect_attempt(tmp_path: Path) -> None:
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "live.toml"
    cfg.write_text(
        "[live]\nconnect_timeout_seconds = 3\nreconnect_min_seconds = 0.2\n"
        "reconnect_max_seconds = 0.4\n"
    )
    env = {**os.environ, "APCA_API_KEY_ID": "key-id-0123", "APCA_API_SECRET_KEY": "secret-4567"}
    env["PYTHONPATH"] = str(Path(sessionflow.__file__).parents[1])  # the code under test
    proc = subprocess.run(
        [sys.executable, "-c", "from sessionflow.cli.app import main; main()",
         "live", "--symbols", "AAPL",
         "--config", str(cfg), "--store", str(tmp_path / "live.duckdb"),
         "--feed-url", f"ws://127.0.0.1:{port}/v2/iex", "--rest-url", f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr
    started, *attempts, last = lines  # the progress line live starts with, then the attempts
    assert started.startswith("live: 1 symbol(s), feed iex") and "waiting for bars" in started
    assert len(attempts) >= 2, proc.stderr
    for line in attempts:
        assert line.startswith("warning: ") and f"127.0.0.1:{port}" in line, line
        assert "refused" in line.lower() and "attempt" in line, line
    assert last.startswith("error: ") and "not subscribed" in last
    assert "secret-4567" not in proc.stderr


def test_unparsable_nested_env_value_names_the_variable(store: Path) -> None:
    line = one_error_line(
        ["backtest", "--store", str(store), "--symbols", "AAPL", *DAY],
        env={"SESSIONFLOW_LIVE": "{bad"},
    )
    assert "SESSIONFLOW_LIVE:" in line and "SESSIONFLOW_LIVE__<KEY>" in line


@pytest.mark.parametrize(
    "args",
    [
        ["store", "info"],
        ["export", "bars", *DAY, "--output", "x.csv"],
        ["feed-server", "--symbols", "AAPL", "--session", "2024-11-25"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_unknown_calendar_on_every_command(store: Path, args: list[str]) -> None:
    line = one_error_line([*args, "--store", str(store), "--calendar", "XXXX"])
    assert "--calendar 'XXXX'" in line


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--sessions", "0"], "--sessions"),
        (["--clock-start", "noon"], "--clock-start 'noon'"),
        (["--clock-start", "2024-11-29T12:00"], "needs a UTC offset"),
    ],
)
def test_bad_live_options_are_one_line(tmp_path: Path, args: list[str], named: str) -> None:
    env = {"APCA_API_KEY_ID": "key-id-0123", "APCA_API_SECRET_KEY": "secret-4567"}
    base = ["live", "--symbols", "AAPL", "--store", str(tmp_path / "l.duckdb")]
    line = one_error_line([*base, *args], env=env)
    assert named in line


@pytest.mark.parametrize("days", [("9999-12-30", "9999-12-31"), ("1800-01-02", "2024-11-25")])
@pytest.mark.parametrize("command", [["backtest", "--symbols", "SPY"], ["export", "bars"]])
def test_dates_outside_the_calendar_are_one_line(
    store: Path, tmp_path: Path, command: list[str], days: tuple[str, str]
) -> None:
    out = ["-o", str(tmp_path / "x.csv")] if command[0] == "export" else []
    line = one_error_line(
        [*command, "--store", str(store), "--start", days[0], "--end", days[1], *out]
    )
    want = f"sessions {days[0]} .. {days[1]} reach outside the XNYS calendar (1990-01-02 .. "
    assert want in line


@pytest.mark.parametrize(
    "args",
    [["store", "info"], ["export", "bars", *DAY, "-o", "x.csv"], ["import", "bars", "x.csv"],
     ["import", "actions", "x.csv"]],
)  # fmt: skip
def test_a_bad_store_setting_from_the_environment_is_one_line_everywhere(
    args: list[str],
) -> None:
    """Commands that fall back on the ``store_path`` setting read it as the others do."""
    url = "postgresql://me:hunter2@127.0.0.1:5432/market"
    line = one_error_line(args, env={"SESSIONFLOW_STORE_PATH": url})
    assert line.startswith("error: SESSIONFLOW_STORE_PATH: store_path: a password"), line
    assert ":hu" not in line  # not even pydantic's shortened echo of the value


def test_a_mistyped_top_level_option_is_one_line() -> None:
    """Parsed by the top group itself, not inside a parent's invoke (cli/errors.py)."""
    line = one_error_line(["--x"])
    assert "No such option: --x" in line and "-h'" in line


def test_a_group_named_without_a_command_prints_its_help_and_no_error_line() -> None:
    res = runner.invoke(app, ["import"])
    assert res.exit_code == 2, res.output
    assert "Import data into the store." in res.output
    assert "error" not in res.output, res.output
