"""Our own list-and-watch: resume from the last resourceVersion, list again on 410, back off."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest

from imagestream_trigger import watch as watch_module
from imagestream_trigger.act.client import Api
from imagestream_trigger.api import ApiResource
from imagestream_trigger.errors import ApiError, GoneError
from imagestream_trigger.watch import Watch, list_each, list_pages, scopes

DEPLOYMENTS = ApiResource("apps", "v1", "deployments")


def deployment(name: str, version: str, namespace: str = "demo") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "resourceVersion": version}}


class ScriptedApi:
    """Answers lists from ``pages`` and each watch request with the next script entry:
    a list of events (then the stream ends) or an exception."""

    def __init__(self, pages: list[dict[str, Any]], watches: list[Any]) -> None:
        self.pages = pages
        self.watches = watches
        self.lists: list[dict[str, str]] = []
        self.watched_from: list[str] = []
        self.done = asyncio.Event()

    async def with_retries(self, method: str, path: str, **kwargs: Any) -> Any:
        assert method == "GET"
        self.lists.append(dict(kwargs["params"]))
        return self.pages.pop(0)

    async def watch(self, path: str, *, resource_version: str, resource: str) -> AsyncIterator[Any]:
        self.watched_from.append(resource_version)
        if not self.watches:
            self.done.set()
            await asyncio.Event().wait()  # a quiet watch: until cancelled
        step = self.watches.pop(0)
        if isinstance(step, BaseException):
            raise step
        for event in step:
            yield event


async def run(api: ScriptedApi, since: str) -> tuple[list[tuple[str | None, str]], list[Any]]:
    events: list[tuple[str | None, str]] = []
    relisted: list[Any] = []
    watch = Watch(
        cast(Api, api),
        DEPLOYMENTS,
        "Deployment",
        "demo",
        on_event=lambda kind, body: events.append((kind, body["metadata"]["name"])),
        on_relisted=lambda namespace, present: relisted.append((namespace, sorted(present))),
    )
    task = asyncio.create_task(watch.run(since))
    await asyncio.wait_for(api.done.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return events, relisted


async def test_a_watch_resumes_from_the_last_resource_version_it_saw() -> None:
    api = ScriptedApi(
        [],
        [
            [{"type": "ADDED", "object": deployment("a", "11")}],
            [
                {"type": "BOOKMARK", "object": deployment("", "15")},
                {"type": "MODIFIED", "object": deployment("a", "16")},
            ],
        ],
    )
    events, relisted = await run(api, "10")
    assert api.watched_from == ["10", "11", "16"]  # the server ended each stream: resumed
    assert events == [("ADDED", "a"), ("MODIFIED", "a")]  # the bookmark is not an event
    assert api.lists == []
    assert relisted == []


async def test_410_lists_again_delivers_what_is_there_and_reports_the_rest_gone() -> None:
    api = ScriptedApi(
        [{"metadata": {"resourceVersion": "40"}, "items": [deployment("b", "33")]}],
        [GoneError("too old", status=410), [{"type": "DELETED", "object": deployment("b", "41")}]],
    )
    events, relisted = await run(api, "10")
    assert api.watched_from == ["10", "40", "41"]
    assert events == [(None, "b"), ("DELETED", "b")]
    # What the relist lacks was deleted meanwhile: intake.forget_missing compares.
    assert relisted == [("demo", [("demo", "b")])]


async def test_errors_back_off_briefly_and_never_give_up(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(watch_module.asyncio, "sleep", sleep)
    outage = [ApiError("connection refused") for _ in range(6)]
    api = ScriptedApi([], [*outage, [{"type": "ADDED", "object": deployment("c", "12")}]])
    events, _ = await run(api, "10")
    assert slept == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]  # capped: back within 2 s of recovery
    assert events == [("ADDED", "c")]
    assert api.watched_from[-1] == "12"


async def test_list_pages_follows_continue_tokens_and_fills_in_the_kind() -> None:
    api = ScriptedApi(
        [
            {"metadata": {"continue": "t1"}, "items": [{"metadata": {"name": "a"}}]},
            {"metadata": {"resourceVersion": "9"}, "items": [{"metadata": {"name": "b"}}]},
        ],
        [],
    )
    items, version = await list_pages(cast(Api, api), DEPLOYMENTS, "demo", "Deployment")
    assert version == "9"
    assert [i["metadata"]["name"] for i in items] == ["a", "b"]
    assert {(i["kind"], i["apiVersion"]) for i in items} == {("Deployment", "apps/v1")}
    assert api.lists == [{"limit": "500"}, {"limit": "500", "continue": "t1"}]


class Page(dict[str, Any]):
    """A LIST page that can be watched for its release (a plain dict cannot)."""


async def test_list_each_hands_over_each_page_and_lets_it_go_before_the_next() -> None:
    pages = [
        Page({"metadata": {"continue": "t1"}, "items": [deployment("a", "1")]}),
        Page({"metadata": {"continue": "t2"}, "items": [deployment("b", "2")]}),
        Page({"metadata": {"resourceVersion": "9"}, "items": [deployment("c", "3")]}),
    ]
    alive = [weakref.ref(page) for page in pages]
    api = ScriptedApi(pages, [])
    del pages  # only the API holds them now, and gives each away once
    held_at_fetch: list[list[bool]] = []
    fetch = api.with_retries

    async def with_retries(method: str, path: str, **kwargs: Any) -> Any:
        held_at_fetch.append([r() is not None for r in alive])
        return await fetch(method, path, **kwargs)

    api.with_retries = with_retries  # type: ignore[method-assign]
    seen: list[tuple[str, int]] = []

    def each(item: dict[str, Any]) -> None:
        seen.append((item["metadata"]["name"], len(api.lists)))

    version = await list_each(cast(Api, api), DEPLOYMENTS, "demo", "Deployment", each)
    assert version == "9"
    # Each object is handed over before the next page is asked for...
    assert seen == [("a", 1), ("b", 2), ("c", 3)]
    # ...and no page is held while the next one is fetched: a listing is never held whole.
    assert held_at_fetch == [[True, True, True], [False, True, True], [False, False, True]]


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [((), [""]), (("a", "b"), ["a", "b"]), (("a", "team-*"), [""]), (("!kube-system",), [""])],
)
def test_scopes(patterns: tuple[str, ...], expected: list[str]) -> None:
    assert scopes(patterns) == expected
