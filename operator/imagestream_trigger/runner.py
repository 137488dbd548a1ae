"""Start the operator: pre-flight checks with errors a person can act on, then kopf.

The checks run before any watch starts because kopf, left alone, reports a
missing CRD or permission as a retry loop or a stopped watcher; here each
becomes one sentence naming what is missing and how to fix it.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import time
from dataclasses import dataclass

import kopf

from imagestream_trigger import handlers
from imagestream_trigger.act.client import Api
from imagestream_trigger.api import (
    GROUP,
    IMAGESTREAM_RESOURCE,
    IMAGETRIGGER_RESOURCE,
    KIND,
    TARGET_RESOURCES,
    VERSION,
)
from imagestream_trigger.errors import ApiError, ConfigurationError, NotFoundError
from imagestream_trigger.index import LocalIndex
from imagestream_trigger.reconciler import Reconciler
from imagestream_trigger.report.events import Events
from imagestream_trigger.report.metrics import Metrics
from imagestream_trigger.settings import Settings
from imagestream_trigger.world import IndexWorld

log = logging.getLogger(__name__)

PRIME_PAGE = 500
# A LIST's items carry no kind; the projections need it, as a watch event has it.
KINDS = {
    IMAGESTREAM_RESOURCE.plural: "ImageStream",
    IMAGETRIGGER_RESOURCE.plural: KIND,
    **{resource.plural: str(kind) for kind, resource in TARGET_RESOURCES.items()},
}


@dataclass(frozen=True)
class Permission:
    verb: str
    group: str
    resource: str
    subresource: str = ""

    def __str__(self) -> str:
        name = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return f"{self.verb} {name}.{self.group}" if self.group else f"{self.verb} {name}"


def required_permissions(settings: Settings) -> list[Permission]:
    """What the operator does, hence what its ServiceAccount must be allowed."""
    wanted = [
        Permission(verb, IMAGESTREAM_RESOURCE.group, IMAGESTREAM_RESOURCE.plural)
        for verb in ("list", "watch")
    ]
    for resource in TARGET_RESOURCES.values():
        wanted += [Permission(v, resource.group, resource.plural) for v in ("list", "watch")]
        if resource.plural == "buildconfigs":
            wanted.append(Permission("create", resource.group, "buildconfigs", "instantiate"))
            # OpenShift also checks the build strategy when instantiating.
            wanted += [
                Permission("create", resource.group, "builds", strategy)
                for strategy in ("docker", "source", "custom", "jenkinspipeline")
            ]
        elif not settings.dry_run:
            wanted.append(Permission("patch", resource.group, resource.plural))
    wanted += [
        Permission("list", GROUP, IMAGETRIGGER_RESOURCE.plural),
        Permission("watch", GROUP, IMAGETRIGGER_RESOURCE.plural),
        Permission("patch", GROUP, IMAGETRIGGER_RESOURCE.plural, "status"),
        Permission("create", "", "events"),
    ]
    return wanted


async def preflight(api: Api, settings: Settings) -> None:
    """Fail fast, and clearly, when the cluster cannot serve this operator."""
    try:
        version = await api.request("GET", "/version", resource="version", request_timeout=10)
    except ApiError as error:
        host = api.client.configuration.host
        raise ConfigurationError(
            f"cannot reach the Kubernetes API at {host}: {error}. Check KUBECONFIG "
            "(or the in-cluster ServiceAccount) and that the cluster is up."
        ) from None
    log.info(
        "connected to %s (Kubernetes %s)",
        api.client.configuration.host,
        (version or {}).get("gitVersion", "?"),
    )
    for group_version, what, fix in (
        (
            f"{GROUP}/{VERSION}",
            "the ImageTrigger CRD (imagetriggers.imagestream-trigger.dev)",
            "kubectl apply -f manifests/crd/",
        ),
        (
            "image.openshift.io/v1",
            "OpenShift's ImageStream API (image.openshift.io/v1)",
            "run on OpenShift, or install the emulation CRDs used by the tests",
        ),
    ):
        try:
            await api.request(
                "GET", f"/apis/{group_version}", resource="discovery", request_timeout=10
            )
        except NotFoundError:
            raise ConfigurationError(f"{what} is not served by this cluster: {fix}") from None
        except ApiError as error:
            raise ConfigurationError(
                f"cannot read discovery for {group_version}: {error}"
            ) from None

    namespaces = [ns for ns in settings.namespaces if not any(c in ns for c in "*?[!")] or [""]
    missing: list[str] = []
    for namespace in namespaces:
        for permission in required_permissions(settings):
            attributes = {
                "verb": permission.verb,
                "group": permission.group,
                "resource": permission.resource,
                "namespace": namespace,
            }
            if permission.subresource:
                attributes["subresource"] = permission.subresource
            review = await api.request(
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                body={
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": attributes},
                },
                resource="selfsubjectaccessreviews",
            )
            if not (review or {}).get("status", {}).get("allowed"):
                where = f'in namespace "{namespace}"' if namespace else "cluster-wide"
                missing.append(f"{permission} ({where})")
    if missing:
        raise ConfigurationError(
            "the operator's ServiceAccount lacks permissions it needs: "
            + "; ".join(missing)
            + ". Apply manifests/rbac (or the Helm chart's ClusterRole)."
        )


def namespace_selected(namespace: str, patterns: tuple[str, ...]) -> bool:
    """kopf's namespace rules: any pattern matches (globs allowed), no '!pattern' does."""
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]
    return (not include or any(fnmatch.fnmatchcase(namespace, p) for p in include)) and not any(
        fnmatch.fnmatchcase(namespace, p) for p in exclude
    )


