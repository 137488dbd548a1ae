"""The ImageTrigger spec as pydantic models, validated again at runtime.

The CRD schema rejects most bad objects at admission; these models re-check it (a CRD can
be applied without its latest schema, or the schema skipped) and add what a schema cannot
say well. Errors become one human sentence per problem, addressed like the YAML
(``spec.targets[0].kind: ...``), for the ``InvalidSpec`` condition message.

Whatever JSON the spec holds, ``parse_spec`` raises nothing but ``InvalidSpecError``, and its
message stays short and encodable as UTF-8: at most ``MAX_LISTED`` problems are listed (then
"and N more"), each at most ``MAX_LINE`` characters, and any value quoted is an excerpt.

Attributes are snake_case; the accepted keys are the camelCase ones of the YAML (aliases).
"""

from __future__ import annotations

import json
import re
import sys
import zoneinfo
from collections import Counter
from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from imagestream_trigger.api import TargetKind
from imagestream_trigger.durations import format_duration, parse_duration
from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.policy import Kind as PolicyKind
from imagestream_trigger.policy import (
    PolicyError,
    TagPolicy,
    check_extract,
    compile_pattern,
    compile_policy,
)
from imagestream_trigger.resolve import TagRef

MAX_TARGETS: Final = 50
# Target kinds with a rollout to follow (kinds.py: those with a health reader).
_ROLLING_KINDS: Final = frozenset(
    {TargetKind.Deployment, TargetKind.StatefulSet, TargetKind.DaemonSet}
)
MAX_CONTAINERS: Final = 50  # per list, as the CRD says
# How much of a spec's problems a message shows: problems listed, characters per problem.
MAX_LISTED: Final = 10
MAX_LINE: Final = 400
# Longest excerpt of a value quoted in a message.
EXCERPT: Final = 160
# spec.rollout.timeout: its default and bounds, in seconds (the CRD says the same).
ROLLOUT_TIMEOUT: Final = "10m"
MIN_ROLLOUT_TIMEOUT_S: Final = 10.0
MAX_ROLLOUT_TIMEOUT_S: Final = 24 * 3600.0

_DNS1123_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Image tags as Docker/OpenShift accept them; ASCII so \w is [A-Za-z0-9_].
_TAG: Final = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
_LABEL_NAME: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")
_Names = TypeVar("_Names", tuple[str, ...], tuple[str, ...] | None)


def _q(value: Any) -> str:
    """``value`` as JSON for a message: an excerpt, encodable as UTF-8, whatever it holds.

    A lone surrogate (JSON allows ``"\\ud800"``) is shown as its escape; objects and lists
    are shown only a few levels and items deep, so a huge or deeply nested input costs little.
    """
    return _shorten(_render(value, 3), EXCERPT)


def _render(value: Any, depth: int) -> str:
    if isinstance(value, str):
        return json.dumps(value[: EXCERPT + 1], ensure_ascii=False)
    if value is None or isinstance(value, bool | float):
        return json.dumps(value)
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # more digits than Python converts
            return "a very large number"
    if isinstance(value, Mapping | list | tuple):
        if not value:
            return "{}" if isinstance(value, Mapping) else "[]"
        if depth <= 0:
            return "{...}" if isinstance(value, Mapping) else "[...]"
        if isinstance(value, Mapping):
            shown = [
                f"{_render(k, 0)}: {_render(v, depth - 1)}" for k, v in islice(value.items(), 4)
            ]
            return "{" + ", ".join(shown) + (", ...}" if len(value) > 4 else "}")
        shown = [_render(item, depth - 1) for item in value[:4]]
        return "[" + ", ".join(shown) + (", ...]" if len(value) > 4 else "]")
    return type(value).__name__


def _shorten(text: str, limit: int) -> str:
    """At most ``limit`` characters, lone surrogates escaped (they cannot be encoded)."""
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _listed(items: Sequence[Any]) -> str:
    """The first 3 items quoted, then how many others: '"a", "b", "c" and 97 others'."""
    shown = ", ".join(map(_q, items[:3]))
    others = len(items) - 3
    return shown + (f" and {others} other{'s' if others > 1 else ''}" if others > 0 else "")


