"""The runner: spec in, session out. reset -> execute -> verify -> refine until /done or budget.

(The research-loop helper implements run_session; the contract below is what the CLI uses.)
"""

from __future__ import annotations

from dataclasses import dataclass

from enpire.spec.model import ExperimentSpec


@dataclass(frozen=True)
class SessionContext:
    """Where and how a session was launched (from Hydra)."""

    run_dir: str  # Hydra's run directory for this job (outputs/runs/... or outputs/multirun/.../N_...)
    sweep_id: str | None = None  # the multirun's sweep directory; every job of a sweep shares it
    job_num: int | None = None
    argv: tuple[str, ...] = ()


def run_session(spec: ExperimentSpec, context: SessionContext) -> int:
    """Run one session; returns the exit code (0 finished, 3 integrity breach, 1 error)."""
    raise NotImplementedError("the research loop is being built (issue 4)")
