"""Notifications, delivery: to a real HTTP server on 127.0.0.1 (aiohttp), never a mock.

The Kubernetes side (the Secret holding the URL) is the scripted ``FakeApi``, as in the
other unit tests; the receiver is a real server whose answers each test scripts, so what
is checked is what arrives: bodies, headers, how many attempts, and what is counted and
reported when it does not arrive.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from aiohttp import web

from imagestream_trigger.act.client import Api
from imagestream_trigger.index import TriggerInfo, trigger_info
from imagestream_trigger.report.events import Events
from imagestream_trigger.report.metrics import Metrics
from imagestream_trigger.report.notification import Notification, NotifyEvent
from imagestream_trigger.report.notifier import Notifier
from tests.unit.builders import APP, NEW, FakeApi, api_error, image_trigger

SECRETS = "/api/v1/namespaces/demo/secrets/"
TIME = "2025-01-10T12:10:03Z"


@dataclass
class Receiver:
    """An HTTP server that records each POST and answers from a script."""

    url: str = ""
    received: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    # Statuses to answer, one per request; the last one stays.
    statuses: list[int] = field(default_factory=lambda: [200])
    # Set to hold every request until it is set again.
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append((request.path, dict(request.headers), body))
        await self.gate.wait()
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return web.Response(status=status)

    def bodies(self, path: str | None = None) -> list[Any]:
        return [json.loads(b) for p, _, b in self.received if path is None or p == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    found.gate.set()
    app = web.Application()
    app.router.add_post("/{path:.*}", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}"
    yield found
    await runner.cleanup()


def secret(**data: str) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def trigger(*receivers: dict[str, Any], service_account: str | None = None) -> TriggerInfo:
    body = image_trigger([{"kind": "Deployment", "name": "web"}], service_account=service_account)
    body["spec"]["rollout"] = {"notify": list(receivers)}
    found = trigger_info(body)
    assert found.spec is not None, found.error
    return found


def receiver_of(name: str, kind: str, secret_name: str = "hooks", **more: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "secretRef": {"name": secret_name, "key": name}, **more}


@dataclass
class Rig:
    api: FakeApi = field(default_factory=FakeApi)
    metrics: Metrics = field(default_factory=Metrics)
    clock: list[float] = field(default_factory=lambda: [0.0])

    def __post_init__(self) -> None:
        api = cast(Api, self.api)
        self.events = Events(api)
        self.notifier = Notifier(
            api,
            self.events,
            self.metrics,
            first_delay=0.01,
            timeout=5.0,
            clock=lambda: self.clock[0],
        )

    def count(self, receiver: str, result: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "imagestream_trigger_notifications_total",
            {"receiver": f"demo/follow-app/{receiver}", "result": result},
        )
        return 0.0 if value is None else value

    def warnings(self) -> list[str]:
        return [
            e["message"] for _, e in self.events._backlog if e["reason"] == "NotificationFailed"
        ]

    async def settle(self, done: Callable[[], bool] = lambda: True) -> None:
        """Wait (with a deadline) until every queue is delivered and ``done()``."""
        for _ in range(500):
            if not self.notifier._queues and done():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("notifications still queued after 5 s")


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    made = Rig()
    yield made
    await made.notifier.stop()


def applied() -> Notification:
    return Notification(
        NotifyEvent.Applied, "demo", "follow-app", NEW, APP, ("Deployment/web",), "m", TIME
    )


async def test_each_type_gets_its_body_at_its_url(receiver: Receiver, rig: Rig) -> None:
    rig.api.on(
        "GET",
        SECRETS + "hooks",
        secret(slack=f"{receiver.url}/slack", json=f"{receiver.url}/json", ce=f"{receiver.url}/ce"),
    )
    found = trigger(
        receiver_of("slack", "Slack"), receiver_of("json", "JSON"), receiver_of("ce", "CloudEvents")
    )
    rig.notifier.send(found, applied())
    await rig.settle()
    by_path = {path: (headers, json.loads(body)) for path, headers, body in receiver.received}
    assert set(by_path) == {"/slack", "/json", "/ce"}
    assert by_path["/slack"][1]["text"] == "Applied: ImageTrigger demo/follow-app: m"
    assert by_path["/json"][1]["event"] == "Applied"
    assert by_path["/json"][1]["image"] == NEW
    ce_headers, ce_body = by_path["/ce"]
    assert ce_headers["ce-type"] == "dev.imagestream-trigger.rollout.applied"
    assert ce_headers["ce-specversion"] == "1.0"
    assert ce_headers["Content-Type"] == "application/json"
    assert ce_body == by_path["/json"][1] | {"id": ce_headers["ce-id"]}
    assert all(h["User-Agent"].startswith("imagestream-trigger/") for h, _ in by_path.values())
    for name in ("slack", "json", "ce"):
        assert rig.count(name, "sent") == 1
    # The Secret was read once for all three, and is kept for a while.
    assert len(rig.api.to(SECRETS + "hooks")) == 1


async def test_pending_says_which_image_waits_since_when(receiver: Receiver, rig: Rig) -> None:
    rig.api.on("GET", SECRETS + "hooks", secret(json=f"{receiver.url}/json"))
    rig.notifier.pending(trigger(receiver_of("json", "JSON")), NEW, "2025-01-10T12:00:00Z")
    await rig.settle()
    (body,) = receiver.bodies()
    assert body["event"] == "Pending"
    assert body["image"] == NEW
    assert body["trigger"] == {"namespace": "demo", "name": "follow-app"}
    assert body["source"] == {"namespace": "demo", "imageStreamTag": "app:latest"}
    assert body["targets"] == []
    assert body["message"].startswith(f"{NEW} waits for approval since 2025-01-10T12:00:00Z")


async def test_only_the_events_a_receiver_asks_for_are_sent(receiver: Receiver, rig: Rig) -> None:
    rig.api.on("GET", SECRETS + "hooks", secret(json=f"{receiver.url}/json"))
    found = trigger(receiver_of("json", "JSON", events=["Reverted", "Failed"]))
    rig.notifier.send(found, applied())
    assert not rig.notifier._queues  # nothing queued, nothing read
    assert rig.api.calls == []
    reverted = Notification(NotifyEvent.Reverted, "demo", "follow-app", NEW, APP, (), "r", TIME)
    rig.notifier.send(found, reverted)
    await rig.settle()
    assert [b["event"] for b in receiver.bodies()] == ["Reverted"]


async def test_a_busy_receiver_is_retried_with_the_same_body(receiver: Receiver, rig: Rig) -> None:
    receiver.statuses = [503, 429, 200]
    rig.api.on("GET", SECRETS + "hooks", secret(json=f"{receiver.url}/json"))
    rig.notifier.send(trigger(receiver_of("json", "JSON")), applied())
    await rig.settle()
    bodies = receiver.bodies()
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2]  # the same id: receivers may drop duplicates
    assert (rig.count("json", "retried"), rig.count("json", "sent")) == (2, 1)
    assert rig.count("json", "failed") == 0
    assert rig.warnings() == []


async def test_a_receiver_that_keeps_failing_is_given_up_after_five_attempts(
    receiver: Receiver, rig: Rig
) -> None:
    receiver.statuses = [500]
    rig.api.on("GET", SECRETS + "hooks", secret(json=f"{receiver.url}/json"))
    rig.notifier.send(trigger(receiver_of("json", "JSON")), applied())
    await rig.settle()
    assert len(receiver.received) == 5
    assert (rig.count("json", "retried"), rig.count("json", "failed")) == (4, 1)
    assert rig.warnings() == [
        "could not notify receiver json of Applied: HTTP 500 (after 5 attempts)"
    ]


@pytest.mark.parametrize("status", [400, 401, 404, 302])
async def test_a_refusal_is_not_retried(receiver: Receiver, status: int, rig: Rig) -> None:
    receiver.statuses = [status]
    rig.api.on("GET", SECRETS + "hooks", secret(json=f"{receiver.url}/json"))
    rig.notifier.send(trigger(receiver_of("json", "JSON")), applied())
    await rig.settle()
    assert len(receiver.received) == 1
    assert (rig.count("json", "retried"), rig.count("json", "failed")) == (0, 1)
    assert rig.warnings() == [f"could not notify receiver json of Applied: HTTP {status}"]


async def test_an_unreachable_receiver_is_retried_and_its_url_never_shown(
    caplog: pytest.LogCaptureFixture, rig: Rig
) -> None:
    # A port nobody listens on (the fixture's server, stopped), with a secret-looking path.
    dead = Receiver()
    app = web.Application()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()
    url = f"http://127.0.0.1:{port}/services/T0/B0/very-secret-token"
    rig.api.on("GET", SECRETS + "hooks", secret(json=url))
    caplog.set_level(logging.DEBUG)
    rig.notifier.send(trigger(receiver_of("json", "JSON")), applied())
    await rig.settle()
    assert dead.received == []
    assert (rig.count("json", "retried"), rig.count("json", "failed")) == (4, 1)
    (warning,) = rig.warnings()
    assert "connection failed" in warning
    assert "very-secret-token" not in caplog.text
    assert "very-secret-token" not in warning


async def test_a_full_queue_drops_its_oldest_and_never_blocks_the_sender(
    receiver: Receiver, rig: Rig
) -> None:
    receiver.gate.clear()  # the receiver holds every request
    rig.notifier.queue_size = 2
    rig.api.on("GET", SECRETS + "hooks", secret(json=f"{receiver.url}/json"))
    found = trigger(receiver_of("json", "JSON"))
    sent = [
        Notification(NotifyEvent.Applied, "demo", "follow-app", NEW, APP, (), f"n{i}", TIME)
        for i in range(5)
    ]
    rig.notifier.send(found, sent[0])
    for _ in range(500):  # the first one is on its way (held by the receiver)
        if receiver.received:
            break
        await asyncio.sleep(0.01)
    for n in sent[1:]:
        rig.notifier.send(found, n)  # returns at once: the queue holds 2
    assert rig.count("json", "dropped") == 2  # n1 and n2, the oldest waiting
    receiver.gate.set()
    await rig.settle()
    assert [b["message"] for b in receiver.bodies()] == ["n0", "n3", "n4"]
    assert rig.count("json", "sent") == 3


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            api_error(404),
            "cannot notify receiver json: Secret demo/hooks does not exist",
            id="404",
        ),
        pytest.param(
            secret(other="x"),
            'cannot notify receiver json: Secret demo/hooks has no key "json"',
            id="no-key",
        ),
        pytest.param(
            secret(json="ftp://files.example.com/very-secret-token"),
            'cannot notify receiver json: key "json" of Secret demo/hooks is not an http:// '
            "or https:// URL",
            id="not-http",
        ),
        pytest.param(
            secret(json="https:///very-secret-token"),
            'cannot notify receiver json: key "json" of Secret demo/hooks is a URL without a host',
            id="no-host",
        ),
        pytest.param(
            {"data": {"json": "not base64!"}},
            'cannot notify receiver json: key "json" of Secret demo/hooks is not text',
            id="not-base64",
        ),
        pytest.param(
            api_error(403),
            "cannot notify receiver json: the operator may not read Secret demo/hooks: grant it "
            "get on secrets in namespace demo (a Role and a RoleBinding)",
            id="403",
        ),
        pytest.param(
            api_error(None),
            "cannot notify receiver json: cannot read Secret demo/hooks: HTTP error",
            id="api-down",
        ),
    ],
)
async def test_an_unusable_secret_is_a_warning_on_the_trigger_never_a_traceback(
    answer: Any, expected: str, caplog: pytest.LogCaptureFixture, rig: Rig
) -> None:
    rig.api.on("GET", SECRETS + "hooks", answer)
    found = trigger(receiver_of("json", "JSON"))
    rig.notifier.send(found, applied())
    rig.notifier.send(found, applied())
    await rig.settle()
    assert rig.warnings() == [expected]  # one Warning for the same problem, not one each
    (event,) = [e for _, e in rig.events._backlog]
    assert event["involvedObject"]["kind"] == "ImageTrigger"
    assert event["involvedObject"]["name"] == "follow-app"
    assert event["type"] == "Warning"
    assert rig.count("json", "failed") == 2
    assert "Traceback" not in caplog.text
    assert "very-secret-token" not in caplog.text


async def test_the_secret_is_read_as_the_triggers_service_account(
    receiver: Receiver, rig: Rig
) -> None:
    rig.api.on("GET", SECRETS + "hooks", api_error(403), secret(json=f"{receiver.url}/json"))
    found = trigger(receiver_of("json", "JSON"), service_account="deployer")
    rig.notifier.send(found, applied())
    await rig.settle()
    (call,) = rig.api.to(SECRETS + "hooks")
    assert call.acting_as == "system:serviceaccount:demo:deployer"
    assert rig.warnings() == [
        "cannot notify receiver json: ServiceAccount demo/deployer may not read Secret "
        "demo/hooks: grant it get on secrets in namespace demo (a Role and a RoleBinding)"
    ]
    # Once granted, the next notification goes out, and the Warning may come again later.
    rig.notifier.send(found, applied())
    await rig.settle()
    assert len(receiver.received) == 1
    assert rig.notifier._warned == {}


async def test_the_url_is_read_again_after_a_minute(receiver: Receiver, rig: Rig) -> None:
    rig.api.on(
        "GET",
        SECRETS + "hooks",
        secret(json=f"{receiver.url}/old"),
        secret(json=f"{receiver.url}/new"),
    )
    found = trigger(receiver_of("json", "JSON"))
    rig.notifier.send(found, applied())
    await rig.settle()
    rig.clock[0] = 59.0
    rig.notifier.send(found, applied())
    await rig.settle()
    rig.clock[0] = 61.0
    rig.notifier.send(found, applied())
    await rig.settle()
    assert [path for path, _, _ in receiver.received] == ["/old", "/old", "/new"]
    assert len(rig.api.to(SECRETS + "hooks")) == 2


async def test_stop_delivers_what_is_queued_and_forget_drops_the_receivers(
    receiver: Receiver, rig: Rig
) -> None:
    rig.api.on("GET", SECRETS + "hooks", secret(json=f"{receiver.url}/json"))
    rig.notifier.send(trigger(receiver_of("json", "JSON")), applied())
    await rig.notifier.stop()
    assert len(receiver.received) == 1
    assert rig.notifier.tracked() == 1  # the receiver's metric series, kept with the trigger
    rig.notifier.forget("demo", "follow-app")
    assert rig.notifier.tracked() == 0
    assert rig.count("json", "sent") == 0  # its series are gone


async def test_a_receiver_forgotten_while_it_delivers_loses_its_series_once_done(
    receiver: Receiver, rig: Rig
) -> None:
    receiver.gate.clear()
    rig.api.on("GET", SECRETS + "hooks", secret(json=f"{receiver.url}/json"))
    rig.notifier.send(trigger(receiver_of("json", "JSON")), applied())
    rig.notifier.forget("demo", "follow-app")  # deleted while its notification is on its way
    receiver.gate.set()
    await rig.settle()
    assert len(receiver.received) == 1
    assert (
        rig.metrics.registry.get_sample_value(
            "imagestream_trigger_notifications_total",
            {"receiver": "demo/follow-app/json", "result": "sent"},
        )
        is None
    )
    assert rig.notifier.tracked() == 0
