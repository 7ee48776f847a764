"""Benchmarks: `python -m enpire.bench [--quick] [--json PATH] [NAME ...]`.

A bench is a function `(quick: bool) -> dict[str, float]` registered with @bench("name").
Each module under enpire/bench/ registers its own; MODULES lists them.
"""

from __future__ import annotations

from collections.abc import Callable

BenchFn = Callable[[bool], dict[str, float]]
REGISTRY: dict[str, BenchFn] = {}
DESCRIPTIONS: dict[str, str] = {}

# Modules that register benches (imported lazily by the CLI); a missing one is reported, not fatal.
MODULES = (
    "enpire.bench.harness",  # harness, render
    "enpire.bench.fleet",  # fleet, drawer_to_done
    "enpire.bench.search",  # search_vs_baselines
    "enpire.bench.ray_overhead",  # ray
    "enpire.bench.determinism",  # determinism
    "enpire.bench.long_session",  # long_session
    "enpire.bench.latency",  # latency
    "enpire.bench.startup",  # startup
    "enpire.bench.keep_rule",  # keep_rule
    "enpire.bench.remote",  # remote
    "enpire.bench.recording",  # recording (trials as data)
    "enpire.bench.attribution",  # attribution (failure attribution in the search agent)
    "enpire.bench.learning",  # learning (scripted vs bc vs rl on one task)
    "enpire.bench.detector",  # detector (a learned success verifier vs the state verifier)
    "enpire.bench.memory",  # memory (a drawer notebook starting a jaco-drawer session)
    "enpire.bench.twin",  # twin (a nominal digital twin screening candidates for a perturbed fleet)
)


def bench(name: str, description: str = "") -> Callable[[BenchFn], BenchFn]:
    def register(fn: BenchFn) -> BenchFn:
        REGISTRY[name] = fn
        DESCRIPTIONS[name] = description or (fn.__doc__ or "").strip().splitlines()[0]
        return fn

    return register
