"""The session's final summary: one greppable `key: value` a line, the same figures MLflow holds.

Metric definitions (DESIGN.md):
- mru: sum over stations of the wall seconds they were busy with trials (dispatch to record arrival,
  waiting for a CPU included), divided by (stations x the loop's wall seconds, from the first station
  being up to the last record): how well the loop keeps stations fed.
- mru_session: the seconds stations spent executing trials by their own clocks (reset, rollout,
  verification), divided by (stations x the whole session's wall, start-up to summary): what the
  robots' time bought, start-up and tracking included. ENPIRE's MRU is of this kind.
- mtu: LLM tokens per minute of the session's wall clock, team (`mtu`) and per agent (`mtu.<agent>`).
- trainer_utilization: trainer busy seconds / session wall seconds.
- *_to_done: spent when /done was first met; absent when it was not.
- screen (docs/twin.md; absent when off): dry_checks / dry_rejected (code candidates checked in the sandbox /
  rejected before any trial); twin_candidates / twin_rejected (candidates run on the digital twin / screened out
  by it), twin_trials and twin_sim_seconds (the twin's time: never robot time); twin_passed_twin_rate and
  twin_passed_fleet_rate: the candidates the twin passed, pooled, on the twin and on the fleet (over
  twin_passed_fleet_trials): how far the twin can be trusted.
- verifier_agreement (done.verifier=classifier in simulation): the share of judged trials whose verdict the
  state verifier (the shadow) shares; false_success_rate: of the trials the state verifier failed, the share
  the classifier passed; false_failure_rate: the converse; true_success_rate beside verified_success_rate;
  done_*: the same of the /done candidate; kept_false_success_share: of the successes credited to kept
  candidates, the share the state verifier denies (enpire.judge.shadow).
- best_success_rate: the pooled pass@1 of the best candidate by confirmed success, i.e. the highest 95%
  Wilson lower bound (`best_success_lcb`) among candidates with at least 3 pooled trials (never a 1/1);
  `best_success_successes` / `best_success_trials` are the counts behind it; `best_pass_at_1` and
  `best_pass_at_k` (with `_lcb`) pool that candidate's judged iterations (`best_pass_trials` trials).
"""

from __future__ import annotations

from typing import Any

ORDER = (
    "session_id", "mlflow_run_id", "experiment", "task", "robot", "agent", "fleet", "agents", "determinism",
    "reached_done", "stopped_by", "best_success_rate", "best_success_lcb", "best_success_successes",
    "best_success_trials", "best_pass_trials", "best_pass_at_1", "best_pass_at_1_lcb", "best_pass_at_k",
    "best_pass_at_k_lcb", "best_candidate", "verifier_agreement", "false_success_rate", "false_failure_rate",
    "false_successes", "false_failures", "shadow_trials", "verified_success_rate", "true_success_rate",
    "done_verifier_agreement", "done_true_success_rate", "kept_false_success_share", "iterations", "kept", "rejected",
    "cancelled", "cancelled_trials", "trials", "crashes",
    "safety_stops", "robot_seconds", "tokens", "trainer_seconds", "wall_s", "loop_wall_s", "mru", "mru_session", "mtu",
    "trainer_utilization", "time_to_done_s", "robot_s_to_done", "tokens_to_done", "dry_checks", "dry_rejected",
    "twin_candidates", "twin_rejected", "twin_trials", "twin_sim_seconds", "twin_passed_twin_rate",
    "twin_passed_fleet_rate", "twin_passed_fleet_trials", "faulty_stations",
    "station_restarts", "human_interventions", "human_wait_s", "run_dir",
)


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else "nan"
    return str(value)


def render(summary: dict[str, Any]) -> str:
    keys = [k for k in ORDER if k in summary] + sorted(k for k in summary if k not in ORDER)
    return "\n".join(f"{k}: {_fmt(summary[k])}" for k in keys) + "\n"


def parse(text: str) -> dict[str, str]:
    """The inverse of render (tests and scripts read the summary back)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            out[key] = value
    return out


def numeric(summary: dict[str, Any]) -> dict[str, float]:
    """The figures of the summary that are numbers (logged as the session run's metrics)."""
    out = {}
    for k, v in summary.items():
        if isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, int | float):
            out[k] = float(v)
    return out
