"""OpenShift's server-side rules for image streams and builds, as pure functions.

The test control plane serves ImageStream, BuildConfig and Build as CRDs, so
nothing computes what openshift-apiserver computes on a real cluster. The front
proxy (``proxy.py``) and the import simulator call these functions instead.
They take and return plain JSON-like dicts, never do I/O and never mutate
their arguments, so each rule can be unit-tested against the behaviour read in
the OpenShift sources:

* openshift/openshift-apiserver ``pkg/image/apiserver/internal/imageutil/helpers.go``
  (AddTagEventToImageStream, UpdateTrackingTags, ResolveReferenceForTagEvent),
  ``pkg/image/apiserver/registry/imagestreamimport/rest.go`` (import conditions),
  ``pkg/image/apiserver/registry/imagestreammapping/rest.go`` (push),
  ``pkg/image/apiserver/registry/imagestreamtag/rest.go`` (newISTag, Create, Update),
  ``pkg/image/apiserver/registry/imagestream/strategy.go`` (tagsChanged, tagRefChanged,
  parseFromReference, tagReferenceToTagEvent: what an ``oc tag`` resolves to),
  ``pkg/build/apiserver/buildgenerator/generator.go`` (instantiate),
  ``pkg/build/apiserver/admission/strategyrestrictions/admission.go``;
* openshift/library-go ``pkg/build/naming/namer.go`` (build names).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

JSON = dict[str, Any]
"""A decoded JSON object as the API server sends it."""

Resolver = Callable[[Mapping[str, Any], str], str]
"""``resolve(object_reference, default_namespace) -> pull spec``; raises
:class:`Unresolvable` when OpenShift would fail to resolve the reference."""

INTERNAL_REGISTRY: Final = "image-registry.openshift-image-registry.svc:5000"
DEFAULT_TAG: Final = "latest"
BUILDER_SERVICE_ACCOUNT: Final = "builder"
MANUAL_TRIGGER_MESSAGE: Final = "Manually triggered"
CUSTOM_BASE_IMAGE_ENV: Final = "OPENSHIFT_CUSTOM_BUILD_BASE_IMAGE"
PAUSED_ANNOTATION: Final = "openshift.io/build-config.paused"
# k8s.io/apimachinery validation.DNS1123SubdomainMaxLength, the limit library-go names builds by.
_MAX_NAME_LENGTH: Final = 253
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

BUILD_STRATEGY_SUBRESOURCE: Final[Mapping[str, str]] = {
    "Docker": "docker",
    "Source": "source",
    "Custom": "custom",
    "JenkinsPipeline": "jenkinspipeline",
}
"""Strategy type -> ``builds/<subresource>`` on which the BuildByStrategy admission
plugin demands ``create`` before a build of that strategy may start. A Docker
strategy with an ``imageOptimizationPolicy`` other than ``None`` needs
``builds/optimizeddocker`` instead (see :func:`strategy_subresource`)."""

# spec.strategy key -> strategy type, in the order OpenShift tests the pointers.
_STRATEGY_KEYS: Final = (
    ("dockerStrategy", "Docker"),
    ("customStrategy", "Custom"),
    ("sourceStrategy", "Source"),
    ("jenkinsPipelineStrategy", "JenkinsPipeline"),
)


# --------------------------------------------------------------------------- errors


class OpenShiftError(Exception):
    """A refusal openshift-apiserver answers with a ``metav1.Status``.

    ``str(error)`` is the underlying message; :attr:`code`, :attr:`reason` and
    :meth:`status_message` let the proxy answer with the same HTTP status and
    text as the real server.
    """

    code: int = 400
    reason: str = "BadRequest"

    def __init__(self, message: str, *, code: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason

    def status_message(self) -> str:
        """The ``message`` of the Status object the real server returns."""
        if self.reason == "InternalError":
            return f"Internal error occurred: {self.message}"
        return self.message


class AlreadyBuilt(OpenShiftError):
    """The BuildConfig already recorded this image for this trigger.

    The generator returns a plain Go error that the REST layer wraps with
    ``errors.NewInternalError``: on OpenShift this is an HTTP 500 whose message
    reads ``Internal error occurred: build config NS/NAME has already
    instantiated a build for imageid IMAGE``.
    """

    code = 500
    reason = "InternalError"


class InvalidRequest(OpenShiftError):
    """OpenShift refuses the BuildRequest; code and reason say how."""


class Unresolvable(InvalidRequest):
    """An image reference cannot be resolved (``resolveError`` in the generator: 422 Invalid)."""

    code = 422
    reason = "Invalid"


# --------------------------------------------------------------------------- helpers


def rfc3339(moment: dt.datetime) -> str:
    """Serialize like ``metav1.Time``: UTC, whole seconds, ``Z`` suffix (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def digest_for(seed: str) -> str:
    """A deterministic ``sha256:<64 hex>`` image name, so tests can invent images reproducibly."""
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _spec_tag(stream: Mapping[str, Any], tag: str) -> JSON | None:
    for ref in (stream.get("spec") or {}).get("tags") or []:
        if ref.get("name") == tag:
            return dict(ref)
    return None


def spec_tag(stream: Mapping[str, Any], tag: str) -> JSON | None:
    """The spec tag ``tag`` of a stream (a copy), or None."""
    return _spec_tag(stream, tag)


def _status_tag(stream: Mapping[str, Any], tag: str) -> JSON | None:
    for entry in (stream.get("status") or {}).get("tags") or []:
        if entry.get("tag") == tag:
            return dict(entry)
    return None


def _default_repository(stream: Mapping[str, Any]) -> str:
    meta = _meta(stream)
    return f"{INTERNAL_REGISTRY}/{meta.get('namespace') or 'default'}/{meta.get('name', '')}"


def resolve_reference_for_tag_event(
    stream: Mapping[str, Any], tag: str, event: Mapping[str, Any]
) -> str:
    """The pull spec a tag event stands for, honouring the spec tag's reference policy.

    Why: OpenShift hands out ``<status.dockerImageRepository>@<image>`` for
    ``referencePolicy.type: Local`` (pull through the integrated registry) and the
    recorded ``dockerImageReference`` otherwise, or when either part is missing.
    """
    reference = str(event.get("dockerImageReference", ""))
    spec_tag = _spec_tag(stream, tag)
    if spec_tag is None:
        return reference
    if (spec_tag.get("referencePolicy") or {}).get("type") != "Local":
        return reference
    local = (stream.get("status") or {}).get("dockerImageRepository") or ""
    image = event.get("image") or ""
    if not local or not image:
        return reference
    # A repository carrying a tag or digest is re-pointed at the image (reference.Exact()).
    repository = local.split("@", 1)[0]
    last_slash = repository.rfind("/")
    if repository.rfind(":") > last_slash:
        repository = repository[: repository.rfind(":")]
    return f"{repository}@{image}"


def resolve_latest_tagged_image(stream: Mapping[str, Any], tag: str) -> str | None:
    """``ResolveLatestTaggedImage``: the pull spec of ``items[0]`` of the tag, or None.

    An empty tag means ``latest``, as in OpenShift.
    """
    tag = tag or DEFAULT_TAG
    entry = _status_tag(stream, tag)
    items = (entry or {}).get("items") or []
    if not items:
        return None
    return resolve_reference_for_tag_event(stream, tag, items[0])


# --------------------------------------------------------------------------- imports


def _add_tag_event(tags: dict[str, JSON], tag: str, event: JSON) -> bool:
    """OpenShift's ``AddTagEventToImageStream`` on a ``tag -> NamedTagEventList`` map.

    Why each branch: a new item is prepended only when both the pull spec and the
    image differ from the head; when just one differs the head is rewritten in
    place (collapsed), and when only the generation differs only it moves. Any
    change clears the tag's conditions; no change leaves everything, conditions
    included, untouched. Returns whether anything changed.
    """
    entry = tags.get(tag)
    items = list((entry or {}).get("items") or [])
    if entry is None or not items:
        # A fresh list: conditions of an earlier failed import are dropped too.
        tags[tag] = {"tag": tag, "items": [event]}
        return True
    head = dict(items[0])
    same_ref = head.get("dockerImageReference") == event["dockerImageReference"]
    same_image = head.get("image") == event["image"]
    same_gen = head.get("generation") == event["generation"]
    if same_ref and same_image and same_gen:
        return False
    if not same_ref and not same_image:
        items.insert(0, event)
    else:
        if not same_ref:
            head["dockerImageReference"] = event["dockerImageReference"]
        if not same_image:
            head["image"] = event["image"]
        head["generation"] = event["generation"]
        items[0] = head
    updated = {k: v for k, v in entry.items() if k != "conditions"}
    updated["items"] = items
    tags[tag] = updated
    return True


def _update_tracking_tags(
    stream: Mapping[str, Any], tags: dict[str, JSON], updated_tag: str, event: JSON
) -> None:
    """OpenShift's ``UpdateTrackingTags``: spec tags following ``updated_tag`` get the same event.

    Why: a spec tag whose ``from`` is an ImageStreamTag of this very stream
    (``<tag>`` or ``<stream>:<tag>``, same namespace) mirrors it, e.g. ``prod``
    tracking ``latest``.
    """
    meta = _meta(stream)
    name, namespace = meta.get("name", ""), meta.get("namespace", "")
    for ref in (stream.get("spec") or {}).get("tags") or []:
        source = ref.get("from") or {}
        if source.get("kind") != "ImageStreamTag":
            continue
        if (source.get("namespace") or namespace) != namespace:
            continue
        source_name = str(source.get("name", ""))
        if ":" in source_name:
            stream_name, _, source_tag = source_name.partition(":")
            source_tag = source_tag or DEFAULT_TAG
        else:
            stream_name, source_tag = name, source_name
        if stream_name != name or source_tag != updated_tag:
            continue
        _add_tag_event(tags, str(ref.get("name", "")), dict(event))


def _status_with_tags(stream: Mapping[str, Any], tags: Mapping[str, JSON]) -> JSON:
    status = copy.deepcopy(dict(stream.get("status") or {}))
    if not status.get("dockerImageRepository"):
        status["dockerImageRepository"] = _default_repository(stream)
    # The v1 conversion emits status tags sorted by tag name.
    status["tags"] = [copy.deepcopy(tags[name]) for name in sorted(tags)]
    return status


def apply_import(
    stream: Mapping[str, Any],
    tag: str,
    *,
    docker_image_reference: str,
    image: str,
    now: dt.datetime,
    generation: int | None = None,
) -> JSON:
    """The ImageStream ``status`` after an import or push of ``tag`` lands.

    Rules (OpenShift's): the status tag entry is created when missing (a tag may
    live in status only); a new item is prepended only when both the pull spec
    and the image differ from ``items[0]``; a re-import of the same digest keeps
    ``items[0]`` and at most moves its generation; spec tags tracking this tag
    (``from.kind: ImageStreamTag``) follow; ``status.dockerImageRepository`` is
    filled only when missing.

    Conditions: OpenShift records no ``ImportSuccess: True``. A successful import
    *clears* the tag's conditions (``setTagConditions(stream, tag)`` in
    imagestreamimport/rest.go, "clear error conditions from previous import
    attempts"); only a failure writes ``ImportSuccess: False`` (see
    :func:`apply_import_failure`). This function does the same.

    Generation: unless ``generation`` is given, the item carries the spec tag's
    generation when the tag is in spec, else ``metadata.generation`` (or 1).
    This is what a push records (imagestreammapping: ``stream.Generation``).
    A real *import* that changes the tag also resets the spec tag generation,
    which bumps the stream to ``metadata.generation + 1`` and stamps both the
    spec tag and the new item with it; a simulator reproducing that writes the
    spec first and passes the new generation here.
    """
    tag = tag or DEFAULT_TAG
    if generation is None:
        spec_tag = _spec_tag(stream, tag)
        spec_gen = (spec_tag or {}).get("generation")
        if spec_tag is not None and isinstance(spec_gen, int):
            generation = spec_gen
        else:
            generation = int(_meta(stream).get("generation") or 1)
    event: JSON = {
        "created": rfc3339(now),
        "dockerImageReference": docker_image_reference,
        "image": image,
        "generation": generation,
    }
    tags: dict[str, JSON] = {
        str(entry.get("tag")): copy.deepcopy(dict(entry))
        for entry in (stream.get("status") or {}).get("tags") or []
    }
    if _add_tag_event(tags, tag, event):
        _update_tracking_tags(stream, tags, tag, event)
    # The import path clears the tag's conditions on every success, changed or not.
    tags[tag] = {k: v for k, v in tags[tag].items() if k != "conditions"}
    return _status_with_tags(stream, tags)


def apply_import_failure(
    stream: Mapping[str, Any],
    tag: str,
    *,
    reason: str,
    message: str,
    now: dt.datetime,
) -> JSON:
    """The ImageStream ``status`` after an import of ``tag`` failed.

    Why: OpenShift keeps the items (workloads keep running the last good image)
    and replaces the tag's conditions with one ``ImportSuccess: False`` carrying
    the import's next generation (``metadata.generation + 1``), unless a
    condition with the same type, status, reason and message is already there.
    An empty message becomes "unknown error prevented import". (OpenShift also
    zeroes the spec tag generation, a spec change this status-only rule leaves
    to the caller.)
    """
    tag = tag or DEFAULT_TAG
    condition: JSON = {
        "type": "ImportSuccess",
        "status": "False",
        "lastTransitionTime": rfc3339(now),
        "reason": reason,
        "message": message or "unknown error prevented import",
        "generation": int(_meta(stream).get("generation") or 0) + 1,
    }
    tags: dict[str, JSON] = {
        str(entry.get("tag")): copy.deepcopy(dict(entry))
        for entry in (stream.get("status") or {}).get("tags") or []
    }
    entry = tags.get(tag) or {"tag": tag, "items": None}
    same = [
        c
        for c in entry.get("conditions") or []
        if all(c.get(k) == condition[k] for k in ("type", "status", "reason", "message"))
    ]
    if not same:
        entry = {**entry, "conditions": [condition]}
    tags[tag] = entry
    return _status_with_tags(stream, tags)


def image_stream_tag(stream: Mapping[str, Any], tag: str) -> JSON | None:
    """The ImageStreamTag ``<stream>:<tag>`` as openshift-apiserver synthesizes it (``newISTag``).

    Why: ImageStreamTags are never stored; the server computes them from the
    stream on every GET/LIST. None when the tag has no status item with an image
    (the server answers 404). The real server also embeds the cluster-scoped
    Image object; the emulation has none, so ``image`` carries only its name
    (the digest), the tag's annotations and the resolved ``dockerImageReference``.
    """
    tag = tag or DEFAULT_TAG
    entry = _status_tag(stream, tag)
    items = (entry or {}).get("items") or []
    if not items or not items[0].get("image"):
        return None
    event = items[0]
    meta = _meta(stream)
    spec_tag = _spec_tag(stream, tag)
    annotations = dict((spec_tag or {}).get("annotations") or {})
    metadata: JSON = {
        "name": f"{meta.get('name', '')}:{tag}",
        "namespace": meta.get("namespace", ""),
        "creationTimestamp": event.get("created"),
    }
    for key in ("uid", "resourceVersion"):
        if meta.get(key):
            metadata[key] = meta[key]
    if meta.get("labels"):
        metadata["labels"] = dict(meta["labels"])
    if annotations:
        metadata["annotations"] = annotations
    image_meta: JSON = {"name": event["image"]}
    if annotations:
        image_meta["annotations"] = dict(annotations)
    result: JSON = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStreamTag",
        "metadata": metadata,
        "tag": copy.deepcopy(spec_tag),
        "generation": event.get("generation", 0),
        "lookupPolicy": dict((stream.get("spec") or {}).get("lookupPolicy") or {"local": False}),
        "image": {
            "metadata": image_meta,
            "dockerImageReference": resolve_reference_for_tag_event(stream, tag, event),
        },
    }
    if entry and entry.get("conditions"):
        result["conditions"] = copy.deepcopy(entry["conditions"])
    return result


