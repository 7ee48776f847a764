"""A lossy link of our own on loopback: an asyncio TCP proxy between a runner and a station server that delays
every chunk it forwards and drops connections at random (seeded), as a flaky Wi-Fi or a cable pulled for a moment.

    with LossyProxy("127.0.0.1:8765", seed=1, delay_s=(0.0, 0.02), drop_per_s=0.5) as proxy:
        ... point the runner at proxy.address ...
        proxy.drops, proxy.connections

- delay: each chunk is held a random time in `delay_s` (uniform), order kept per direction (a chunk is never
  delivered before the one read before it, as TCP would), so a burst queues behind a slow chunk.
- drop: every connection gets a random lifetime (exponential, mean 1 / drop_per_s); when it runs out both
  sockets are closed at once (an abort, what a runner sees as a channel lost), whatever was in flight is lost.
  `protect_s` keeps a new connection alive at least that long (so the runner can get a word in).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from typing import Any

from enpire.station.client import split_address


class LossyProxy:
    def __init__(self, upstream: str, *, seed: int, delay_s: tuple[float, float] = (0.0, 0.02),
                 drop_per_s: float = 0.0, protect_s: float = 0.05) -> None:
        self.upstream = split_address(upstream)
        self.delay_s, self.drop_per_s, self.protect_s = delay_s, drop_per_s, protect_s
        self._rng = random.Random(seed)
        self.connections = 0  # accepted from the runner
        self.drops = 0  # connections the proxy cut
        self.chunks = 0  # chunks forwarded (both directions)
        self.delayed_s = 0.0  # total delay injected
        self.address = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._run, name="lossy-proxy", daemon=True)

    # ---- the event loop thread ----------------------------------------------------------------------
    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", 0))
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = f"{host}:{port}"
        self._ready.set()
        self._loop.run_forever()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.transport.abort()
            return
        lifetime = (self.protect_s + self._rng.expovariate(self.drop_per_s)) if self.drop_per_s > 0 else None
        pumps = [asyncio.ensure_future(self._pump(reader, up_writer)),
                 asyncio.ensure_future(self._pump(up_reader, writer))]
        done, _ = await asyncio.wait(pumps, timeout=lifetime, return_when=asyncio.FIRST_COMPLETED)
        if not done:  # its lifetime ran out with both directions still open: cut it
            self.drops += 1
            writer.transport.abort()
            up_writer.transport.abort()
        else:  # one side closed: let the other side drain what it has, then close both
            with contextlib.suppress(Exception):
                await asyncio.wait(pumps, timeout=2.0)
        for p in pumps:
            p.cancel()
        for w in (writer, up_writer):
            with contextlib.suppress(Exception):
                w.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward chunks with a random delay each, order kept: delivery time = max(own, the previous one's)."""
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                at, data = item
                wait = at - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                with contextlib.suppress(OSError):
                    writer.write_eof()

        sender = asyncio.ensure_future(deliver())
        last = 0.0
        try:
            while data := await reader.read(65536):
                delay = self._rng.uniform(*self.delay_s)
                self.chunks += 1
                self.delayed_s += delay
                last = max(time.monotonic() + delay, last)
                queue.put_nowait((last, data))
            queue.put_nowait(None)
            await sender
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sender.cancel()

    # ---- the test's side ----------------------------------------------------------------------------
    def start(self) -> LossyProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("proxy did not start")
        return self

    def stop(self) -> None:
        def shut() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shut)
        self._thread.join(timeout=5)

    def figures(self) -> dict[str, Any]:
        return {"connections": self.connections, "drops": self.drops, "chunks": self.chunks,
                "mean_delay_ms": round(1e3 * self.delayed_s / max(1, self.chunks), 2)}

    def __enter__(self) -> LossyProxy:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
