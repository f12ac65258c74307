"""Where an export lands: its own temporary file, no silent overwrite, a format it can write.

Issue 20 items 15 and 18: two exports to one path shared one ``.NAME.partial`` file
(the first reported success while the file held the second's rows); an existing file
was replaced without asking; ``--output x.json`` got CSV; ``""``, ``.`` and ``/`` were
not one-line errors.
"""

from __future__ import annotations

import csv
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from sessionflow.export import ExportChunk, parse_interval, write_bars
from sessionflow.export.output import OutputExists
from tests.helpers import cli_result, error_line

T0 = 1_732_890_600_000_000  # 2024-11-29 14:30 UTC, epoch microseconds


def chunk(symbol: str, n: int) -> ExportChunk:
    ones = np.ones(n)
    return ExportChunk(
        symbol=np.array([symbol] * n, dtype=object),
        ts_us=T0 + 60_000_000 * np.arange(n, dtype=np.int64),
        open=ones, high=ones, low=ones, close=ones,
        volume=np.ones(n, dtype=np.int64), minutes=np.ones(n, dtype=np.int64),
    )  # fmt: skip


def symbols_in(path: Path) -> list[str]:
    with path.open(newline="") as fh:
        return [row[0] for row in list(csv.reader(fh))[1:]]


def paused(first: ExportChunk, mid: threading.Event, go: threading.Event) -> Iterator[ExportChunk]:
    """An export that stops after its first chunk until told to go on."""
    yield first
    mid.set()
    assert go.wait(60)
    yield chunk("AAA", 2)


@pytest.mark.parametrize("replace", [False, True])
def test_two_exports_to_one_path_never_mix_and_report_what_the_file_holds(
    tmp_path: Path, replace: bool
) -> None:
    out = tmp_path / "bars.csv"
    mid, go = threading.Event(), threading.Event()
    got: dict[str, object] = {}

    def first() -> None:
        try:
            got["counts"] = write_bars(paused(chunk("AAA", 3), mid, go), out, "csv", replace)
        except OutputExists as exc:
            got["error"] = exc

    thread = threading.Thread(target=first)
    thread.start()
    assert mid.wait(60)
    second = write_bars(iter([chunk("BBB", 4)]), out, "csv", replace)
    assert second == {"BBB": 4} and symbols_in(out) == ["BBB"] * 4  # complete when reported
    go.set()
    thread.join(60)
    if replace:  # the later placement wins, whole: the file holds what its writer reported
        assert got["counts"] == {"AAA": 5} and symbols_in(out) == ["AAA"] * 5
    else:  # the first must not overwrite the file the second wrote meanwhile
        assert isinstance(got.get("error"), OutputExists)
        assert symbols_in(out) == ["BBB"] * 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.csv"]  # no temporary left


def export_args(store: Path, out: str, *extra: str) -> list[str]:
    return ["export", "bars", "--store", str(store), "--symbols", "AAPL", "--start",
            "2024-11-29", "--end", "2024-11-29", "--output", out, *extra]  # fmt: skip


def test_an_existing_output_is_replaced_only_with_force(
    demo_store_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bars.csv"
    out.write_text("precious\n")
    res = cli_result(*export_args(demo_store_path, str(out)))
    assert res.exit_code == 2
    assert (
        error_line(res, "error:")
        == f"error: --output {out}: the file exists; pass --force to replace it"
    )
    assert out.read_text() == "precious\n" and res.stdout == ""
    res = cli_result(*export_args(demo_store_path, str(out), "--force"))
    assert res.exit_code == 0, res.output
    assert symbols_in(out) == ["AAPL"] * 210  # the 2024-11-29 early close


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("", "--output '': give a file name"),
        (".", "--output '.' is a directory"),
        ("/", "--output '/' is a directory"),
        ("{tmp}/", "is a directory"),
        ("{tmp}/x.json", "cannot tell the format from the suffix '.json'"),
        ("{tmp}/bars", "cannot tell the format from the suffix '(none)'"),
        ("{tmp}/x.parquet --format csv", "--format csv with --output"),
    ],
)
def test_an_output_it_cannot_write_is_one_line_before_any_work(
    demo_store_path: Path, tmp_path: Path, given: str, message: str
) -> None:
    out, *extra = given.format(tmp=tmp_path).split(" ") if given else [""]
    res = cli_result(*export_args(demo_store_path, out, *extra))
    assert res.exit_code == 2, res.output
    assert message in error_line(res, "error:") and res.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("suffix", "magic"), [(".csv", b"symbol,"), (".parquet", b"PAR1")])
def test_the_format_follows_the_suffix(
    demo_store_path: Path, tmp_path: Path, suffix: str, magic: bytes
) -> None:
    out = tmp_path / f"bars{suffix}"
    res = cli_result(*export_args(demo_store_path, str(out), "--interval", "1h"))
    assert res.exit_code == 0, res.output
    assert out.read_bytes().startswith(magic)
    assert res.stdout == f"wrote 4 60m bars of 1 symbol over 1 session to {out}\n"


@pytest.mark.parametrize(("text", "minutes"), [("1h", 60), ("2H", 120), ("90m", 90), ("24h", 1440)])
def test_hours_are_an_interval(text: str, minutes: int) -> None:
    assert parse_interval(text) == minutes


@pytest.mark.parametrize("text", ["5", "25h", "0h", "1d"])
def test_an_interval_without_a_unit_or_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="use minutes as Nm or hours as Nh"):
        parse_interval(text)


def test_every_interval_the_docs_show_is_accepted() -> None:
    """docs/corporate-actions.md showed ``--interval 5``, which the CLI refuses."""
    root = Path(__file__).resolve().parents[1]
    shown = [
        (doc.name, m[1])
        for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]
        for m in re.finditer(r"--interval[ =]([^\s`\]|)]+)", doc.read_text(encoding="utf-8"))
    ]
    assert ("corporate-actions.md", "5m") in shown
    refused = []
    for name, text in shown:
        try:
            parse_interval(text)
        except ValueError:
            refused.append((name, text))
    assert refused == []