def image_object_name(digest: str) -> str:
    """The emulated Image's object name: the digest with "." for ":", which a CRD's object
    name cannot hold (openshift-apiserver names Images by the digest itself)."""
    return digest.replace(":", ".")


def image_stream_image(
    stream: Mapping[str, Any], digest: str, image: Mapping[str, Any] | None
) -> JSON | None:
    """The ImageStreamImage ``<stream>@<digest>`` as openshift-apiserver serves it: the Image
    ``image`` (cluster-scoped, one per digest) under ``image``, found only when the digest
    is in one of the stream's tag histories (else None: 404). Without an Image object (an
    import made without ``created``) the image carries no Docker metadata."""
    event = next(
        (
            item
            for entry in (stream.get("status") or {}).get("tags") or []
            for item in entry.get("items") or []
            if item.get("image") == digest
        ),
        None,
    )
    if event is None:
        return None
    meta = _meta(stream)
    found: JSON = copy.deepcopy(dict(image)) if image else {}
    found.pop("apiVersion", None)
    found.pop("kind", None)
    found["metadata"] = {**dict(found.get("metadata") or {}), "name": digest}
    found.setdefault("dockerImageReference", event.get("dockerImageReference", ""))
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStreamImage",
        "metadata": {
            "name": f"{meta.get('name', '')}@{digest}",
            "namespace": meta.get("namespace", ""),
            "uid": found["metadata"].get("uid") or meta.get("uid", ""),
            "creationTimestamp": found["metadata"].get("creationTimestamp") or event.get("created"),
        },
        "image": found,
    }


