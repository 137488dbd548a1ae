"""A lean list-and-watch of our own, for the resources we write to (workloads, BuildConfigs).

Why not kopf here: every write we make comes back as a watch event, and kopf's
per-event machinery (a worker per object, causes, a deep copy for its diff
base) cost a third of the operator's CPU in a burst, only to find it was our
own echo (bench/analysis.md). Here an event is decoded and handed to intake,
which drops an echo after one comparison. ImageStreams and ImageTriggers stay
with kopf, as the product is designed.

The loop: list in pages, then watch from the list's resourceVersion, resuming
from the last one seen whenever the server ends a watch; on 410 Gone, list
again and tell intake which objects are gone; on errors, back off briefly
(capped at ``MAX_BACKOFF_S``, so a change made right after an API outage is
seen within seconds) and never give up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from imagestream_trigger.act.client import JSON, METADATA_ONLY, Api, api_path, paged
from imagestream_trigger.api import ApiResource
from imagestream_trigger.errors import ApiError, GoneError

log = logging.getLogger(__name__)

PAGE = 500
BACKOFFS_S = (0.25, 0.5, 1.0, 2.0)
MAX_BACKOFF_S = BACKOFFS_S[-1]

# (event type or None for a listed object, body)
OnEvent = Callable[[str | None, Mapping[str, Any]], None]
# (the namespace listed, "" for all; the (namespace, name) of every object the relist found)
OnRelisted = Callable[[str, set[tuple[str, str]]], None]


async def list_each(
    api: Api,
    resource: ApiResource,
    namespace: str,
    kind: str,
    each: Callable[[dict[str, Any]], None],
    *,
    metadata_only: bool = False,
) -> str:
    """Hand every object (kind and apiVersion filled in, as a watch event has them) to
    ``each`` as its page arrives, and return the list's resourceVersion.

    ``metadata_only``: each object's metadata only (its kind then reads
    PartialObjectMetadata), when the names are all that is wanted.

    One page is alive at a time: a large cluster's listing is never held whole (held
    whole, 13,500 Deployments were the operator's peak memory).
    """
    path = api_path(resource.group, resource.version, resource.plural, namespace)
    api_version = _api_version(resource)
    version = ""
    accept = METADATA_ONLY if metadata_only else JSON
    async for page in paged(api, path, resource=resource.plural, limit=PAGE, accept=accept):
        for item in page.get("items") or []:
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
            each(item)
        version = str((page.get("metadata") or {}).get("resourceVersion") or "")
        del page  # not kept alive while the next one is fetched
    return version


async def list_pages(
    api: Api, resource: ApiResource, namespace: str, kind: str
) -> tuple[list[dict[str, Any]], str]:
    """Every object (see ``list_each``), held together, and the list's resourceVersion."""
    items: list[dict[str, Any]] = []
    version = await list_each(api, resource, namespace, kind, items.append)
    return items, version


def _api_version(resource: ApiResource) -> str:
    return f"{resource.group}/{resource.version}" if resource.group else resource.version


class Watch:
    def __init__(
        self,
        api: Api,
        resource: ApiResource,
        kind: str,
        namespace: str,
        *,
        on_event: OnEvent,
        on_relisted: OnRelisted,
        selected: Callable[[str], bool] = lambda namespace: True,
    ) -> None:
        self.api = api
        self.resource = resource
        self.kind = kind
        self.namespace = namespace  # "" = all namespaces
        self.on_event = on_event
        self.on_relisted = on_relisted
        self.selected = selected
        self.events = 0
        self.relists = 0

    def __str__(self) -> str:
        where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
        return f"{self.resource.plural} in {where}"

    async def run(self, resource_version: str) -> None:
        """Watch from ``resource_version`` (from the start-up listing) until cancelled."""
        failures = 0
        path = api_path(
            self.resource.group, self.resource.version, self.resource.plural, self.namespace
        )
        while True:
            try:
                if not resource_version:
                    resource_version = await self._relist()
                async for event in self.api.watch(
                    path, resource_version=resource_version, resource=self.resource.plural
                ):
                    failures = 0
                    kind, body = event.get("type"), event.get("object") or {}
                    version = (body.get("metadata") or {}).get("resourceVersion")
                    if version:
                        resource_version = str(version)
                    if kind == "BOOKMARK" or kind not in ("ADDED", "MODIFIED", "DELETED"):
                        continue
                    self.events += 1
                    self._deliver(kind, body)
                failures = 0  # the server ended the watch (its timeout): resume at once
            except GoneError:
                log.info("%s: resourceVersion %s expired; listing again", self, resource_version)
                resource_version = ""
            except ApiError as error:
                delay = BACKOFFS_S[min(failures, len(BACKOFFS_S) - 1)]
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning("%s: watch failed (%s); retrying every %.1fs", self, error, delay)
                await asyncio.sleep(delay)
            except ValueError as error:  # a line that is not JSON: start over cleanly
                log.warning("%s: unreadable watch event (%s); listing again", self, error)
                resource_version = ""

    async def _relist(self) -> str:
        present: set[tuple[str, str]] = set()

        def listed(item: dict[str, Any]) -> None:
            meta = item.get("metadata") or {}
            namespace, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
            if self.selected(namespace):
                present.add((namespace, name))
                self._deliver(None, item)

        version = await list_each(self.api, self.resource, self.namespace, self.kind, listed)
        self.relists += 1
        self.on_relisted(self.namespace, present)
        log.info("%s: listed again, %d objects", self, len(present))
        return version

    def _deliver(self, kind: str | None, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        if not self.selected(str(meta.get("namespace") or "")):
            return
        if isinstance(body, dict):
            body.setdefault("kind", self.kind)
            body.setdefault("apiVersion", _api_version(self.resource))
        self.on_event(kind, body)


def scopes(namespaces: Iterable[str]) -> list[str]:
    """Namespaces to list and watch one by one; [""] (all) when any pattern is a glob."""
    names = list(namespaces)
    exact = [ns for ns in names if not any(c in ns for c in "*?[!")]
    return exact if exact and len(exact) == len(names) else [""]
