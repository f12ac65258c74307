"""How long the command line takes to start, next to importing typer and rich alone.

Issue 23, item 3: ``sessionflow --version`` and ``sessionflow import bars --help`` within
2x of ``python -c 'import typer, rich.console'`` (the floor: the libraries the command
line is built on). Each round runs every command once, in turn, so a change in the
machine's load falls on all of them alike; a command's ratio is the median over the
rounds of (its time / the floor's time in the same round).

    python benchmarks/cli_start.py [--rounds 9] [--json] [--before OTHER/src]

``--before`` adds the sessionflow rows of another checkout (its ``src`` put first on
PYTHONPATH), marked ``(before)``, in the same rounds: a change's before and after
measured alternately under one load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

FLOOR = "python -c 'import typer, rich.console'"
# what the installed ``sessionflow`` script runs (works on checkouts without __main__.py,
# so PYTHONPATH=<other checkout>/src times that one the same way)
SF = ["-c", "import sys; sys.argv[0] = 'sessionflow'; from sessionflow.cli.app import main; main()"]
COMMANDS: dict[str, list[str]] = {
    FLOOR: ["-c", "import typer, rich.console"],
    # what typer itself loads for a help page (rich help, markdown) and to coerce any
    # parameter value (pydantic), before sessionflow's own code does anything
    "python -c 'import typer.rich_utils, typer._adapters'": [
        "-c",
        "import typer, rich.console, typer.rich_utils, typer._adapters",
    ],
    "sessionflow --version": [*SF, "--version"],
    "sessionflow --help": [*SF, "--help"],
    "sessionflow import bars --help": [*SF, "import", "bars", "--help"],
    "sessionflow backtest --x (argument error)": [*SF, "backtest", "--x"],
}


Command = tuple[list[str], dict[str, str] | None]  # python's arguments, its environment


def commands(before: str | None) -> dict[str, Command]:
    """Each row's command; with ``before``, the sessionflow rows again on that ``src``."""
    out: dict[str, Command] = {name: (args, None) for name, args in COMMANDS.items()}
    if before is not None:
        env = {**os.environ, "PYTHONPATH": before}
        for name, args in COMMANDS.items():
            if name.startswith("sessionflow"):
                out[f"{name} (before)"] = (args, env)
    return out


def wall(command: Command) -> float:
    """Seconds from spawn to exit of one ``python ARGS`` (output discarded)."""
    args, env = command
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], capture_output=True, check=False, env=env)
    return time.perf_counter() - start


def measure(rounds: int, before: str | None) -> dict[str, list[float]]:
    todo = commands(before)
    for command in todo.values():  # warm the .pyc files and the page cache once
        wall(command)
    times: dict[str, list[float]] = {name: [] for name in todo}
    names = list(todo)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            times[name].append(wall(todo[name]))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--before", help="another checkout's src, timed in the same rounds")
    opts = parser.parse_args()
    load_before = os.getloadavg()[0]
    times = measure(opts.rounds, opts.before)
    load_after = os.getloadavg()[0]
    floor = times[FLOOR]
    rows = []
    for name, ts in times.items():
        ratios = [t / f for t, f in zip(ts, floor, strict=True)]
        rows.append(
            {
                "command": name,
                "median_s": statistics.median(ts),
                "min_s": min(ts),
                "ratio_median": statistics.median(ratios),
                "ratio_of_mins": min(ts) / min(floor),
            }
        )
    if opts.json:
        out = {"rows": rows, "rounds": opts.rounds, "load": [load_before, load_after]}
        print(json.dumps(out, indent=2))
        return
    print(f"{opts.rounds} rounds, load average {load_before:.1f} -> {load_after:.1f}")
    print("| command | median s | min s | x floor (median of rounds) | x floor (min/min) |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| `{row['command']}` | {row['median_s']:.3f} | {row['min_s']:.3f} "
            f"| {row['ratio_median']:.2f}x | {row['ratio_of_mins']:.2f}x |"
        )


if __name__ == "__main__":
    main()
