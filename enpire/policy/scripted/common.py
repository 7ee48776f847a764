"""Helpers shared by scripted policies: a target that moves toward waypoints at a bounded speed."""

from __future__ import annotations

import numpy as np


class MovingTarget:
    """A Cartesian target that slides toward a goal at most `speed` m/s (one call per control step)."""

    def __init__(self, start: np.ndarray, dt: float) -> None:
        self.pos = np.array(start, dtype=float)
        self.dt = dt

    def toward(self, goal: np.ndarray, speed: float) -> np.ndarray:
        delta = np.asarray(goal, dtype=float) - self.pos
        dist = float(np.linalg.norm(delta))
        step = speed * self.dt
        self.pos = np.array(goal, dtype=float) if dist <= step else self.pos + delta * (step / dist)
        return self.pos

    def arrived(self, goal: np.ndarray, tol: float = 1e-6) -> bool:
        return float(np.linalg.norm(np.asarray(goal) - self.pos)) <= tol
