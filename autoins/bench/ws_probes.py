"""The steady-state bench's WebSocket viewers: one socket per probe driver on `/ws/drivers/{id}`, timing each
`position` message against the wall-clock time stamped into the probe reading (its `ts_ms`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from autoins.errors import UserFacingError
from config.settings import Settings
from deployments.api.auth import issue_token
from deployments.ws_protocol import client_subprotocols


class ProbeViewers:
    """Open with `open()`, read `delays` while it runs, `close()` at the end."""

    def __init__(self, settings: Settings, ws_base_url: str, drivers: tuple[str, ...]) -> None:
        self.settings = settings
        self.url = ws_base_url.rstrip("/")
        self.drivers = drivers
        self.delays: list[tuple[int, float]] = []  # (the probe's stamp, epoch ms; receive − stamp, ms)
        self.received: set[tuple[str, int]] = set()  # (driver, seq): a re-published batch is not counted twice
        self.received_ts_ms: set[int] = set()  # the probes' stamps, to name the ones that never arrived
        self._sockets: list = []
        self._readers: list[asyncio.Task] = []

    async def open(self, timeout_s: float = 30.0) -> None:
        """One socket per probe driver, each past its `hello`. The ingress learns a new app's replica a moment
        after `serve.run` returns, so a refused first attempt is retried until `timeout_s`."""
        try:
            import websockets
        except ImportError:
            raise UserFacingError("the steady-state bench needs the `websockets` package (pip install -e '.[dev]')"
                                  ) from None
        deadline = time.monotonic() + timeout_s
        for driver in self.drivers:
            token = issue_token(self.settings, user_id=f"bench-{driver}", role="driver", driver_id=driver)
            while True:
                try:
                    ws = await websockets.connect(f"{self.url}/drivers/{driver}", open_timeout=10,
                                                  subprotocols=client_subprotocols(token))
                    hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    if hello.get("type") != "hello":
                        raise RuntimeError(f"expected hello, got {hello}")
                    break
                except (OSError, TimeoutError, RuntimeError, websockets.exceptions.WebSocketException) as error:
                    if time.monotonic() > deadline:
                        raise UserFacingError(f"no WebSocket at {self.url}/drivers/{driver}: {error!r}"[:300]
                                              ) from None
                    await asyncio.sleep(0.5)
            self._sockets.append(ws)
            self._readers.append(asyncio.create_task(self._read(ws, driver), name=f"probe-{driver}"))

    async def _read(self, ws, driver: str) -> None:
        with contextlib.suppress(Exception):  # the socket closes at the end of the run (or the server goes)
            async for raw in ws:
                received_ms = time.time() * 1000
                message = json.loads(raw)
                if message.get("type") != "position" or message.get("driver_id") != driver:
                    continue
                key = (driver, message["seq"])
                if key not in self.received:
                    self.received.add(key)
                    self.delays.append((message["ts_ms"], received_ms - message["ts_ms"]))
                    self.received_ts_ms.add(message["ts_ms"])

    async def close(self) -> None:
        for ws in self._sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        for reader in self._readers:
            reader.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
