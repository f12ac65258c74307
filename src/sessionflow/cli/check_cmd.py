"""``sessionflow check``: on a throwaway store, show with figures that nothing is lost.

Runs the bad-input matrix, the fault round (SIGKILL mid-import and mid-backtest,
a failing fill source, a raising consumer), stop() from every state, a live
session on the local Alpaca server, the reference rounds (corporate actions, export,
PostgreSQL, store copy, sharding, dashboard, import conflict policy against values
worked out another way), N determinism repetitions and M stress iterations (see
:mod:`sessionflow.check`),
then prints what was tried and what happened. Exit code 1 if anything failed.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sessionflow.check.faults import STOP_BUDGET_S
from sessionflow.check.runner import CheckReport, run_check


def _yes(flag: bool | None) -> str:
    return "-" if flag is None else "yes" if flag else "[red]NO[/]"


def render(console: Console, report: CheckReport) -> None:
    """The four tables and the figures, in the order a reader checks them."""
    bad = Table(title="bad input", title_justify="left")
    for name in ("class", "path", "outcome", "error message / rejection reasons", "store ok", "ok"):
        bad.add_column(name, overflow="fold")
    for b in report.bad_input:
        bad.add_row(b.case, b.where, b.outcome, b.detail, _yes(b.store_intact), _yes(b.ok))
    console.print(bad)

    faults = Table(title="faults", title_justify="left")
    for name in ("fault", "injected", "survived", "what happened"):
        faults.add_column(name, overflow="fold", justify="right" if name == "injected" else "left")
    for f in report.faults:
        faults.add_row(f.fault, str(f.injected), _yes(f.survived), f.detail)
    console.print(faults)

    live = Table(title="live (local Alpaca-protocol server)", title_justify="left")
    for name in ("round", "passed", "what happened"):
        live.add_column(name, overflow="fold")
    for f in report.live:
        live.add_row(f.fault, _yes(f.survived), f.detail)
    console.print(live)

    ref = Table(title="values against a reference", title_justify="left")
    for name in ("round", "result", "seconds", "compared", "what differed"):
        ref.add_column(name, overflow="fold", justify="right" if name == "seconds" else "left")
    for r in report.reference:
        shown = {"pass": "pass", "skipped": "[yellow]skipped[/]"}.get(r.status, "[red]FAIL[/]")
        differed = "; ".join(r.differences) or "-"
        ref.add_row(r.round, shown, f"{r.seconds:.1f}", r.compared, differed)
    console.print(ref)

    stops = Table(title=f"stop() (budget {STOP_BUDGET_S:g} s)", title_justify="left")
    for name in ("state", "seconds", "both workers joined", "error"):
        stops.add_column(name, justify="right" if name == "seconds" else "left")
    for s in report.stops:
        stops.add_row(s.state, f"{s.seconds:.4f}", _yes(s.joined), s.error or "-")
    console.print(stops)

    d, st, fig = report.determinism, report.stress, report.figures()
    summary = Table(title="sessionflow check: figures", title_justify="left")
    summary.add_column("figure")
    summary.add_column("value", overflow="fold")
    rows = [
        ("bad-input classes tried", f"{fig['bad_input_classes']} "
         f"({fig['bad_input_handled']} with a clear error or counted, reasoned rejections)"),
        ("faults injected", f"{fig['faults_injected']} in {fig['fault_scenarios']} scenarios "
         f"({fig['fault_scenarios_survived']} survived)"),
        ("stop() max seconds", f"{report.stop_max_s:.4f} over {len(report.stops)} states"),
        ("determinism runs", f"{d.runs}, identical: {_yes(d.identical)} "
         f"({d.events_per_run} events each; events {d.event_hashes[0] if d.runs else '-'}, "
         f"reports {d.report_hashes[0] if d.runs else '-'})"),
        ("live rounds", f"{fig['live_rounds']} ({fig['live_rounds_passed']} passed)"),
        ("reference rounds", f"{fig['reference_rounds']} ({fig['reference_rounds_passed']} "
         f"passed, {fig['reference_rounds_skipped']} skipped)" if report.reference_ran
         else "not run (--no-reference)"),
        ("stress iterations", f"{st.iterations} ({st.sessions} sessions, {st.batches} batches "
         f"and {st.snapshots} concurrent snapshots checked; {st.replayed} bars replayed, "
         f"{st.filled} filled, {st.extended} extended-hours bars, {st.quotes} quotes, "
         f"{st.ticks} ticks, {st.revised} revised derived bars, {st.fill_errors} fill "
         f"errors); violations: {st.violation_count}"),
        ("engine log records", f"{report.log_records} (warnings the injected faults cause)"),
        ("time", f"{report.seconds:.1f} s"),
        ("result", "[green]PASS[/]" if report.ok else "[red]FAIL[/]"),
    ]  # fmt: skip
    for name, value in rows:
        summary.add_row(name, value)
    console.print(summary)
    for v in st.violations:
        console.print(f"[red]stress:[/] {v}")
    for line in report.failures():
        console.print(f"[red]FAIL[/] {line}")


def check(
    runs: Annotated[int, typer.Option(min=2, help="determinism repetitions")] = 5,
    stress: Annotated[int, typer.Option(min=1, help="stress iterations with jitter")] = 3,
    kill: Annotated[
        bool, typer.Option("--kill/--no-kill", help="SIGKILL a child mid-import/backtest")
    ] = True,
    reference: Annotated[
        bool,
        typer.Option(
            "--reference/--no-reference",
            help="compare actions, export, PostgreSQL, store copy, sharding, dashboard and "
            "import conflicts with a reference",
        ),
    ] = True,
    sharding: Annotated[
        bool,
        typer.Option(
            "--sharding/--no-sharding",
            help="also run the sharding reference round (a 2-process Dask cluster, 20-30 s)",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the result as JSON to stdout")
    ] = False,
) -> None:
    """Bad input, faults, stop(), determinism and stress on a temporary store; the figures."""
    err = Console(stderr=True)

    def progress(step: str) -> None:
        if not as_json:
            err.print(f"[dim]check: {step}...[/]")

    report = run_check(
        runs=runs,
        stress=stress,
        kill=kill,
        progress=progress,
        reference=reference,
        sharding=sharding,
    )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        render(Console(width=max(Console().width, 120)), report)
    if not report.ok:
        raise typer.Exit(1)
