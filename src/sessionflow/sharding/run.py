"""Running shards on a Dask client and collecting results as they finish."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sessionflow.sharding.plan import Shard
from sessionflow.sharding.shard import run_shard
from sessionflow.system_manager import Settings

if TYPE_CHECKING:
    from distributed import Client


def store_name(store: str | Path) -> str:
    """What a worker opens: a URL as given, a file path made absolute (another cwd)."""
    text = str(store)
    return text if "://" in text else str(Path(text).resolve())


def run_sharded(
    client: Client,
    settings: Settings,
    shards: Sequence[Shard],
    store: str,
    on_result: Callable[[Any], None] | None = None,
    task: Callable[[Settings, Shard, str], Any] = run_shard,
) -> list[Any]:
    """Run ``task`` (a replay by default) on every shard; ``on_result`` sees each result
    as it finishes (progress).

    A failing shard re-raises its error here and the rest are cancelled; so does
    an interruption (KeyboardInterrupt) of the waiting caller.
    """
    from distributed import as_completed

    futures = [client.submit(task, settings, shard, store, pure=False) for shard in shards]
    results: list[Any] = []
    try:
        for fut in as_completed(futures):
            result = fut.result()
            results.append(result)
            if on_result is not None:
                on_result(result)
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
    return results