def _once_each(values: _Names) -> _Names:
    """``values`` if none is listed twice; else why, naming the repeated ones."""
    repeated = sorted(v for v, count in Counter(values or ()).items() if count > 1)
    if repeated:
        raise ValueError(f"lists {_listed(repeated)} more than once")
    return values


def _is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and _DNS1123_LABEL.fullmatch(value) is not None


def _is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and all(_is_dns1123_label(part) for part in value.split("."))


def _dns1123_label(value: str) -> str:
    if not _is_dns1123_label(value):
        raise ValueError(
            f"{_q(value)} is not a valid name: use at most 63 lowercase letters, digits and "
            '"-", starting and ending with a letter or digit'
        )
    return value


def _dns1123_subdomain(value: str) -> str:
    if not _is_dns1123_subdomain(value):
        raise ValueError(
            f"{_q(value)} is not a valid name: use lowercase letters, digits, "
            '"-" and ".", starting and ending with a letter or digit (at most 253 characters)'
        )
    return value


def _label_key_fault(key: str) -> Literal["prefix", "name"] | None:
    """Which part of ``key`` makes it no Kubernetes label key (``[prefix/]name``), if any."""
    prefix, slash, name = key.rpartition("/")
    if slash and not (prefix and _is_dns1123_subdomain(prefix)):
        return "prefix"
    if not (len(name) <= 63 and _LABEL_NAME.fullmatch(name)):
        return "name"
    return None


def _is_label_value(value: str) -> bool:
    return value == "" or (len(value) <= 63 and _LABEL_NAME.fullmatch(value) is not None)


def _label_problems(keys: Sequence[str], values: Sequence[str]) -> str | None:
    """Why ``keys`` and ``values`` are no Kubernetes label keys and values, or None.

    Each kind of fault is one sentence quoting the first few offenders.
    """
    faults = [(key, _label_key_fault(key)) for key in keys]
    bad_prefix = [key for key, fault in faults if fault == "prefix"]
    bad_name = [key for key, fault in faults if fault == "name"]
    bad_values = [value for value in values if not _is_label_value(value)]
    problems = []
    if bad_prefix:
        has = _plural(bad_prefix, "has an invalid prefix: it", "have invalid prefixes: they")
        problems.append(f"{_label('key', bad_prefix)} {has} must be a DNS subdomain")
    if bad_name:
        its = _plural(bad_name, "is invalid: its name", "are invalid: their names")
        problems.append(
            f"{_label('key', bad_name)} {its} must be 1 to 63 letters, digits, "
            '"-", "_" or ".", starting and ending with a letter or digit'
        )
    if bad_values:
        problems.append(
            f"{_label('value', bad_values)} {_plural(bad_values, 'is', 'are')} invalid: use at "
            'most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit'
        )
    return "; ".join(problems) or None


def _label(what: str, items: Sequence[str]) -> str:
    """'label key "a"', 'label keys "a", "b"'."""
    return f"label {what}{'s' if len(items) > 1 else ''} {_listed(items)}"


def _plural(items: Sequence[Any], one: str, many: str) -> str:
    return one if len(items) == 1 else many


def _count(what: str, most: int | None = None) -> BeforeValidator:
    """Check a list's length on the raw input: non-empty, and at most ``most`` items.

    Pydantic's own min_length on a tuple counts only the items that validated, so one bad
    target would also be reported as "too few targets".
    """

    def check(value: Any) -> Any:
        if isinstance(value, list | tuple):
            if not value:
                raise ValueError(f"must list at least one {what}")
            if most is not None and len(value) > most:
                raise ValueError(f"must list at most {most} {what}s, not {len(value)}")
        return value

    return BeforeValidator(check)


DnsLabel = Annotated[StrictStr, AfterValidator(_dns1123_label)]
DnsSubdomain = Annotated[StrictStr, AfterValidator(_dns1123_subdomain)]
ContainerNames = Annotated[tuple[DnsLabel, ...], _count("container name", MAX_CONTAINERS)]


