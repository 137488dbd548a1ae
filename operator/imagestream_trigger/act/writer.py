"""The only code that writes workloads, starts builds and promotes images.

It owns what makes a write safe to repeat or to skip: the overlay of writes in
flight (``inflight.Overlay``), dry-run, the bound on concurrent writes, and the
rules of ``instantiate``. Every error becomes a ``WriteResult`` with an
``Outcome``; the caller decides what to retry and the reporter what to say.

Builds happen at most once per image, also across crashes and lost responses:

1. the intent (target, image, time) is recorded in the ImageTrigger's status
   BEFORE the POST (``BuildLog.intend``), and the POST is never retried blindly;
2. when an intent has no outcome (a crash, a timeout, a dropped response), the
   cluster is asked: the BuildConfig's Builds are listed by their
   ``openshift.io/build-config.name`` label and searched for one triggered by
   that image. That LIST is the only read a change may cost.

A write for an ImageTrigger that acts as a ServiceAccount (``identity``) is sent as
that ServiceAccount, the LIST of its Builds too, and a refusal says which right the
ServiceAccount lacks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from imagestream_trigger.act.client import JSON_PATCH, Api, api_path, is_transient, paged
from imagestream_trigger.api import IMAGESTREAM_RESOURCE, TargetKind
from imagestream_trigger.decide import ImageChange, build_request, workload_patch
from imagestream_trigger.errors import ApiError, ForbiddenError, InvalidPatchError, NotFoundError
from imagestream_trigger.identity import Right, ServiceAccount, describe_denial
from imagestream_trigger.index import BuildConfigInfo, ObjectRef, WorkloadInfo
from imagestream_trigger.inflight import Overlay, Written
from imagestream_trigger.kinds import KINDS
from imagestream_trigger.promote import Promotion, image_stream_tag
from imagestream_trigger.resolve import TagRef

log = logging.getLogger(__name__)

ALREADY_BUILT = "already instantiated a build for imageid"
BUILD_GROUP = "build.openshift.io"
IMAGE_GROUP = "image.openshift.io"
ISTAG_PLURAL = "imagestreamtags"
BUILD_CONFIG_LABEL = "openshift.io/build-config.name"
# A fault hook for tests only: exit the process right after an instantiate returned,
# before anything records its outcome. Never set in production.
FAULT_ENV = "IMAGESTREAM_TRIGGER_FAULT"


class Outcome(StrEnum):
    """What became of one write."""

    Written = "Written"  # the workload was patched / the build was started
    NothingToDo = "NothingToDo"  # by the time we held the target, it needed nothing
    DryRun = "DryRun"  # decided, not written (dry run or suspended)
    AlreadyBuilt = "AlreadyBuilt"  # the cluster already has a build of this image
    Conflict = "Conflict"  # the target changed under us (a failed ``test`` op): re-plan
    Forbidden = "Forbidden"  # 403: RBAC
    Failed = "Failed"  # any other error
    Unknown = "Unknown"  # a build request whose fate is unknown (see the docstring)

    @property
    def retry(self) -> bool:
        """Whether the key must come back through the queue's backoff."""
        return self in (Outcome.Conflict, Outcome.Forbidden, Outcome.Failed, Outcome.Unknown)


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    message: str = ""
    image: str = ""
    containers: tuple[str, ...] = ()
    build: str = ""  # the Build's name, when one was started or found
    transient: bool = False  # Failed because of the server or the network


