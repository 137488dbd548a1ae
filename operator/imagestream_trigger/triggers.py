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
- it nests JSON arrays and objects more than ``MAX_DEPTH`` levels deep (a valid one needs 3).
  Go's decoder gives up only past 10,000 levels; we stop at ``MAX_DEPTH`` so that hostile input
  costs a linear scan rather than a deep recursion. OpenShift would still honour an
  annotation whose only deep nesting sits under keys it ignores; nobody writes that, and we
  report it as ``NestedTooDeeply``;
- a non-paused entry with the right base path has an unparsable container part or does not
  end in ``.image`` (``UpdateObjectFromImages`` returns an error, discarding all changes).
  OpenShift only fails once that entry's tag resolves; we reject up front so the user sees
  it before the first image arrives. A single-quoted name selector is found by no container
  and fails the same way (``findContainerBySelector``), as does an unknown container (see
  ``check_containers`` and ``decide.plan_annotation``).

ONE entry is ignored (the others still work) when:

- it is paused;
- ``from.name`` has no ":" (``SplitImageStreamTag`` fails; ``"app:"`` means ``app:latest``);
- its fieldPath does not start with the kind's pod-spec base (``continue`` in
  ``UpdateObjectFromImages``).

ONE entry is followed only in part when ``from.kind`` is not ``ImageStreamTag`` or
``from.apiVersion`` is set: the cache indexer skips it, so a move of its tag never wakes
the workload, but ``UpdateObjectFromImages`` checks neither field and applies it whenever
the workload is processed. It is returned with ``watched=False``, and reported.

OpenShift says nothing to the user in all of these cases; we return a ``Problem`` for each
(at most ``MAX_PROBLEMS`` of them: a hostile annotation can hold 100,000 bad entries).

Any string is accepted and nothing raises: decoding follows Go (a lone UTF-16 surrogate
escape such as ``"\\ud800"`` becomes U+FFFD, as OpenShift reads it), and every value quoted
in a message is an excerpt of at most ``EXCERPT`` characters, encodable as UTF-8.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, ParamSpec

from imagestream_trigger.api import TRIGGERS_ANNOTATION
from imagestream_trigger.kinds import Container, workload_kind
from imagestream_trigger.resolve import TagRef


class ProblemCode(StrEnum):
    """Short codes for what is wrong in an annotation (a bounded metric label set)."""

    InvalidJSON = "InvalidJSON"  # not JSON at all
    InvalidType = "InvalidType"  # JSON, but a value of the wrong type (not an array, ...)
    PausedNotBoolean = "PausedNotBoolean"  # "paused": "false" instead of false
    UnsupportedFromKind = "UnsupportedFromKind"  # not ImageStreamTag: tag moves not followed
    InvalidTagName = "InvalidTagName"  # from.name is not "stream:tag"
    SingleQuotedSelector = "SingleQuotedSelector"  # ?(@.name=='web') instead of "web"
    InvalidFieldPath = "InvalidFieldPath"  # wrong base for the kind, or not ...[SEL].image
    DuplicateFieldPath = "DuplicateFieldPath"  # two entries with the same fieldPath
    ContainerNotFound = "ContainerNotFound"  # the selector matches no container
    DuplicateContainer = "DuplicateContainer"  # two entries select the same container
    NestedTooDeeply = "NestedTooDeeply"  # arrays/objects nested more than MAX_DEPTH levels
    PauseKeyIgnored = "PauseKeyIgnored"  # "pause": "true" instead of "paused": not paused


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
    # Whether a move of the tag wakes the object (from.kind ImageStreamTag, no apiVersion);
    # an unwatched trigger is applied only when the object itself is processed.
    watched: bool = True


@dataclass(frozen=True, slots=True)
class Problem:
    """Why (part of) a trigger cannot be honoured, for a Warning Event and a metric."""

    reason: str  # short CamelCase code, a ProblemCode
    message: str  # one sentence a person understands, naming the offending value and the fix


# The valid format nests 3 levels ([ {"from": {...}} ]); anything past this is not a trigger
# list, and stopping here keeps json.loads far from Python's recursion limit.
MAX_DEPTH: Final = 32
# Problems described per annotation; the rest are only counted (each one becomes an Event).
MAX_PROBLEMS: Final = 10
# Longest excerpt of a user's value quoted in a message: any fieldPath of the valid form (a
# CronJob's base, initContainers and a 63-character name) still fits whole, so can be pasted.
EXCERPT: Final = 160

