"""Decide what to change in one target, and express it as a request body.

Pure: bodies and resolved images in, plans and request bodies out; the caller supplies the
current time as a string. Nothing here talks to the API, so every decision is unit-tested.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from imagestream_trigger.api import LAST_APPLIED_ANNOTATION, Reason, annotation_path
from imagestream_trigger.kinds import Container, workload_kind
from imagestream_trigger.resolve import ResolvedImage, TagRef, image_repository
from imagestream_trigger.triggers import (
    AnnotationTrigger,
    Problem,
    ProblemCode,
    describe_containers,
    plain,
    quote,
    select_container,
)


@dataclass(frozen=True, slots=True)
class ImageChange:
    """Set one container's image to a resolved reference, because of one source tag."""

    container: Container
    new_image: str
    source: TagRef


def plan_annotation(
    triggers: Sequence[AnnotationTrigger],
    containers: Sequence[Container],
    resolve: Callable[[TagRef], ResolvedImage | None],
) -> tuple[tuple[ImageChange, ...], tuple[Problem, ...]]:
    """Plan the image changes OpenShift would make for an object's annotation triggers.

    Like ``UpdateObjectFromImages`` in library-go: paused triggers are skipped, an
    unresolved tag is skipped silently (the caller may log TagNotResolved), and a resolved
    trigger whose container does not exist voids every change of this object. When two
    triggers write the same container, the later one wins, as in OpenShift's loop; we also
    report it, because the container then follows whichever tag resolved last.
    """
    problems: list[Problem] = []
    desired: dict[tuple[bool, int], tuple[str, TagRef]] = {}
    chosen_by: dict[tuple[bool, int], AnnotationTrigger] = {}
    for trigger in triggers:
        if trigger.paused:
            continue
        container = select_container(trigger.container, containers)
        if container is not None:
            where = (container.init, container.index)
            earlier = chosen_by.setdefault(where, trigger)
            if earlier is not trigger:
                problems.append(_duplicate_container(earlier, trigger, container))
        resolved = resolve(trigger.source)
        if resolved is None:
            continue
        if container is None:
            problems.append(
                Problem(
                    ProblemCode.ContainerNotFound,
                    f"trigger with fieldPath {quote(trigger.field_path)} selects no "
                    f"container (this object has {describe_containers(containers)}), so no "
                    "trigger of this object is applied, as in OpenShift. Fix the selector.",
                )
            )
            return (), tuple(problems)
        desired[(container.init, container.index)] = (resolved.reference, trigger.source)

    changes = []
    for c in containers:  # in pod order, one change per container
        want = desired.get((c.init, c.index))
        if want is not None and c.image != want[0]:
            changes.append(ImageChange(container=c, new_image=want[0], source=want[1]))
    return tuple(changes), tuple(problems)


def plan_target(
    containers: Sequence[Container],
    *,
    names: Sequence[str] | None,
    init_names: Sequence[str] | None,
    repositories: frozenset[str],
    resolved: ResolvedImage,
    source: TagRef,
) -> tuple[tuple[ImageChange, ...], Reason | None, str]:
    """Plan an ImageTrigger target: which containers get ``resolved.reference``, and why.

    With container names, exactly those containers (all must exist: a partial rollout of a
    misnamed target would be a surprise). Without names, the containers whose image already
    comes from the stream's repositories, so a sidecar from elsewhere is never touched.
    """
    reference = resolved.reference
    if names or init_names:
        wanted = [(name, False) for name in names or ()] + [
            (name, True) for name in init_names or ()
        ]
        by_name = {(c.name, c.init): c for c in containers}
        missing = [
            f"{'init container' if init else 'container'} {quote(name)}"
            for name, init in wanted
            if (name, init) not in by_name
        ]
        if missing:
            found = describe_containers(containers)
            message = f"{', '.join(missing)} not found; the target has {found}"
            return (), Reason.ContainerNotFound, message
        selected = [by_name[key] for key in dict.fromkeys(wanted)]
    else:
        follows = repositories | {image_repository(reference)}
        selected = [c for c in containers if image_repository(c.image) in follows]
        if not selected:
            listing = ", ".join(
                f"{'init container' if c.init else 'container'} {quote(c.name)} ({plain(c.image)})"
                for c in containers
            )
            message = (
                f"no container runs an image from {plain(str(source))} "
                f"(repositories {', '.join(sorted(follows))}); the target has "
                f"{listing or 'no containers'}. "
                "Name the containers in the target to update them anyway."
            )
            return (), Reason.NoMatchingContainer, message

    changes = tuple(
        ImageChange(container=c, new_image=reference, source=source)
        for c in selected
        if c.image != reference
    )
    if not changes:
        verb = "runs" if len(selected) == 1 else "run"
        return (), Reason.Unchanged, f"{_keys(selected)} already {verb} {reference}"
    return changes, Reason.Applied, f"set {_keys(c.container for c in changes)} to {reference}"