def stream_resolver(streams: Mapping[tuple[str, str], Mapping[str, Any]]) -> Resolver:
    """A resolver backed by known ImageStreams, keyed by ``(namespace, name)``.

    Why: the build generator turns every ImageStreamTag reference into a pull
    spec (``resolveImageStreamReference``); this reproduces it for
    ``DockerImage`` (taken as is), ``ImageStreamTag`` (latest tagged image,
    reference policy applied) and ``ImageStreamImage`` (``stream@digest``: the
    newest event carrying that image), with the generator's error messages.
    """

    def resolve(ref: Mapping[str, Any], default_namespace: str) -> str:
        kind = str(ref.get("kind", ""))
        name = str(ref.get("name", ""))
        namespace = str(ref.get("namespace") or default_namespace)
        if kind == "DockerImage":
            return name

        def fail(why: str, as_kind: str = kind) -> Unresolvable:
            return Unresolvable(f"Error resolving {as_kind} {name} in namespace {namespace}: {why}")

        if kind == "ImageStreamTag":
            stream_name, sep, tag = name.partition(":")
            if not sep or not stream_name or not tag or "@" in name or ":" in tag:
                raise fail(f'expected exactly one : delimiter in the istag "{name}"')
            stream = streams.get((namespace, stream_name))
            if stream is None:
                raise fail(f'imagestreams.image.openshift.io "{stream_name}" not found')
            resolved = resolve_latest_tagged_image(stream, tag)
            if resolved is None:
                raise fail("unable to find latest tagged image")
            return resolved
        if kind == "ImageStreamImage":
            stream_name, sep, digest = name.partition("@")
            if not sep or not stream_name or not digest:
                raise fail(f'expected exactly one @ in the isimage name "{name}"')
            stream = streams.get((namespace, stream_name))
            if stream is None:
                raise fail(f'imagestreams.image.openshift.io "{stream_name}" not found')
            best: tuple[str, Mapping[str, Any]] | None = None
            for entry in (stream.get("status") or {}).get("tags") or []:
                for event in entry.get("items") or []:
                    image = str(event.get("image", ""))
                    if not (image.startswith(digest) or image.partition(":")[2].startswith(digest)):
                        continue
                    if best is None or str(event.get("created", "")) > str(
                        best[1].get("created", "")
                    ):
                        best = (str(entry.get("tag")), event)
            if best is None:
                raise fail(f'unable to find corresponding tag for image "{digest}"')
            return resolve_reference_for_tag_event(stream, best[0], best[1])
        raise Unresolvable(f"unknown From Kind {kind}", code=500, reason="InternalError")

    return resolve


