"""`determinism`: what repeatability costs: MRU at fleet 4 under `determinism=strict` and `fast`.

Sessions of the drawer at fleet 4 (default budget, offline search agent, local stations, videos
off), the two settings interleaved so machine load hits both alike. Reports the median MRU and
robot-seconds to /done of each setting, the MRU ratio strict/fast, and whether every strict
session repeated the first one (same iterations, trials and robot-seconds: 1.0 when all did).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from enpire.bench import bench
from enpire.bench.sessions import median, number, run_quiet

SIGNATURE = ("iterations", "trials", "robot_seconds", "best_candidate", "kept")


@bench("determinism", "MRU at fleet 4, determinism=strict vs fast (interleaved medians); does strict repeat")
def determinism(quick: bool) -> dict[str, float]:
    repeats = 2 if quick else 5
    mru: dict[str, list[float]] = {"strict": [], "fast": []}
    robot: dict[str, list[float]] = {"strict": [], "fast": []}
    signatures: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="enpire-bench-det-") as tmp:
        for _ in range(repeats):
            for mode in ("strict", "fast"):
                s = run_quiet(["task=drawer", "fleet=4", "video.enabled=false", f"determinism={mode}"], Path(tmp))
                mru[mode].append(number(s, "mru"))
                robot[mode].append(number(s, "robot_s_to_done", number(s, "robot_seconds")))
                if mode == "strict":
                    signatures.append(tuple(s.get(k, "") for k in SIGNATURE))
    out = {f"mru_{m}_fleet4": median(v) for m, v in mru.items()}
    out.update({f"robot_s_to_done_{m}": median(v) for m, v in robot.items()})
    out["mru_ratio_strict_over_fast"] = out["mru_strict_fleet4"] / out["mru_fast_fleet4"]
    out["strict_sessions_identical"] = float(len(set(signatures)) == 1)
    out["repeats"] = float(repeats)
    return out