def workload_patch(
    kind: str,
    changes: Sequence[ImageChange],
    *,
    annotations: Mapping[str, str] | None,
    now: str,
    known_good: bool = True,
) -> list[dict[str, Any]]:
    """A JSON Patch (RFC 6902) making ``changes`` and recording them; [] when none.

    Each image is replaced by index, guarded by ``test`` ops on the container's name and
    current image: if the list was reordered or the image changed meanwhile, the API server
    rejects the whole patch (422) instead of writing the wrong container, and the caller
    re-reads. Nothing else in the object is addressed. ``annotations`` is the object's
    current ``metadata.annotations`` (None when absent); our record goes on the metadata,
    not the pod template, so writing it never rolls the workload by itself.

    Each container's record keeps ``previous``, the image a revert goes back to (see
    ``previous_image``); ``known_good`` says whether the images the workload runs now count
    as good: True unless a rollout of ours is being followed and was not judged healthy.

    Known gap: when the object has no annotations map, the map is added whole; a map that
    appeared since the object was read would be replaced (JSON Patch cannot add a member to
    a map that may or may not exist).
    """
    if not changes:
        return []
    base = workload_kind(kind).patch_base
    patch: list[dict[str, Any]] = []
    for change in changes:
        patch += _swap(base, change.container, change.container.image, change.new_image)

    record = _previous_record(annotations)
    earlier = _entries(record)  # read before the loop below rewrites the record
    for change in changes:
        entry = {"image": change.new_image, "source": str(change.source), "time": now}
        previous = previous_image(
            change.container, earlier.get(change.container.key), known_good=known_good
        )
        if previous:
            entry["previous"] = previous
        record[change.container.key] = entry
    patch.append(_record_op(annotations, record))
    return patch


def _swap(base: str, container: Container, expected: str, image: str) -> list[dict[str, Any]]:
    """Set ``container``'s image to ``image``, guarded by ``test`` ops on its name and on
    ``expected``, the image it must still run (else the server refuses the whole patch)."""
    path = f"{base}/{'initContainers' if container.init else 'containers'}/{container.index}"
    return [
        {"op": "test", "path": f"{path}/name", "value": container.name},
        {"op": "test", "path": f"{path}/image", "value": expected},
        {"op": "replace", "path": f"{path}/image", "value": image},
    ]


def _record_op(annotations: Mapping[str, str] | None, record: Mapping[str, Any]) -> dict[str, Any]:
    """The op writing our record into ``metadata.annotations`` (None: the map is absent)."""
    value = json.dumps(record, separators=(",", ":"), sort_keys=True)
    if annotations is None:
        return {
            "op": "add",
            "path": "/metadata/annotations",
            "value": {LAST_APPLIED_ANNOTATION: value},
        }
    # "add" on an object member creates or replaces it (RFC 6902, 4.1).
    return {"op": "add", "path": annotation_path(LAST_APPLIED_ANNOTATION), "value": value}


@dataclass(frozen=True, slots=True)
class Applied:
    """One container's entry in our last-applied record."""

    image: str  # the image we wrote
    source: str = ""  # the tag followed, "namespace/stream:tag"
    time: str = ""  # when we wrote it (RFC 3339, UTC)
    previous: str = ""  # what it ran before: where a revert goes back to
    reverted: str = ""  # when we set ``previous`` back after a failed rollout ("" if not)


def applied_record(annotations: Mapping[str, str] | None) -> dict[str, Applied]:
    """Our record on a workload, container key -> entry; entries without an image dropped.

    Total: junk (not JSON, not an object, odd entries or fields) reads as absent.
    """
    return _entries(_previous_record(annotations))


def _entries(record: Mapping[str, Any]) -> dict[str, Applied]:
    """The entries of a decoded record (see ``applied_record``)."""
    entries: dict[str, Applied] = {}
    for key, raw in record.items():
        if not isinstance(key, str) or not isinstance(raw, Mapping):
            continue
        fields: dict[str, str] = {}
        for name in ("image", "source", "time", "previous", "reverted"):
            value = raw.get(name)
            fields[name] = value if isinstance(value, str) else ""
        if fields["image"]:
            entries[key] = Applied(**fields)
    return entries


