"""Benchmark `recording`: what per-step trajectory recording (record.trajectories, docs/data.md) costs a station.

The harness method (enpire.bench.harness): for a task, whole trials of seeds 0..k-1 through
`SimStation.run_trial` (resets timed separately and left out), as physics steps per second, with recording
off and on (every trial recorded and written, frames off), alternating, `repeats` times; figures are medians
over the repeats, `<task>_overhead` the median of the repeats' paired `1 - on/off`. The trajectories are
written to a temporary folder (the write is part of the cost).
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile

from enpire.bench import bench
from enpire.bench.harness import _station_trial_s


def _trial_s(st, seed: int, record: bool, out: str) -> tuple[float, int]:
    """(seconds, steps) of one trial, recording or not (the request is all that differs)."""
    run = st.run_trial

    def requested(request, policy=None):
        return run(dataclasses.replace(request, record_trajectory=record, out_dir=out), policy)

    st.run_trial = requested
    try:
        return _station_trial_s(st, seed)
    finally:
        del st.run_trial


@bench("recording", "station rate with per-step trajectory recording off and on (harness method)")
def recording(quick: bool) -> dict[str, float]:
    from enpire.fleet.stations import make_station
    from enpire.spec import load_spec
    from enpire.spec.model import RecordSpec

    repeats, trials = (5, 4) if quick else (9, 8)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("drawer", "reach") if quick else ("drawer", "reach", "push_t", "peg_insert", "lift"):
            spec = load_spec([f"task={name}"])
            spec = dataclasses.replace(spec, record=RecordSpec("all", 0.0, 1024.0))
            st = make_station(spec, 0)
            n = spec.physics_steps_per_control
            offs, ons = [], []
            for _ in range(repeats):
                sums = {False: [0.0, 0], True: [0.0, 0]}
                for seed in range(trials):
                    for record in (False, True):
                        sec, k = _trial_s(st, seed, record, tmp)
                        sums[record][0] += sec
                        sums[record][1] += k * n
                offs.append(sums[False][1] / sums[False][0])
                ons.append(sums[True][1] / sums[True][0])
            out[f"{name}_off_sps"] = statistics.median(offs)
            out[f"{name}_on_sps"] = statistics.median(ons)
            out[f"{name}_overhead"] = statistics.median(1 - on / off for on, off in zip(ons, offs, strict=True))
    return out