class _Model(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, serialize_by_alias=True
    )


class LabelSelectorRequirement(_Model):
    """One ``matchExpressions`` entry."""

    key: StrictStr
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: tuple[StrictStr, ...] = ()

    @field_validator("key")
    @classmethod
    def _valid_key(cls, key: str) -> str:
        problem = _label_problems([key], [])
        if problem:
            raise ValueError(problem)
        return key

    @field_validator("values")
    @classmethod
    def _valid_values(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        problem = _label_problems([], values)
        if problem:
            raise ValueError(problem)
        return values

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        # Same rule as Kubernetes' ValidateLabelSelectorRequirement.
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value in values")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values; remove values")
        return self


class LabelSelector(_Model):
    """A Kubernetes label selector; all of its terms must match."""

    match_labels: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    @field_validator("match_labels")
    @classmethod
    def _valid_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        problem = _label_problems(list(labels), list(labels.values()))
        if problem:
            raise ValueError(problem)
        return labels


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    """Whether ``labels`` satisfy ``selector``, with Kubernetes semantics.

    An empty selector matches everything; ``NotIn`` and ``DoesNotExist`` match objects that
    lack the key.
    """
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    for requirement in selector.match_expressions:
        present = requirement.key in labels
        value = labels.get(requirement.key)
        match requirement.operator:
            case "In":
                ok = present and value in requirement.values
            case "NotIn":
                ok = not present or value not in requirement.values
            case "Exists":
                ok = present
            case "DoesNotExist":
                ok = not present
        if not ok:
            return False
    return True


class TagSource(_Model):
    """An ImageStreamTag: the shape of ``spec.rollout.promoteTo``, and of ``spec.source``
    when it follows one tag."""

    image_stream_tag: StrictStr
    namespace: DnsLabel | None = None

    @field_validator("image_stream_tag")
    @classmethod
    def _valid_tag(cls, value: str | None) -> str | None:
        if value is None:  # spec.source following a stream with a policy instead
            return value
        stream, colon, tag = value.partition(":")
        if not colon:
            raise ValueError(f'{_q(value)} must be "name:tag", for example "app:latest"')
        if not _is_dns1123_subdomain(stream):
            raise ValueError(
                f"ImageStream name {_q(stream)} in {_q(value)} is invalid: use lowercase "
                'letters, digits, "-" and ".", starting and ending with a letter or digit'
            )
        if not _TAG.fullmatch(tag):
            raise ValueError(
                f"tag {_q(tag)} in {_q(value)} is invalid: use 1 to 128 letters, digits, "
                '"_", "." and "-", not starting with "." or "-"'
            )
        return value

    def tag_ref(self, default_namespace: str) -> TagRef:
        """The followed tag; without ``namespace``, in the ImageTrigger's own namespace."""
        stream, _, tag = self.image_stream_tag.partition(":")
        # Interned, as index.py's records are: names shared by many are kept once.
        return TagRef(
            namespace=sys.intern(str(self.namespace or default_namespace)),
            stream=sys.intern(str(stream)),
            tag=sys.intern(str(tag)),
        )


# -- tag policies (spec.source.imageStream with policy, filterTags; policy.py) ---------------


def _semver_range(value: str) -> str:
    try:
        compile_policy("semver", value, None, "")
    except PolicyError as error:
        raise ValueError(f"{_q(value)} is not a semver range: {error}") from None
    return value


class SemverPolicy(_Model):
    """Follow the highest semantic version inside ``range`` (npm syntax, Flux's rules)."""

    range: Annotated[StrictStr, AfterValidator(_semver_range)]


class OrderPolicy(_Model):
    """Follow the last tag in this order (``asc``: the greatest; ``desc``: the smallest)."""

    order: Literal["asc", "desc"] = "asc"


