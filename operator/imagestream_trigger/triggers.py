"""Parse OpenShift's ``image.openshift.io/triggers`` annotation, with OpenShift's semantics.

Pure: strings in, dataclasses out. What is honoured follows the sources checked:

- library-go ``pkg/image/trigger/annotations.go`` (``CalculateAnnotationTriggers``,
  ``UpdateObjectFromImages``, ``parseContainerReference``, ``findContainerBySelector``) and
  ``types.go`` (``ObjectFieldTrigger``: ``paused`` is a Go ``bool``);
- openshift-controller-manager ``pkg/image/controller/trigger/cache.go``
  (``triggerCacheIndexer``) and ``image_trigger_controller.go`` (``tagRetriever``).

The WHOLE annotation is ignored by OpenShift when:

- it is not valid JSON, or any value has the wrong JSON type (Go's ``json.Unmarshal`` fails
  for the whole array; ``"paused": "false"`` is such a type error);
- two entries share a fieldPath (``hasDuplicateTriggers``), paused ones included;
- a non-paused entry with the right base path has an unparsable container part or does not
  end in ``.image`` (``UpdateObjectFromImages`` returns an error, discarding all changes).
  OpenShift only fails once that entry's tag resolves; we reject up front so the user sees
  it before the first image arrives. A single-quoted name selector is found by no container
  and fails the same way (``findContainerBySelector``), as does an unknown container (see
  ``check_containers`` and ``decide.plan_annotation``).

ONE entry is ignored (the others still work) when:

- it is paused;
- ``from.kind`` is not ``ImageStreamTag`` or ``from.apiVersion`` is set (the cache indexer
  skips it, so its stream never wakes the workload);
- ``from.name`` has no ":" (``SplitImageStreamTag`` fails; ``"app:"`` means ``app:latest``);
- its fieldPath does not start with the kind's pod-spec base (``continue`` in
  ``UpdateObjectFromImages``).

OpenShift says nothing to the user in all of these cases; we return a ``Problem`` for each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from imagestream_trigger.api import POD_SPEC_PATHS, TRIGGERS_ANNOTATION, TargetKind
from imagestream_trigger.resolve import TagRef

if TYPE_CHECKING:  # decide.py imports this module at runtime; only the type flows back
    from imagestream_trigger.decide import Container


class ProblemCode(StrEnum):
    """Short codes for what is wrong in an annotation (a bounded metric label set)."""

    InvalidJSON = "InvalidJSON"  # not JSON at all
    InvalidType = "InvalidType"  # JSON, but a value of the wrong type (not an array, ...)
    PausedNotBoolean = "PausedNotBoolean"  # "paused": "false" instead of false
    UnsupportedFromKind = "UnsupportedFromKind"  # from.kind is not ImageStreamTag
    InvalidTagName = "InvalidTagName"  # from.name is not "stream:tag"
    SingleQuotedSelector = "SingleQuotedSelector"  # ?(@.name=='web') instead of "web"
    InvalidFieldPath = "InvalidFieldPath"  # wrong base for the kind, or not ...[SEL].image
    DuplicateFieldPath = "DuplicateFieldPath"  # two entries with the same fieldPath
    ContainerNotFound = "ContainerNotFound"  # the selector matches no container
    DuplicateContainer = "DuplicateContainer"  # two entries select the same container


@dataclass(frozen=True, slots=True)
class ContainerSelector:
    """Which container a trigger writes to: by index in its list, or by name."""

    init: bool  # initContainers[...] rather than containers[...]
    index: int | None
    name: str | None

    def __post_init__(self) -> None:
        if (self.index is None) == (self.name is None):
            raise ValueError("a ContainerSelector needs exactly one of index or name")

    def __str__(self) -> str:
        field = "initContainers" if self.init else "containers"
        selector = self.index if self.name is None else f'?(@.name=="{self.name}")'
        return f"{field}[{selector}]"


@dataclass(frozen=True, slots=True)
class AnnotationTrigger:
    """One honoured entry of the annotation."""

    source: TagRef
    container: ContainerSelector
    paused: bool
    field_path: str  # as written: unique within the annotation, so it names the entry


@dataclass(frozen=True, slots=True)
class Problem:
    """Why (part of) a trigger cannot be honoured, for a Warning Event and a metric."""

    reason: str  # short CamelCase code, a ProblemCode
    message: str  # one sentence a person understands, naming the offending value and the fix


_WHOLE: Final = "OpenShift ignores the whole annotation, so no trigger on this object works"
_ENTRY: Final = "OpenShift ignores this trigger"
_NAME_PREFIX: Final = '?(@.name=="'
_NAME_SUFFIX: Final = '")'
# Go's strconv.Atoi: optional sign, ASCII digits.
_GO_INT: Final = re.compile(r"[+-]?[0-9]+")
_SINGLE_QUOTED: Final = re.compile(r"\?\(@\.name\s*==\s*'(?P<name>[^']*)'\s*\)")


@dataclass(frozen=True, slots=True)
class _Entry:
    """One array element as Go decodes it into ObjectFieldTrigger: absent means empty."""

    kind: str = ""
    name: str = ""
    namespace: str = ""
    api_version: str = ""
    field_path: str = ""
    paused: bool = False


def parse_triggers_annotation(
    value: str, *, kind: str, namespace: str
) -> tuple[tuple[AnnotationTrigger, ...], tuple[Problem, ...]]:
    """Parse the annotation of a ``kind`` object in ``namespace``.

    Returns the entries OpenShift would honour (paused ones included, flagged) and a problem
    for everything it would ignore. When the whole annotation is ignored, no trigger is
    returned.
    """
    base = _base_path(kind)
    entries, problems = _decode(value)
    if problems:
        return (), tuple(problems)
    duplicates = _duplicate_field_paths(entries)
    if duplicates:
        return (), duplicates

    triggers: list[AnnotationTrigger] = []
    for number, entry in enumerate(entries):
        trigger, problem, whole = _check_entry(number, entry, kind=kind, base=base, ns=namespace)
        if problem is not None:
            if whole:
                return (), (problem,)
            problems.append(problem)
        if trigger is not None:
            triggers.append(trigger)
    return tuple(triggers), tuple(problems)


def select_container(
    selector: ContainerSelector, containers: Sequence[Container]
) -> Container | None:
    """The container a selector designates, as OpenShift finds it.

    By name OpenShift searches init containers first, then containers, whatever list the
    fieldPath named (``GetContainerByName``); pod container names are unique across both.
    """
    if selector.name is None:
        return next(
            (c for c in containers if c.init == selector.init and c.index == selector.index),
            None,
        )
    by_name = sorted(containers, key=lambda c: not c.init)  # stable: init ones first
    return next((c for c in by_name if c.name == selector.name), None)


def check_containers(
    triggers: Sequence[AnnotationTrigger], containers: Sequence[Container]
) -> tuple[Problem, ...]:
    """Report non-paused triggers whose container does not exist in the object.

    OpenShift fails the whole update of the object with "no such container" once such a
    trigger's tag resolves; reporting it up front tells the user before that happens.
    """
    problems: list[Problem] = []
    for trigger in triggers:
        if trigger.paused or select_container(trigger.container, containers) is not None:
            continue
        problems.append(
            Problem(
                ProblemCode.ContainerNotFound,
                f"trigger with fieldPath {_q(trigger.field_path)} selects "
                f"{_describe_selector(trigger.container, containers)}, but this object has "
                f"{describe_containers(containers)}; OpenShift stops applying every trigger "
                f"of this object once {trigger.source} resolves. Fix the selector.",
            )
        )
    return tuple(problems)


def describe_containers(containers: Sequence[Container]) -> str:
    """Human list of the containers of a pod spec, for messages."""
    regular = [_q(c.name) for c in containers if not c.init]
    init = [_q(c.name) for c in containers if c.init]
    parts = []
    if regular:
        parts.append(f"containers {', '.join(regular)}")
    if init:
        parts.append(f"init containers {', '.join(init)}")
    return " and ".join(parts) if parts else "no containers"


def _describe_selector(selector: ContainerSelector, containers: Sequence[Container]) -> str:
    if selector.name is not None:
        return f"container {_q(selector.name)}"
    field = "initContainers" if selector.init else "containers"
    count = sum(1 for c in containers if c.init == selector.init)
    valid = f"0..{count - 1}" if count else "none"
    return f"{field}[{selector.index}] (valid indexes: {valid})"


def _base_path(kind: str) -> str:
    try:
        return ".".join(POD_SPEC_PATHS[TargetKind(kind)]) + "."
    except (KeyError, ValueError):
        raise ValueError(f"kind {kind!r} does not carry {TRIGGERS_ANNOTATION}") from None


def _decode(value: str) -> tuple[list[_Entry], list[Problem]]:
    """Decode like Go's ``json.Unmarshal`` into ``[]ObjectFieldTrigger``.

    Go matches keys case-insensitively, ignores unknown keys, treats ``null`` as absent and
    fails the whole decode on any type mismatch; any problem here voids the annotation.
    """
    try:
        document = json.loads(value, parse_constant=_reject_constant)
    except ValueError as error:
        return [], [
            Problem(
                ProblemCode.InvalidJSON,
                f"annotation {TRIGGERS_ANNOTATION} is not valid JSON ({error}); {_WHOLE}. "
                'Write a JSON array such as [{"from": {"kind": "ImageStreamTag", '
                '"name": "app:latest"}, "fieldPath": "...", "paused": false}].',
            )
        ]
    if document is None:
        return [], []
    if not isinstance(document, list):
        return [], [
            Problem(
                ProblemCode.InvalidType,
                f"annotation {TRIGGERS_ANNOTATION} must be a JSON array of triggers but is "
                f"{_json_type(document)}; {_WHOLE}. Put the trigger(s) inside [ ].",
            )
        ]
    entries: list[_Entry] = []
    problems: list[Problem] = []
    for number, element in enumerate(document):
        entry, entry_problems = _decode_entry(number, element)
        entries.append(entry)
        problems.extend(entry_problems)
    return entries, problems


def _decode_entry(number: int, element: Any) -> tuple[_Entry, list[Problem]]:
    if element is None:
        return _Entry(), []
    if not isinstance(element, dict):
        return _Entry(), [
            Problem(
                ProblemCode.InvalidType,
                f"trigger [{number}] must be a JSON object with from and fieldPath but is "
                f"{_json_type(element)} {_dump(element)}; {_WHOLE}.",
            )
        ]
    fields: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, item in element.items():
        folded = key.lower()
        if item is None or folded not in ("from", "fieldpath", "paused"):
            continue
        if folded == "paused" and not isinstance(item, bool):
            problems.append(
                Problem(
                    ProblemCode.PausedNotBoolean,
                    f"trigger [{number}] has {_q(key)}: {_dump(item)}, but OpenShift accepts "
                    f"only a JSON boolean; {_WHOLE}. Write {_q(key)}: "
                    f"{'true' if _truthy(item) else 'false'} without quotes.",
                )
            )
        elif folded == "fieldpath" and not isinstance(item, str):
            problems.append(_type_problem(number, key, item, "a string"))
        elif folded == "from" and not isinstance(item, dict):
            problems.append(_type_problem(number, key, item, "a JSON object"))
        else:
            fields[folded] = item
    reference: dict[str, str] = {}
    for key, item in fields.get("from", {}).items():
        folded = key.lower()
        if item is None or folded not in ("kind", "name", "namespace", "apiversion"):
            continue
        if isinstance(item, str):
            reference[folded] = item
        else:
            problems.append(_type_problem(number, f"from.{key}", item, "a string"))
    entry = _Entry(
        kind=reference.get("kind", ""),
        name=reference.get("name", ""),
        namespace=reference.get("namespace", ""),
        api_version=reference.get("apiversion", ""),
        field_path=fields.get("fieldpath", ""),
        paused=fields.get("paused", False),
    )
    return entry, problems


def _duplicate_field_paths(entries: Sequence[_Entry]) -> tuple[Problem, ...]:
    first_seen: dict[str, int] = {}
    problems: list[Problem] = []
    for number, entry in enumerate(entries):
        earlier = first_seen.setdefault(entry.field_path, number)
        if earlier != number:
            problems.append(
                Problem(
                    ProblemCode.DuplicateFieldPath,
                    f"triggers [{earlier}] and [{number}] both have fieldPath "
                    f"{_q(entry.field_path)}; {_WHOLE}. Keep one trigger per fieldPath.",
                )
            )
    return tuple(problems)


# (the trigger if honoured, the problem if any, whether the problem voids the annotation)
_Checked = tuple[AnnotationTrigger | None, Problem | None, bool]


def _ignore(code: ProblemCode, message: str) -> _Checked:
    """Only this entry is ignored; the others still work."""
    return None, Problem(code, message), False


def _check_entry(number: int, entry: _Entry, *, kind: str, base: str, ns: str) -> _Checked:
    """Validate one decoded entry: (trigger, problem, whether the problem voids everything).

    The order follows OpenShift so that the reported problem is the one that decides.
    """
    where = f"trigger [{number}]"
    if entry.kind != "ImageStreamTag":
        found = f"has from.kind {_q(entry.kind)}" if entry.kind else "has no from.kind"
        return _ignore(
            ProblemCode.UnsupportedFromKind,
            f'{where} {found}; only "ImageStreamTag" is supported, so {_ENTRY}.',
        )
    if entry.api_version:
        return _ignore(
            ProblemCode.UnsupportedFromKind,
            f"{where} sets from.apiVersion {_q(entry.api_version)}; {_ENTRY}. "
            "Remove from.apiVersion.",
        )

    stream, colon, tag = entry.name.partition(":")
    if not colon or not stream or "@" in entry.name:
        return _ignore(
            ProblemCode.InvalidTagName,
            f"{where} has from.name {_q(entry.name)}, which is not an ImageStreamTag; "
            f'{_ENTRY}. Write it as "stream:tag", for example "app:latest".',
        )
    source = TagRef(namespace=entry.namespace or ns, stream=stream, tag=tag or "latest")

    if not entry.field_path.startswith(base):
        return _ignore(
            ProblemCode.InvalidFieldPath,
            f"{where} has fieldPath {_q(entry.field_path)}, which does not start with "
            f"{_q(base)} as a {kind} requires; {_ENTRY}." + _suggest_base(entry.field_path, base),
        )

    parsed = _parse_selector(where, entry.field_path, base)
    if isinstance(parsed, ContainerSelector):
        trigger = AnnotationTrigger(
            source=source, container=parsed, paused=entry.paused, field_path=entry.field_path
        )
        return trigger, None, False
    if entry.paused:
        # OpenShift skips a paused trigger before looking at its container part.
        note = " It is paused, so for now only this trigger is ignored."
        return None, Problem(parsed.reason, parsed.message + note), False
    return None, parsed, True


def _parse_selector(where: str, field_path: str, base: str) -> ContainerSelector | Problem:
    """Parse ``containers[SEL].image`` after the base, as ``parseContainerReference`` does."""
    rest = field_path[len(base) :]
    if rest.startswith("containers["):
        init, rest = False, rest[len("containers[") :]
    elif rest.startswith("initContainers["):
        init, rest = True, rest[len("initContainers[") :]
    else:
        return _bad_tail(where, field_path, base)
    end = rest.find("]")
    if end == -1:
        return _bad_tail(where, field_path, base)
    selector, remainder = rest[:end], rest[end + 1 :].removeprefix(".")
    if remainder != "image":
        return _bad_tail(where, field_path, base)

    if _GO_INT.fullmatch(selector):
        return ContainerSelector(init=init, index=int(selector), name=None)
    # OpenShift trims the prefix and the suffix independently and accepts the result if
    # either was present; reproduced as is, so exactly the same selectors are honoured.
    name = selector.removeprefix(_NAME_PREFIX).removesuffix(_NAME_SUFFIX)
    if name != selector:
        return ContainerSelector(init=init, index=None, name=name)
    quoted = _SINGLE_QUOTED.fullmatch(selector)
    if quoted:
        fixed = field_path.replace(selector, f"{_NAME_PREFIX}{quoted['name']}{_NAME_SUFFIX}", 1)
        return Problem(
            ProblemCode.SingleQuotedSelector,
            f"{where} has fieldPath {_q(field_path)} with a single-quoted name; OpenShift "
            f"only accepts double quotes and finds no container, so it ignores the whole "
            f"annotation. Use {_q(fixed)}.",
        )
    return _bad_tail(where, field_path, base)


def _bad_tail(where: str, field_path: str, base: str) -> Problem:
    return Problem(
        ProblemCode.InvalidFieldPath,
        f"{where} has fieldPath {_q(field_path)}; after {_q(base)} OpenShift accepts only "
        'containers[INDEX].image, initContainers[INDEX].image or containers[?(@.name=="NAME")]'
        f".image, and fails the whole annotation once this trigger's tag resolves.",
    )


def _suggest_base(field_path: str, base: str) -> str:
    """Offer the corrected path when only the base is wrong (e.g. a Deployment path on a
    CronJob)."""
    for marker in ("initContainers[", "containers["):
        at = field_path.find(marker)
        if at != -1:
            return f" Use {_q(base + field_path[at:])}."
    return ""


def _type_problem(number: int, key: str, item: Any, expected: str) -> Problem:
    return Problem(
        ProblemCode.InvalidType,
        f"trigger [{number}] has {_q(key)}: {_dump(item)}, which must be {expected}; {_WHOLE}.",
    )


def _reject_constant(name: str) -> Any:
    # Python accepts NaN and Infinity; Go's decoder (and JSON) does not.
    raise ValueError(f"{name} is not JSON")


def _truthy(item: Any) -> bool:
    """What the user most likely meant by a non-boolean paused value."""
    if isinstance(item, str):
        return item.strip().lower() == "true"
    return isinstance(item, int | float) and item != 0


def _json_type(item: Any) -> str:
    if isinstance(item, dict):
        return "a JSON object"
    if isinstance(item, list):
        return "a JSON array"
    if isinstance(item, str):
        return "a string"
    if isinstance(item, bool):
        return "a boolean"
    return "a number"


def _dump(item: Any) -> str:
    """The offending value as it appears in the annotation, shortened for an Event."""
    text = json.dumps(item, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."


def _q(text: str) -> str:
    """Quote as a JSON string, so what is shown can be pasted into the annotation."""
    return json.dumps(text, ensure_ascii=False)
