"""`python -m enpire.report`: tables and plots comparing iterations and sessions, from MLflow alone.

Writes `report.md` and PNG figures to --out, logs them as artifacts of the sessions
(`report/`), and prints the comparison table. A session whose videos are still being rendered in the
background (tag `enpire.videos=pending|rendering`) gets a note saying which; `--videos` renders them
first (waiting for a background renderer already on them).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from enpire.report import plots
from enpire.report.data import Session, load_sessions
from enpire.report.failures import failure_section
from enpire.report.markdown import iteration_table, session_table
from enpire.report.pending import pending_note, render_videos
from enpire.report.stills import video_stills
from enpire.report.tree import idea_tree
from enpire.report.verifier import verifier_section

DEFAULT_URI = "sqlite:///outputs/mlflow.db"


def _session_section(client, session: Session, out: Path, stills: bool) -> list[str]:
    tree = idea_tree(session, out / f"idea_tree_{session.run_id[:8]}.png")
    curves = plots.success_curves(session, out / f"success_{session.run_id[:8]}.png")
    cancelled = sum(it.decision == "cancelled" for it in session.iterations)
    done = "met /done" if session.metrics.get("reached_done", 0.0) >= 1.0 else "did not meet /done"
    lines = [f"## Session `{session.run_id}` — {session.label}", "",
             f"experiment `{session.experiment}`, task {session.task}, fleet {session.fleet}, status "
             f"{session.status}, {done}; {len(session.iterations) - cancelled} judged iterations"
             + (f" and {cancelled} cancelled (left unrun by the stop, not judged)" if cancelled else "")
             + f"; best candidate {session.best}.", "",
             "Rates: successes/trials with the 95% Wilson interval; *candidate pooled* is every trial of the "
             "iteration's candidate so far, with its lower bound.", "", iteration_table(session), "",
             *failure_section(session), *verifier_section(session),
             f"![idea tree]({tree.name})", "", f"![success curves]({curves.name})", ""]
    note = pending_note(session)
    if note:
        lines += [f"*{note}*", ""]
    if stills:
        for caption, png in video_stills(client, session, out):
            lines += [f"*{caption}*", ""] + ([f"![still]({png.name})", ""] if png is not None else [])
    return lines


def build_report(client, sessions: list[Session], out: Path, stills: bool = True) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    lines = ["# enpire report", "", f"{len(sessions)} session(s).", "", session_table(sessions), ""]
    if len(sessions) > 1:
        comp = plots.comparison_curves(sessions, out / "comparison.png")
        budgets = plots.budget_curves(sessions, out / "budgets.png")
        lines += ["## Capability curves", "", f"![comparison]({comp.name})", "", f"![budgets]({budgets.name})", ""]
    for s in sessions:
        lines += _session_section(client, s, out, stills)
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enpire.report", description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=DEFAULT_URI, help="MLflow store (default: %(default)s)")
    parser.add_argument("--experiment", action="append", help="experiment name (repeatable; default: all enpire/*)")
    parser.add_argument("--session", action="append", help="session run id (repeatable)")
    parser.add_argument("--sweep", help="only sessions of this sweep (tag enpire.sweep)")
    parser.add_argument("--out", type=Path, default=Path("outputs/report"), help="output directory (%(default)s)")
    parser.add_argument("--no-log", action="store_true", help="do not log the report as session artifacts")
    parser.add_argument("--no-stills", action="store_true", help="skip stills from trial videos")
    parser.add_argument("--videos", action="store_true",
                        help="render the sessions' pending videos first (waits for a background renderer on them)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.tracking import MlflowClient

    if args.tracking_uri.startswith("sqlite:///") and not Path(args.tracking_uri[10:]).exists():
        print(f"enpire.report: no MLflow store at {args.tracking_uri}", file=sys.stderr)
        return 2
    client = MlflowClient(tracking_uri=args.tracking_uri)
    try:
        sessions = load_sessions(client, args.experiment, args.session, args.sweep)
    except Exception as error:  # noqa: BLE001 - bad ids or names are user errors
        print(f"enpire.report: {error}", file=sys.stderr)
        return 2
    if not sessions:
        print("enpire.report: no sessions found", file=sys.stderr)
        return 2
    if args.videos:
        done = render_videos(sessions)
        for line in done:
            print(f"videos: {line}")
        if done:  # their tags changed
            sessions = load_sessions(client, args.experiment, args.session, args.sweep)
    path = build_report(client, sessions, args.out, stills=not args.no_stills)
    if not args.no_log:
        for s in sessions:
            client.log_artifacts(s.run_id, str(args.out), "report")
    print(session_table(sessions))
    for s in sessions:
        note = pending_note(s)
        if note:
            print(f"{s.run_id[:8]}: {note}")
    print(f"\nreport: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