class TagPolicySpec(_Model):
    """``spec.source.policy``: how the tag to follow is picked; exactly one is set."""

    semver: SemverPolicy | None = None
    alphabetical: OrderPolicy | None = None
    numerical: OrderPolicy | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TagPolicySpec:
        chosen = [name for name in ("semver", "alphabetical", "numerical") if getattr(self, name)]
        if len(chosen) != 1:
            raise ValueError(
                "set exactly one of semver, alphabetical or numerical"
                + (f", not {' and '.join(chosen)}" if chosen else "")
            )
        return self


class FilterTags(_Model):
    """``spec.source.filterTags``: only tags ``pattern`` matches are candidates; with
    ``extract``, the policy orders the extracted values (``$name``, ``${name}``, ``$1``)."""

    pattern: StrictStr
    extract: StrictStr = ""

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        try:
            compile_pattern(value)
        except PolicyError as error:
            raise ValueError(str(error)) from None
        return value

    @field_validator("extract")
    @classmethod
    def _valid_extract(cls, value: str, info: ValidationInfo) -> str:
        pattern = info.data.get("pattern")
        if value and isinstance(pattern, str):
            try:
                check_extract(compile_pattern(pattern), value)
            except PolicyError as error:
                raise ValueError(str(error)) from None
        return value


class Source(TagSource):
    """``spec.source``: one ImageStreamTag (``imageStreamTag``), or an ImageStream
    (``imageStream``) whose tag a ``policy`` picks, among those ``filterTags`` lets through."""

    image_stream_tag: StrictStr | None = None  # type: ignore[assignment]
    image_stream: DnsSubdomain | None = None
    policy: TagPolicySpec | None = None
    filter_tags: FilterTags | None = None

    @model_validator(mode="after")
    def _tag_or_stream(self) -> Source:
        if (self.image_stream_tag is None) == (self.image_stream is None):
            raise ValueError(
                'set exactly one of imageStreamTag (one tag, "app:latest") or imageStream '
                "(a stream whose tag a policy picks)"
            )
        if self.image_stream is not None and self.policy is None:
            raise ValueError(
                "imageStream needs a policy (semver, alphabetical or numerical) to pick its tag"
            )
        if self.image_stream_tag is not None and (self.policy or self.filter_tags):
            extra = "policy" if self.policy else "filterTags"
            raise ValueError(
                f"{extra} picks a tag of imageStream; with imageStreamTag the tag is fixed: "
                f"remove {extra}, or follow imageStream instead"
            )
        return self

    def tag_ref(self, default_namespace: str) -> TagRef:
        """The followed tag; following a stream, its tag is "" until the policy picks one
        (plan.py): the indexes key followers by namespace and stream alone."""
        if self.image_stream is None:
            return super().tag_ref(default_namespace)
        return TagRef(
            namespace=sys.intern(str(self.namespace or default_namespace)),
            stream=sys.intern(str(self.image_stream)),
            tag="",
        )

    def tag_policy(self) -> TagPolicy | None:
        """The compiled policy with its filter (cached), or None for a fixed tag."""
        chosen = self.policy
        if chosen is None:
            return None
        kind: PolicyKind
        if chosen.semver is not None:
            kind, argument = "semver", chosen.semver.range
        elif chosen.numerical is not None:
            kind, argument = "numerical", chosen.numerical.order
        else:
            assert chosen.alphabetical is not None
            kind, argument = "alphabetical", chosen.alphabetical.order
        filtered = self.filter_tags
        return compile_policy(
            kind,
            argument,
            filtered.pattern if filtered else None,
            filtered.extract if filtered else "",
        )


