"""kopf wiring, and nothing else: each handler is a few lines that delegate.

Only ``@kopf.index`` and ``@kopf.on.event`` are used, on every resource: they
never write to the watched objects (no diff-base annotation, no finalizer),
which matters because ImageStreams and workloads are not ours. kopf builds the
indexes from the initial listing before any handler runs, so the first
decisions already see every stream, workload and trigger.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from imagestream_trigger import index
from imagestream_trigger.api import (
    IMAGESTREAM_RESOURCE,
    IMAGETRIGGER_RESOURCE,
    TARGET_RESOURCES,
    WORKLOAD_KINDS,
    TargetKind,
)
from imagestream_trigger.reconciler import Reconciler
from imagestream_trigger.settings import Settings
from imagestream_trigger.world import BY_KIND, STREAMS, TRIGGERS, IndexWorld

log = logging.getLogger(__name__)


def register(registry: kopf.OperatorRegistry, reconciler: Reconciler, settings: Settings) -> None:
    """Attach every handler to ``registry`` (a fresh one per operator run)."""

    def bind(kwargs: Mapping[str, Any]) -> None:
        # kopf hands indexes only to handlers; they are the same objects for the
        # whole run, so the first handler call gives them to the reconciler.
        if reconciler.world is None:
            reconciler.world = IndexWorld({k: v for k, v in kwargs.items() if k.endswith("_index")})

    streams = IMAGESTREAM_RESOURCE

    @kopf.index(streams.group, streams.version, streams.plural, id=STREAMS, registry=registry)
    async def index_stream(body: kopf.Body, **_: Any) -> dict[index.Key, object]:
        return dict(index.stream_keys(body))

    @kopf.on.event(
        streams.group, streams.version, streams.plural, id="imagestream-events", registry=registry
    )
    async def stream_event(
        type: str, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any
    ) -> None:
        bind(kwargs)
        info = None if type == "DELETED" else index.stream_info(body)
        await reconciler.on_stream(type, info, (namespace or "", name))

    for kind, index_id in BY_KIND.items():
        _register_target(registry, reconciler, settings, kind, index_id, bind)

    triggers = IMAGETRIGGER_RESOURCE

    @kopf.index(triggers.group, triggers.version, triggers.plural, id=TRIGGERS, registry=registry)
    async def index_trigger(body: kopf.Body, **_: Any) -> dict[index.Key, object]:
        return index.trigger_keys(body)

    @kopf.on.event(
        triggers.group,
        triggers.version,
        triggers.plural,
        id="imagetrigger-events",
        registry=registry,
    )
    async def trigger_event(type: str, namespace: str | None, name: str, **kwargs: Any) -> None:
        bind(kwargs)
        if type == "DELETED":
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
    settings: Settings,
    kind: TargetKind,
    index_id: str,
    bind: Any,
) -> None:
    resource = TARGET_RESOURCES[kind]
    native = settings.native_annotations

    async def index_target(body: kopf.Body, **_: Any) -> dict[index.Key, object]:
        if kind in WORKLOAD_KINDS:
            return index.workload_keys(kind, body, native=native)
        return index.buildconfig_keys(body)

    async def target_event(type: str, namespace: str | None, name: str, **kwargs: Any) -> None:
        bind(kwargs)
        if type == "DELETED":
            await reconciler.on_target_deleted(kind, namespace or "", name)
        else:
            await reconciler.on_target(kind, namespace or "", name, type)

    kopf.index(resource.group, resource.version, resource.plural, id=index_id, registry=registry)(
        index_target
    )
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