async def prime(api: Api, settings: Settings, indexes: dict[str, LocalIndex]) -> None:
    """Fill every index from one paginated LIST per resource, before kopf watches.

    Every decision then sees every stream, workload and trigger from the first
    event on, as kopf's own indexes would guarantee, but in linear time.
    """
    started = time.monotonic()
    exact = [ns for ns in settings.namespaces if not any(c in ns for c in "*?[!")]
    scopes = exact if exact and len(exact) == len(settings.namespaces) else [""]
    for index_id, (resource, project) in handlers.projectors(settings).items():
        for namespace in scopes:
            base = f"/apis/{resource.group}/{resource.version}"
            base += (
                f"/namespaces/{namespace}/{resource.plural}" if namespace else f"/{resource.plural}"
            )
            token = ""
            while True:
                query = f"?limit={PRIME_PAGE}" + (f"&continue={token}" if token else "")
                try:
                    page = await api.with_retries("GET", base + query, resource=resource.plural)
                except NotFoundError:
                    log.info("%s are not served here: nothing to follow there", resource.plural)
                    break
                for item in page.get("items") or []:
                    meta = item.get("metadata", {})
                    if namespace_selected(meta.get("namespace", ""), settings.namespaces):
                        item.setdefault("kind", KINDS[resource.plural])
                        item.setdefault("apiVersion", f"{resource.group}/{resource.version}")
                        indexes[index_id].replace(str(meta.get("uid", "")), project(item))
                token = (page.get("metadata") or {}).get("continue") or ""
                if not token:
                    break
    sizes = ", ".join(
        f"{index_id.removesuffix('_index')}: {len(i)}" for index_id, i in indexes.items()
    )
    log.info("indexed in %.1fs: %s", time.monotonic() - started, sizes)


async def run(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    metrics = Metrics()
    try:
        api = await Api.connect(metrics, pool=max(8, settings.max_concurrent_writes * 2))
    except Exception as error:  # the client's config loaders raise many kinds of errors
        raise ConfigurationError(
            f"no usable Kubernetes credentials: {error}. In a pod the ServiceAccount is used; "
            "elsewhere set KUBECONFIG or create ~/.kube/config."
        ) from None
    try:
        await preflight(api, settings)
        if settings.metrics_port:
            metrics.serve(settings.metrics_port, settings.bind_address)
            log.info(
                "metrics on http://%s:%d/metrics", settings.bind_address, settings.metrics_port
            )
        reconciler = Reconciler(settings, api, metrics, Events(api))
        indexes = {index_id: LocalIndex() for index_id in handlers.projectors(settings)}
        await prime(api, settings, indexes)
        reconciler.world = IndexWorld(indexes)
        registry = kopf.OperatorRegistry()
        handlers.register(registry, reconciler, settings, indexes)
        liveness = (
            f"http://{settings.bind_address}:{settings.health_port}/healthz"
            if settings.health_port
            else None
        )
        scope = "all namespaces" if settings.clusterwide else ", ".join(settings.namespaces)
        log.info(
            "watching %s%s",
            scope,
            " (dry run: nothing will be written)" if settings.dry_run else "",
        )
        await kopf.operator(
            registry=registry,
            clusterwide=settings.clusterwide,
            namespaces=list(settings.namespaces),
            standalone=True,
            liveness_endpoint=liveness,
            # None: kopf handles SIGINT/SIGTERM itself (and waits on nothing else).
            stop_flag=stop,
        )
    finally:
        await api.close()
