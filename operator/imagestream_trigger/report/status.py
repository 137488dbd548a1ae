"""The ImageTrigger status as a pydantic model: what we write, and how we read it back.

Only this operator writes the status, but anyone with ``imagetriggers/status``
rights can too, and an older version may have written other fields; so what
comes back from the cluster is read leniently (``read``: each part that does
not fit the model is dropped, the rest kept), and what we are about to write
is checked strictly against the same model (``check``). The CRD schema in
manifests/crd mirrors these fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from imagestream_trigger.api import RolloutState
from imagestream_trigger.frozen import thawed


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )


class Condition(_Model):
    type: str
    status: str
    reason: str
    message: str
    observed_generation: int = 0
    last_transition_time: str


class TargetStatus(_Model):
    kind: str
    name: str
    result: str
    message: str = ""
    image: str = ""
    containers: tuple[str, ...] = ()
    # With spec.rollout: where the rollout of the image written stands (api.RolloutState).
    rollout: RolloutState | None = None
    rollout_message: str = ""


class QuarantineEntry(_Model):
    """An image whose rollout failed: not applied again until released (gate.py)."""

    image: str
    since: str
    reason: str = ""
    message: str = ""
    targets: tuple[str, ...] = ()


class HistoryEntry(_Model):
    image: str
    time: str
    updated: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class BuildRecord(_Model):
    """The intent (image, requestedAt) and, once known, the outcome (build)."""

    image: str
    requested_at: str = ""
    build: str = ""


class Promoted(_Model):
    """The last promotion (spec.rollout.promoteTo): the image, "ns/stream:tag", when."""

    image: str
    to: str
    time: str


class Pending(_Model):
    """approval: Manual: the image waiting for ``kubectl imagetrigger approve``, since when."""

    image: str
    since: str


class Waiting(_Model):
    """A timing rule holds the image (timing.Rule) until a time (timing.py)."""

    image: str
    reason: str
    until: str = ""
    message: str = ""


class ImageTriggerStatus(_Model):
    observed_generation: int = 0
    image: str = ""
    short_digest: str = ""
    last_trigger_time: str = ""
    conditions: tuple[Condition, ...] = ()
    targets: tuple[TargetStatus, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    builds: dict[str, BuildRecord] = Field(default_factory=dict)
    quarantine: tuple[QuarantineEntry, ...] = ()
    promoted: Promoted | None = None
    # The tag spec.source.policy picked (a trigger following an imageStream).
    tag: str = ""
    pending: Pending | None = None
    waiting: Waiting | None = None


_LISTS: dict[str, type[_Model]] = {
    "conditions": Condition,
    "targets": TargetStatus,
    "history": HistoryEntry,
    "quarantine": QuarantineEntry,
}
_OBJECTS: dict[str, type[_Model]] = {"promoted": Promoted, "pending": Pending, "waiting": Waiting}
_SCALARS = ("observedGeneration", "image", "shortDigest", "lastTriggerTime", "tag")


def read(body: Any) -> dict[str, Any]:
    """The parts of a status found in the cluster that fit the model, as plain JSON.

    A field of the wrong type, a list entry that does not fit, an unknown key: each
    is dropped alone, so one bad entry never costs the others (notably the build
    records that keep builds to one per image).

    """
    body = thawed(body)  # the index keeps it as text: decoded once here
    if not isinstance(body, Mapping):
        return {}
    kept: dict[str, Any] = {}
    for key in _SCALARS:
        if key in body:
            try:
                one = ImageTriggerStatus.model_validate({key: body[key]})
            except ValidationError:
                continue
            kept[key] = one.model_dump(by_alias=True)[key]
    for key, model in _LISTS.items():
        entries = body.get(key)
        if isinstance(entries, list):
            kept[key] = [_entry(model, e) for e in entries if _fits(model, e)]
    for key, model in _OBJECTS.items():
        entry = body.get(key)
        if isinstance(entry, Mapping) and _fits(model, entry):
            kept[key] = _entry(model, entry)
    builds = body.get("builds")
    if isinstance(builds, Mapping):
        kept["builds"] = {
            name: _entry(BuildRecord, entry)
            for name, entry in builds.items()
            if isinstance(name, str) and _fits(BuildRecord, entry)
        }
    return kept


def check(status: Mapping[str, Any]) -> None:
    """Raise ValidationError if a status we are about to write does not fit the model."""
    ImageTriggerStatus.model_validate(dict(status))


def _known(model: type[_Model]) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def _fits(model: type[_Model], entry: Any) -> bool:
    if not isinstance(entry, Mapping):
        return False
    try:
        model.model_validate(_entry(model, entry))
    except ValidationError:
        return False
    return True


def _entry(model: type[_Model], entry: Mapping[str, Any]) -> dict[str, Any]:
    # The known keys as they were written, not with every default filled in: the
    # status we compute next is compared with it.
    known = _known(model)
    return {k: v for k, v in entry.items() if k in known and v is not None}
