"""The station server: a StationService behind FastAPI (HTTP for commands, a WebSocket for trials).

Routes (every one needs `Authorization: Bearer <token>`; messages: specs/station_protocol.schema.json):

  GET  /v1/info                  who the station is: task, robot, policy, fingerprints, watchdog time
  GET  /v1/health                lifecycle state, busy trial, estop, faulty, lease holder, last stop
  GET  /v1/records/{trial_id}    a finished trial's record (kept for re-delivery)
  POST /v1/activate|deactivate|release|reset|estop|clear_estop
  WS   /v1/trials                run_trial and heartbeat in; heartbeat_ack and trial_record out
  WS   /v1/events                telemetry out (any token holder, no lease): busy / idle, progress, safety,
                                 estop, watchdog, reset, lease events

A wrong or missing token is refused (401, or the WebSocket closed with 4401) before anything else is read.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Any

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from enpire.station.protocol import ProtocolError, check, dumps, parse
from enpire.station.service import Refused, StationService

log = logging.getLogger(__name__)

STATUS = {"unauthorized": 401, "invalid": 422, "leased": 409, "not_leased": 403, "busy": 409, "estopped": 409,
          "unconfigured": 503, "unknown_trial": 404, "internal": 500}
POSTS = ("activate", "deactivate", "release", "reset", "estop", "clear_estop")
WS_UNAUTHORIZED = 4401
EVENTS_QUEUED = 1024  # events waiting for one slow subscriber before newer ones are dropped


def _authorized(header: str | None, token: str) -> bool:
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _reply(doc: dict[str, Any]) -> JSONResponse:
    check(doc)  # the station never sends what the schema does not allow
    status = STATUS.get(doc.get("code", ""), 200) if doc["type"] == "error" else 200
    return JSONResponse(doc, status_code=status)


def _error(code: str, message: str) -> JSONResponse:
    return _reply({"type": "error", "code": code, "message": message, "holder": None})


def make_app(service: StationService, token: str) -> FastAPI:
    app = FastAPI(title="enpire station", docs_url=None, redoc_url=None, openapi_url=None)

    def refused(request: Request) -> JSONResponse | None:
        if _authorized(request.headers.get("authorization"), token):
            return None
        service.refused_auth += 1
        log.warning("refused a request from %s: missing or wrong token", request.client.host if request.client else "?")
        return _error("unauthorized", "missing or wrong token (Authorization: Bearer <token>)")

    @app.get("/v1/info")
    async def info(request: Request) -> JSONResponse:
        return refused(request) or _reply(service.info())

    @app.get("/v1/health")
    async def health(request: Request) -> JSONResponse:
        return refused(request) or _reply(service.health())

    @app.get("/v1/records/{trial_id}")
    async def record(trial_id: str, request: Request) -> JSONResponse:
        if (no := refused(request)) is not None:
            return no
        try:
            return _reply(service.stored(trial_id))
        except Refused as error:
            return _reply(error.message_doc())

    @app.post("/v1/{verb}")
    async def command(verb: str, request: Request) -> JSONResponse:
        if (no := refused(request)) is not None:
            return no
        if verb not in POSTS:
            return _error("invalid", f"POST /v1/{verb}: unknown command; expected one of {', '.join(POSTS)}")
        try:
            msg = parse(await request.body(), verb)
            if verb == "estop":
                return _reply(service.estop(msg["reason"], msg.get("sent_at")))
            if verb == "activate":
                return _reply(service.activate(msg["owner"], msg["session"], msg["ttl_s"]))
            if verb in ("deactivate", "release"):
                return _reply(service.deactivate(msg["owner"], release=verb == "release"))
            if verb == "clear_estop":
                return _reply(service.clear_estop(msg["by"]))
            return _reply(await asyncio.to_thread(service.reset, msg["owner"], msg["seed"]))
        except ProtocolError as error:
            return _error("invalid", str(error))
        except Refused as error:
            return _reply(error.message_doc())

    async def admitted(ws: WebSocket) -> bool:
        await ws.accept()
        if _authorized(ws.headers.get("authorization"), token):
            return True
        service.refused_auth += 1
        await ws.send_text(dumps({"type": "error", "code": "unauthorized", "message": "missing or wrong token",
                                  "holder": None}))
        await ws.close(code=WS_UNAUTHORIZED)
        return False

    @app.websocket("/v1/events")
    async def events(ws: WebSocket) -> None:
        if not await admitted(ws):
            return
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=EVENTS_QUEUED)

        def sink(event: dict[str, Any]) -> None:  # any thread; a full queue drops (the subscriber sees a seq gap)
            loop.call_soon_threadsafe(lambda: out.full() or out.put_nowait(event))

        async def sender() -> None:
            while True:
                await ws.send_text(dumps(await out.get()))

        service.subscribe(sink)
        task = asyncio.create_task(sender())
        try:
            while True:
                await ws.receive_text()  # nothing is expected: this only notices the subscriber leaving
        except WebSocketDisconnect:
            pass
        finally:
            service.unsubscribe(sink)
            task.cancel()

    @app.websocket("/v1/trials")
    async def trials(ws: WebSocket) -> None:
        if not await admitted(ws):
            return
        loop = asyncio.get_running_loop()
        out: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def sink(message: dict[str, Any]) -> None:  # called from the trial thread
            loop.call_soon_threadsafe(out.put_nowait, message)

        async def sender() -> None:
            while (message := await out.get()) is not None:
                await ws.send_text(dumps(message))

        task = asyncio.create_task(sender())
        try:
            while True:
                text = await ws.receive_text()
                try:
                    msg = parse(text, ("run_trial", "heartbeat"))
                    if msg["type"] == "heartbeat":
                        out.put_nowait(service.renew(msg["owner"], msg["seq"]))
                    else:
                        now = service.run_trial(msg["owner"], msg["request"], sink)
                        if now is not None:
                            out.put_nowait(now)
                except ProtocolError as error:
                    out.put_nowait({"type": "error", "code": "invalid", "message": str(error), "holder": None})
                except Refused as error:
                    out.put_nowait(error.message_doc())
        except WebSocketDisconnect:
            pass
        finally:
            service.disconnected(sink)
            out.put_nowait(None)
            task.cancel()

    return app
