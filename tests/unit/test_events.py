"""Events are sent in the background, after the writes: held while the work queue is busy."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest

from imagestream_trigger.act.client import Api
from imagestream_trigger.index import ObjectRef
from imagestream_trigger.report import events as events_module
from imagestream_trigger.report.events import Events
from tests.unit.builders import FakeApi

WEB = ObjectRef("apps/v1", "Deployment", "demo", "web", "uid-1")


async def test_an_event_waits_while_the_queue_is_busy_then_goes() -> None:
    api = FakeApi()
    busy = True
    events = Events(cast(Api, api), busy=lambda: busy)
    events.start()
    try:
        events.normal(WEB, "ImageUpdated", "web: a -> b")
        await asyncio.sleep(0.1)
        assert api.calls == []  # writes first
        busy = False
        for _ in range(100):
            if api.calls:
                break
            await asyncio.sleep(0.01)
        [call] = api.calls
        assert call.path == "/api/v1/namespaces/demo/events"
        assert call.body["reason"] == "ImageUpdated"
        assert call.body["involvedObject"]["name"] == "web"
    finally:
        await events.stop()


async def test_an_event_is_not_held_forever_by_a_queue_that_stays_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = FakeApi()
    monkeypatch.setattr(events_module, "HOLD_S", 0.05)  # the real hold is seconds
    events = Events(cast(Api, api), busy=lambda: True)
    events.start()
    try:
        events.warning(WEB, "Forbidden", "cannot update")
        for _ in range(100):
            if api.calls:
                break
            await asyncio.sleep(0.01)
        assert len(api.calls) == 1
    finally:
        await events.stop()


async def test_the_backlog_is_bounded() -> None:
    events = Events(cast(Api, FakeApi()))
    for number in range(events_module.BACKLOG + 5):
        events.normal(WEB, "ImageUpdated", str(number))
    assert events.pending == events_module.BACKLOG
    assert events.dropped == 5
