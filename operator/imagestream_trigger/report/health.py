"""Liveness and readiness for the kubelet's probes, served on the health port.

- ``/healthz`` (liveness): answered by a handler on the operator's own event loop,
  so it answers 200 exactly while that loop runs. A loop stuck in a blocking call
  answers nothing, the probe times out, and the kubelet restarts the pod.
- ``/readyz`` (readiness): 503 until the runner says the indexes are primed and the
  watches started, then 200, and 503 again once the operator is stopping. The body
  says which, for a person running curl.

Both start before the pre-flight checks, so a long start-up (a large cluster to list)
is never taken for a dead process.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from imagestream_trigger.errors import ConfigurationError

log = logging.getLogger(__name__)


class Health:
    def __init__(self) -> None:
        self._ready = False
        self._state = "starting: pre-flight checks and priming the indexes"
        self._runner: web.AppRunner | None = None

    def ready(self) -> None:
        """Indexes primed and watches started: traffic and rollouts may count on us."""
        self._ready, self._state = True, "ready: indexes primed, watching"

    def not_ready(self, why: str) -> None:
        self._ready, self._state = False, why

    async def ready_after(self, started: asyncio.Event) -> None:
        """Ready once ``started`` is set (the runner passes kopf's ready flag, raised when
        its watchers are let go; by then the indexes are primed and our own watches run)."""
        await started.wait()
        self.ready()
        log.info("ready: indexes primed, watches started")

    async def start(self, port: int, host: str) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        # No access log: the probes would write a line every few seconds.
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            await runner.cleanup()
            raise ConfigurationError(
                f"cannot serve /healthz and /readyz on {host}:{port}: "
                f"{error.strerror or error}. Choose another --health-port "
                "(IMAGESTREAM_TRIGGER_HEALTH_PORT) or --bind-address."
            ) from None
        self._runner = runner
        log.info("health on http://%s:%d/healthz and /readyz", host, self.port)

    @property
    def port(self) -> int:
        """The port listened on (the one the OS chose when started with port 0)."""
        assert self._runner is not None, "not started"
        address = self._runner.addresses[0]
        return int(address[1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        return web.Response(status=200 if self._ready else 503, text=self._state + "\n")