_WHOLE: Final = "OpenShift ignores the whole annotation, so no trigger on this object works"
_ENTRY: Final = "OpenShift ignores this trigger"
_NAME_PREFIX: Final = '?(@.name=="'
_NAME_SUFFIX: Final = '")'
# Go's strconv.Atoi: optional sign, ASCII digits.
_GO_INT: Final = re.compile(r"[+-]?[0-9]+")
_SINGLE_QUOTED: Final = re.compile(r"\?\(@\.name\s*==\s*'(?P<name>[^']*)'\s*\)")
# A JSON string, escapes included; an unterminated one runs to the end of the text.
_JSON_STRING: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
_NOT_BRACKET: Final = re.compile(r"[^\[\]{}]+")
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")
# Where a lone surrogate may come from: an escape of one, or one already in the text.
_MAYBE_SURROGATE: Final = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_INT64: Final = range(-(2**63), 2**63)
# Container names listed per list in a message, and their longest excerpt (real ones have 63).
_MAX_NAMES: Final = 10
_NAME_EXCERPT: Final = 66

_P = ParamSpec("_P")


@dataclass(frozen=True, slots=True)
class _Entry:
    """One array element as Go decodes it into ObjectFieldTrigger: absent means empty."""

    kind: str = ""
    name: str = ""
    namespace: str = ""
    api_version: str = ""
    field_path: str = ""
    paused: bool = False
    # A "pause" key (a slip for "paused"), which Go ignores: (key, value) or None.
    pause_key: tuple[str, Any] | None = None


_ABSENT: Final = _Entry()


class _Problems:
    """Problems in the order found: the first ``MAX_PROBLEMS`` described, the rest counted.

    A message is built only if it is shown, so 100,000 bad entries cost little.
    """

    __slots__ = ("listed", "more")

    def __init__(self) -> None:
        self.listed: list[Problem] = []
        self.more = 0

    def __bool__(self) -> bool:
        return bool(self.listed)

    def add(
        self, code: ProblemCode, describe: Callable[_P, str], *args: _P.args, **kw: _P.kwargs
    ) -> None:
        """Record a problem; ``describe(*args, **kw)`` is its message, called only if shown."""
        if len(self.listed) < MAX_PROBLEMS:
            self.listed.append(Problem(code, describe(*args, **kw)))
        else:
            self.more += 1

    def keep(self, problem: Problem) -> None:
        if len(self.listed) < MAX_PROBLEMS:
            self.listed.append(problem)
        else:
            self.more += 1

    def result(self) -> tuple[Problem, ...]:
        if not self.more:
            return tuple(self.listed)
        *first, last = self.listed
        more = f"{self.more} more problem" + ("s" if self.more > 1 else "")
        note = f" This annotation has {more}, not listed; fix these first."
        return (*first, Problem(last.reason, last.message + note))


def parse_triggers_annotation(
    value: str, *, kind: str, namespace: str
) -> tuple[tuple[AnnotationTrigger, ...], tuple[Problem, ...]]:
    """Parse the annotation of a ``kind`` object in ``namespace``.

    Returns the entries OpenShift would honour (paused ones included, flagged) and a problem
    for everything it would ignore. When the whole annotation is ignored, no trigger is
    returned. Never raises for any ``value`` (only for a ``kind`` without a pod template).
    """
    base = _base_path(kind)
    problems = _Problems()
    entries = _decode(value, problems)
    if problems:
        return (), problems.result()
    _duplicate_field_paths(entries, problems)
    if problems:
        return (), problems.result()

    triggers: list[AnnotationTrigger] = []
    for number, entry in enumerate(entries):
        trigger, problem, whole = _check_entry(number, entry, kind=kind, base=base, ns=namespace)
        if problem is not None:
            if whole:
                return (), (problem,)
            problems.keep(problem)
        if trigger is not None:
            triggers.append(trigger)
            if (
                entry.pause_key is not None
                and (entry.pause_key[1] is True or _truthy(entry.pause_key[1]))
                and not trigger.paused
            ):
                # Meant to pause, but honoured all the same, as OpenShift does: a warning.
                problems.add(
                    ProblemCode.PauseKeyIgnored,
                    _pause_key_message,
                    number,
                    trigger,
                    *entry.pause_key,
                )
    return tuple(triggers), problems.result()


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
    problems = _Problems()
    for trigger in triggers:
        if trigger.paused or select_container(trigger.container, containers) is not None:
            continue
        problems.add(ProblemCode.ContainerNotFound, _not_found_message, trigger, containers)
    return problems.result()


