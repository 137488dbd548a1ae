"""Start the operator: pre-flight checks with errors a person can act on, then the flow.

The checks run before any watch starts because kopf, left alone, reports a
missing CRD or permission as a retry loop or a stopped watcher; here each
becomes one sentence naming what is missing and how to fix it.

Then: every index is filled from one paginated LIST per resource, every key
is queued once (a change made while the operator was down is applied now),
the workers start, our own watches follow workloads and BuildConfigs from
their listing's resourceVersion, and kopf watches ImageStreams and
ImageTriggers until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import functools
import gc
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf

from imagestream_trigger import handlers
from imagestream_trigger.act.client import Api
from imagestream_trigger.act.writer import Writer
from imagestream_trigger.api import (
    GROUP,
    IMAGESTREAM_RESOURCE,
    IMAGETRIGGER_RESOURCE,
    VERSION,
    ApiResource,
)
from imagestream_trigger.errors import ApiError, ConfigurationError, NotFoundError
from imagestream_trigger.index import Indexes
from imagestream_trigger.intake import IMAGETRIGGER, Intake, Wake
from imagestream_trigger.kinds import KINDS
from imagestream_trigger.lease import Elector, Timing
from imagestream_trigger.reconcile import Controller, Reconciler
from imagestream_trigger.report.events import Events
from imagestream_trigger.report.health import Health
from imagestream_trigger.report.metrics import Metrics
from imagestream_trigger.report.notifier import Notifier
from imagestream_trigger.report.reporter import Reporter
from imagestream_trigger.resolve import TagRef
from imagestream_trigger.settings import IMAGE_APISERVICE, Settings, Writing, native_mode
from imagestream_trigger.watch import Watch, list_each, scopes

log = logging.getLogger(__name__)


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
    for spec in KINDS.values():
        resource = spec.resource
        wanted += [Permission(v, resource.group, resource.plural) for v in ("list", "watch")]
        if not spec.is_workload:
            wanted.append(Permission("create", resource.group, "buildconfigs", "instantiate"))
            # OpenShift also checks the build strategy when instantiating.
            wanted += [
                Permission("create", resource.group, "builds", strategy)
                for strategy in ("docker", "source", "custom", "jenkinspipeline")
            ]
            # Finding out whether a build request whose answer was lost created a Build.
            wanted.append(Permission("list", resource.group, "builds"))
        elif not settings.dry_run:
            wanted.append(Permission("patch", resource.group, resource.plural))
    if settings.default_service_account:
        # Lockdown: every ImageTrigger's writes impersonate a ServiceAccount.
        wanted.append(Permission("impersonate", "", "serviceaccounts"))
    wanted += [
        Permission("list", GROUP, IMAGETRIGGER_RESOURCE.plural),
        Permission("watch", GROUP, IMAGETRIGGER_RESOURCE.plural),
        # Removing the one-shot retry-image annotation (spec.rollout's quarantine).
        Permission("patch", GROUP, IMAGETRIGGER_RESOURCE.plural),
        Permission("patch", GROUP, IMAGETRIGGER_RESOURCE.plural, "status"),
        Permission("create", "", "events"),
    ]
    return wanted


def optional_permissions(settings: Settings) -> list[tuple[Permission, str]]:
    """What only some ImageTriggers need, with the feature it serves: missing, the operator
    starts and warns (a trimmed ClusterRole is a choice); such a trigger reports Forbidden."""
    notify = "notifications (spec.rollout.notify) cannot read their receiver's Secret"
    age = "spec.rollout.minImageAge counts from when an image was tagged, not from its build"
    wanted = [
        (Permission("get", "", "secrets"), notify),
        (Permission("get", IMAGESTREAM_RESOURCE.group, "imagestreamimages"), age),
    ]
    if settings.dry_run:
        return wanted
    promotion = "promotion (spec.rollout.promoteTo) will be refused"
    return [
        (Permission(verb, IMAGESTREAM_RESOURCE.group, "imagestreamtags"), promotion)
        for verb in ("create", "update")
    ] + wanted


async def preflight(api: Api, settings: Settings, lease_namespace: str = "") -> None:
    """Fail fast, and clearly, when the cluster cannot serve this operator."""
    try:
        version = await api.request("GET", "/version", resource="version", request_timeout=10)
    except ApiError as error:
        host = api.server
        raise ConfigurationError(
            f"cannot reach the Kubernetes API at {host}: {error}. Check KUBECONFIG "
            "(or the in-cluster ServiceAccount) and that the cluster is up."
        ) from None
    log.info(
        "connected to %s (Kubernetes %s)",
        api.server,
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
    checks = [(ns, p) for ns in namespaces for p in required_permissions(settings)]
    if lease_namespace:
        checks += [
            (lease_namespace, Permission(verb, "coordination.k8s.io", "leases"))
            for verb in ("get", "list", "watch", "create", "update")
        ]
    missing = [
        f"{permission} ({_where(namespace)})"
        for namespace, permission in checks
        if not await _allowed(api, namespace, permission)
    ]
    if missing:
        raise ConfigurationError(
            "the operator's ServiceAccount lacks permissions it needs: "
            + "; ".join(missing)
            + ". Apply manifests/rbac (or the Helm chart's ClusterRole and Role)."
        )
    lacking: dict[str, list[str]] = {}
    for namespace in namespaces:
        for permission, feature in optional_permissions(settings):
            if not await _allowed(api, namespace, permission):
                lacking.setdefault(feature, []).append(f"{permission} ({_where(namespace)})")
    for feature, permissions in lacking.items():
        log.warning(
            "the operator's ServiceAccount lacks %s: %s unless the ImageTrigger names a "
            "ServiceAccount that has it. Apply manifests/rbac (or the Helm chart's "
            "ClusterRole) to allow it.",
            "; ".join(permissions),
            feature,
        )


def _where(namespace: str) -> str:
    return f'in namespace "{namespace}"' if namespace else "cluster-wide"


async def _allowed(api: Api, namespace: str, permission: Permission) -> bool:
    """One SelfSubjectAccessReview."""
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
    return bool((review or {}).get("status", {}).get("allowed"))


async def detect_native_mode(api: Api, settings: Settings) -> tuple[Writing, str]:
    """Resolve --native-annotations=auto by asking who serves image.openshift.io."""
    if settings.native_annotations != "auto":
        return native_mode(settings.native_annotations, None)
    path = f"/apis/apiregistration.k8s.io/v1/apiservices/{IMAGE_APISERVICE}"
    try:
        found = await api.request("GET", path, resource="apiservices", request_timeout=10)
    except NotFoundError:
        return native_mode("auto", None)
    except ApiError as error:
        log.warning("cannot tell who serves image.openshift.io: %s", error)
        return native_mode("auto", None, f"the APIService {IMAGE_APISERVICE} is unreadable")
    return native_mode("auto", found if isinstance(found, Mapping) else None)


def _serves(settings: Settings, *, every_shard: bool = False) -> Callable[[str], bool]:
    """Whether a namespace's objects are this process's: its patterns, and its shard's
    namespaces unless ``every_shard`` (ImageStreams: any trigger may follow one)."""
    patterns = settings.namespaces
    shard = None if every_shard else settings.shard_spec
    if shard is None:
        return functools.partial(namespace_selected, patterns=patterns)
    return lambda namespace: shard.serves(namespace) and namespace_selected(namespace, patterns)


def namespace_selected(namespace: str, patterns: tuple[str, ...]) -> bool:
    """kopf's namespace rules: any pattern matches (globs allowed), no '!pattern' does."""
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]
    return (not include or any(fnmatch.fnmatchcase(namespace, p) for p in include)) and not any(
        fnmatch.fnmatchcase(namespace, p) for p in exclude
    )


