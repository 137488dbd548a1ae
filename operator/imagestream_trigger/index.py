"""What the operator knows about each watched object: small frozen records, never bodies.

Pure. A body goes in, a record comes out (the projections below, total over
any JSON: a malformed field reads as empty, never raises), and one typed index
per resource keeps the records with the lookups the rest of the operator needs:
a stream's followers, a namespace's triggers, a selector's candidates. The
indexes are filled from one paginated LIST per resource at start-up, then kept
current by the watches through ``intake``; every decision is taken from them,
with no GET or LIST per event.

Records compare equal when nothing that matters to a decision differs, so
``put`` telling "unchanged" is how a status-only update, a resync or the echo
of our own write is recognised.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from imagestream_trigger.api import (
    ALLOWED_NAMESPACES_ANNOTATION,
    LAST_APPLIED_ANNOTATION,
    RETRY_IMAGE_ANNOTATION,
    TRIGGERS_ANNOTATION,
    TargetKind,
)
from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.frozen import FrozenJson
from imagestream_trigger.kinds import KINDS, Container, containers_of
from imagestream_trigger.models import ImageTriggerSpec, parse_spec
from imagestream_trigger.resolve import (
    ResolvedImage,
    TagRef,
    resolve_all,
    stream_repositories,
)
from imagestream_trigger.rollout import Health
from imagestream_trigger.triggers import AnnotationTrigger, Problem, parse_triggers_annotation

# (kind, namespace, name) of a workload or BuildConfig; (namespace, name) of the rest.
TargetId = tuple[str, str, str]
NamespacedName = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Enough to name an object in an Event or a log line."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class StreamInfo:
    namespace: str
    name: str
    tags: Mapping[str, ResolvedImage]
    repositories: frozenset[str]
    # Namespaces whose ImageTriggers may follow this stream from elsewhere ("*" = any).
    allowed_namespaces: frozenset[str]
    # When each tag's current image was first seen (monotonic seconds), for latency.
    moved_at: Mapping[str, float] = field(default_factory=dict, compare=False)

    def allows(self, namespace: str) -> bool:
        return (
            namespace == self.namespace
            or "*" in self.allowed_namespaces
            or namespace in self.allowed_namespaces
        )


@dataclass(frozen=True, slots=True)
class WorkloadInfo:
    ref: ObjectRef
    labels: Mapping[str, str]
    containers: tuple[Container, ...]
    annotated: bool  # carries image.openshift.io/triggers (and native annotations are on)
    # The annotation, parsed once per change of the object (not per ImageStream event).
    triggers: tuple[AnnotationTrigger, ...]
    problems: tuple[Problem, ...]
    # What a patch must know of metadata.annotations: whether the map exists, and our
    # own record in it. Not compared: our write changes the record, and is no news.
    has_annotations: bool = field(default=False, compare=False)
    last_applied: str | None = field(default=None, compare=False)
    # How its rollout stands (rollout.py), for ImageTriggers with spec.rollout; None for a
    # kind with no rollout, and for a workload we never wrote (nothing of ours to follow).
    # Not compared: status changes are not news to the planner.
    health: Health | None = field(default=None, compare=False)

    @property
    def kind(self) -> TargetKind:
        return TargetKind(self.ref.kind)

    @property
    def id(self) -> TargetId:
        return (self.ref.kind, self.ref.namespace, self.ref.name)

    @property
    def annotations(self) -> Mapping[str, str] | None:
        """The part of metadata.annotations a patch reads (None: the object has none)."""
        if not self.has_annotations:
            return None
        return {} if self.last_applied is None else {LAST_APPLIED_ANNOTATION: self.last_applied}


@dataclass(frozen=True, slots=True)
class BuildConfigInfo:
    ref: ObjectRef
    labels: Mapping[str, str]
    # (from "ns/stream:tag", image) pairs the server already built, from
    # status.imageChangeTriggers: the only record OpenShift consults since 4.8. Not
    # compared: it changes when a build starts, which is our own doing.
    built: frozenset[tuple[str, str]] = field(default=frozenset(), compare=False)

    @property
    def id(self) -> TargetId:
        return (TargetKind.BuildConfig, self.ref.namespace, self.ref.name)


@dataclass(frozen=True, slots=True)
class TriggerInfo:
    ref: ObjectRef
    generation: int
    spec: ImageTriggerSpec | None
    error: str | None  # why the spec is invalid, for the InvalidSpec condition
    source: TagRef | None
    # Written by us alone; not compared, so our own status write is no news. As found in
    # the cluster, a FrozenJson: read it through report.status.read.
    status: Mapping[str, Any] = field(compare=False, default_factory=dict)
    # The one-shot annotation releasing an image from the quarantine (gate.py), if set.
    retry_image: str | None = None

    @property
    def service_account_name(self) -> str | None:
        """The ServiceAccount its writes impersonate (``spec.serviceAccountName``), if named."""
        return self.spec.service_account_name if self.spec is not None else None


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _shared(value: Any) -> str:
    """``_str``, interned: for what many records repeat (a namespace, a kind, a label key).

    Each decoded body brings its own copy of every string; kept in thousands of records,
    those copies were a large part of the operator's memory.
    """
    return sys.intern(str(value)) if isinstance(value, str) else ""


_NOTHING: frozenset[str] = frozenset()


def _labels(meta: Mapping[str, Any]) -> dict[str, str]:
    labels = meta.get("labels")
    if not isinstance(labels, Mapping):
        return {}
    return {_shared(k): v for k, v in labels.items() if isinstance(k, str) and isinstance(v, str)}


def object_ref(body: Mapping[str, Any]) -> ObjectRef:
    meta = _meta(body)
    return ObjectRef(
        api_version=_shared(body.get("apiVersion")),
        kind=_shared(body.get("kind")),
        namespace=_shared(meta.get("namespace")),
        name=_str(meta.get("name")),
        uid=_str(meta.get("uid")),
    )


def stream_info(body: Mapping[str, Any], *, internal_registry: str = "") -> StreamInfo:
    """``internal_registry``: see ``resolve.resolve_tag``."""
    meta = _meta(body)
    annotations = meta.get("annotations")
    raw = annotations.get(ALLOWED_NAMESPACES_ANNOTATION) if isinstance(annotations, Mapping) else ""
    allowed = frozenset(p.strip() for p in _str(raw).split(",") if p.strip())
    return StreamInfo(
        namespace=_shared(meta.get("namespace")),
        # Interned: the triggers that follow the stream name it too (triggers.py, models.py).
        name=_shared(meta.get("name")),
        tags=resolve_all(body, internal_registry=internal_registry),
        repositories=stream_repositories(body, internal_registry=internal_registry),
        # Almost always empty: one shared empty set rather than one each.
        allowed_namespaces=allowed or _NOTHING,
    )


def workload_info(kind: TargetKind, body: Mapping[str, Any], *, native: bool) -> WorkloadInfo:
    """Project a workload; with ``native`` off its annotation is not even parsed."""
    ref = object_ref(body)
    meta = _meta(body)
    annotations = meta.get("annotations")
    has_annotations = isinstance(annotations, Mapping)
    value = annotations.get(TRIGGERS_ANNOTATION) if isinstance(annotations, Mapping) else None
    last_applied = (
        annotations.get(LAST_APPLIED_ANNOTATION) if isinstance(annotations, Mapping) else None
    )
    triggers: tuple[AnnotationTrigger, ...] = ()
    problems: tuple[Problem, ...] = ()
    annotated = native and isinstance(value, str)
    if annotated:
        assert isinstance(value, str)
        triggers, problems = parse_triggers_annotation(value, kind=kind, namespace=ref.namespace)
    return WorkloadInfo(
        ref=ref,
        labels=_labels(meta),
        containers=containers_of(kind, body),
        annotated=annotated,
        triggers=triggers,
        problems=problems,
        has_annotations=has_annotations,
        last_applied=last_applied if isinstance(last_applied, str) else None,
        # Only the rollouts we may follow: those of workloads we wrote (they carry our record).
        health=reader(body)
        if isinstance(last_applied, str) and (reader := KINDS[kind].health) is not None
        else None,
    )


def buildconfig_info(body: Mapping[str, Any]) -> BuildConfigInfo:
    """Project a BuildConfig; ``built`` holds what OpenShift's own controller would not
    build again: each imageChange trigger's lastTriggeredImageID from the status, and
    from the spec too, where BuildConfigs last triggered before OpenShift 4.8 keep it
    (openshift-controller-manager's buildconfigs reactor still checks both)."""
    ref = object_ref(body)
    built: set[tuple[str, str]] = set()
    spec = body.get("spec")
    spec = spec if isinstance(spec, Mapping) else {}
    triggers = spec.get("triggers")
    for trigger in triggers if isinstance(triggers, list) else []:
        change = trigger.get("imageChange") if isinstance(trigger, Mapping) else None
        if not isinstance(change, Mapping):
            continue
        image = _str(change.get("lastTriggeredImageID"))
        source = change.get("from")
        # No "from": the trigger follows the strategy's own image.
        source = source if isinstance(source, Mapping) and source else _strategy_from(spec)
        name = _str(source.get("name")) if source.get("kind") == "ImageStreamTag" else ""
        if image and name:
            built.add((f"{_str(source.get('namespace')) or ref.namespace}/{name}", image))
    status = body.get("status")
    records = status.get("imageChangeTriggers") if isinstance(status, Mapping) else None
    for record in records if isinstance(records, list) else []:
        if not isinstance(record, Mapping):
            continue
        source = record.get("from")
        source = source if isinstance(source, Mapping) else {}
        image, name = _str(record.get("lastTriggeredImageID")), _str(source.get("name"))
        if image and name:
            built.add((f"{_str(source.get('namespace')) or ref.namespace}/{name}", image))
    return BuildConfigInfo(ref=ref, labels=_labels(_meta(body)), built=frozenset(built))


def _strategy_from(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    strategy = spec.get("strategy")
    strategy = strategy if isinstance(strategy, Mapping) else {}
    for key in ("sourceStrategy", "dockerStrategy", "customStrategy"):
        chosen = strategy.get(key)
        if isinstance(chosen, Mapping) and isinstance(chosen.get("from"), Mapping):
            found: Mapping[str, Any] = chosen["from"]
            return found
    return {}


def trigger_info(body: Mapping[str, Any]) -> TriggerInfo:
    ref = object_ref(body)
    generation = _meta(body).get("generation")
    generation = generation if isinstance(generation, int) else 0
    status = body.get("status")
    # Kept as compact text (frozen.py): read once per pass, kept as long as the trigger.
    status = FrozenJson(status) if isinstance(status, Mapping) else {}
    annotations = _meta(body).get("annotations")
    retry = annotations.get(RETRY_IMAGE_ANNOTATION) if isinstance(annotations, Mapping) else None
    retry = retry if isinstance(retry, str) and retry.strip() else None
    spec_body = body.get("spec")
    try:
        spec = parse_spec(spec_body if isinstance(spec_body, Mapping) else {})
    except InvalidSpecError as error:
        return TriggerInfo(ref, generation, None, error.message, None, status, retry)
    source = spec.source.tag_ref(ref.namespace)
    return TriggerInfo(ref, generation, spec, None, source, status, retry)


# -- the indexes ---------------------------------------------------------------------------


def _add(groups: dict[Any, set[Any]], key: Any, member: Any) -> None:
    groups.setdefault(key, set()).add(member)


def _discard(groups: dict[Any, set[Any]], key: Any, member: Any) -> None:
    members = groups.get(key)
    if members is not None:
        members.discard(member)
        if not members:
            del groups[key]


class StreamIndex:
    def __init__(self) -> None:
        self._by: dict[NamespacedName, StreamInfo] = {}

    def get(self, namespace: str, name: str) -> StreamInfo | None:
        return self._by.get((namespace, name))

    def put(self, info: StreamInfo) -> StreamInfo | None:
        """Store ``info``; returns what it replaced."""
        key = (info.namespace, info.name)
        previous = self._by.get(key)
        self._by[key] = info
        return previous

    def delete(self, namespace: str, name: str) -> StreamInfo | None:
        return self._by.pop((namespace, name), None)

    def __iter__(self) -> Iterator[StreamInfo]:
        return iter(list(self._by.values()))

    def __len__(self) -> int:
        return len(self._by)


class WorkloadIndex:
    """Workloads of the four kinds: by id, by namespace (selectors), by followed stream."""

    def __init__(self) -> None:
        self._by: dict[TargetId, WorkloadInfo] = {}
        self._names: dict[tuple[str, str], set[str]] = {}
        # (source namespace, stream) -> annotated workloads with a trigger on it
        self._followers: dict[NamespacedName, set[TargetId]] = {}
        self._annotated: dict[str, int] = {}

    def get(self, kind: str, namespace: str, name: str) -> WorkloadInfo | None:
        return self._by.get((kind, namespace, name))

    def put(self, info: WorkloadInfo) -> WorkloadInfo | None:
        previous = self._by.get(info.id)
        if previous is not None:
            self._unlink(previous)
        self._by[info.id] = info
        _add(self._names, (info.ref.kind, info.ref.namespace), info.ref.name)
        for trigger in info.triggers:
            if trigger.watched:
                _add(self._followers, (trigger.source.namespace, trigger.source.stream), info.id)
        if info.annotated:
            self._annotated[info.ref.kind] = self._annotated.get(info.ref.kind, 0) + 1
        return previous

    def delete(self, kind: str, namespace: str, name: str) -> WorkloadInfo | None:
        previous = self._by.pop((kind, namespace, name), None)
        if previous is not None:
            self._unlink(previous)
        return previous

    def _unlink(self, info: WorkloadInfo) -> None:
        _discard(self._names, (info.ref.kind, info.ref.namespace), info.ref.name)
        for trigger in info.triggers:
            if trigger.watched:
                _discard(
                    self._followers, (trigger.source.namespace, trigger.source.stream), info.id
                )
        if info.annotated:
            self._annotated[info.ref.kind] -= 1

    def names_in(self, kind: str, namespace: str) -> Iterable[str]:
        return tuple(self._names.get((kind, namespace), ()))

    def followers(self, namespace: str, stream: str) -> tuple[TargetId, ...]:
        """Annotated workloads with a trigger on that stream."""
        return tuple(self._followers.get((namespace, stream), ()))

    def annotated_count(self, kind: str) -> int:
        return self._annotated.get(kind, 0)

    def annotated(self) -> tuple[WorkloadInfo, ...]:
        return tuple(info for info in self._by.values() if info.annotated)

    def __iter__(self) -> Iterator[WorkloadInfo]:
        return iter(list(self._by.values()))

    def __len__(self) -> int:
        return len(self._by)


class BuildConfigIndex:
    def __init__(self) -> None:
        self._by: dict[NamespacedName, BuildConfigInfo] = {}
        self._names: dict[str, set[str]] = {}

    def get(self, namespace: str, name: str) -> BuildConfigInfo | None:
        return self._by.get((namespace, name))

    def put(self, info: BuildConfigInfo) -> BuildConfigInfo | None:
        previous = self._by.get((info.ref.namespace, info.ref.name))
        self._by[(info.ref.namespace, info.ref.name)] = info
        _add(self._names, info.ref.namespace, info.ref.name)
        return previous

    def delete(self, namespace: str, name: str) -> BuildConfigInfo | None:
        previous = self._by.pop((namespace, name), None)
        if previous is not None:
            _discard(self._names, namespace, name)
        return previous

    def names_in(self, namespace: str) -> Iterable[str]:
        return tuple(self._names.get(namespace, ()))

    def __iter__(self) -> Iterator[BuildConfigInfo]:
        return iter(list(self._by.values()))

    def __len__(self) -> int:
        return len(self._by)


class TriggerIndex:
    def __init__(self) -> None:
        self._by: dict[NamespacedName, TriggerInfo] = {}
        self._in: dict[str, set[str]] = {}
        # (source namespace, stream) -> ImageTriggers following it
        self._following: dict[NamespacedName, set[NamespacedName]] = {}

    def get(self, namespace: str, name: str) -> TriggerInfo | None:
        return self._by.get((namespace, name))

    def put(self, info: TriggerInfo) -> TriggerInfo | None:
        key = (info.ref.namespace, info.ref.name)
        previous = self._by.get(key)
        if previous is not None:
            self._unlink(previous)
        self._by[key] = info
        _add(self._in, info.ref.namespace, info.ref.name)
        if info.source is not None:
            _add(self._following, (info.source.namespace, info.source.stream), key)
        return previous

    def delete(self, namespace: str, name: str) -> TriggerInfo | None:
        previous = self._by.pop((namespace, name), None)
        if previous is not None:
            self._unlink(previous)
        return previous

    def _unlink(self, info: TriggerInfo) -> None:
        key = (info.ref.namespace, info.ref.name)
        _discard(self._in, info.ref.namespace, info.ref.name)
        if info.source is not None:
            _discard(self._following, (info.source.namespace, info.source.stream), key)

    def in_namespace(self, namespace: str) -> tuple[TriggerInfo, ...]:
        return tuple(self._by[(namespace, name)] for name in self._in.get(namespace, ()))

    def following(self, namespace: str, stream: str) -> tuple[TriggerInfo, ...]:
        return tuple(self._by[key] for key in self._following.get((namespace, stream), ()))

    def __iter__(self) -> Iterator[TriggerInfo]:
        return iter(list(self._by.values()))

    def __len__(self) -> int:
        return len(self._by)


class Indexes:
    """Every index, read by the planner as its ``World``."""

    def __init__(self) -> None:
        self.streams = StreamIndex()
        self.workloads = WorkloadIndex()
        self.buildconfigs = BuildConfigIndex()
        self.triggers = TriggerIndex()

    def stream(self, namespace: str, name: str) -> StreamInfo | None:
        return self.streams.get(namespace, name)

    def workload(self, kind: str, namespace: str, name: str) -> WorkloadInfo | None:
        return self.workloads.get(kind, namespace, name)

    def buildconfig(self, namespace: str, name: str) -> BuildConfigInfo | None:
        return self.buildconfigs.get(namespace, name)

    def names_in(self, kind: TargetKind, namespace: str) -> Iterable[str]:
        if kind is TargetKind.BuildConfig:
            return self.buildconfigs.names_in(namespace)
        return self.workloads.names_in(kind, namespace)

    def sizes(self) -> dict[str, int]:
        return {
            "imagestreams": len(self.streams),
            "workloads": len(self.workloads),
            "buildconfigs": len(self.buildconfigs),
            "imagetriggers": len(self.triggers),
        }