# --------------------------------------------------------------------------- tagging (oc tag)


class TagConflict(OpenShiftError):
    """``409``: the spec tag already exists (a create), or an ID matches several images."""

    code = 409
    reason = "AlreadyExists"


def _from_parts(stream_name: str, source: Mapping[str, Any]) -> tuple[str, str]:
    """``parseFromReference``: ``(stream, tag-or-id)`` of a spec tag's ``from``.

    Why: ``<tag>``/``<id>`` alone names this very stream; ``<stream>:<tag>`` (an
    ImageStreamTag) or ``<stream>@<id>`` (an ImageStreamImage) names another; anything
    else is refused as OpenShift words it.
    """
    kind, name = str(source.get("kind", "")), str(source.get("name", ""))
    split = {"ImageStreamTag": ":", "ImageStreamImage": "@"}.get(kind)
    if split is None:
        raise Unresolvable(
            f'invalid from.kind "{kind}" - only ImageStreamTag and ImageStreamImage are allowed'
        )
    parts = name.split(split)
    if len(parts) == 1:
        return stream_name, name
    if len(parts) == 2:
        return parts[0], parts[1]
    what = "tag" if split == ":" else "id"
    raise Unresolvable(
        f'invalid from.name "{name}" - it must be of the form <{what}> or <stream>{split}<{what}>'
    )


def tag_source(namespace: str, stream_name: str, tag_ref: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, stream)`` whose status a spec tag's ``from`` is resolved against."""
    source = tag_ref.get("from") or {}
    if source.get("kind") == "DockerImage":
        return namespace, stream_name
    other, _ = _from_parts(stream_name, source)
    return str(source.get("namespace") or namespace), other


def tag_ref_changed(old: Mapping[str, Any] | None, new: Mapping[str, Any], namespace: str) -> bool:
    """``tagRefChanged``: whether a spec tag now points elsewhere (so status must follow).

    Why: only the ``from`` (namespace defaulted to the stream's, name), ``reference``,
    the import mode and a generation reset to 0 count; an unchanged ``oc tag`` repeated
    changes nothing in status.
    """
    new_from = new.get("from") or {}
    if not new_from or not (new_from.get("kind") or new_from.get("name")):
        return False
    old = old or {}
    old_from = old.get("from") or {}
    if (old_from.get("namespace") or namespace) != (new_from.get("namespace") or namespace):
        return True
    if old_from.get("name") != new_from.get("name"):
        return True
    if bool(old.get("reference")) != bool(new.get("reference")):
        return True
    old_mode = (old.get("importPolicy") or {}).get("importMode")
    if old_mode != (new.get("importPolicy") or {}).get("importMode"):
        return True
    return old.get("generation") is not None and new.get("generation") == 0


