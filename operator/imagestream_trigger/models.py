"""The ImageTrigger spec as pydantic models, validated again at runtime.

The CRD schema rejects most bad objects at admission; these models re-check it (a CRD can
be applied without its latest schema, or the schema skipped) and add what a schema cannot
say well. Errors become one human sentence per problem, addressed like the YAML
(``spec.targets[0].kind: ...``), for the ``InvalidSpec`` condition message.

Attributes are snake_case; the accepted keys are the camelCase ones of the YAML (aliases).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from imagestream_trigger.api import TargetKind
from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.resolve import TagRef

MAX_TARGETS: Final = 50

_DNS1123_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Image tags as Docker/OpenShift accept them; ASCII so \w is [A-Za-z0-9_].
_TAG: Final = re.compile(r"\w[\w.-]{0,127}", re.ASCII)
_LABEL_NAME: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")


def _q(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


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


def _label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a Kubernetes label key (``[prefix/]name``), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and not (prefix and _is_dns1123_subdomain(prefix)):
        return f"label key {_q(key)} has an invalid prefix: it must be a DNS subdomain"
    if not (len(name) <= 63 and _LABEL_NAME.fullmatch(name)):
        return (
            f"label key {_q(key)} is invalid: its name must be 1 to 63 letters, digits, "
            '"-", "_" or ".", starting and ending with a letter or digit'
        )
    return None


def _label_value_problem(value: str) -> str | None:
    if value == "" or (len(value) <= 63 and _LABEL_NAME.fullmatch(value)):
        return None
    return (
        f"label value {_q(value)} is invalid: use at most 63 letters, digits, "
        '"-", "_" or ".", starting and ending with a letter or digit'
    )


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
        problem = _label_key_problem(key)
        if problem:
            raise ValueError(problem)
        return key

    @field_validator("values")
    @classmethod
    def _valid_values(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        problems = [p for p in map(_label_value_problem, values) if p]
        if problems:
            raise ValueError("; ".join(problems))
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
        problems = [
            problem
            for key, value in labels.items()
            for problem in (_label_key_problem(key), _label_value_problem(value))
            if problem
        ]
        if problems:
            raise ValueError("; ".join(problems))
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


class Source(_Model):
    """The ImageStreamTag an ImageTrigger follows."""

    image_stream_tag: StrictStr
    namespace: DnsLabel | None = None

    @field_validator("image_stream_tag")
    @classmethod
    def _valid_tag(cls, value: str) -> str:
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
        return TagRef(namespace=self.namespace or default_namespace, stream=stream, tag=tag)


class Target(_Model):
    """Objects to update, in the ImageTrigger's namespace: by name or by label selector."""

    kind: TargetKind
    name: DnsSubdomain | None = None
    selector: LabelSelector | None = None
    containers: Annotated[tuple[DnsLabel, ...] | None, _count("container name")] = None
    init_containers: Annotated[tuple[DnsLabel, ...] | None, _count("container name")] = None

    @field_validator("containers", "init_containers")
    @classmethod
    def _unique(cls, names: tuple[str, ...] | None) -> tuple[str, ...] | None:
        repeated = sorted({n for n in names or () if (names or ()).count(n) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(map(_q, repeated))} more than once")
        return names

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
                f"{', '.join(map(_q, both))} is listed in both containers and initContainers, "
                "but container names are unique within a pod"
            )
        return self


class ImageTriggerSpec(_Model):
    """``spec`` of an ImageTrigger."""

    source: Source
    targets: Annotated[tuple[Target, ...], _count("target", MAX_TARGETS)]
    suspend: StrictBool = False
    dry_run: StrictBool = False

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
    """Validate an ImageTrigger ``spec``; raise InvalidSpecError naming every problem."""
    if not isinstance(spec, Mapping):
        raise InvalidSpecError("spec: must be an object")
    try:
        return ImageTriggerSpec.model_validate(dict(spec))
    except ValidationError as error:
        problems = [f"{_path(e['loc'])}: {_describe(e)}" for e in error.errors()]
        raise InvalidSpecError("; ".join(problems), problems) from None


def _path(loc: Sequence[int | str]) -> str:
    """("targets", 0, "kind") -> "spec.targets[0].kind"."""
    path = "spec"
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}"
        else:  # a map key such as a label key with "/" or "."
            path += f"[{_q(part)}]"
    return path


# Pydantic's wording ("Input should be a valid dictionary or instance of Target") is for
# programmers; users read these in `kubectl describe`.
_TYPE_WORDS: Final = {
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
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
    return error["msg"]