# What the start-up listing covers: (kind, resource), kopf-watched ones first.
def _listed() -> list[tuple[str, ApiResource]]:
    return [
        ("ImageStream", IMAGESTREAM_RESOURCE),
        (IMAGETRIGGER, IMAGETRIGGER_RESOURCE),
        *((str(kind), spec.resource) for kind, spec in KINDS.items()),
    ]


async def prime(api: Api, settings: Settings, intake: Intake) -> dict[tuple[str, str], str]:
    """Fill every index from one paginated LIST per resource, before anything watches.

    Every decision then sees every stream, workload and trigger from the first
    key on, in linear time. Returns each (kind, namespace scope)'s resourceVersion,
    where our own watches start.
    """
    started = time.monotonic()
    versions: dict[tuple[str, str], str] = {}
    for kind, resource in _listed():
        for namespace in scopes(settings.namespaces):
            mine = _serves(settings, every_shard=kind == "ImageStream")
            load = functools.partial(_load_served, intake, kind, mine)
            try:
                # Page by page: the listing is never held whole.
                version = await list_each(api, resource, namespace, kind, load)
            except NotFoundError:
                log.info(
                    "%s are not served here: nothing to follow there (restart the operator "
                    "once they are)",
                    resource.plural,
                )
                continue
            versions[(kind, namespace)] = version
    sizes = ", ".join(f"{name}: {n}" for name, n in intake.indexes.sizes().items())
    log.info("indexed in %.1fs: %s", time.monotonic() - started, sizes)
    return versions