def tag_event_for(
    tag_ref: Mapping[str, Any],
    stream_name: str,
    source: Mapping[str, Any] | None,
    *,
    now: dt.datetime,
) -> JSON | None:
    """``tagReferenceToTagEvent``: the status item a changed spec tag stands for, or None.

    ``source``: the stream named by ``from`` (None when it does not exist). Rules:
    ``ImageStreamImage`` (``ResolveImageID``) looks for the image in *every* item of
    every tag of the source and takes that item's ``dockerImageReference``: none is a
    422, two different images matching a short ID a 409; ``ImageStreamTag``
    (``LatestTaggedImage``) takes the source tag's head, if any; ``DockerImage`` records
    the pull spec only for a ``reference`` tag (otherwise an import fills it, which the
    emulation does not do). The item's ``generation`` is left to the caller.
    """
    origin = tag_ref.get("from") or {}
    kind, name = str(origin.get("kind", "")), str(origin.get("name", ""))
    if kind == "DockerImage":
        if not tag_ref.get("reference") or not name:
            return None
        return {"created": rfc3339(now), "dockerImageReference": name, "image": ""}
    _, tag_or_id = _from_parts(stream_name, origin)
    if source is None:
        raise Unresolvable(f'spec.tags.from.name: Not found: "{name}"')
    if kind == "ImageStreamTag":
        entry = _status_tag(source, tag_or_id or DEFAULT_TAG)
        items = (entry or {}).get("items") or []
        if not items:
            return None  # "referenced tag or ID doesn't exist, which is ok"
        head = items[0]
        return {
            "created": rfc3339(now),
            "dockerImageReference": head.get("dockerImageReference", ""),
            "image": head.get("image", ""),
        }
    found: dict[str, Mapping[str, Any]] = {}
    for entry in (source.get("status") or {}).get("tags") or []:
        for item in entry.get("items") or []:
            image = str(item.get("image", ""))
            # DigestOrImageMatch: the whole name, or a prefix of the digest's hex.
            if image and (image == tag_or_id or image.partition(":")[2].startswith(tag_or_id)):
                found.setdefault(image, item)
    if not found:
        raise Unresolvable(
            f'spec.tags.from.name: Invalid value: "{name}": error generating tag event: '
            f'imagestreamimages.image.openshift.io "{tag_or_id}" not found'
        )
    if len(found) > 1:
        raise TagConflict(
            f'imagestreamimages.image.openshift.io "{tag_or_id}": multiple images match the '
            f'prefix "{tag_or_id}": {", ".join(sorted(found))}',
            reason="Conflict",
        )
    ((image, item),) = found.items()
    return {
        "created": rfc3339(now),
        "dockerImageReference": item.get("dockerImageReference", ""),
        "image": image,
    }


def spec_with_tag(
    stream: Mapping[str, Any] | None,
    tag: str,
    tag_ref: Mapping[str, Any],
    *,
    annotations: Mapping[str, str] | None,
) -> tuple[JSON, bool]:
    """The stream's ``spec`` once an ImageStreamTag update set ``tag``, and whether the
    tag's reference changed (``tagsChanged`` then resolves it into status).

    Why: the ImageStreamTag REST replaces the spec tag with the one sent (its name forced
    to ``tag``, its annotations those of the ImageStreamTag). A changed tag is stamped
    with the stream's new generation; the CRD's ``metadata.generation`` moves by one on a
    spec change (from 0 on create), as OpenShift's strategy moves it, so it is known
    before the write.
    """
    spec = copy.deepcopy(dict((stream or {}).get("spec") or {}))
    tags = [dict(t) for t in spec.get("tags") or []]
    namespace = str(_meta(stream or {}).get("namespace", ""))
    old = next((t for t in tags if t.get("name") == tag), None)
    new = {**copy.deepcopy(dict(tag_ref)), "name": tag}
    if annotations:
        new["annotations"] = dict(annotations)
    else:
        new.pop("annotations", None)
    changed = tag_ref_changed(old, new, namespace)
    if changed:
        new["generation"] = int(_meta(stream or {}).get("generation") or 0) + 1
    elif old is not None and "generation" in old:
        new["generation"] = old["generation"]
    if old is None:
        tags.append(new)
    else:
        tags[tags.index(old)] = new
    spec["tags"] = tags
    return spec, changed


def apply_tag(
    stream: Mapping[str, Any],
    tag: str,
    event: Mapping[str, Any],
    *,
    source_namespace: str,
    source_name: str,
) -> JSON:
    """The ImageStream ``status`` once the changed spec ``tag`` resolved to ``event``.

    Rules (``tagsChanged``): the item carries the stream's generation (the one
    ``spec_with_tag`` stamped); a non-reference tag whose image sits in the integrated
    registry under the source stream is re-pointed at this stream, so pulls come from
    here; the item goes in by ``AddTagEventToImageStream`` and tags tracking this one
    follow (``UpdateTrackingTags``). ``stream``: after the spec write.
    """
    meta = _meta(stream)
    item: JSON = {**dict(event), "generation": int(meta.get("generation") or 1)}
    spec_tag = _spec_tag(stream, tag) or {}
    reference = str(item.get("dockerImageReference", ""))
    prefix = f"{INTERNAL_REGISTRY}/{source_namespace}/{source_name}"
    if not spec_tag.get("reference") and reference.startswith(prefix):
        rest = reference[len(prefix) :]
        if rest[:1] in ("@", ":"):
            item["dockerImageReference"] = (
                f"{INTERNAL_REGISTRY}/{meta.get('namespace', '')}/{meta.get('name', '')}{rest}"
            )
    tags: dict[str, JSON] = {
        str(entry.get("tag")): copy.deepcopy(dict(entry))
        for entry in (stream.get("status") or {}).get("tags") or []
    }
    if _add_tag_event(tags, tag, item):
        _update_tracking_tags(stream, tags, tag, item)
    return _status_with_tags(stream, tags)


# --------------------------------------------------------------------------- builds


