"""Merging shard results into what one process would have produced.

Deterministic whatever order shards finish in: sessions by date, rows by symbol
(SessionData's own order), actions by (ex_date, symbol) (the store's order), counters
summed. A session is kept only when every symbol's row arrived, so after an
interruption the merge holds the completed sessions and nothing partial.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from sessionflow.session_data import SessionReport, SymbolReport
from sessionflow.sharding.shard import Filled, ShardResult


@dataclass(frozen=True)
class Merged:
    reports: list[SessionReport]
    filled: Filled
    counters: dict[str, int]
    bars: int
    shards: int  # results merged


def merge_results(results: Iterable[ShardResult], symbols: Sequence[str]) -> Merged:
    done = sorted(results, key=lambda r: r.shard.index)
    rows: dict[date, list[SymbolReport]] = {}
    first: dict[date, SessionReport] = {}
    actions: dict[date, list[dict[str, object]]] = {}
    filled: Filled = {}
    counters: Counter[str] = Counter()
    for result in done:
        for rep in result.reports:
            first.setdefault(rep.session, rep)
            rows.setdefault(rep.session, []).extend(rep.rows)
            actions.setdefault(rep.session, []).extend(rep.actions)
        filled.update(result.filled)
        counters.update(result.counters)
    wanted = len(set(symbols))
    reports = [
        SessionReport(
            session=day,
            early_close=first[day].early_close,
            rows=sorted(rows[day], key=lambda r: r.symbol),
            actions=sorted(actions[day], key=lambda a: (str(a["ex_date"]), str(a["symbol"]))),
        )
        for day in sorted(rows)
        if len(rows[day]) == wanted
    ]
    kept = {rep.session for rep in reports}
    filled = {k: v for k, v in sorted(filled.items()) if k[0] in kept}
    return Merged(reports, filled, dict(counters), sum(r.bars for r in done), len(done))
