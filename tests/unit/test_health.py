"""The health server, for real: an aiohttp server on an ephemeral port, asked over HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import aiohttp
import pytest

from imagestream_trigger.errors import ConfigurationError
from imagestream_trigger.report.health import Health


@pytest.fixture
async def health() -> AsyncIterator[Health]:
    server = Health()
    await server.start(0, "127.0.0.1")
    yield server
    await server.stop()


async def get(health: Health, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{health.port}{path}") as response,
    ):
        return response.status, await response.text()


async def test_liveness_answers_while_readiness_waits_for_priming(health: Health) -> None:
    assert await get(health, "/healthz") == (200, "ok\n")
    status, body = await get(health, "/readyz")
    assert status == 503
    assert "priming the indexes" in body


async def test_readiness_follows_the_runner_ready_then_stopping(health: Health) -> None:
    health.ready()
    assert await get(health, "/readyz") == (200, "ready: indexes primed, watching\n")
    health.not_ready("stopping")
    assert await get(health, "/readyz") == (503, "stopping\n")
    # Liveness is not readiness: a stopping operator is still alive.
    assert (await get(health, "/healthz"))[0] == 200


async def test_ready_after_the_flag_the_runner_hands_to_kopf(health: Health) -> None:
    started = asyncio.Event()
    waiter = asyncio.create_task(health.ready_after(started))
    await asyncio.sleep(0)
    assert (await get(health, "/readyz"))[0] == 503
    started.set()
    await waiter
    assert (await get(health, "/readyz"))[0] == 200


async def test_liveness_does_not_answer_while_the_event_loop_is_blocked(health: Health) -> None:
    # Asked from another thread while this loop is stuck in a blocking call (as a CPU-bound
    # or blocking bug would leave it): no answer until the loop runs again.
    url = f"http://127.0.0.1:{health.port}/healthz"
    outcome: list[str] = []
    done = threading.Event()

    def probe() -> None:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                outcome.append(f"answered {response.status}")
        except (TimeoutError, urllib.error.URLError) as error:
            outcome.append(f"no answer: {error}")
        done.set()

    threading.Thread(target=probe, daemon=True).start()
    done.wait(30)  # blocks the event loop until the probe has given up
    (answer,) = outcome
    assert answer.startswith("no answer"), answer
    # The loop runs again: the same probe succeeds.
    loop = asyncio.get_running_loop()
    with await loop.run_in_executor(None, lambda: urllib.request.urlopen(url, timeout=5)) as r:
        assert r.status == 200


async def test_stop_closes_the_port() -> None:
    server = Health()
    await server.start(0, "127.0.0.1")
    port = server.port
    await server.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://127.0.0.1:{port}/healthz")


async def test_a_busy_port_is_one_clear_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError) as caught:
            await Health().start(port, "127.0.0.1")
    message = str(caught.value)
    assert f"cannot serve /healthz and /readyz on 127.0.0.1:{port}" in message
    assert "--health-port" in message