def strategy_type(strategy: Mapping[str, Any]) -> str:
    """The strategy type OpenShift derives from which strategy block is set.

    Why: the server ignores ``strategy.type`` and looks at the blocks; only a
    bare ``type: Docker`` is defaulted into an empty ``dockerStrategy``.
    Returns "" for an unrecognized strategy.
    """
    for key, kind in _STRATEGY_KEYS:
        if strategy.get(key) is not None:
            return kind
    return "Docker" if strategy.get("type") == "Docker" else ""


def strategy_subresource(bc: Mapping[str, Any]) -> str:
    """The ``builds/<x>`` subresource whose ``create`` OpenShift's strategy admission demands.

    Why: instantiating needs, besides ``buildconfigs/instantiate``, the right to
    create builds of that strategy; Docker with an image optimization policy
    other than ``None`` is ``optimizeddocker``. Raises :class:`InvalidRequest`
    (403, as the admission plugin answers) for an unrecognized strategy.
    """
    strategy = (bc.get("spec") or {}).get("strategy") or {}
    kind = strategy_type(strategy)
    if not kind:
        raise InvalidRequest("unrecognized build strategy", code=403, reason="Forbidden")
    if kind == "Docker":
        policy = (strategy.get("dockerStrategy") or {}).get("imageOptimizationPolicy")
        if policy is not None and policy != "None":
            return "optimizeddocker"
    return BUILD_STRATEGY_SUBRESOURCE[kind]


def _fnv32a(text: str) -> str:
    value = 0x811C9DC5
    for byte in text.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{value:08x}"


def build_name(base: str, number: int) -> str:
    """``naming.GetName(bc, n, 253)`` from library-go: ``<bc>-<n>``, hashed when too long."""
    suffix = str(number)
    name = f"{base}-{suffix}"
    if len(name) <= _MAX_NAME_LENGTH:
        return name
    base_length = _MAX_NAME_LENGTH - 10 - len(suffix)
    if base_length <= 0:
        prefix = base[: max(0, _MAX_NAME_LENGTH - 9)]
        return f"{prefix}-{_fnv32a(name)}"[:_MAX_NAME_LENGTH]
    return f"{base[:base_length]}-{_fnv32a(base)}-{suffix}"


def _label_value(name: str) -> str:
    """Truncate from the end until the value is a valid label value, as the generator does."""
    candidate = name
    while candidate:
        if len(candidate) <= 63 and _LABEL_VALUE.match(candidate):
            return candidate
        candidate = candidate[:-1]
    return name


