"""The runner's end of the station protocol: HTTP commands (stdlib http.client) and the trial channel
(a WebSocket, websockets' sync client). Every message sent and received is checked against the schema.

Used by enpire.fleet.remote (the executor), enpire.ops.ctl (estop reaching remote stations) and the
`python -m enpire.station health|estop|clear-estop` commands.
"""

from __future__ import annotations

import http.client
import time
from typing import Any

from websockets.sync.client import ClientConnection, connect

from enpire.station.protocol import ProtocolError, check, dumps, parse


class StationError(RuntimeError):
    """The station refused (its error message: `code`, `holder`) or could not be reached (`code` 'unreachable')."""

    def __init__(self, address: str, code: str, message: str, holder: str | None = None) -> None:
        super().__init__(f"station {address}: {message}")
        self.address, self.code, self.holder = address, code, holder


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"station address: got {address!r}; expected host:port")
    return host.strip("[]"), int(port)


class StationClient:
    def __init__(self, address: str, token: str, timeout_s: float = 5.0) -> None:
        self.address = address
        self.host, self.port = split_address(address)
        self._token = token
        self.timeout_s = timeout_s

    def __repr__(self) -> str:  # never the token
        return f"StationClient({self.address!r})"

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"}

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None, timeout_s: float | None = None
              ) -> dict[str, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s or self.timeout_s)
        try:
            conn.request(method, path, body=dumps(body) if body is not None else None, headers=self._headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as error:
            raise StationError(self.address, "unreachable", f"unreachable ({type(error).__name__}: {error})") from None
        finally:
            conn.close()
        try:
            doc = parse(raw)
        except ProtocolError as error:
            raise StationError(self.address, "invalid", f"answered HTTP {response.status} with a message outside "
                                                        f"the protocol ({error})") from None
        if doc["type"] == "error":
            raise StationError(self.address, doc["code"], doc["message"], doc.get("holder"))
        return doc

    # ---- commands ------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return check(self._call("GET", "/v1/info"), "info")

    def health(self) -> dict[str, Any]:
        return check(self._call("GET", "/v1/health"), "health")

    def record(self, trial_id: str) -> dict[str, Any]:
        return check(self._call("GET", f"/v1/records/{trial_id}"), "trial_record")

    def activate(self, owner: str, session: str, ttl_s: float) -> dict[str, Any]:
        return self._call("POST", "/v1/activate", {"type": "activate", "owner": owner, "session": session,
                                                   "ttl_s": ttl_s})

    def deactivate(self, owner: str) -> dict[str, Any]:
        return self._call("POST", "/v1/deactivate", {"type": "deactivate", "owner": owner})

    def release(self, owner: str) -> dict[str, Any]:
        return self._call("POST", "/v1/release", {"type": "release", "owner": owner})

    def reset(self, owner: str, seed: int) -> dict[str, Any]:
        return self._call("POST", "/v1/reset", {"type": "reset", "owner": owner, "seed": seed}, timeout_s=60.0)

    def estop(self, reason: str, timeout_s: float = 2.0) -> dict[str, Any]:
        return self._call("POST", "/v1/estop", {"type": "estop", "reason": reason, "sent_at": time.time()},
                          timeout_s=timeout_s)

    def clear_estop(self, by: str) -> dict[str, Any]:
        return self._call("POST", "/v1/clear_estop", {"type": "clear_estop", "by": by})

    # ---- the trial channel and the event stream ----------------------------------------------------------
    def events(self, timeout_s: float | None = None) -> TrialChannel:
        """The station's telemetry (WS /v1/events): `recv` gives one `event` at a time."""
        return self.channel(timeout_s, path="/v1/events")

    def channel(self, timeout_s: float | None = None, path: str = "/v1/trials") -> TrialChannel:
        try:
            ws = connect(f"ws://{self.host}:{self.port}{path}", additional_headers=self._headers,
                         open_timeout=timeout_s or self.timeout_s, close_timeout=1.0, max_size=64 * 1024 * 1024,
                         compression=None)
        except (OSError, TimeoutError, Exception) as error:  # websockets raises its own InvalidHandshake family
            raise StationError(self.address, "unreachable", f"trial channel: {type(error).__name__}: {error}") \
                from None
        return TrialChannel(self.address, ws)


class TrialChannel:
    """One WebSocket to a station's /v1/trials: send run_trial / heartbeat, receive checked messages."""

    def __init__(self, address: str, ws: ClientConnection) -> None:
        self.address, self._ws = address, ws

    def send(self, message: dict[str, Any]) -> None:
        try:
            self._ws.send(dumps(message))
        except Exception as error:
            raise StationError(self.address, "unreachable", f"send failed ({type(error).__name__}: {error})") \
                from None

    def recv(self, timeout_s: float) -> dict[str, Any] | None:
        """The next message, or None when none came within `timeout_s`; StationError when the channel closed."""
        try:
            text = self._ws.recv(timeout=timeout_s)
        except TimeoutError:
            return None
        except Exception as error:
            raise StationError(self.address, "unreachable", f"channel closed ({type(error).__name__}: {error})") \
                from None
        try:
            return parse(text)
        except ProtocolError as error:
            raise StationError(self.address, "invalid", f"sent a message outside the protocol ({error})") from None

    def close(self) -> None:
        try:
            self._ws.close()
        except Exception:
            pass

