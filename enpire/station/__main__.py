"""`python -m enpire.station`: run one station as a network service, or talk to one.

    python -m enpire.station serve task=drawer robot=enarm --port 8765 [--host 0.0.0.0]
        [--token-env ENPIRE_STATION_TOKEN | --token-file PATH] [--watchdog-s 0.2] [--realtime-factor 1.0]
    python -m enpire.station health      HOST:PORT      print the station's health (JSON)
    python -m enpire.station info        HOST:PORT      task, robot, policy, fingerprints, watchdog
    python -m enpire.station estop       HOST:PORT ...  stop the robot now (latched)
    python -m enpire.station clear-estop HOST:PORT      a person made the cell safe: allow motion again
    python -m enpire.station events      HOST:PORT      follow the station's telemetry, one line per event
        [--count N]                                     (busy / idle, progress, safety, estop, watchdog, reset)

`serve` takes Hydra overrides like `python -m enpire` (task, robot, policy, safety, done ...): the station's
envelope and /done criteria are its own, and a runner whose session has other fingerprints is refused by the
runner itself (exit 3). The token comes from the environment variable (default ENPIRE_STATION_TOKEN) or a
file; a server without one does not start. Exit codes: 0 done, 2 bad arguments, spec or no token, 1 refused
or unreachable. Docs: docs/stations.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys

from enpire.station.protocol import TOKEN_ENV, load_token

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m enpire.station", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=("serve", "health", "info", "estop", "clear-estop", "events"))
    p.add_argument("args", nargs="*", help="serve: Hydra overrides; others: HOST:PORT of the station")
    p.add_argument("--host", default="127.0.0.1", help="serve: address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=8765, help="serve: port; 0 picks a free one (default %(default)s)")
    p.add_argument("--token-env", default=TOKEN_ENV,
                   help="environment variable holding the token (default %(default)s)")
    p.add_argument("--token-file", default=None, help="file holding the token (first line); wins over --token-env")
    p.add_argument("--watchdog-s", type=float, default=0.2,
                   help="serve: dead-man time: no heartbeat for this long during a trial stops the robot")
    p.add_argument("--max-lease-s", type=float, default=60.0, help="serve: longest lease a runner may hold unrenewed")
    p.add_argument("--realtime-factor", type=float, default=None,
                   help="serve: pace the simulation at this multiple of real time (1.0: like a real robot)")
    p.add_argument("--work-dir", default=None, help="serve: the station's own files (default outputs/station/<pid>)")
    p.add_argument("--station-id", default=None, help="serve: name shown to runners (default host:pid)")
    p.add_argument("--reason", default="operator estop (python -m enpire.station estop)", help="estop: why")
    p.add_argument("--count", type=int, default=None, help="events: stop after this many (default: until Ctrl-C)")
    return p


def _serve(args: argparse.Namespace, token: str) -> int:
    import uvicorn

    from enpire.spec.errors import SpecError
    from enpire.station.server import make_app
    from enpire.station.service import StationService

    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    service = StationService(args.args, watchdog_s=args.watchdog_s, max_lease_s=args.max_lease_s,
                             realtime_factor=args.realtime_factor, work_dir=args.work_dir, station_id=args.station_id)
    try:
        service.configure()
    except SpecError as error:
        print(f"enpire.station: {error}", file=sys.stderr)
        return EXIT_USAGE
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(16)
    host, port = sock.getsockname()[:2]
    fp = service.fingerprints()
    print(f"enpire.station: serving {service.spec.task.name}/{service.spec.robot.name} on {host}:{port} "
          f"(station {service.station_id}, watchdog {args.watchdog_s * 1e3:.0f} ms, done {fp['done_sha256'][:12]}, "
          f"safety {fp['safety_sha256'][:12]})", flush=True)
    server = uvicorn.Server(uvicorn.Config(make_app(service, token), log_level="warning", lifespan="off",
                                           ws="websockets-sansio", ws_ping_interval=None, timeout_keep_alive=30))
    try:
        server.run(sockets=[sock])
    finally:
        service.close()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        token = load_token(args.token_env, args.token_file)
    except OSError as error:
        print(f"enpire.station: --token-file {args.token_file}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if token is None:
        print(f"enpire.station: no token: set {args.token_env} or pass --token-file (a station refuses "
              "unauthenticated runners, so it needs one)", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "serve":
        return _serve(args, token)
    from enpire.station.client import StationClient, StationError

    if len(args.args) != 1:
        print(f"enpire.station {args.command}: expected one HOST:PORT, got {args.args}", file=sys.stderr)
        return EXIT_USAGE
    try:
        client = StationClient(args.args[0], token)
        if args.command == "events":
            return _follow(client, args.count)
        call = {"health": client.health, "info": client.info,
                "estop": lambda: client.estop(args.reason),
                "clear-estop": lambda: client.clear_estop(os.environ.get("USER", "operator"))}[args.command]
        print(json.dumps(call(), indent=2))
    except ValueError as error:
        print(f"enpire.station: {error}", file=sys.stderr)
        return EXIT_USAGE
    except StationError as error:
        print(f"enpire.station: {error}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def _follow(client: object, count: int | None) -> int:
    """Print the station's events as they come: `HH:MM:SS.mmm kind trial_id detail`."""
    import time

    channel = client.events()  # type: ignore[attr-defined]
    print(f"enpire.station: following {client.address} (Ctrl-C to stop)", flush=True)  # type: ignore[attr-defined]
    seen, last = 0, None
    try:
        while count is None or seen < count:
            event = channel.recv(1.0)
            if event is None:
                continue
            if event["type"] == "error":
                print(f"enpire.station: {client.address} refused: {event['message']}", file=sys.stderr)  # type: ignore[attr-defined]
                return EXIT_FAIL
            if last is not None and event["seq"] != last + 1:
                print(f"({event['seq'] - last - 1} events missed)", flush=True)
            last, seen = event["seq"], seen + 1
            clock = time.strftime("%H:%M:%S", time.localtime(event["at"])) + f".{int(event['at'] * 1000) % 1000:03d}"
            print(f"{clock} {event['kind']:<13} {event.get('trial_id') or '-'} {event.get('detail', '')}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        channel.close()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
