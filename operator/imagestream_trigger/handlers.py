"""kopf wiring, and nothing else: each handler is a few lines that delegate.

Only ``@kopf.on.event`` is used, on every resource: it never writes to the
watched objects (no diff-base annotation, no finalizer), which matters because
ImageStreams and workloads are not ours. Each event first updates our own
in-memory index of that resource (already filled by ``runner.prime`` before
kopf starts), then asks the reconciler what to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from imagestream_trigger import index
from imagestream_trigger.api import (
    IMAGESTREAM_RESOURCE,
    IMAGETRIGGER_RESOURCE,
    TARGET_RESOURCES,
    WORKLOAD_KINDS,
    ApiResource,
    TargetKind,
)
from imagestream_trigger.reconciler import Reconciler
from imagestream_trigger.settings import Settings
from imagestream_trigger.world import BY_KIND, STREAMS, TRIGGERS

log = logging.getLogger(__name__)

# How each resource's objects are projected into index keys.
Projector = Callable[[Mapping[str, Any]], Mapping[index.Key, object]]


def projectors(settings: Settings) -> dict[str, tuple[ApiResource, Projector]]:
    """Index id -> (resource, projection), for every resource the operator follows."""
    native = settings.native_annotations
    found: dict[str, tuple[ApiResource, Projector]] = {
        STREAMS: (IMAGESTREAM_RESOURCE, index.stream_keys),
        TRIGGERS: (IMAGETRIGGER_RESOURCE, index.trigger_keys),
    }
    for kind, index_id in BY_KIND.items():
        if kind in WORKLOAD_KINDS:
            found[index_id] = (
                TARGET_RESOURCES[kind],
                functools.partial(_workload_keys, kind, native),
            )
        else:
            found[index_id] = (TARGET_RESOURCES[kind], index.buildconfig_keys)
    return found


def _workload_keys(
    kind: TargetKind, native: bool, body: Mapping[str, Any]
) -> Mapping[index.Key, object]:
    return index.workload_keys(kind, body, native=native)


def update(local: index.LocalIndex, project: Projector, event: str | None, body: Any) -> str | None:
    """Index the event's object; returns the event type the reconciler should see.

    The initial listing (type None) normally repeats what ``runner.prime`` indexed
    and needs no fan-out. An object that appeared or changed between the prime
    and kopf's own listing is news, though: it is passed on as ADDED.
    """
    uid = str(body.get("metadata", {}).get("uid", ""))
    if event == "DELETED":
        local.remove(uid)
        return event
    changed = local.replace(uid, project(body))
    return "ADDED" if event is None and changed else event


def register(
    registry: kopf.OperatorRegistry,
    reconciler: Reconciler,
    settings: Settings,
    indexes: Mapping[str, index.LocalIndex],
) -> None:
    """Attach every handler to ``registry`` (a fresh one per operator run)."""
    project = projectors(settings)
    streams, stream_projector = project[STREAMS]

    @kopf.on.event(
        streams.group, streams.version, streams.plural, id="imagestream-events", registry=registry
    )
    async def stream_event(
        type: str, body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> None:
        event = update(indexes[STREAMS], stream_projector, type, body)
        info = None if event == "DELETED" else index.stream_info(body)
        await reconciler.on_stream(event, info, (namespace or "", name))

    for kind, index_id in BY_KIND.items():
        resource, projector = project[index_id]
        _register_target(registry, reconciler, kind, resource, indexes[index_id], projector)

    triggers, trigger_projector = project[TRIGGERS]

    @kopf.on.event(
        triggers.group,
        triggers.version,
        triggers.plural,
        id="imagetrigger-events",
        registry=registry,
    )
    async def trigger_event(
        type: str, body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> None:
        if update(indexes[TRIGGERS], trigger_projector, type, body) == "DELETED":
            reconciler.forget_trigger(namespace or "", name)
        else:
            await reconciler.reconcile_trigger(namespace or "", name)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # The same sources as our own client (act/client.py), in the same order.
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # We post our own Events (on transitions); kopf's would be about kopf.
        settings.posting.enabled = False
        settings.watching.server_timeout = 300
        # Memory: list large clusters in pages, and let a per-object worker (holding the
        # object's last body) go soon after its event was handled.
        settings.watching.chunk_size = 500
        settings.queueing.idle_timeout = 1.0
        settings.networking.error_backoffs = [1, 2, 5, 10, 30]

    @kopf.on.startup(registry=registry)
    async def start_resync(memo: kopf.Memo, **_: Any) -> None:
        memo["resync"] = asyncio.create_task(_resync_forever(reconciler, settings.resync_seconds))

    @kopf.on.cleanup(registry=registry)
    async def stop_resync(memo: kopf.Memo, **_: Any) -> None:
        task = memo.get("resync")
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _register_target(
    registry: kopf.OperatorRegistry,
    reconciler: Reconciler,
    kind: TargetKind,
    resource: ApiResource,
    local: index.LocalIndex,
    projector: Projector,
) -> None:
    async def target_event(
        type: str, body: kopf.Body, namespace: str | None, name: str, **_: Any
    ) -> None:
        event = update(local, projector, type, body)
        if event == "DELETED":
            await reconciler.on_target_deleted(kind, namespace or "", name)
        else:
            await reconciler.on_target(kind, namespace or "", name, event)

    kopf.on.event(
        resource.group,
        resource.version,
        resource.plural,
        id=f"{resource.plural}-events",
        registry=registry,
    )(target_event)


async def _resync_forever(reconciler: Reconciler, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await reconciler.resync()
        except Exception:  # the safety net must never take the operator down
            log.exception("periodic resync failed; will try again in %.0fs", every)
