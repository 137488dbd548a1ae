"""Resolve an ImageStream tag to the image a workload should run, exactly as OpenShift does.

Pure: takes the ImageStream body as a mapping (as kopf delivers it), no I/O. The rules are
those of library-go ``pkg/image/imageutil/helpers.go`` (``ResolveLatestTaggedImage``,
``LatestTaggedImage``, ``resolveTagReference``): ``status.tags[tag].items[0]``; with
``referencePolicy.type: Local`` the in-cluster registry's pull-through reference; otherwise
the item's ``dockerImageReference``. Tags present only in status resolve too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TagRef:
    """One ImageStreamTag: the unit a trigger follows."""

    namespace: str
    stream: str
    tag: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.stream}:{self.tag}"

    @classmethod
    def parse(cls, value: str, default_namespace: str) -> TagRef:
        """Parse ``"stream:tag"`` (the form users write) into a reference in a namespace."""
        stream, sep, tag = value.partition(":")
        if not sep:
            raise ValueError(f'"{value}" is not an ImageStreamTag: write it as "stream:tag"')
        if not stream or not tag or ":" in tag:
            raise ValueError(
                f'"{value}" is not an ImageStreamTag: write it as "stream:tag" with a non-empty '
                "stream name and tag and a single colon"
            )
        return cls(namespace=default_namespace, stream=stream, tag=tag)


@dataclass(frozen=True, slots=True)
class ResolvedImage:
    """What a tag currently points at."""

    reference: str  # digest-pinned pull spec to put into a container's image field
    image: str  # "sha256:...": the image's identity, independent of where it is pulled from
    created: str | None  # RFC 3339 time the tag event was recorded, for the latency metric


def resolve_tag(stream: Mapping[str, Any], tag: str) -> ResolvedImage | None:
    """Resolve ``tag`` of an ImageStream body, or None when OpenShift would not resolve it."""
    status_tag = _first_named(_list(_mapping(stream.get("status")).get("tags")), "tag", tag)
    if status_tag is None:
        return None
    items = _list(status_tag.get("items"))
    if not items:
        return None
    head = _mapping(items[0])
    image = _str(head.get("image"))
    reference = _str(head.get("dockerImageReference"))

    spec_tag = _first_named(_list(_mapping(stream.get("spec")).get("tags")), "name", tag)
    policy = _str(_mapping(spec_tag.get("referencePolicy")).get("type")) if spec_tag else ""
    local_repository = _str(_mapping(stream.get("status")).get("dockerImageRepository"))
    if policy == "Local" and local_repository and image:
        # Pull through the integrated registry; OpenShift drops any tag of the repository.
        reference = f"{image_repository(local_repository)}@{image}"
    if not reference:
        # OpenShift would hand out an empty image here; refusing is the only safe answer.
        return None
    created = head.get("created")
    return ResolvedImage(
        reference=reference, image=image, created=created if isinstance(created, str) else None
    )


def resolve_all(stream: Mapping[str, Any]) -> dict[str, ResolvedImage]:
    """Resolve every tag in ``status.tags``; the ones that do not resolve are left out.

    Comparing two results tells which tags changed: that is how "ImageStreamTag events"
    are derived, since ImageStreamTags cannot be watched.
    """
    resolved: dict[str, ResolvedImage] = {}
    for entry in _list(_mapping(stream.get("status")).get("tags")):
        name = _str(_mapping(entry).get("tag"))
        if name and name not in resolved:
            image = resolve_tag(stream, name)
            if image is not None:
                resolved[name] = image
    return resolved


def image_repository(pull_spec: str) -> str:
    """The repository part of a pull spec: without ``@digest`` and without ``:tag``.

    A colon is a tag separator only after the last "/", so a registry port survives
    ("host:5000/ns/app:v1" gives "host:5000/ns/app"). No other normalization: "app",
    "docker.io/library/app" and "index.docker.io/library/app" stay different strings, so
    a container is matched only when it spells the repository as the stream does.
    """
    repository = pull_spec.partition("@")[0]
    colon = repository.rfind(":")
    if colon > repository.rfind("/"):
        repository = repository[:colon]
    return repository


def stream_repositories(stream: Mapping[str, Any]) -> frozenset[str]:
    """Every repository an image of this stream may be pulled from.

    A container whose image's repository is in this set already follows the stream, so an
    ImageTrigger target without container names updates exactly those containers.
    """
    spec = _mapping(stream.get("spec"))
    status = _mapping(stream.get("status"))
    specs: list[str] = [
        _str(status.get("dockerImageRepository")),
        _str(status.get("publicDockerImageRepository")),
        _str(spec.get("dockerImageRepository")),
    ]
    for entry in _list(status.get("tags")):
        for item in _list(_mapping(entry).get("items")):
            specs.append(_str(_mapping(item).get("dockerImageReference")))
    for spec_tag in _list(spec.get("tags")):
        source = _mapping(_mapping(spec_tag).get("from"))
        if source.get("kind") == "DockerImage":
            specs.append(_str(source.get("name")))
    return frozenset(image_repository(s) for s in specs if s)


# Bodies come from the API as untyped JSON; these keep a malformed field from raising.


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _first_named(entries: list[Any], key: str, name: str) -> Mapping[str, Any] | None:
    """The first entry whose ``key`` equals ``name``: OpenShift also takes the first match."""
    found: Iterator[Mapping[str, Any]] = (e for e in map(_mapping, entries) if e.get(key) == name)
    return next(found, None)