class BuildLog(Protocol):
    """Where a trigger's build intents and outcomes are kept (its status)."""

    async def intend(self, bc: str, image: str, at: str) -> None:
        """Record the intent durably; raises ApiError when it could not be recorded."""
        ...


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Writer:
    def __init__(
        self,
        api: Api,
        *,
        dry_run: bool = False,
        max_concurrent: int = 16,
        now: Callable[[], str] = utcnow,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.api = api
        self.dry_run = dry_run
        self.overlay = Overlay()
        self._slots = asyncio.Semaphore(max_concurrent)
        self._now = now
        self._fault = (os.environ if environ is None else environ).get(FAULT_ENV, "")

    # -- workloads -------------------------------------------------------------------

    def current(self, workload: WorkloadInfo) -> WorkloadInfo:
        """The workload as it will be once our writes in flight show up in the index."""
        containers = self.overlay.apply(workload.id, workload.containers)
        if containers is workload.containers:
            return workload
        return dataclasses.replace(workload, containers=containers)

    async def patch_workload(
        self,
        workload: WorkloadInfo,
        changes: Sequence[ImageChange],
        *,
        dry_run: bool = False,
        identity: ServiceAccount | None = None,
        known_good: bool = True,
    ) -> WriteResult:
        """Write ``changes`` with one guarded JSON Patch, as ``identity`` (None: the
        operator itself); never raises. ``known_good``: see decide.workload_patch."""
        changes = still_valid(changes, self.current(workload))
        if not changes:
            return WriteResult(Outcome.NothingToDo)
        image = changes[0].new_image
        containers = tuple(c.container.key for c in changes)
        if dry_run or self.dry_run:
            return WriteResult(Outcome.DryRun, image=image, containers=containers)
        ops = workload_patch(
            workload.kind,
            changes,
            annotations=workload.annotations,
            now=self._now(),
            known_good=known_good,
        )
        writes = {c.container.key: Written(c.container.image, c.new_image) for c in changes}
        result = await self._send(workload, ops, writes, identity)
        if result.outcome is Outcome.Written:
            return WriteResult(Outcome.Written, image=image, containers=containers)
        return result

    async def revert_workload(
        self,
        workload: WorkloadInfo,
        patch: Sequence[Mapping[str, Any]],
        writes: Mapping[str, Written],
        *,
        dry_run: bool = False,
        identity: ServiceAccount | None = None,
    ) -> WriteResult:
        """Send a revert patch (gate.Revert: built against the state ``workload`` shows);
        ``writes``: container key -> (the image we wrote, the one set back). Never raises;
        a container changed meanwhile fails the patch's guards: Conflict."""
        if dry_run or self.dry_run:
            return WriteResult(Outcome.DryRun, containers=tuple(writes))
        if any(self.overlay.written(workload.id).get(key) for key in writes):
            return WriteResult(Outcome.NothingToDo)  # a write of ours to it is in flight
        return await self._send(workload, [dict(op) for op in patch], writes, identity)

    async def _send(
        self,
        workload: WorkloadInfo,
        ops: list[dict[str, Any]],
        writes: Mapping[str, Written],
        identity: ServiceAccount | None,
    ) -> WriteResult:
        """PATCH a workload with ``ops``, its image ``writes`` kept in the overlay meanwhile."""
        spec = KINDS[workload.kind]
        ref = workload.ref
        path = api_path(
            spec.resource.group,
            spec.resource.version,
            spec.resource.plural,
            ref.namespace,
            ref.name,
        )
        # Recorded before sending: the watch may bring the echo before the answer.
        self.overlay.record(workload.id, writes)
        try:
            async with self._slots:
                await self.api.with_retries(
                    "PATCH",
                    path,
                    body=ops,
                    content_type=JSON_PATCH,
                    resource=spec.resource.plural,
                    impersonate=identity,
                )
        except ApiError as error:
            self.overlay.discard(workload.id, writes)
            if isinstance(error, InvalidPatchError):
                return WriteResult(Outcome.Conflict, "changed while being updated; re-planning")
            if isinstance(error, ForbiddenError):
                attempted = Right("patch", spec.resource.plural, spec.resource.group, ref.namespace)
                return WriteResult(Outcome.Forbidden, _refusal(error, identity, attempted))
            return WriteResult(Outcome.Failed, error.server_message, transient=is_transient(error))
        return WriteResult(Outcome.Written, containers=tuple(writes))

    # -- builds ----------------------------------------------------------------------

    async def build(
        self,
        bc: BuildConfigInfo,
        source: TagRef,
        reference: str,
        *,
        ledger: BuildLog,
        recover: bool,
        dry_run: bool = False,
        identity: ServiceAccount | None = None,
    ) -> WriteResult:
        """Start one build of ``reference`` (at most once), as ``identity``; never raises.

        ``recover``: an intent for this image was recorded earlier and its outcome
        is unknown, so the cluster is asked before anything is sent.
        """
        if dry_run or self.dry_run:
            return WriteResult(Outcome.DryRun, image=reference)
        try:
            async with self._slots:
                if recover:
                    try:
                        found = await self._find_build(bc.ref, reference, identity)
                    except ForbiddenError as error:
                        attempted = Right("list", "builds", BUILD_GROUP, bc.ref.namespace)
                        message = _refusal(error, identity, attempted)
                        return WriteResult(Outcome.Forbidden, message, image=reference)
                    if found:
                        log.info("%s: found Build %s for %s", bc.ref, found, reference)
                        return WriteResult(Outcome.AlreadyBuilt, image=reference, build=found)
                await ledger.intend(bc.ref.name, reference, self._now())
                return await self._instantiate(bc, source, reference, identity)
        except ForbiddenError as error:  # the intent's status write: the operator's own
            return WriteResult(Outcome.Forbidden, error.server_message, image=reference)
        except ApiError as error:
            # The intent could not be written or the Builds could not be listed:
            # nothing was sent, so trying again later is safe.
            return WriteResult(
                Outcome.Failed, error.server_message, image=reference, transient=is_transient(error)
            )

    async def _instantiate(
        self, bc: BuildConfigInfo, source: TagRef, reference: str, identity: ServiceAccount | None
    ) -> WriteResult:
        spec = KINDS[TargetKind.BuildConfig].resource
        path = api_path(spec.group, spec.version, spec.plural, bc.ref.namespace, bc.ref.name)
        request = build_request(bc.ref.name, bc.ref.namespace, source, reference)
        try:
            build = await self.api.request(
                "POST",
                path + "/instantiate",
                body=request,
                resource="buildconfigs/instantiate",
                impersonate=identity,
            )
        except ForbiddenError as error:
            attempted = Right("create", "buildconfigs/instantiate", spec.group, bc.ref.namespace)
            message = _refusal(error, identity, attempted)
            return WriteResult(Outcome.Forbidden, message, image=reference)
        except ApiError as error:
            if ALREADY_BUILT in error.server_message:
                return WriteResult(Outcome.AlreadyBuilt, image=reference)
            if error.status is None or error.status >= 500:
                # Sent, and maybe done: only the cluster can tell (see recover).
                return WriteResult(
                    Outcome.Unknown,
                    f"the build request's outcome is unknown ({error.server_message}); "
                    "will look for its Build before sending it again",
                    image=reference,
                )
            return WriteResult(Outcome.Failed, error.server_message, image=reference)
        if self._fault == "exit-after-instantiate":
            os._exit(86)
        name = (build or {}).get("metadata", {}).get("name", "") if isinstance(build, dict) else ""
        return WriteResult(Outcome.Written, image=reference, build=str(name))

    async def _find_build(
        self, bc: ObjectRef, reference: str, identity: ServiceAccount | None
    ) -> str:
        """The name of a Build of ``bc`` triggered by ``reference``, or ""."""
        path = api_path(BUILD_GROUP, "v1", "builds", bc.namespace)
        selector = {"labelSelector": f"{BUILD_CONFIG_LABEL}={bc.name}"}
        pages = paged(self.api, path, resource="builds", params=selector, impersonate=identity)
        async for page in pages:
            for item in page.get("items") or []:
                if _triggered_by(item, reference):
                    return str(item.get("metadata", {}).get("name", ""))
        return ""

    # -- promotion -------------------------------------------------------------------

    async def promote(
        self, promotion: Promotion, *, dry_run: bool = False, identity: ServiceAccount | None
    ) -> WriteResult:
        """Tag ``promotion``'s image into its destination, as ``oc tag`` does: update the
        ImageStreamTag, create it when the server has none (oc's order); never raises."""
        to = promotion.to
        if dry_run or self.dry_run:
            return WriteResult(Outcome.DryRun, image=promotion.image.reference)
        body = image_stream_tag(promotion)
        collection = api_path(IMAGE_GROUP, "v1", ISTAG_PLURAL, to.namespace)
        verb = "update"
        try:
            async with self._slots:
                try:
                    await self.api.with_retries(
                        "PUT",
                        f"{collection}/{to.stream}:{to.tag}",
                        body=body,
                        resource=ISTAG_PLURAL,
                        impersonate=identity,
                    )
                except NotFoundError:
                    verb = "create"
                    await self.api.request(
                        "POST", collection, body=body, resource=ISTAG_PLURAL, impersonate=identity
                    )
        except ApiError as error:
            if isinstance(error, ForbiddenError):
                attempted = Right(verb, ISTAG_PLURAL, IMAGE_GROUP, to.namespace)
                return WriteResult(Outcome.Forbidden, _refusal(error, identity, attempted))
            return WriteResult(Outcome.Failed, error.server_message, transient=is_transient(error))
        return WriteResult(Outcome.Written, image=promotion.image.reference)

    # -- sources -------------------------------------------------------------------

    async def check_source(self, source: TagRef, identity: ServiceAccount) -> WriteResult | None:
        """Whether ``identity`` may read the ImageStream of ``source``: None if so, else why
        not. One impersonated GET, made only before something is written for it.

        The operator reads every stream through its own watch; without this check an
        ImageTrigger could follow a stream (in another namespace) its ServiceAccount may
        not read.
        """
        res = IMAGESTREAM_RESOURCE
        path = api_path(res.group, res.version, res.plural, source.namespace, source.stream)
        try:
            await self.api.with_retries("GET", path, resource=res.plural, impersonate=identity)
        except ForbiddenError as error:
            attempted = Right("get", res.plural, res.group, source.namespace)
            return WriteResult(Outcome.Forbidden, _refusal(error, identity, attempted))
        except ApiError as error:
            return WriteResult(Outcome.Failed, error.server_message, transient=is_transient(error))
        return None


def _refusal(error: ForbiddenError, identity: ServiceAccount | None, attempted: Right) -> str:
    """A 403's message: the server's own for the operator; for a ServiceAccount, which
    right it lacks."""
    if identity is None:
        return error.server_message
    return describe_denial(identity, attempted, error.server_message)


def _triggered_by(build: Mapping[str, Any], reference: str) -> bool:
    causes = (build.get("spec") or {}).get("triggeredBy") or []
    return any(
        isinstance(cause, Mapping)
        and ((cause.get("imageChangeBuild") or {}).get("imageID") == reference)
        for cause in causes
    )


def still_valid(changes: Sequence[ImageChange], workload: WorkloadInfo) -> tuple[ImageChange, ...]:
    """The planned changes whose container is still where, and what, the plan saw."""
    now = {(c.key, c.index): c.image for c in workload.containers}
    return tuple(
        c
        for c in changes
        if now.get((c.container.key, c.container.index)) == c.container.image
        and c.container.image != c.new_image
    )