def _input_reference(strategy: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """``buildutil.GetInputReference``: the strategy's ``from`` (Jenkins has none)."""
    if strategy.get("sourceStrategy") is not None:
        return strategy["sourceStrategy"].get("from") or {}
    if strategy.get("dockerStrategy") is not None:
        ref: Mapping[str, Any] | None = strategy["dockerStrategy"].get("from")
        return ref
    if strategy.get("customStrategy") is not None:
        return strategy["customStrategy"].get("from") or {}
    return None


def _image_change_triggers(bc: Mapping[str, Any]) -> list[JSON]:
    """The ``imageChange`` blocks of the ImageChange triggers, as the generator sees them.

    Why: reading a BuildConfig converts the deprecated ``imageChange`` type name,
    defaults a missing block to ``{}``, and drops triggers without ``from`` when
    the strategy does not start from an ImageStreamTag (they could never fire).
    """
    strategy = (bc.get("spec") or {}).get("strategy") or {}
    strategy_ref = _input_reference(strategy)
    has_ist = strategy_ref is not None and strategy_ref.get("kind") == "ImageStreamTag"
    found: list[JSON] = []
    for trigger in (bc.get("spec") or {}).get("triggers") or []:
        if trigger.get("type") not in ("ImageChange", "imageChange"):
            continue
        image_change = dict(trigger.get("imageChange") or {})
        if image_change.get("from") is None and not has_ist:
            continue
        found.append(image_change)
    return found


def _trigger_target(bc: Mapping[str, Any], ref: Mapping[str, Any]) -> tuple[str, str]:
    """``getTriggerNamespaceName``: the (namespace, name) a trigger watches.

    An empty name means the strategy's ``from``, when that is an ImageStreamTag.
    """
    name, namespace = ref.get("name") or "", ref.get("namespace") or ""
    if not name:
        strategy_ref = _input_reference((bc.get("spec") or {}).get("strategy") or {})
        if strategy_ref is None or strategy_ref.get("kind") != "ImageStreamTag":
            return "", ""
        name, namespace = strategy_ref.get("name") or "", strategy_ref.get("namespace") or ""
    return namespace or _meta(bc).get("namespace", ""), name


def _merge(low: Mapping[str, str] | None, high: Mapping[str, str] | None) -> dict[str, str] | None:
    if low is None and high is None:
        return None
    return {**(low or {}), **(high or {})}


def _source_type(source: Mapping[str, Any]) -> str:
    """The v1 ``source.type`` the server derives when it serializes a Build."""
    if source.get("git") is not None:
        return "Git"
    if source.get("binary") is not None:
        return "Binary"
    if source.get("dockerfile") is not None:
        return "Dockerfile"
    if source.get("images"):
        return "Image"
    return "None"


def _strategy_block(strategy: JSON) -> JSON | None:
    for key, _kind in _STRATEGY_KEYS:
        if strategy.get(key) is not None:
            block: JSON = strategy[key]
            return block
    return None


def _set_env(env: list[JSON] | None, name: str, value: str) -> list[JSON]:
    out = [dict(e) for e in env or []]
    for entry in out:
        if entry.get("name") == name:
            entry["value"] = value
            return out
    out.append({"name": name, "value": value})
    return out


def instantiate(
    bc: Mapping[str, Any],
    request: Mapping[str, Any],
    now: dt.datetime,
    *,
    resolve: Resolver | None = None,
) -> tuple[JSON, JSON]:
    """``POST buildconfigs/NAME/instantiate``: (Build to create, new BuildConfig status).

    Follows openshift-apiserver's build generator step by step:

    1. Refuse a paused BuildConfig (annotation ``openshift.io/build-config.paused``)
       and a ``lastVersion`` that does not match (both 400).
    2. Refuse with :class:`AlreadyBuilt` when ``triggeredByImage.name`` equals the
       ``lastTriggeredImageID`` recorded in ``status.imageChangeTriggers`` for
       the request's ``from``. Since OpenShift 4.8 only the status is consulted;
       ``spec.triggers[].imageChange.lastTriggeredImageID`` is ignored.
    3. Rebuild ``status.imageChangeTriggers`` from the spec triggers: the trigger
       matching ``from`` records ``triggeredByImage.name`` and ``now``; every other
       one records its image's current pull spec and a null ``lastTriggerTime``.
       A ``from`` matching no trigger is *not* refused: OpenShift then just
       records the current images of all triggers.
    4. ``lastVersion + 1`` names the Build ``<bc>-<n>`` (hashed past 253 chars).
    5. The Build copies the common spec, resolves image references to
       ``DockerImage`` pull specs, and carries the labels, annotations, owner
       reference, ``triggeredBy`` (default "Manually triggered") and ``New`` phase
       OpenShift sets.

    ``resolve`` reproduces the generator's image lookups (see
    :func:`stream_resolver`). Without it only what the request and BuildConfig
    tell is known: ``DockerImage`` references, the request's ``from`` (which
    resolves to ``triggeredByImage``) and previously recorded trigger images;
    other references stay as they are instead of failing. Pull secret lookup
    through the builder service account is not emulated.
    """
    meta = _meta(bc)
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    uid = meta.get("uid")
    if not uid:
        raise ValueError(
            "the BuildConfig has no metadata.uid: pass the object read from the server"
        )
    spec: Mapping[str, Any] = bc.get("spec") or {}
    old_status: Mapping[str, Any] = bc.get("status") or {}
    last_version = int(old_status.get("lastVersion") or 0)
    from_ref: Mapping[str, Any] | None = request.get("from")
    triggered_by_image: Mapping[str, Any] | None = request.get("triggeredByImage")

    if triggered_by_image is not None and from_ref is None:
        # describeBuildRequest dereferences request.From whenever triggeredByImage is
        # set: the real server panics, and the panic filter answers 500.
        raise InvalidRequest(
            "This request caused apiserver to panic. Look in the logs for details.",
            code=500,
            reason="InternalError",
        )
    if str((meta.get("annotations") or {}).get(PAUSED_ANNOTATION, "")).lower() == "true":
        raise InvalidRequest(
            f"can't instantiate from BuildConfig {namespace}/{name}: BuildConfig is paused"
        )
    requested_version = request.get("lastVersion")
    if requested_version is not None and int(requested_version) != last_version:
        raise InvalidRequest(
            f"the LastVersion({last_version}) on build config {namespace}/{name} "
            f"does not match the build request LastVersion({int(requested_version)})"
        )

    triggers = _image_change_triggers(bc)
    # findImageChangeTrigger: the request's from, its namespace defaulted to the config's.
    target: tuple[str, str] | None = None
    if from_ref is not None:
        target = (from_ref.get("namespace") or namespace, str(from_ref.get("name", "")))
    request_index: int | None = None
    recorded: Mapping[str, Any] | None = None
    if target is not None:
        for index, trigger in enumerate(triggers):
            if _trigger_target(bc, trigger.get("from") or {}) == target:
                request_index = index
                break
        for status_entry in old_status.get("imageChangeTriggers") or []:
            if _trigger_target(bc, status_entry.get("from") or {}) == target:
                recorded = status_entry
                break
    image_id = str((triggered_by_image or {}).get("name", ""))
    if (
        triggered_by_image is not None
        and recorded is not None
        and recorded.get("lastTriggeredImageID", "") == image_id
    ):
        raise AlreadyBuilt(
            f"build config {namespace}/{name} has already instantiated a build "
            f"for imageid {image_id}"
        )

    previous: dict[tuple[str, str], str] = {}
    for status_entry in old_status.get("imageChangeTriggers") or []:
        key = _trigger_target(bc, status_entry.get("from") or {})
        previous.setdefault(key, str(status_entry.get("lastTriggeredImageID", "")))

    def lookup(ref: Mapping[str, Any]) -> str | None:
        """Resolve a reference; None means "unknown" (only without a resolver)."""
        if resolve is not None:
            return resolve(ref, namespace)
        if ref.get("kind") == "DockerImage":
            return str(ref.get("name", ""))
        key = (ref.get("namespace") or namespace, str(ref.get("name", "")))
        if target is not None and key == target and triggered_by_image is not None:
            return image_id
        return previous.get(key) or None

    strategy: JSON = copy.deepcopy(dict(spec.get("strategy") or {}))
    strategy_ref = _input_reference(strategy)
    new_triggers: list[JSON] = []
    unknown: set[tuple[str, str]] = set()
    for index, trigger in enumerate(triggers):
        watched = trigger.get("from") or strategy_ref or {}
        entry_from = {k: watched[k] for k in ("namespace", "name") if watched.get(k)}
        entry: JSON = {"from": entry_from}
        if triggered_by_image is not None and index == request_index:
            if image_id:
                entry["lastTriggeredImageID"] = image_id
            entry["lastTriggerTime"] = rfc3339(now)
            new_triggers.append(entry)
            continue
        try:
            current = lookup(watched)
        except Unresolvable:
            if trigger.get("from") is None:
                raise
            current = ""
        if current is None:  # no resolver and nothing known: nothing to record
            unknown.add((entry_from.get("namespace", ""), entry_from.get("name", "")))
        if current:
            entry["lastTriggeredImageID"] = current
        entry["lastTriggerTime"] = None
        new_triggers.append(entry)

    number = last_version + 1
    new_status: JSON = {"lastVersion": number}
    if new_triggers:
        new_status["imageChangeTriggers"] = new_triggers

    # Strategy: the base image becomes a DockerImage pull spec. The generator's
    # "strategy trigger" shortcut never matches (it compares differently typed
    # values), so OpenShift always resolves the strategy's from afresh.
    block = _strategy_block(strategy)
    if block is not None and strategy.get("jenkinsPipelineStrategy") is None and block.get("from"):
        resolved = lookup(block["from"])
        if resolved is not None:
            block["from"] = {"kind": "DockerImage", "name": resolved}
            if strategy.get("customStrategy") is not None:
                block["env"] = _set_env(block.get("env"), CUSTOM_BASE_IMAGE_ENV, resolved)
    strategy["type"] = strategy_type(strategy)
    if strategy["type"] == "Docker" and strategy.get("dockerStrategy") is None:
        strategy["dockerStrategy"] = {}
        block = strategy["dockerStrategy"]

    # Source images: an ImageStreamTag watched by a trigger takes the image just
    # recorded for it (matched on the raw, undefaulted namespace as OpenShift does);
    # anything else is resolved.
    source: JSON = copy.deepcopy(dict(spec.get("source") or {}))
    recorded_now = {
        (t["from"].get("namespace", ""), t["from"].get("name", "")): t.get(
            "lastTriggeredImageID", ""
        )
        for t in new_triggers
    }
    images = []
    for image_source in source.get("images") or []:
        image_source = dict(image_source)
        ref = image_source.get("from") or {}
        key = (ref.get("namespace") or "", ref.get("name") or "")
        pull_spec: str | None
        if ref.get("kind") == "ImageStreamTag" and key in recorded_now:
            pull_spec = None if key in unknown else recorded_now[key]
        else:
            pull_spec = lookup(ref)
        if pull_spec is not None:
            image_source["from"] = {"kind": "DockerImage", "name": pull_spec}
        images.append(image_source)
    if images:
        source["images"] = images
    binary = request.get("binary")
    if binary is not None:
        source.pop("git", None)
        source["binary"] = copy.deepcopy(binary)
        if source.get("dockerfile") is not None and binary.get("asFile") == "Dockerfile":
            source.pop("dockerfile")
    else:
        source.pop("binary", None)
    source["type"] = _source_type(source)

    if request.get("env"):
        env_block = block if block is not None else {}
        names = {e.get("name") for e in request["env"]}
        env_block["env"] = [e for e in env_block.get("env") or [] if e.get("name") not in names]
        env_block["env"] += copy.deepcopy(list(request["env"]))

    docker_options = request.get("dockerStrategyOptions")
    if docker_options:
        docker = strategy.get("dockerStrategy")
        build_args = docker_options.get("buildArgs")
        no_cache = docker_options.get("noCache")
        if (build_args or no_cache is not None) and docker is None:
            raise InvalidRequest(
                f"Cannot specify Docker build specific options on {namespace}/{name}, "
                "not a Docker build."
            )
        if build_args and docker is not None:
            merged = {a.get("name"): a.get("value", "") for a in docker.get("buildArgs") or []}
            merged.update({a.get("name"): a.get("value", "") for a in build_args})
            docker["buildArgs"] = [{"name": k, "value": v} for k, v in merged.items()]
        if no_cache is not None and docker is not None:
            docker["noCache"] = bool(no_cache)
    source_options = request.get("sourceStrategyOptions")
    if source_options and source_options.get("incremental") is not None:
        if strategy.get("sourceStrategy") is None:
            raise InvalidRequest(
                f"Cannot specify Source build specific options on {namespace}/{name}, "
                "not a Source build."
            )
        strategy["sourceStrategy"]["incremental"] = bool(source_options["incremental"])

    build_spec: JSON = {
        "serviceAccount": spec.get("serviceAccount") or BUILDER_SERVICE_ACCOUNT,
        "source": source,
        "strategy": strategy,
        "output": copy.deepcopy(spec.get("output") or {}),
        "resources": copy.deepcopy(spec.get("resources") or {}),
        "postCommit": copy.deepcopy(spec.get("postCommit") or {}),
        "nodeSelector": copy.deepcopy(spec.get("nodeSelector")),
    }
    if request.get("revision") is not None:
        build_spec["revision"] = copy.deepcopy(request["revision"])
    for field in ("completionDeadlineSeconds", "mountTrustedCA"):
        if spec.get(field) is not None:
            build_spec[field] = spec[field]
    build_spec["triggeredBy"] = copy.deepcopy(
        list(request.get("triggeredBy") or [{"message": MANUAL_TRIGGER_MESSAGE}])
    )

    own_labels = dict(meta.get("labels") or {})
    own_labels["buildconfig"] = _label_value(name)
    own_labels["openshift.io/build-config.name"] = _label_value(name)
    own_labels["openshift.io/build.start-policy"] = str(spec.get("runPolicy") or "Serial")
    own_annotations = {
        "openshift.io/build.number": str(number),
        "openshift.io/build-config.name": name,
    }
    request_meta = _meta(request)
    stamp = rfc3339(now)
    build: JSON = {
        "apiVersion": "build.openshift.io/v1",
        "kind": "Build",
        "metadata": {
            "name": build_name(name, number),
            "namespace": namespace,
            "labels": _merge(request_meta.get("labels"), own_labels),
            "annotations": _merge(request_meta.get("annotations"), own_annotations),
            "ownerReferences": [
                {
                    "apiVersion": "build.openshift.io/v1",
                    "kind": "BuildConfig",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                }
            ],
        },
        "spec": build_spec,
        "status": {
            "phase": "New",
            "conditions": [
                {
                    "type": "New",
                    "status": "True",
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
            "config": {"kind": "BuildConfig", "name": name, "namespace": namespace},
            "output": {},
        },
    }
    return build, new_status
