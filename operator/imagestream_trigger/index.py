"""What the operator remembers about each watched object: small frozen records, never bodies.

Pure: a body in, a record and its index keys out, kept in a ``LocalIndex`` per
resource. At start-up the indexes are filled from one paginated LIST per
resource before kopf starts watching (``runner.prime``), then kept current by
every watch event (``handlers.py``), so every decision is taken from memory: no
GET or LIST per event.

(kopf's own ``@kopf.index`` makes each object wait until every object of every
indexed resource is indexed, with a notification to every waiter at each step:
quadratic, 130 s at 5,000 objects on 2 cores. Priming our own indexes first
keeps the guarantee, everything is known before the first decision, in linear
time.)

Index keys (tuples, so kinds of key cannot collide):

* ``("stream", ns, name)``                 -> StreamInfo
* ``("object", kind, ns, name)``           -> WorkloadInfo | BuildConfigInfo
* ``("in", kind, ns)``                     -> name           (selector targets)
* ``("follows", src_ns, stream)``          -> (kind, ns, name) (annotation followers)
* ``("trigger", ns, name)``                -> TriggerInfo
* ``("trigger-in", ns)``                   -> name           (triggers a new workload may match)
* ``("source", src_ns, stream)``           -> (ns, name)     (ImageTriggers following a stream)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from imagestream_trigger.api import (
    ALLOWED_NAMESPACES_ANNOTATION,
    TRIGGERS_ANNOTATION,
    TargetKind,
)
from imagestream_trigger.decide import Container, containers_of
from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.models import ImageTriggerSpec, parse_spec
from imagestream_trigger.resolve import (
    ResolvedImage,
    TagRef,
    resolve_all,
    stream_repositories,
)
from imagestream_trigger.triggers import AnnotationTrigger, Problem, parse_triggers_annotation

Key = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Enough to name an object in an Event or a log line."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    def body(self) -> dict[str, Any]:
        """The minimal body kopf needs to post an Event about this object."""
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
        }

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
    # The annotation, parsed once per change of the object (not per ImageStream event).
    annotation: str | None
    triggers: tuple[AnnotationTrigger, ...]
    problems: tuple[Problem, ...]
    # metadata.annotations as they were (None when absent): the patch must know.
    annotations: Mapping[str, str] | None = field(default=None, compare=False)
    resource_version: str = ""

    @property
    def kind(self) -> TargetKind:
        return TargetKind(self.ref.kind)


@dataclass(frozen=True, slots=True)
class BuildConfigInfo:
    ref: ObjectRef
    labels: Mapping[str, str]
    # (from "ns/stream:tag", image) pairs the server already built, from
    # status.imageChangeTriggers: the only record OpenShift consults since 4.8.
    built: frozenset[tuple[str, str]]
    resource_version: str = ""


@dataclass(frozen=True, slots=True)
class TriggerInfo:
    ref: ObjectRef
    generation: int
    spec: ImageTriggerSpec | None
    error: InvalidSpecError | None
    source: TagRef | None
    status: Mapping[str, Any] = field(compare=False, default_factory=dict)


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = body.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def object_ref(body: Mapping[str, Any]) -> ObjectRef:
    meta = _meta(body)
    return ObjectRef(
        api_version=str(body.get("apiVersion", "")),
        kind=str(body.get("kind", "")),
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
    )


def stream_info(body: Mapping[str, Any]) -> StreamInfo:
    meta = _meta(body)
    raw = (meta.get("annotations") or {}).get(ALLOWED_NAMESPACES_ANNOTATION, "")
    return StreamInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        tags=resolve_all(body),
        repositories=stream_repositories(body),
        allowed_namespaces=frozenset(p.strip() for p in str(raw).split(",") if p.strip()),
    )


def stream_keys(body: Mapping[str, Any]) -> dict[Key, StreamInfo]:
    info = stream_info(body)
    return {("stream", info.namespace, info.name): info}


def workload_info(kind: TargetKind, body: Mapping[str, Any], *, native: bool) -> WorkloadInfo:
    """Project a workload; with ``native`` off its annotation is not even parsed."""
    ref = object_ref(body)
    meta = _meta(body)
    annotations = meta.get("annotations")
    value = annotations.get(TRIGGERS_ANNOTATION) if isinstance(annotations, Mapping) else None
    triggers: tuple[AnnotationTrigger, ...] = ()
    problems: tuple[Problem, ...] = ()
    if native and isinstance(value, str):
        triggers, problems = parse_triggers_annotation(value, kind=kind, namespace=ref.namespace)
    return WorkloadInfo(
        ref=ref,
        labels=dict(meta.get("labels") or {}),
        containers=containers_of(kind, body),
        annotation=value if native and isinstance(value, str) else None,
        triggers=triggers,
        problems=problems,
        annotations=dict(annotations) if isinstance(annotations, Mapping) else None,
        resource_version=str(meta.get("resourceVersion", "")),
    )


def workload_keys(kind: TargetKind, body: Mapping[str, Any], *, native: bool) -> dict[Key, object]:
    info = workload_info(kind, body, native=native)
    ns, name = info.ref.namespace, info.ref.name
    keys: dict[Key, object] = {
        ("object", kind, ns, name): info,
        ("in", kind, ns): name,
    }
    for trigger in info.triggers:
        keys[("follows", trigger.source.namespace, trigger.source.stream)] = (kind, ns, name)
    return keys


def buildconfig_info(body: Mapping[str, Any]) -> BuildConfigInfo:
    ref = object_ref(body)
    built: set[tuple[str, str]] = set()
    status = body.get("status") or {}
    for record in status.get("imageChangeTriggers") or []:
        source = record.get("from") or {}
        image = record.get("lastTriggeredImageID")
        if image and source.get("name"):
            built.add((f"{source.get('namespace') or ref.namespace}/{source['name']}", image))
    return BuildConfigInfo(
        ref=ref,
        labels=dict(_meta(body).get("labels") or {}),
        built=frozenset(built),
        resource_version=str(_meta(body).get("resourceVersion", "")),
    )


def buildconfig_keys(body: Mapping[str, Any]) -> dict[Key, object]:
    info = buildconfig_info(body)
    ns, name = info.ref.namespace, info.ref.name
    return {
        ("object", TargetKind.BuildConfig, ns, name): info,
        ("in", TargetKind.BuildConfig, ns): name,
    }


def trigger_info(body: Mapping[str, Any]) -> TriggerInfo:
    ref = object_ref(body)
    generation = int(_meta(body).get("generation") or 0)
    status = body.get("status") or {}
    try:
        spec = parse_spec(body.get("spec") or {})
    except InvalidSpecError as error:
        return TriggerInfo(ref, generation, None, error, None, status)
    return TriggerInfo(ref, generation, spec, None, spec.source.tag_ref(ref.namespace), status)


def trigger_keys(body: Mapping[str, Any]) -> dict[Key, object]:
    info = trigger_info(body)
    keys: dict[Key, object] = {
        ("trigger", info.ref.namespace, info.ref.name): info,
        ("trigger-in", info.ref.namespace): info.ref.name,
    }
    if info.source is not None:
        keys[("source", info.source.namespace, info.source.stream)] = (
            info.ref.namespace,
            info.ref.name,
        )
    return keys


class LocalIndex:
    """An in-memory index for one resource: key -> the values the objects yielded for it.

    Pure bookkeeping. Each object's keys are replaced whole on every event, and
    dropped when it is deleted, so a key never keeps a stale value.
    """

    def __init__(self) -> None:
        self._by_key: dict[Key, dict[str, object]] = {}
        self._keys_of: dict[str, dict[Key, object]] = {}

    def replace(self, uid: str, keys: Mapping[Key, object]) -> bool:
        """Index the object's keys; returns whether anything differs from before."""
        if self._keys_of.get(uid) == keys:
            return False
        self.remove(uid)
        for key, value in keys.items():
            self._by_key.setdefault(key, {})[uid] = value
        self._keys_of[uid] = dict(keys)
        return True

    def remove(self, uid: str) -> None:
        for key in self._keys_of.pop(uid, {}):
            values = self._by_key.get(key)
            if values is not None:
                values.pop(uid, None)
                if not values:
                    del self._by_key[key]

    def get(self, key: Key) -> list[object] | None:
        values = self._by_key.get(key)
        return list(values.values()) if values else None

    def __len__(self) -> int:
        return len(self._keys_of)