class Target(_Model):
    """Objects to update, in the ImageTrigger's namespace: by name or by label selector."""

    kind: TargetKind
    name: DnsSubdomain | None = None
    selector: LabelSelector | None = None
    containers: ContainerNames | None = None
    init_containers: ContainerNames | None = None

    @field_validator("containers", "init_containers")
    @classmethod
    def _unique(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _once_each(names)

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        if (self.name is None) == (self.selector is None):
            raise ValueError("exactly one of name or selector must be set")
        if self.kind is TargetKind.BuildConfig and (self.containers or self.init_containers):
            raise ValueError(
                "containers and initContainers are not allowed for kind BuildConfig: "
                "a build is started, no container is changed"
            )
        both = sorted(set(self.containers or ()) & set(self.init_containers or ()))
        if both:
            raise ValueError(
                f"{_listed(both)} {_plural(both, 'is', 'are')} listed in both containers and "
                "initContainers, but container names are unique within a pod"
            )
        return self


def _rollout_timeout(value: str) -> str:
    try:
        seconds = parse_duration(value)
    except ValueError as error:
        raise ValueError(f"{_q(value)} {error}") from None
    if not MIN_ROLLOUT_TIMEOUT_S <= seconds <= MAX_ROLLOUT_TIMEOUT_S:
        low, high = format_duration(MIN_ROLLOUT_TIMEOUT_S), format_duration(MAX_ROLLOUT_TIMEOUT_S)
        raise ValueError(f"{_q(value)} is out of range: use {low} to {high}")
    return value


# -- timing rules and approval (spec.rollout.minImageAge ... approval; timing.py) -------------

WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_CLOCK: Final = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
MAX_WINDOWS: Final = 20


def _timing_duration(value: str) -> str:
    try:
        parse_duration(value)
    except ValueError as error:
        raise ValueError(f"{_q(value)} {error}") from None
    return value


def _clock(value: str, *, end: bool) -> str:
    if _CLOCK.fullmatch(value) or (end and value == "24:00"):
        return value
    last = '"24:00"' if end else '"23:59"'
    raise ValueError(
        f'{_q(value)} is not a time of day: write "HH:MM" on a 24-hour clock, '
        f'from "00:00" to {last}'
    )


def _time_zone(value: str) -> str:
    problem = 'is not a known time zone: use an IANA name such as "Europe/Berlin" or "UTC"'
    if not value or len(value) > 64 or value.startswith(("/", ".")) or "\x00" in value:
        raise ValueError(f"{_q(value)} {problem}")
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"{_q(value)} {problem}") from None
    return value


Duration = Annotated[StrictStr, AfterValidator(_timing_duration)]
Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


class Window(_Model):
    """A maintenance window: on ``days`` (each the day it opens), from ``start`` to ``end``
    local time; an ``end`` at or before ``start`` closes the next day."""

    days: Annotated[tuple[Weekday, ...], _count("day", 7 * 4)] = WEEKDAYS
    start: Annotated[StrictStr, AfterValidator(lambda v: _clock(v, end=False))]
    end: Annotated[StrictStr, AfterValidator(lambda v: _clock(v, end=True))]

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.start == self.end:
            raise ValueError(
                f"start and end are both {_q(self.start)}: the window would be empty; "
                'for a whole day write start "00:00" and end "24:00"'
            )
        return self


class PromoteTo(TagSource):
    """``spec.rollout.promoteTo``: the ImageStreamTag pointed at an image once it ran healthy
    (the known-good pointer); same shape and rules as ``spec.source``."""


# -- spec.rollout.notify -----------------------------------------------------------------

MAX_RECEIVERS: Final = 10
RECEIVER_TYPES: Final = ("Slack", "JSON", "CloudEvents")
NOTIFY_EVENTS: Final = ("Applied", "Reverted", "Pending", "Failed")
# A Secret's data key, as Kubernetes accepts it.
_SECRET_KEY: Final = re.compile(r"[-._a-zA-Z0-9]{1,253}")


def _secret_key(value: str) -> str:
    if not _SECRET_KEY.fullmatch(value):
        raise ValueError(
            f'{_q(value)} is not a valid Secret key: use 1 to 253 letters, digits, "-", "_" and "."'
        )
    return value


class SecretKeyRef(_Model):
    """Where a receiver's URL is: a key of a Secret in the ImageTrigger's namespace."""

    name: DnsSubdomain
    key: Annotated[StrictStr, AfterValidator(_secret_key)] = "url"


