"""The plugin's only I/O: the user's credentials, the LISTs that fill the indexes, suspend/resume.

Credentials are the user's own, found by ``act.client.Api.connect`` exactly as the
operator finds its own (``$KUBECONFIG`` or ``~/.kube/config``; in a pod its
ServiceAccount), so the plugin sees what the user may see. Each resource is read
with one paginated LIST (``watch.list_pages``) and loaded through ``Intake.load``,
as the operator's start-up listing loads it. The one write is a merge patch of an
ImageTrigger's ``spec.suspend`` or ``spec.approvedImage``.

Every failure becomes a ``CommandError``: one sentence and an exit code (2 for
credentials, 1 for what the API answered).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from kubernetes.aio import config as k8s_config

from imagestream_trigger.act.client import MERGE_PATCH, Api, api_path
from imagestream_trigger.api import IMAGESTREAM_RESOURCE, IMAGETRIGGER_RESOURCE, ApiResource
from imagestream_trigger.errors import (
    ApiError,
    ConflictError,
    ImagestreamTriggerError,
    NotFoundError,
)
from imagestream_trigger.index import Indexes
from imagestream_trigger.inflight import Overlay
from imagestream_trigger.intake import IMAGETRIGGER, Intake
from imagestream_trigger.kinds import KINDS
from imagestream_trigger.plugin.explain import Snapshot
from imagestream_trigger.settings import ENV_PREFIX
from imagestream_trigger.watch import list_pages

SERVICE_ACCOUNT_NAMESPACE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
# The operator's setting, read from the same variable: it changes how a Local tag resolves.
INTERNAL_REGISTRY_ENV: Final = ENV_PREFIX + "INTERNAL_REGISTRY_HOSTNAME"
# What the operator lists at start-up (runner.prime), in the same order.
LISTED: Final[tuple[tuple[str, ApiResource], ...]] = (
    ("ImageStream", IMAGESTREAM_RESOURCE),
    (IMAGETRIGGER, IMAGETRIGGER_RESOURCE),
    *((str(kind), spec.resource) for kind, spec in KINDS.items()),
)
DIGEST: Final = re.compile(r"sha256:[0-9a-f]{64}")
CRD_MISSING: Final = (
    "the ImageTrigger API (imagetriggers.imagestream-trigger.dev) is not served by this "
    "cluster: install the operator's CRD (kubectl apply -f manifests/crd/)"
)


class CommandError(ImagestreamTriggerError):
    """What the user is told, in one line, and the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(" ".join(message.split()))
        self.code = code


def resource_name(resource: ApiResource) -> str:
    """ "deployments.apps", as kubectl names a resource in its errors."""
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


def scope(namespace: str) -> str:
    return f'in namespace "{namespace}"' if namespace else "in all namespaces"


def api_failure(error: ApiError, api: Api, doing: str) -> CommandError:
    """One sentence for a failed request: what was being done, and the server's words."""
    if error.status is None:
        cause = error.__cause__ or error
        return CommandError(
            f"cannot reach the Kubernetes API at {api.server} ({cause}); check KUBECONFIG "
            "and that the cluster is up"
        )
    if error.status == 401:
        return CommandError(
            f"the Kubernetes API at {api.server} refused your credentials (401 Unauthorized): "
            "log in again (oc login) or check KUBECONFIG",
            code=2,
        )
    if error.status == 403:
        return CommandError(f"you may not {doing}: {error.server_message}")
    return CommandError(f"cannot {doing}: HTTP {error.status}: {error.server_message}")