def _load_served(
    intake: Intake, kind: str, mine: Callable[[str], bool], item: Mapping[str, Any]
) -> None:
    meta = item.get("metadata") or {}
    if mine(str(meta.get("namespace") or "")):
        intake.load(kind, item)


async def _resync_forever(controller: Controller, intake: Intake, every: float) -> None:
    """Queue every key now and then: a level-triggered safety net, from memory."""
    while True:
        await asyncio.sleep(every)
        controller.enqueue(intake.everything(), background=True)


async def run(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    metrics = Metrics()
    try:
        api = await Api.connect(
            count=metrics.count_request, pool=max(8, settings.max_concurrent_writes * 2)
        )
    except Exception as error:  # the client's config loaders raise many kinds of errors
        raise ConfigurationError(
            f"no usable Kubernetes credentials: {error}. In a pod the ServiceAccount is used; "
            "elsewhere set KUBECONFIG or create ~/.kube/config."
        ) from None
    events = Events(api)
    health = Health()
    tasks: list[asyncio.Task[None]] = []
    controller: Controller | None = None
    elector: Elector | None = None
    notifier: Notifier | None = None
    try:
        if settings.health_port:
            await health.start(settings.health_port, settings.bind_address)
        place = lease_place(settings)
        await preflight(api, settings, place[0] if isinstance(place, tuple) else "")
        if settings.metrics_port:
            metrics.serve(settings.metrics_port, settings.bind_address)
            log.info(
                "metrics on http://%s:%d/metrics", settings.bind_address, settings.metrics_port
            )
        mode, why = await detect_native_mode(api, settings)
        log.info("image.openshift.io/triggers annotations: %s (%s)", mode, why)
        metrics.set_native_mode(mode)
        indexes = Indexes()
        writer = Writer(
            api, dry_run=settings.dry_run, max_concurrent=settings.max_concurrent_writes
        )

        def moved(tag: TagRef, reference: str) -> None:
            metrics.tag_changes.inc()
            log.info("tag %s moved to %s", tag, reference)

        intake = Intake(
            indexes,
            writer.overlay,
            native=mode != "off",
            on_moved=moved,
            internal_registry=settings.internal_registry_hostname,
        )
        notifier = Notifier(
            api, events, metrics, default_service_account=settings.default_service_account
        )
        reporter = Reporter(api, events, metrics, notifier)
        controller = Controller(
            Reconciler(
                indexes,
                writer,
                reporter,
                write_annotations=mode == "apply",
                default_service_account=settings.default_service_account,
            ),
            metrics,
            workers=settings.workers,
        )
        _log_identity(settings)
        # Events wait for the work queue to be idle: the writes go first (see events.py).
        events.busy = controller.busy
        versions = await prime(api, settings, intake)
        # What the listing built lives as long as its objects: out of the cyclic GC's
        # sight, or each full collection walks it all (tens of ms, at every allocation
        # that happens to trigger one, in the middle of a burst).
        gc.collect()
        gc.freeze()
        selected = _serves(settings, every_shard=True)
        mine = _serves(settings)

        _gauges(metrics, indexes)
        enqueue = controller.enqueue

        sweeper = handlers.Sweeper(api, intake, enqueue, selected=selected)
        events.start()
        if isinstance(place, str):
            log.info("leader election: %s; this replica writes", place)
            metrics.leader.set(1)
            controller.start()
            enqueue(intake.everything(), background=True)
        else:
            elector = _elect(api, settings, place, controller, intake, metrics)
            log.info(
                "leader election: Lease %s/%s as %s; standing by until it is ours",
                place[0],
                settings.lease,
                place[1],
            )
            tasks.append(asyncio.create_task(elector.run()))
        for kind, spec in KINDS.items():
            for namespace in scopes(settings.namespaces):
                if (str(kind), namespace) not in versions:
                    continue
                on_event = functools.partial(_target_event, intake, enqueue, str(kind))
                watch = Watch(
                    api,
                    spec.resource,
                    str(kind),
                    namespace,
                    on_event=on_event,
                    on_relisted=functools.partial(_relisted, intake, enqueue, sweeper, str(kind)),
                    selected=mine,
                )
                tasks.append(asyncio.create_task(watch.run(versions[(str(kind), namespace)])))
        tasks.append(
            asyncio.create_task(_resync_forever(controller, intake, settings.resync_seconds))
        )
        registry = kopf.OperatorRegistry()
        handlers.register(
            registry,
            intake,
            enqueue,
            api,
            sweeper,
            serves=mine,
            on_stream_event=lambda type: metrics.imagestream_events.labels(type or "LISTED").inc(),
        )
        # Ready once kopf's startup is done and its watchers are let go: ours run already.
        kopf_started = asyncio.Event()
        tasks.append(asyncio.create_task(health.ready_after(kopf_started)))
        stop = stop or asyncio.Event()
        if elector is not None:
            tasks.append(
                asyncio.create_task(_hand_over_on_signal(kopf_started, controller, elector, stop))
            )
        scope = "all namespaces" if settings.clusterwide else ", ".join(settings.namespaces)
        if settings.shard_spec is not None:
            scope += (
                f" (shard {settings.shard_spec}: the namespaces whose name hashes to it; "
                "ImageStreams of all)"
            )
        log.info(
            "watching %s with %d workers%s",
            scope,
            settings.workers,
            " (dry run: nothing will be written)" if settings.dry_run else "",
        )
        await kopf.operator(
            registry=registry,
            clusterwide=settings.clusterwide,
            namespaces=list(settings.namespaces),
            standalone=True,
            ready_flag=kopf_started,
            # kopf also stops on SIGINT/SIGTERM by itself, unless a leader hands over first.
            stop_flag=stop,
        )
    finally:
        health.not_ready("stopping")
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if controller is not None:
            await controller.stop()
        if elector is not None:
            # After the last write, so that the next leader may start at once.
            await elector.release()
        if notifier is not None:
            await notifier.stop()
        await events.stop()
        await api.close()
        await health.stop()


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def lease_place(
    settings: Settings,
    environ: Mapping[str, str] | None = None,
    namespace_file: Path = SERVICE_ACCOUNT_NAMESPACE,
) -> tuple[str, str] | str:
    """(namespace, identity) of this replica's Lease, or why there is no election."""
    env = os.environ if environ is None else environ
    if not settings.leader_election:
        return "off (--no-leader-election)"
    namespace = settings.lease_namespace or env.get("POD_NAMESPACE", "")
    if not namespace and namespace_file.is_file():
        namespace = namespace_file.read_text().strip()
    if not namespace:
        return "off: no namespace for the Lease outside a pod (set --lease-namespace)"
    # The pod's name survives a container restart: a restarted leader renews its own Lease
    # at once instead of waiting for it to expire.
    identity = env.get("POD_NAME") or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"
    return namespace, identity


def _elect(
    api: Api,
    settings: Settings,
    place: tuple[str, str],
    controller: Controller,
    intake: Intake,
    metrics: Metrics,
) -> Elector:
    """The elector whose transitions start and pause the workers; it gates every write."""
    pausing: set[asyncio.Task[None]] = set()

    def lead() -> None:
        metrics.leader.set(1)
        metrics.leader_transitions.inc()
        controller.start()
        # Level-triggered: what happened while standing by is found from the indexes.
        controller.enqueue(intake.everything(), background=True)

    def lose() -> None:
        metrics.leader.set(0)
        metrics.leader_transitions.inc()
        task = asyncio.create_task(controller.pause())
        pausing.add(task)
        task.add_done_callback(pausing.discard)

    elector = Elector(
        api,
        place[0],
        settings.lease,
        place[1],
        Timing(
            settings.lease_duration_seconds,
            settings.lease_renew_deadline_seconds,
            settings.lease_retry_period_seconds,
        ),
        on_lead=lead,
        on_lose=lose,
    )
    api.write_gate = elector.remaining
    return elector


async def _hand_over_on_signal(
    started: asyncio.Event, controller: Controller, elector: Elector, stop: asyncio.Event
) -> None:
    """On SIGTERM/SIGINT: stop writing and release the Lease first, then let kopf stop.

    kopf's own shutdown takes seconds; a rolling update should not wait for it.
    Installed once kopf has installed its handlers, so these replace them.
    """
    await started.wait()
    if threading.current_thread() is not threading.main_thread():
        return
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, signalled.set)
    await signalled.wait()
    log.info("stopping: handing the Lease over first")
    await controller.pause()
    await elector.release()
    stop.set()


