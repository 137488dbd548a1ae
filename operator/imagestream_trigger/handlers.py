"""kopf wiring, and nothing else: each handler hands its event to intake and queues the wakes.

Only ``@kopf.on.event`` is used, for ImageStreams and ImageTriggers: it never
writes to the watched objects (no diff-base annotation, no finalizer), which
matters because ImageStreams are not ours. The workloads and BuildConfigs we
write to are watched by ``watch.py``.

kopf does not tell handlers when it lists again after a "410 Gone", and a
relist carries no DELETED events for what vanished meanwhile; so a listed
event (type None) after start-up schedules a sweep that lists the names and
drops from the index what is gone.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, cast

import kopf

from imagestream_trigger.act.client import Api
from imagestream_trigger.api import IMAGESTREAM_RESOURCE, IMAGETRIGGER_RESOURCE, ApiResource
from imagestream_trigger.intake import IMAGETRIGGER, Intake, Wake
from imagestream_trigger.watch import list_pages

log = logging.getLogger(__name__)

SWEEP_DELAY_S = 2.0


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: ``@kopf.on.event`` never reads one, and kopf would otherwise build
    one per event, a deep copy of the body (16% of the operator's CPU in a burst)."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class Backoffs:
    """kopf's request retries: short, and never exhausted (an outage must not stop the
    operator); re-iterable, since kopf iterates it afresh for every request."""

    def __iter__(self) -> Iterator[float]:
        return itertools.chain((0.25, 0.5, 1.0), itertools.repeat(1.5))


def register(
    registry: kopf.OperatorRegistry,
    intake: Intake,
    enqueue: Callable[[list[Wake]], None],
    api: Api,
    *,
    selected: Callable[[str], bool],
    on_stream_event: Callable[[str | None], None] = lambda type: None,
) -> None:
    """Attach every handler to ``registry`` (a fresh one per operator run)."""
    sweeps: dict[str, asyncio.TimerHandle] = {}
    started = {"done": False}

    def relisted(kind: str, resource: ApiResource) -> None:
        if not started["done"] or kind in sweeps:
            return

        async def sweep() -> None:
            sweeps.pop(kind, None)
            try:
                items, _ = await list_pages(api, resource, "", kind)
            except Exception as error:  # the next relist schedules another sweep
                log.warning("could not list %s to find deletions: %s", resource.plural, error)
                return
            present = set()
            for item in items:
                meta = item.get("metadata") or {}
                if selected(str(meta.get("namespace") or "")):
                    present.add((str(meta.get("namespace") or ""), str(meta.get("name") or "")))
            enqueue(intake.forget_missing(kind, present))

        loop = asyncio.get_running_loop()
        sweeps[kind] = loop.call_later(SWEEP_DELAY_S, lambda: loop.create_task(sweep()))

    streams = IMAGESTREAM_RESOURCE

    @kopf.on.event(
        streams.group, streams.version, streams.plural, id="imagestream-events", registry=registry
    )
    async def stream_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        on_stream_event(type)
        enqueue(intake.stream(type, body))
        if type is None:
            relisted("ImageStream", streams)

    triggers = IMAGETRIGGER_RESOURCE

    @kopf.on.event(
        triggers.group,
        triggers.version,
        triggers.plural,
        id="imagetrigger-events",
        registry=registry,
    )
    async def trigger_event(type: str | None, body: kopf.Body, **_: Any) -> None:
        enqueue(intake.trigger(type, body))
        if type is None:
            relisted(IMAGETRIGGER, triggers)

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        # The very credentials of our own client (act/client.py): one source for both.
        c = api.credentials()
        return kopf.ConnectionInfo(
            server=c.server,
            ca_path=c.ca_file,
            insecure=not c.verify,
            scheme="Bearer" if c.token else None,
            token=c.token,
            certificate_path=c.cert_file,
            private_key_path=c.key_file,
        )

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # We post our own Events (on transitions); kopf's would be about kopf.
        settings.posting.enabled = False
        settings.persistence.diffbase_storage = NoDiffBase()
        settings.watching.server_timeout = 300
        # Memory: list large clusters in pages, and let a per-object worker (holding the
        # object's last body) go soon after its event was handled.
        settings.watching.chunk_size = 500
        settings.queueing.idle_timeout = 1.0
        # Back within seconds after an API outage, and never give up on a watch.
        settings.networking.error_backoffs = Backoffs()
        settings.watching.reconnect_backoff = 0.25

    @kopf.on.startup(registry=registry)
    async def mark_started(**_: Any) -> None:
        # kopf's own first listing repeats the start-up one; only later ones are relists.
        loop = asyncio.get_running_loop()
        loop.call_later(10.0, started.update, {"done": True})