def _kubeconfig_problem() -> str | None:
    """Why no kubeconfig can be read, in kubectl's terms; None when one may be."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        return None  # in a pod: its ServiceAccount
    named = os.environ.get("KUBECONFIG")
    if named:
        paths = [p for p in named.split(os.pathsep) if p]
        if not any(Path(p).expanduser().is_file() for p in paths):
            return f"KUBECONFIG names no readable file ({named})"
        return None
    default = Path.home() / ".kube" / "config"
    return None if default.is_file() else f"KUBECONFIG is not set and {default} does not exist"


async def connect() -> Api:
    problem = _kubeconfig_problem()
    if problem is not None:
        raise CommandError(
            f"no Kubernetes credentials: {problem}; set KUBECONFIG or log in (oc login)", code=2
        )
    try:
        return await Api.connect()
    except Exception as error:  # the client's config loaders raise many kinds of errors
        raise CommandError(
            f"no usable Kubernetes credentials: {error}. Set KUBECONFIG or log in (oc login)",
            code=2,
        ) from None


def default_namespace() -> str:
    """The namespace kubectl would use without -n: the current context's, else "default"."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        try:
            return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
        except OSError:
            return "default"
    try:
        # The client's config loaders are not annotated.
        _, current = k8s_config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
    except Exception:  # no context: Api.connect has said so already, or will
        return "default"
    context = current.get("context") if isinstance(current, Mapping) else None
    namespace = context.get("namespace") if isinstance(context, Mapping) else None
    return namespace if isinstance(namespace, str) and namespace else "default"


async def snapshot(api: Api, namespace: str) -> Snapshot:
    """Everything the operator would index, ``namespace`` only ("" = all namespaces).

    Source ImageStreams in other namespaces are read one by one: the answer depends on
    them. One the user may not read is remembered as unreadable, not as missing.
    """
    indexes = Indexes()
    intake = Intake(
        indexes,
        Overlay(),
        native=True,
        internal_registry=os.environ.get(INTERNAL_REGISTRY_ENV, ""),
    )
    found = Snapshot(indexes)

    async def listing(kind: str, resource: ApiResource) -> list[dict[str, Any]]:
        try:
            items, _ = await list_pages(api, resource, namespace, kind)
        except NotFoundError:
            found.notes.append(f"{resource_name(resource)} is not served by this cluster")
            return []
        except ApiError as error:
            hint = " (try -n NAMESPACE)" if error.status == 403 and not namespace else ""
            raise api_failure(
                error, api, f"list {resource_name(resource)} {scope(namespace)}{hint}"
            ) from None
        return items

    listed = await asyncio.gather(*(listing(kind, resource) for kind, resource in LISTED))
    for (kind, _), items in zip(LISTED, listed, strict=True):
        for item in items:
            intake.load(kind, item)
            if kind == IMAGETRIGGER:
                meta, spec = item.get("metadata") or {}, item.get("spec")
                targets = spec.get("targets") if isinstance(spec, Mapping) else None
                key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
                found.raw_targets[key] = targets if isinstance(targets, list) else []
    found.notes.sort()
    if namespace:
        await _other_streams(api, intake, found, namespace)
    return found


async def _other_streams(api: Api, intake: Intake, found: Snapshot, namespace: str) -> None:
    indexes = intake.indexes
    sources = {t.source for t in indexes.triggers if t.source is not None}
    sources |= {t.source for w in indexes.workloads.annotated() for t in w.triggers}
    wanted = sorted(
        {(s.namespace, s.stream) for s in sources if s.namespace != namespace}
        - {(s.namespace, s.name) for s in indexes.streams}
    )
    r = IMAGESTREAM_RESOURCE

    async def read(stream_namespace: str, name: str) -> None:
        path = api_path(r.group, r.version, r.plural, stream_namespace, name)
        try:
            body = await api.with_retries("GET", path, resource=r.plural)
        except NotFoundError:
            return
        except ApiError as error:
            if error.status == 403:
                found.unreadable[(stream_namespace, name)] = "forbidden"
                return
            raise api_failure(error, api, f"read ImageStream {stream_namespace}/{name}") from None
        if isinstance(body, dict):
            intake.load("ImageStream", body)

    await asyncio.gather(*(read(ns, name) for ns, name in wanted))


def _trigger_path(namespace: str, name: str) -> str:
    r = IMAGETRIGGER_RESOURCE
    return api_path(r.group, r.version, r.plural, namespace, name)