def describe_containers(containers: Sequence[Container]) -> str:
    """Human list of the containers of a pod spec, for messages (at most 10 names of each)."""
    regular = [c.name for c in containers if not c.init]
    init = [c.name for c in containers if c.init]
    parts = []
    if regular:
        parts.append(f"containers {_names(regular)}")
    if init:
        parts.append(f"init containers {_names(init)}")
    return " and ".join(parts) if parts else "no containers"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(_q(name, _NAME_EXCERPT) for name in names[:_MAX_NAMES])
    hidden = len(names) - _MAX_NAMES
    return f"{shown} and {hidden} more" if hidden > 0 else shown


def _not_found_message(trigger: AnnotationTrigger, containers: Sequence[Container]) -> str:
    return (
        f"trigger with fieldPath {_q(trigger.field_path)} selects "
        f"{_describe_selector(trigger.container, containers)}, but this object has "
        f"{describe_containers(containers)}; OpenShift stops applying every trigger "
        f"of this object once {_plain(str(trigger.source))} resolves. Fix the selector."
    )


def _describe_selector(selector: ContainerSelector, containers: Sequence[Container]) -> str:
    if selector.name is not None:
        return f"container {_q(selector.name)}"
    field = "initContainers" if selector.init else "containers"
    count = sum(1 for c in containers if c.init == selector.init)
    valid = f"0..{count - 1}" if count else "none"
    return f"{field}[{selector.index}] (valid indexes: {valid})"


def _base_path(kind: str) -> str:
    try:
        return workload_kind(kind).field_path_base
    except ValueError:
        raise ValueError(f"kind {kind!r} does not carry {TRIGGERS_ANNOTATION}") from None


def _decode(value: str, problems: _Problems) -> list[_Entry]:
    """Decode like Go's ``json.Unmarshal`` into ``[]ObjectFieldTrigger``.

    Go matches keys case-insensitively, ignores unknown keys, treats ``null`` as absent and
    fails the whole decode on any type mismatch; any problem here voids the annotation.
    """
    if _too_deep(value):
        problems.add(ProblemCode.NestedTooDeeply, _nested_message)
        return []
    try:
        document = json.loads(value, parse_constant=_reject_constant, parse_int=_parse_int)
    except RecursionError:  # _too_deep makes this unreachable; still, never a traceback
        problems.add(ProblemCode.NestedTooDeeply, _nested_message)
        return []
    except ValueError as error:
        problems.add(ProblemCode.InvalidJSON, _invalid_json_message, error)
        return []
    if _MAYBE_SURROGATE.search(value):
        document = _go_strings(document)
    if document is None:
        return []
    if not isinstance(document, list):
        problems.add(ProblemCode.InvalidType, _not_array_message, document)
        return []
    return [_decode_entry(number, element, problems) for number, element in enumerate(document)]


def _too_deep(value: str) -> bool:
    """Whether the first JSON value in ``value`` nests more than ``MAX_DEPTH`` levels.

    Counts ``[`` and ``{`` outside strings in one linear pass, so that 10,000 levels cost
    microseconds and json.loads never recurses deeper than ``MAX_DEPTH``. json.loads stops
    at the end of the first value ("Extra data") or at a stray closing bracket ("Expecting
    value"), so nothing after either is counted.
    """
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", value))
    if len(brackets) <= MAX_DEPTH:
        return False
    depth = 0
    for bracket in brackets:
        if bracket in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        else:
            depth -= 1
            if depth <= 0:
                return False
    return False


def _nested_message() -> str:
    return (
        f"annotation {TRIGGERS_ANNOTATION} is nested too deeply: its JSON arrays and objects "
        f"go more than {MAX_DEPTH} levels deep, where a list of triggers needs 3; {_WHOLE}. "
        'Write a flat JSON array such as [{"from": {"kind": "ImageStreamTag", '
        '"name": "app:latest"}, "fieldPath": "...", "paused": false}].'
    )


def _invalid_json_message(error: ValueError) -> str:
    return (
        f"annotation {TRIGGERS_ANNOTATION} is not valid JSON ({_shorten(str(error))}); "
        f'{_WHOLE}. Write a JSON array such as [{{"from": {{"kind": "ImageStreamTag", '
        '"name": "app:latest"}, "fieldPath": "...", "paused": false}].'
    )


def _not_array_message(document: Any) -> str:
    return (
        f"annotation {TRIGGERS_ANNOTATION} must be a JSON array of triggers but is "
        f"{_json_type(document)}; {_WHOLE}. Put the trigger(s) inside [ ]."
    )