def previous_image(container: Container, entry: Applied | None, *, known_good: bool) -> str:
    """The image a revert of a write to ``container`` would go back to.

    The rule: the last image the container ran that was not ours-and-unproven. What it runs
    now, unless it runs our own earlier write (``entry``, not reverted) that has not been
    judged healthy (``known_good`` False: its rollout is still followed, or failed without
    revert): then that write's own ``previous`` is kept, so a revert never goes back to an
    image that never proved itself. An image someone else set since our write counts as
    theirs, and good.
    """
    ours = entry is not None and entry.image == container.image and not entry.reverted
    if ours and not known_good and entry is not None and entry.previous:
        return entry.previous
    return container.image


def revertible(
    containers: Sequence[Container], record: Mapping[str, Applied], source: str
) -> list[tuple[Container, Applied]]:
    """The containers a revert of our writes for ``source`` sets back, with their entries:
    those that still run the image we wrote, not reverted yet, with another image recorded
    as ``previous``. A container someone else changed since our write is not ours to undo."""
    found = []
    for container in containers:
        entry = record.get(container.key)
        if (
            entry is not None
            and entry.source == source
            and not entry.reverted
            and entry.image == container.image
            and entry.previous
            and entry.previous != entry.image
        ):
            found.append((container, entry))
    return found


def revert_patch(
    kind: str,
    containers: Sequence[Container],
    *,
    source: str,
    annotations: Mapping[str, str] | None,
    now: str,
) -> list[dict[str, Any]]:
    """A JSON Patch setting back the containers our write for ``source`` changed; [] if none.

    ``annotations``: the workload's metadata.annotations, our record among them. Only the
    ``revertible`` containers are touched, each guarded by ``test`` ops on its name
    and on the image we wrote, so if anyone changed it since, the server refuses the whole
    patch (422) and nothing of theirs is undone. Their record entries are marked
    ``reverted`` (the time), which keeps the planner from writing the same image again at
    once, and tells people what happened.
    """
    chosen = revertible(containers, applied_record(annotations), source)
    if not chosen:
        return []
    base = workload_kind(kind).patch_base
    patch: list[dict[str, Any]] = []
    for container, entry in chosen:
        patch += _swap(base, container, entry.image, entry.previous)
    kept = _previous_record(annotations)
    for container, _ in chosen:
        kept[container.key] = {**_as_dict(kept.get(container.key)), "reverted": now}
    patch.append(_record_op(annotations, kept))
    return patch


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def build_request(bc_name: str, namespace: str, source: TagRef, reference: str) -> dict[str, Any]:
    """The BuildRequest OpenShift's own image trigger controller POSTs to ``instantiate``.

    Same body as openshift-controller-manager ``pkg/image/trigger/buildconfigs``, so the
    server's "already instantiated a build for imageid" check deduplicates our requests
    against its own and against our earlier ones.
    """
    from_ref = {
        "kind": "ImageStreamTag",
        "name": f"{source.stream}:{source.tag}",
        "namespace": source.namespace,
    }
    return {
        "kind": "BuildRequest",
        "apiVersion": "build.openshift.io/v1",
        "metadata": {"name": bc_name, "namespace": namespace},
        "triggeredByImage": {"kind": "DockerImage", "name": reference},
        "from": dict(from_ref),
        "triggeredBy": [
            {
                "message": "Image change",
                "imageChangeBuild": {"imageID": reference, "fromRef": dict(from_ref)},
            }
        ],
    }


def _previous_record(annotations: Mapping[str, str] | None) -> dict[str, Any]:
    """Our earlier record, kept for the containers not changed now; junk is dropped."""
    raw = (annotations or {}).get(LAST_APPLIED_ANNOTATION)
    if raw is None:
        return {}
    try:
        previous = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or nested deeper than Python decodes
        return {}
    return dict(previous) if isinstance(previous, dict) else {}


def _duplicate_container(
    first: AnnotationTrigger, second: AnnotationTrigger, container: Container
) -> Problem:
    return Problem(
        ProblemCode.DuplicateContainer,
        f"triggers with fieldPath {quote(first.field_path)} and "
        f"{quote(second.field_path)} both select {quote(container.key)}; "
        f"OpenShift applies them in order, so it follows {plain(str(second.source))} whenever "
        f"that resolves, else {plain(str(first.source))}. Keep one trigger per container.",
    )


def _keys(containers: Iterable[Container]) -> str:
    return ", ".join(c.key for c in containers)