def _log_identity(settings: Settings) -> None:
    """Say once whose rights ImageTriggers without spec.serviceAccountName write with."""
    if settings.default_service_account:
        log.info(
            "lockdown: ImageTriggers without spec.serviceAccountName act as the ServiceAccount "
            '"%s" of their own namespace (impersonated); annotated workloads are written with '
            "the operator's own rights",
            settings.default_service_account,
        )
    else:
        log.info(
            "ImageTriggers without spec.serviceAccountName act with the operator's own rights "
            "(set --default-service-account to make them act as a ServiceAccount of their "
            "namespace)"
        )


def _target_event(
    intake: Intake,
    enqueue: Callable[[list[Wake]], None],
    kind: str,
    event: str | None,
    body: Mapping[str, Any],
) -> None:
    enqueue(intake.event(kind, event, body))


def _relisted(
    intake: Intake,
    enqueue: Callable[[list[Wake]], None],
    sweeper: handlers.Sweeper,
    kind: str,
    namespace: str,
    present: set[tuple[str, str]],
) -> None:
    enqueue(intake.forget_missing(kind, present, namespace))
    sweeper.everything()


def _gauges(metrics: Metrics, indexes: Indexes) -> None:
    """The tracked-objects gauges, read from the indexes at each scrape (not set at every
    watch event, which is the hot path)."""
    metrics.imagestreams.set_function(lambda: len(indexes.streams))
    metrics.imagetriggers.set_function(lambda: len(indexes.triggers))
    for kind in (k for k, spec in KINDS.items() if spec.is_workload):
        metrics.annotated_workloads.labels(kind).set_function(
            functools.partial(indexes.workloads.annotated_count, kind)
        )
