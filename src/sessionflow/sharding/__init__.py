"""Backtests and reports sharded over a Dask cluster: plan, run each shard, merge.

See docs/scale.md for what shards (per-symbol analysis, audits, reports) and what
cannot (strategies that need every symbol at one instant).
"""

from sessionflow.sharding.cluster import ClusterError, dask_client
from sessionflow.sharding.merge import Merged, merge_results
from sessionflow.sharding.plan import Shard, plan_shards
from sessionflow.sharding.run import run_sharded, store_name
from sessionflow.sharding.shard import ShardError, ShardResult, build_shard, run_shard

__all__ = [
    "ClusterError",
    "Merged",
    "Shard",
    "ShardError",
    "ShardResult",
    "build_shard",
    "dask_client",
    "merge_results",
    "plan_shards",
    "run_shard",
    "run_sharded",
    "store_name",
]
