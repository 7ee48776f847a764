"""A Ray cluster of several nodes on this machine (`ray.cluster_utils.Cluster`), for `python -m enpire.bench ray`.

A head node with no CPUs (the runner's connection only) and `nodes` station nodes, each declaring
`cpus_per_node` CPUs and as many `enpire_station` resources, so `executor.resources={enpire_station:1}` with
`executor.placement=spread` puts the fleet over them as over separate machines. On one machine the nodes
share its cores: what this measures is the cost of going through a multi-node cluster (object store per node,
cross-node calls), not the speed-up of more hardware.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

OBJECT_STORE_BYTES = 80 * 1024**2


@contextmanager
def loopback_cluster(nodes: int, cpus_per_node: int) -> Iterator[str]:
    """Start the cluster, yield its address, shut it down (and this process's connection to it)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "include_dashboard": False, "object_store_memory": OBJECT_STORE_BYTES,
        "_system_config": {"worker_niceness": 0}})
    try:
        for _ in range(nodes):
            cluster.add_node(num_cpus=cpus_per_node, resources={"enpire_station": cpus_per_node},
                             object_store_memory=OBJECT_STORE_BYTES)
        cluster.wait_for_nodes()
        yield str(cluster.address)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
