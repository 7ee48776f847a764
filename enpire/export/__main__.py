"""python -m enpire.export SESSION_ID --format lerobot|parquet|hdf5 --out DIR [--outcome success]

Exports a session's recorded trials (record.trajectories) from MLflow: a LeRobot v3-layout dataset, plain
parquet or robomimic-style HDF5 (docs/data.md). Exit 0 written, 2 bad arguments or no such session, 1 else.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

DEFAULT_URI = "sqlite:///outputs/mlflow.db"


def main(argv: list[str] | None = None) -> int:
    from enpire.export import FORMATS, export
    from enpire.records import OUTCOMES

    parser = argparse.ArgumentParser(prog="python -m enpire.export", description=__doc__.splitlines()[0])
    parser.add_argument("session", metavar="SESSION_ID", help="MLflow run id of the session run")
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--outcome", action="append", choices=OUTCOMES, default=[],
                        help="keep only trials with this outcome (repeatable; default: every recorded trial)")
    parser.add_argument("--tracking-uri", default=DEFAULT_URI, help="MLflow store (default: %(default)s)")
    parser.add_argument("--no-log", action="store_true", help="do not log the export as a dataset input")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if args.tracking_uri.startswith("sqlite:///") and not Path(args.tracking_uri[10:]).exists():
        print(f"enpire.export: no MLflow store at {args.tracking_uri}", file=sys.stderr)
        return 2
    try:
        doc = export(args.tracking_uri, args.session, args.format, args.out, tuple(args.outcome),
                     log_input=not args.no_log)
    except (ValueError, LookupError) as error:
        print(f"enpire.export: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # an MLflow id that does not exist lands here too
        print(f"enpire.export: {type(error).__name__}: {error}", file=sys.stderr)
        return 2 if "RESOURCE_DOES_NOT_EXIST" in str(error) or "not found" in str(error).lower() else 1
    print(f"exported {doc['episodes']} episodes ({doc['steps']} steps) of session {args.session} as {args.format} "
          f"to {args.out} (digest {doc['digest'][:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