async def get_trigger(api: Api, namespace: str, name: str) -> dict[str, Any]:
    try:
        body = await api.with_retries(
            "GET", _trigger_path(namespace, name), resource=IMAGETRIGGER_RESOURCE.plural
        )
    except NotFoundError as error:
        details = error.body.get("details") if isinstance(error.body, dict) else None
        if isinstance(details, dict) and details.get("name") == name:
            raise CommandError(f'ImageTrigger "{name}" not found {scope(namespace)}') from None
        raise CommandError(CRD_MISSING) from None
    except ApiError as error:
        raise api_failure(error, api, f'read ImageTrigger "{name}" {scope(namespace)}') from None
    return body if isinstance(body, dict) else {}


async def set_suspend(api: Api, namespace: str, name: str, suspend: bool) -> bool:
    """Set ``spec.suspend``; returns its value before (unchanged: nothing is sent)."""
    body = await get_trigger(api, namespace, name)
    spec = body.get("spec")
    before = isinstance(spec, Mapping) and spec.get("suspend") is True
    if before == suspend:
        return before
    try:
        await api.request(
            "PATCH",
            _trigger_path(namespace, name),
            body={"spec": {"suspend": suspend}},
            content_type=MERGE_PATCH,
            resource=IMAGETRIGGER_RESOURCE.plural,
        )
    except ApiError as error:
        raise api_failure(error, api, f'patch ImageTrigger "{name}" {scope(namespace)}') from None
    return before


@dataclass(frozen=True, slots=True)
class Approval:
    """What ``approve`` did: the value now in spec.approvedImage, the one before, the image
    pending (status.pending.image, "" if none) and whether approval is Manual at all."""

    approved: str
    before: str
    pending: str
    manual: bool


def digest_of(image: str) -> str:
    """ "sha256:..." of a digest or a digest-pinned reference ("" if it has none)."""
    digest = image.rpartition("@")[2]
    return digest if DIGEST.fullmatch(digest) else ""


async def approve(api: Api, namespace: str, name: str, image: str | None) -> Approval:
    """Write ``spec.approvedImage`` (a merge patch: RBAC on the spec guards it). Without
    ``image``, the digest of status.pending.image, on the condition that the trigger has not
    changed since it was read (resourceVersion), so a newer pending image is never approved
    unseen."""
    body = await get_trigger(api, namespace, name)
    spec = _object(body.get("spec"))
    pending = _object(_object(body.get("status")).get("pending"))
    waiting = str(pending.get("image") or "")
    before = spec.get("approvedImage")
    before = before if isinstance(before, str) else ""
    manual = _object(spec.get("rollout")).get("approval") == "Manual"
    if image is None:
        if not waiting:
            raise CommandError(
                f'ImageTrigger "{name}" {scope(namespace)} has no image pending approval '
                "(status.pending is empty); name one with --image sha256:..."
            )
        image = digest_of(waiting) or waiting
    patch: dict[str, Any] = {"spec": {"approvedImage": image}}
    if image == before:
        return Approval(image, before, waiting, manual)
    if waiting and image == (digest_of(waiting) or waiting):
        # Approve what was read, or nothing: a newer pending image must be seen first.
        version = (body.get("metadata") or {}).get("resourceVersion")
        if version:
            patch["metadata"] = {"resourceVersion": version}
    try:
        await api.request(
            "PATCH",
            _trigger_path(namespace, name),
            body=patch,
            content_type=MERGE_PATCH,
            resource=IMAGETRIGGER_RESOURCE.plural,
        )
    except ConflictError:
        raise CommandError(
            f'ImageTrigger "{name}" {scope(namespace)} changed while approving (a newer image '
            "may be pending): run the command again"
        ) from None
    except ApiError as error:
        raise api_failure(error, api, f'patch ImageTrigger "{name}" {scope(namespace)}') from None
    return Approval(image, before, waiting, manual)


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