class Receiver(_Model):
    """One ``spec.rollout.notify[]`` entry: where, in which format, on which events."""

    name: DnsLabel
    type: Literal["Slack", "JSON", "CloudEvents"]
    secret_ref: SecretKeyRef
    events: Annotated[
        tuple[Literal["Applied", "Reverted", "Pending", "Failed"], ...], _count("event")
    ] = NOTIFY_EVENTS

    @field_validator("events")
    @classmethod
    def _once_each(cls, events: tuple[str, ...]) -> tuple[str, ...]:
        return _once_each(events)


def _distinct_receivers(receivers: tuple[Receiver, ...]) -> tuple[Receiver, ...]:
    seen: dict[str, int] = {}
    for number, receiver in enumerate(receivers):
        first = seen.setdefault(receiver.name, number)
        if first != number:
            raise ValueError(
                f"notify[{first}] and notify[{number}] are both named {_q(receiver.name)}; "
                "give each receiver its own name"
            )
    return receivers


def _too_many(value: Sequence[Any], most: int, what: str) -> Sequence[Any]:
    if len(value) > most:
        raise ValueError(f"must list at most {most} {what}s, not {len(value)}")
    return value


Receivers = Annotated[
    tuple[Receiver, ...],
    BeforeValidator(
        lambda v: _too_many(v, MAX_RECEIVERS, "receiver") if isinstance(v, list | tuple) else v
    ),
    AfterValidator(_distinct_receivers),
]


# -- spec.rollout ---------------------------------------------------------------------------


