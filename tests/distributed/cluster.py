"""A real two-node Ray cluster on loopback (`ray.cluster_utils.Cluster`) for the distributed tests.

A head node with no CPUs (it hosts only the runner's connection, so no station lands there) and two station
nodes, `a` and `b`. Each station node declares `enpire_station: 2` (any station may run there) and a resource
of its own, `rack_a: 2` or `rack_b: 2` (placement by resource can tell them apart), and gives its worker
processes a private temporary folder (`TMPDIR`): that is where stations write, and nothing the runner reads
comes from there except through Ray's object store. Each station node sees the environment variable
`ENPIRE_TEST_NODE` (its name) so test stations know where they run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import ray
from ray.cluster_utils import Cluster

NODE_CPUS = 2
OBJECT_STORE_BYTES = 80 * 1024**2
# node loss noticed in about 2 s instead of Ray's default 30 s, so a test sees the recovery quickly
FAST_FAILURE_DETECTION = {"health_check_period_ms": 500, "health_check_failure_threshold": 4,
                          "health_check_initial_delay_ms": 0, "worker_niceness": 0}


class TwoNodeCluster:
    def __init__(self, work: Path, extra_env: dict[str, str] | None = None) -> None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        self.work = work
        self.extra_env = dict(extra_env or {})
        self.cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": 0, "include_dashboard": False, "object_store_memory": OBJECT_STORE_BYTES,
            "_system_config": FAST_FAILURE_DETECTION})
        self.nodes: dict[str, Any] = {}
        for name in ("a", "b"):
            self.add(name)

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def private_dir(self, name: str) -> Path:
        return self.work / f"node-{name}-private"

    def add(self, name: str) -> None:
        """Start station node `name` (again, after a kill: a fresh node with the same resources)."""
        if name in self.nodes:
            return
        private = self.private_dir(name)
        private.mkdir(parents=True, exist_ok=True)
        self.nodes[name] = self.cluster.add_node(
            num_cpus=NODE_CPUS, resources={"enpire_station": NODE_CPUS, f"rack_{name}": NODE_CPUS},
            object_store_memory=OBJECT_STORE_BYTES,
            env_vars={"TMPDIR": str(private), "ENPIRE_TEST_NODE": name, **self.extra_env})
        self.cluster.wait_for_nodes()

    def kill(self, name: str) -> float:
        """Kill node `name` at once (raylet and every worker on it, as a machine that loses power); the time."""
        node = self.nodes.pop(name)
        at = time.time()
        self.cluster.remove_node(node, allow_graceful=False)
        return at

    def node_id(self, name: str) -> str:
        return str(self.nodes[name].node_id)

    def shutdown(self) -> None:
        if ray.is_initialized():
            ray.shutdown()
        self.cluster.shutdown()