def _decode_entry(number: int, element: Any, problems: _Problems) -> _Entry:
    if element is None:
        return _ABSENT
    if not isinstance(element, dict):
        problems.add(ProblemCode.InvalidType, _not_object_message, number, element)
        return _ABSENT
    fields: dict[str, Any] = {}
    pause_key: tuple[str, Any] | None = None
    for key, item in element.items():
        folded = _fold(key)
        if folded == "pause" and item is not None:
            pause_key = (key, item)
        if item is None or folded not in ("from", "fieldpath", "paused"):
            continue
        if folded == "paused" and not isinstance(item, bool):
            problems.add(ProblemCode.PausedNotBoolean, _paused_message, number, key, item)
        elif folded == "fieldpath" and not isinstance(item, str):
            problems.add(ProblemCode.InvalidType, _type_message, number, key, item, "a string")
        elif folded == "from" and not isinstance(item, dict):
            problems.add(ProblemCode.InvalidType, _type_message, number, key, item, "a JSON object")
        else:
            fields[folded] = item
    reference: dict[str, str] = {}
    for key, item in fields.get("from", {}).items():
        folded = _fold(key)
        if item is None or folded not in ("kind", "name", "namespace", "apiversion"):
            continue
        if isinstance(item, str):
            reference[folded] = item
        else:
            problems.add(
                ProblemCode.InvalidType, _type_message, number, f"from.{key}", item, "a string"
            )
    return _Entry(
        kind=reference.get("kind", ""),
        name=reference.get("name", ""),
        namespace=reference.get("namespace", ""),
        api_version=reference.get("apiversion", ""),
        field_path=fields.get("fieldpath", ""),
        paused=fields.get("paused", False),
        pause_key=pause_key,
    )


def _not_object_message(number: int, element: Any) -> str:
    return (
        f"trigger [{number}] must be a JSON object with from and fieldPath but is "
        f"{_json_type(element)} {_dump(element)}; {_WHOLE}."
    )


def _paused_message(number: int, key: str, item: Any) -> str:
    return (
        f"trigger [{number}] has {_q(key)}: {_dump(item)}, but OpenShift accepts "
        f"only a JSON boolean; {_WHOLE}. Write {_q(key)}: "
        f"{'true' if _truthy(item) else 'false'} without quotes."
    )


def _pause_key_message(number: int, trigger: AnnotationTrigger, key: str, item: Any) -> str:
    return (
        f"trigger [{number}] has {_q(key)}: {_dump(item)}, a key OpenShift does not know "
        '(the key is "paused"), so this trigger is not paused: the container follows '
        f'{_plain(str(trigger.source))}. To pause it, write "paused": true (a JSON boolean).'
    )


def _type_message(number: int, key: str, item: Any, expected: str) -> str:
    return f"trigger [{number}] has {_q(key)}: {_dump(item)}, which must be {expected}; {_WHOLE}."


def _duplicate_field_paths(entries: Sequence[_Entry], problems: _Problems) -> None:
    first_seen: dict[str, int] = {}
    for number, entry in enumerate(entries):
        earlier = first_seen.setdefault(entry.field_path, number)
        if earlier != number:
            problems.add(ProblemCode.DuplicateFieldPath, _duplicate_message, earlier, number, entry)