class Canary(_Model):
    """``spec.rollout.canary``: the workload targets written first (canary.py); exactly one
    of ``names`` (targets' names) and ``selector`` (their labels)."""

    names: Annotated[tuple[DnsSubdomain, ...], _count("canary name", MAX_TARGETS)] | None = None
    selector: LabelSelector | None = None

    @field_validator("names")
    @classmethod
    def _unique(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _once_each(names)

    @model_validator(mode="after")
    def _one(self) -> Canary:
        if (self.names is None) == (self.selector is None):
            raise ValueError("exactly one of names or selector must be set")
        return self


def _max_parallel(value: int) -> int:
    if value < 1:
        raise ValueError(f"must be at least 1, not {_q(value)}")
    return value


class Rollout(_Model):
    """``spec.rollout``: follow each workload's rollout after a write, revert a failed one."""

    # How long a written workload may take to become healthy (a Go duration such as "10m").
    timeout: Annotated[StrictStr, AfterValidator(_rollout_timeout)] = ROLLOUT_TIMEOUT
    # Set the changed containers back to their previous images when the rollout fails.
    revert: StrictBool = True
    # Tag the image here once every workload target ran it healthy (promote.py).
    promote_to: PromoteTo | None = None
    # Where to say what happened (Applied, Reverted, Pending, Failed): report/notifier.py.
    notify: Receivers = ()
    # Canary order (canary.py): these targets first; the others once they are healthy.
    canary: Canary | None = None
    # At most this many non-canary workload targets rolling out the image at a time.
    max_parallel: Annotated[StrictInt, AfterValidator(_max_parallel)] | None = None
    # Timing rules and approval (timing.py), checked in this order before anything is written.
    debounce: Duration | None = None
    min_image_age: Duration | None = None
    approval: Literal["Automatic", "Manual"] = "Automatic"
    windows: Annotated[tuple[Window, ...], _count("window", MAX_WINDOWS)] | None = None
    time_zone: Annotated[StrictStr, AfterValidator(_time_zone)] = "UTC"

    @property
    def timed(self) -> bool:
        """Whether any timing rule or approval applies (else timing.py is never asked)."""
        return bool(
            self.debounce or self.min_image_age or self.windows or self.approval == "Manual"
        )

    @property
    def timeout_s(self) -> float:
        return parse_duration(self.timeout)

    @property
    def ordered(self) -> bool:
        """Whether writes go in canary order (canary.py), not all at once."""
        return self.canary is not None or self.max_parallel is not None


class ImageTriggerSpec(_Model):
    """``spec`` of an ImageTrigger."""

    source: Source
    targets: Annotated[tuple[Target, ...], _count("target", MAX_TARGETS)]
    suspend: StrictBool = False
    dry_run: StrictBool = False
    # Writes for this trigger impersonate this ServiceAccount of its namespace (identity.py).
    service_account_name: DnsSubdomain | None = None
    # Absent: writes are not followed (the behaviour, and the latency, of triggers without it).
    rollout: Rollout | None = None
    # With rollout.approval Manual: the image approved (digest "sha256:..." or full reference).
    approved_image: StrictStr | None = None

    @model_validator(mode="after")
    def _promote_elsewhere(self) -> ImageTriggerSpec:
        promote = self.rollout.promote_to if self.rollout is not None else None
        if (
            promote is not None
            and promote.image_stream_tag == self.source.image_stream_tag
            and promote.namespace == self.source.namespace
        ):
            raise ValueError(
                f"rollout.promoteTo names the followed tag {_q(promote.image_stream_tag)} "
                'itself; promote into another tag, for example "app:stable"'
            )
        return self

    @model_validator(mode="after")
    def _canary_among_targets(self) -> ImageTriggerSpec:
        canary = self.rollout.canary if self.rollout is not None else None
        if canary is None or canary.names is None:
            return self
        rolling = [t for t in self.targets if t.kind in _ROLLING_KINDS]
        # A selector target may find any name; a named one only its own.
        missing = [
            n
            for n in canary.names
            if not any(t.selector is not None or t.name == n for t in rolling)
        ]
        if missing:
            raise ValueError(
                f"rollout.canary.names: {_listed(missing)} {_plural(missing, 'is', 'are')} not "
                "among the targets: a canary is a Deployment, StatefulSet or DaemonSet target "
                "(by its name, or found by a target's selector)"
            )
        return self

    @field_validator("targets")
    @classmethod
    def _distinct(cls, targets: tuple[Target, ...]) -> tuple[Target, ...]:
        seen: dict[tuple[str, str], int] = {}
        for number, target in enumerate(targets):
            if target.name is None:
                continue
            first = seen.setdefault((target.kind, target.name), number)
            if first != number:
                raise ValueError(
                    f"targets[{first}] and targets[{number}] are both {target.kind} "
                    f"{_q(target.name)}; list each target once"
                )
        return targets


def parse_spec(spec: Mapping[str, Any]) -> ImageTriggerSpec:
    """Validate an ImageTrigger ``spec``; raise InvalidSpecError naming its problems.

    The first ``MAX_LISTED`` problems are named, one line each, then how many more there are.
    """
    if not isinstance(spec, Mapping):
        raise InvalidSpecError("spec: must be an object")
    try:
        return ImageTriggerSpec.model_validate(dict(spec))
    except ValidationError as error:
        errors = error.errors(include_url=False, include_context=True, include_input=True)
        problems = [
            _shorten(f"{_path(e['loc'])}: {_describe(e)}", MAX_LINE) for e in errors[:MAX_LISTED]
        ]
        hidden = len(errors) - len(problems)
        if hidden:
            problems.append(f"and {hidden} more problem{'s' if hidden > 1 else ''}")
        raise InvalidSpecError("; ".join(problems), problems) from None


def _path(loc: Sequence[int | str]) -> str:
    """("targets", 0, "kind") -> "spec.targets[0].kind"."""
    path = "spec"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part.isidentifier() and len(part) <= 63:
            path += f".{part}"
        else:  # a map key such as a label key with "/" or ".", or a very long one
            path += f"[{_q(part)}]"
    return path


# Pydantic's wording ("Input should be a valid dictionary or instance of Target") is for
# programmers; users read these in `kubectl describe`.
_TYPE_WORDS: Final = {
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "string_unicode": "must be valid Unicode text",
}


def _describe(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    given = error.get("input")
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind in ("enum", "literal_error"):
        return f"must be one of {ctx.get('expected')}, not {_q(given)}"
    if kind in _TYPE_WORDS:
        return f"{_TYPE_WORDS[kind]}, not {_q(given)}"
    return _shorten(error["msg"], EXCERPT)
