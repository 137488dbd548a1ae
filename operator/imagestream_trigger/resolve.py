"""Resolve an ImageStream tag to the image a workload should run, exactly as OpenShift does.

Pure: takes the ImageStream body as a mapping (as kopf delivers it), no I/O. The rules are
those of library-go ``pkg/image/imageutil/helpers.go`` (``ResolveLatestTaggedImage``,
``LatestTaggedImage``, ``resolveTagReference``): ``status.tags[tag].items[0]``; with
``referencePolicy.type: Local`` the in-cluster registry's pull-through reference; otherwise
the item's ``dockerImageReference``. Tags present only in status resolve too. When a name
appears twice in ``status.tags`` or ``spec.tags``, the first entry wins, as in OpenShift.

Total: any JSON-shaped body (odd types, missing fields, empty lists) gives an answer and
never an exception; a field of the wrong type reads as absent. Strings come out encodable
as UTF-8: a lone surrogate (only possible in a body that did not come from the API server,
which stores valid UTF-8) becomes U+FFFD, as the API server would have made it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class TagRef:
    """One ImageStreamTag: the unit a trigger follows."""

    namespace: str
    stream: str
    tag: str

    def __str__(self) -> str:
        if not self.tag:  # a trigger following a whole stream, before its policy picked
            return f"{self.namespace}/{self.stream}"
        return f"{self.namespace}/{self.stream}:{self.tag}"


@dataclass(frozen=True, slots=True)
class ResolvedImage:
    """What a tag currently points at."""

    reference: str  # digest-pinned pull spec to put into a container's image field
    image: str  # "sha256:...": the image's identity, independent of where it is pulled from
    created: str | None  # RFC 3339 time the tag event was recorded, for the latency metric


def resolve_tag(
    stream: Mapping[str, Any], tag: str, *, internal_registry: str = ""
) -> ResolvedImage | None:
    """Resolve ``tag`` of an ImageStream body, or None when OpenShift would not resolve it.

    ``internal_registry``: the integrated registry's hostname, which OpenShift's trigger
    controller puts in front of ``namespace/stream`` for a ``Local`` tag when the stream's
    status has no ``dockerImageRepository`` (its ``tagRetriever``).
    """
    return _Tags(stream, internal_registry).resolve(tag)


def resolve_all(
    stream: Mapping[str, Any], *, internal_registry: str = ""
) -> dict[str, ResolvedImage]:
    """Resolve every tag in ``status.tags``; the ones that do not resolve are left out.

    Comparing two results tells which tags changed: that is how "ImageStreamTag events"
    are derived, since ImageStreamTags cannot be watched. Linear in the size of the body.
    """
    tags = _Tags(stream, internal_registry)
    resolved: dict[str, ResolvedImage] = {}
    for name in tags.status:
        image = tags.resolve(name) if name else None
        if image is not None:
            resolved[sys.intern(str(name))] = image
    return resolved


def image_repository(pull_spec: str) -> str:
    """The repository part of a pull spec: without ``@digest`` and without ``:tag``.

    A colon is a tag separator only after the last "/", so a registry port survives
    ("host:5000/ns/app:v1" gives "host:5000/ns/app"). No other normalization: "app",
    "docker.io/library/app" and "index.docker.io/library/app" stay different strings, so
    a container is matched only when it spells the repository as the stream does.
    """
    if not isinstance(pull_spec, str):  # total, like the rest of this module
        return ""
    repository = pull_spec.partition("@")[0]
    colon = repository.rfind(":")
    if colon > repository.rfind("/"):
        repository = repository[:colon]
    return repository


def stream_repositories(
    stream: Mapping[str, Any], *, internal_registry: str = ""
) -> frozenset[str]:
    """Every repository an image of this stream may be pulled from.

    A container whose image's repository is in this set already follows the stream, so an
    ImageTrigger target without container names updates exactly those containers.
    """
    body = _mapping(stream)
    spec = _mapping(body.get("spec"))
    status = _mapping(body.get("status"))
    specs: list[str] = [
        _str(status.get("dockerImageRepository")) or _internal(body, internal_registry),
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
    # An odd pull spec such as "@x" has no repository: it must not match an empty image.
    return frozenset(repository for repository in map(image_repository, specs) if repository)


class _Tags:
    """The tags of an ImageStream body, each name read once: the first entry wins."""

    __slots__ = ("local_repository", "spec", "status")

    def __init__(self, stream: Any, internal_registry: str = "") -> None:
        body = _mapping(stream)
        status = _mapping(body.get("status"))
        self.status = _by_name(status.get("tags"), "tag")
        self.spec = _by_name(_mapping(body.get("spec")).get("tags"), "name")
        self.local_repository = _str(status.get("dockerImageRepository")) or _internal(
            body, internal_registry
        )

    def resolve(self, tag: str) -> ResolvedImage | None:
        tag = _str(tag)
        status_tag = self.status.get(tag)
        if status_tag is None:
            return None
        items = _list(status_tag.get("items"))
        if not items:
            return None
        head = _mapping(items[0])
        image = _str(head.get("image"))
        reference = _str(head.get("dockerImageReference"))

        spec_tag = self.spec.get(tag)
        policy = _str(_mapping(spec_tag.get("referencePolicy")).get("type")) if spec_tag else ""
        if policy == "Local" and self.local_repository and image:
            # Pull through the integrated registry; OpenShift drops any tag of the repository.
            reference = f"{image_repository(self.local_repository)}@{image}"
        if not reference:
            # OpenShift would hand out an empty image here; refusing is the only safe answer.
            return None
        created = head.get("created")
        return ResolvedImage(
            # Interned: the workloads running this image hold the same string (kinds.py).
            reference=sys.intern(str(reference)),
            image=image,
            created=_str(created) if isinstance(created, str) else None,
        )


def _internal(body: Mapping[str, Any], registry: str) -> str:
    """``<registry>/<namespace>/<stream>``, the repository OpenShift's trigger controller
    assumes when the status names none; "" without a registry hostname (it then falls
    back to the item's own reference, as OpenShift does when the hostname is unset)."""
    meta = _mapping(body.get("metadata"))
    namespace, name = _str(meta.get("namespace")), _str(meta.get("name"))
    return f"{registry}/{namespace}/{name}" if registry and namespace and name else ""


# Bodies come from the API as untyped JSON; these keep a malformed field from raising.


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    return value if value.isascii() else _SURROGATE.sub("\ufffd", value)


def _by_name(entries: Any, key: str) -> dict[str, Mapping[str, Any]]:
    """Entries of a list by their string ``key``; OpenShift also takes the first match."""
    found: dict[str, Mapping[str, Any]] = {}
    for entry in _list(entries):
        entry_map = _mapping(entry)
        name = entry_map.get(key)
        if isinstance(name, str):
            found.setdefault(_str(name), entry_map)
    return found