def _duplicate_message(earlier: int, number: int, entry: _Entry) -> str:
    return (
        f"triggers [{earlier}] and [{number}] both have fieldPath "
        f"{_q(entry.field_path)}; {_WHOLE}. Keep one trigger per fieldPath."
    )


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
    # OpenShift's stream index skips such an entry, so a tag move never wakes the object
    # for it; but its updater checks neither field, and applies the entry whenever the
    # object is processed (created, changed, or woken by another trigger). So do we.
    unwatched: Problem | None = None
    if entry.kind != "ImageStreamTag" or entry.api_version:
        found = (
            f"sets from.apiVersion {_q(entry.api_version)}"
            if entry.kind == "ImageStreamTag"
            else f"has from.kind {_q(entry.kind)}"
            if entry.kind
            else "has no from.kind"
        )
        fix = (
            "Remove from.apiVersion"
            if entry.kind == "ImageStreamTag"
            else 'Write "kind": "ImageStreamTag"'
        )
        unwatched = Problem(
            ProblemCode.UnsupportedFromKind,
            f"{where} {found}: OpenShift does not watch its tag for it, so a move of the tag "
            "does not update this object, yet applies it whenever the object itself changes. "
            f"{fix} so that every move of the tag is followed.",
        )

    stream, colon, tag = entry.name.partition(":")
    if not colon or not stream or "@" in entry.name:
        return _ignore(
            ProblemCode.InvalidTagName,
            f"{where} has from.name {_q(entry.name)}, which is not an ImageStreamTag; "
            f'{_ENTRY}. Write it as "stream:tag", for example "app:latest".',
        )
    # Interned, as are the field path and the container name: workloads that follow one
    # stream repeat them, and each record would otherwise hold copies of its own.
    source = TagRef(
        namespace=sys.intern(str(entry.namespace or ns)),
        stream=sys.intern(str(stream)),
        tag=sys.intern(str(tag or "latest")),
    )

    if not entry.field_path.startswith(base):
        return _ignore(
            ProblemCode.InvalidFieldPath,
            f"{where} has fieldPath {_q(entry.field_path)}, which does not start with "
            f"{_q(base)} as a {kind} requires; {_ENTRY}." + _suggest_base(entry.field_path, base),
        )

    parsed = _parse_selector(where, entry.field_path, base)
    if isinstance(parsed, ContainerSelector):
        trigger = AnnotationTrigger(
            source=source,
            container=parsed,
            paused=entry.paused,
            field_path=sys.intern(str(entry.field_path)),
            watched=unwatched is None,
        )
        return trigger, unwatched, False
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

    index = _go_atoi(selector)
    if index is not None:
        return ContainerSelector(init=init, index=index, name=None)
    # OpenShift trims the prefix and the suffix independently and accepts the result if
    # either was present; reproduced as is, so exactly the same selectors are honoured.
    name = selector.removeprefix(_NAME_PREFIX).removesuffix(_NAME_SUFFIX)
    if name != selector:
        return ContainerSelector(init=init, index=None, name=sys.intern(str(name)))
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


def _go_atoi(text: str) -> int | None:
    """Go's ``strconv.Atoi``: an optional sign and ASCII digits, within int64; else None."""
    if not _GO_INT.fullmatch(text):
        return None
    negative = text.startswith("-")
    digits = text.lstrip("+-").lstrip("0") or "0"
    if len(digits) > 19:  # past int64, and past what int() converts quickly
        return None
    number = -int(digits) if negative else int(digits)
    return number if number in _INT64 else None


def _reject_constant(name: str) -> Any:
    # Python accepts NaN and Infinity; Go's decoder (and JSON) does not.
    raise ValueError(f"{name} is not JSON")


def _parse_int(text: str) -> int | float:
    # Python refuses to convert more than 4,300 digits (sys.get_int_max_str_digits); Go reads
    # any number, and here only a number's type matters.
    try:
        return int(text)
    except ValueError:
        return float(text)


def _go_strings(item: Any) -> Any:
    """Every string with its lone surrogates replaced by U+FFFD, as Go's decoder reads them.

    The recursion is bounded: ``_too_deep`` has checked the nesting before decoding.
    """
    if isinstance(item, str):
        return _SURROGATE.sub("\ufffd", item)
    if isinstance(item, list):
        return [_go_strings(element) for element in item]
    if isinstance(item, dict):
        return {_go_strings(key): _go_strings(element) for key, element in item.items()}
    return item


def _fold(key: str) -> str:
    """Fold a key as Go's decoder does to match a field case-insensitively.

    Outside ASCII only U+212A (Kelvin sign, which lower() makes "k") and U+017F (long s)
    fold to ASCII letters.
    """
    return key.lower() if key.isascii() else key.lower().replace("\u017f", "s")


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
    if isinstance(item, str):
        return _q(item)
    return _shorten(json.dumps(item, ensure_ascii=False))


def _q(text: str, limit: int = EXCERPT) -> str:
    """Quote as a JSON string, so what is shown can be pasted into the annotation.

    Shortened to ``limit`` characters; a longer value is cut and ends in "...".
    """
    return _shorten(json.dumps(text[: limit + 1], ensure_ascii=False), limit)


def _plain(text: str) -> str:
    """Unquoted, but escaped as in JSON (no raw newline or NUL in an Event), and shortened."""
    return _shorten(json.dumps(text[: EXCERPT + 1], ensure_ascii=False)[1:-1])


def _shorten(text: str, limit: int = EXCERPT) -> str:
    """``text`` made safe for an Event: at most ``limit`` characters, encodable as UTF-8.

    A lone surrogate (JSON allows ``"\\ud800"``) cannot be encoded; it is shown as its
    JSON escape instead.
    """
    text = _SURROGATE.sub(_escape_surrogate, text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match[0]):04x}"


# For the other modules that quote user input in messages (decide.py): the same rules.
quote = _q
plain = _plain
