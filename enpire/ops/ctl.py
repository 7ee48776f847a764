"""`python -m enpire.ctl`: operator control of a running session, from any shell on the machine.

    python -m enpire.ctl pause   SESSION_ID     trials in flight finish; no new trials, no new agent calls
    python -m enpire.ctl resume  SESSION_ID     continue after a pause
    python -m enpire.ctl stop    SESSION_ID     finish the trials in flight, then end (stopped_by: operator_stop)
    python -m enpire.ctl estop   SESSION_ID     every robot stops within one control step; trials end `estopped`;
                                                the session ends (stopped_by: estop, exit 0)
    python -m enpire.ctl approve SESSION_ID N   run agent-written code of iteration N (supervision.approve=code)
    python -m enpire.ctl reject  SESSION_ID N   record iteration N as rejected instead
    python -m enpire.ctl reset-done SESSION_ID STATION
                                                a person fixed STATION's scene (it waits for one: needs_reset,
                                                supervision.human_reset): its reset is checked again and, when it
                                                passes, the station is back in the rotation
    python -m enpire.ctl status  SESSION_ID     print the session's control state (stations waiting for a person
                                                under needs_reset)

SESSION_ID is the MLflow run id of the session run (printed at the end as session_id, shown in MLflow). The
session's control directory is found under --control-root (default outputs/control, the default of
supervision.control_root), or given directly with --control-dir. Exit codes: 0 sent, 2 unknown session or bad
arguments, 1 the session has already ended.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from enpire.ops.control import control_dir, send

EXIT_SENT, EXIT_ENDED, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m enpire.ctl", description=__doc__,
                                epilog="Control directory layout and decisions: docs/reliability.md.",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("pause", "resume", "stop", "estop", "approve", "reject", "reset-done",
                                       "status"))
    p.add_argument("session_id", metavar="SESSION_ID", help="MLflow run id of the session run")
    p.add_argument("number", nargs="?", type=int, metavar="ITERATION|STATION",
                   help="approve/reject: the iteration index; reset-done: the station index")
    p.add_argument("--control-root", default="outputs/control", help="root of control directories (supervision."
                   "control_root of the session; default %(default)s)")
    p.add_argument("--control-dir", default=None, help="the session's control directory itself")
    p.add_argument("--reason", default=None, help="reject: why (the agent is told)")
    p.add_argument("--by", default=None, help="reset-done: who fixed the scene (default: $USER), recorded with the "
                   "intervention")
    return p


def _state(directory: Path) -> dict:
    try:
        return json.loads((directory / "state.json").read_text())
    except (OSError, ValueError):
        return {}


def _owner_pid(directory: Path) -> int | None:
    try:
        return int(json.loads((directory / "session.json").read_text())["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    """Is the session's process still there (same machine: the channel is a local directory)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    try:
        args = p.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    directory = Path(args.control_dir) if args.control_dir else control_dir(args.control_root, args.session_id)
    if not (directory / "session.json").is_file():
        where = args.control_dir or f"{args.control_root}/{args.session_id}"
        print(f"enpire.ctl: unknown session {args.session_id!r}: no control directory at {where} "
              f"(expected a session started with supervision.control_root={args.control_root}; "
              f"use --control-root or --control-dir)", file=sys.stderr)
        return EXIT_USAGE
    state = _state(directory)
    if args.command == "status":
        print(json.dumps({"session_id": args.session_id, "control_dir": str(directory), **state}, indent=2))
        return EXIT_SENT
    if state.get("state") == "ended":
        print(f"enpire.ctl: session {args.session_id} has already ended (stopped_by: {state.get('stopped_by')})",
              file=sys.stderr)
        return EXIT_ENDED
    pid = _owner_pid(directory)
    if pid is not None and not _alive(pid):
        print(f"enpire.ctl: session {args.session_id} is not running (its process {pid} is gone; it was killed "
              f"or crashed: continue it with python -m enpire resume={args.session_id})", file=sys.stderr)
        return EXIT_ENDED
    extra = {}
    if args.command in ("approve", "reject"):
        if args.number is None:
            print(f"enpire.ctl: {args.command} needs ITERATION (waiting: {state.get('waiting_approval', [])})",
                  file=sys.stderr)
            return EXIT_USAGE
        extra["iteration"] = args.number
        if args.reason:
            extra["reason"] = args.reason
    if args.command == "reset-done":
        waiting = sorted(int(k) for k in state.get("needs_reset", {}))
        if args.number is None:
            print(f"enpire.ctl: reset-done needs STATION (waiting for a person: {waiting or 'none'})", file=sys.stderr)
            return EXIT_USAGE
        extra.update(station=args.number, by=args.by or os.environ.get("USER") or "operator")
        if args.number not in waiting:
            print(f"enpire.ctl: station {args.number} was not waiting for a person when the session last said "
                  f"(waiting: {waiting or 'none'}); sent anyway, the session decides", file=sys.stderr)
    path = send(directory, args.command, **extra)
    print(f"{args.command} sent to session {args.session_id} ({path.name})")
    if args.command == "estop":
        _estop_remote(directory)
    return EXIT_SENT


def _estop_remote(directory: Path) -> None:
    """executor=remote: the stations are told directly too (the runner forwards the flag as well, but it may be
    frozen); the addresses are in the session's remote_stations.json, the token in its env var or file."""
    try:
        doc = json.loads((directory / "remote_stations.json").read_text())
    except (OSError, ValueError):
        return
    import threading

    from enpire.station.client import StationClient, StationError
    from enpire.station.protocol import load_token

    try:
        token = load_token(doc.get("token_env"), doc.get("token_file"))
    except OSError as error:
        token, why = None, str(error)
    else:
        why = f"no token in ${doc.get('token_env')}" + (f" or {doc['token_file']}" if doc.get("token_file") else "")
    if token is None:
        print(f"enpire.ctl: remote stations not told directly ({why}); the session's runner forwards the estop",
              file=sys.stderr)
        return

    def tell(address: str) -> None:
        try:
            StationClient(address, token).estop("operator estop (python -m enpire.ctl estop)")
            print(f"estop sent to remote station {address}")
        except (StationError, ValueError) as error:
            print(f"enpire.ctl: estop did not reach remote station {address}: {error}", file=sys.stderr)

    threads = [threading.Thread(target=tell, args=(str(a),)) for a in doc.get("stations", [])]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5.0)


if __name__ == "__main__":
    sys.exit(main())
