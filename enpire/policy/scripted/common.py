"""Helpers shared by scripted policies: a target that moves toward waypoints at a bounded speed."""

from __future__ import annotations

import math

import numpy as np


def norm(v: np.ndarray) -> float:
    """Euclidean norm of a small vector (what np.linalg.norm computes, without its overhead per call)."""
    return math.sqrt(float(np.dot(v, v)))


def action(pos: np.ndarray, yaw: float, grip: float) -> np.ndarray:
    """The cartesian action [x, y, z, yaw, grip], filled in place (cheaper than unpacking `pos`)."""
    out = np.empty(5)
    out[:3] = pos
    out[3] = yaw
    out[4] = grip
    return out


def clip(v: np.ndarray, low: float | np.ndarray, high: float | np.ndarray) -> np.ndarray:
    """np.clip without its Python-level dispatch (it is called every control step)."""
    return np.minimum(np.maximum(v, low), high)


class MovingTarget:
    """A Cartesian target that slides toward a goal at most `speed` m/s (one call per control step)."""

    def __init__(self, start: np.ndarray, dt: float) -> None:
        self.pos = np.array(start, dtype=float)
        self.dt = dt

    def toward(self, goal: np.ndarray, speed: float) -> np.ndarray:
        delta = goal - self.pos
        dist = norm(delta)
        step = speed * self.dt
        self.pos = np.array(goal, dtype=float) if dist <= step else self.pos + delta * (step / dist)
        return self.pos

    def arrived(self, goal: np.ndarray, tol: float = 1e-6) -> bool:
        return norm(goal - self.pos) <= tol
