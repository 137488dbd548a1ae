"""Tag policies: which tag of an ImageStream a trigger follows (``spec.source.policy``). Pure.

An ImageTrigger may follow a stream instead of one tag: its policy picks, among the tags
that have an image, the one to follow, with the semantics of Flux's ImagePolicy:

* ``filterTags`` (optional): only tags the regular expression ``pattern`` matches (anywhere
  in the tag) are candidates; with ``extract`` (a template such as ``$v``, ``${v}`` or
  ``$1``, Go's expansion syntax) the policy orders the extracted values instead of the tags.
* ``semver: {range}``: tags that are semantic versions ``X.Y.Z[-pre]`` (one leading "v"
  allowed) inside the range; the highest wins. The range is npm's syntax, read by the
  ``semantic_version`` library, with Flux's conveniences: "," means AND, as do spaces;
  "=<", "=>" and "~>" are aliases; an operator may be followed by spaces; a partial version
  may carry a pre-release (``^1.x-0``). Pre-release tags are candidates only when every
  comparison of an alternative names a pre-release (the rule of the Masterminds library
  Flux uses), so ``>=1.2 <2`` never picks ``1.9.0-rc.1`` but ``>=1.2.0-0 <2.0.0-0`` does.
* ``alphabetical: {order}``: ``asc`` (the default) picks the last tag in ascending order
  (byte order of the text), ``desc`` the first.
* ``numerical: {order}``: as alphabetical, on tags read as decimal numbers. Tags that are
  not numbers are left out (Flux fails the whole policy on one; filterTags keeps that away).

Ties (two tags with one value, such as ``1.2.3`` and ``v1.2.3``) go to the tag that sorts
last, so the choice never depends on the order the tags were listed in. Nothing here
raises on any input except ``PolicyError`` (an invalid range, pattern or template).
"""

from __future__ import annotations

import functools
import math
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

from semantic_version import NpmSpec, Version
from semantic_version.base import Range

Kind = Literal["semver", "alphabetical", "numerical"]
Order = Literal["asc", "desc"]

# A comparison after normalisation: operator, then a version that may be partial.
_COMPARISON: Final = re.compile(
    r"(?P<op><=|>=|<|>|=|\^|~)?v?"
    r"(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*])(?:\.(?P<patch>\d+|[xX*]))?)?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?"
)
_ALIASES: Final = {"=>": ">=", "=<": "<=", "~>": "~"}
# An operator followed by spaces (">= 1.2"), or an alias of one.
_LOOSE_OPERATOR: Final = re.compile(r"(=>|=<|~>|<=|>=|<|>|=|\^|~)\s+(?=\S)")
_WILDCARD: Final = frozenset({"x", "X", "*"})
# A decimal number, as Go's strconv.ParseFloat reads the tags Flux's numerical policy sees
# (no "inf", "nan", hex or underscores: a tag with those is simply not a number here).
_NUMBER: Final = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# Go's template expansion: $$, ${name}, $name (name: letters, digits, "_"; $1 is a number).
_TEMPLATE: Final = re.compile(r"\$(?:(\$)|\{(\w+)\}|(\w+))")
_UNPRINTABLE: Final = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
MAX_SHOWN: Final = 80  # characters of a tag or value quoted in a message


class PolicyError(ValueError):
    """An invalid policy: ``str()`` is one sentence for the InvalidSpec message."""


@dataclass(frozen=True, slots=True)
class Picked:
    tag: str


@dataclass(frozen=True, slots=True)
class Unmatched:
    """No tag qualifies; ``message`` says why, for the NoTagMatches condition."""

    message: str


def _shown(text: str) -> str:
    """An excerpt of ``text`` for a one-line message: control characters and lone
    surrogates (which UTF-8 cannot encode) shown as escapes."""
    text = text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


# -- semver ------------------------------------------------------------------------------


def _expand(match: re.Match[str]) -> list[str]:
    """A comparison as npm comparisons NpmSpec reads. Only a partial version that carries
    a pre-release needs work (NpmSpec refuses "1.x-0"): it becomes explicit bounds that
    keep the pre-release, so pre-releases of the whole span are admitted."""
    op, pre = match["op"] or "=", match["pre"]
    parts = [match["major"], match["minor"], match["patch"]]
    given: list[int] = []  # the numbers before the first wildcard or missing part
    for part in parts:
        if part is None or part in _WILDCARD:
            break
        given.append(int(part))
    if not pre or len(given) == 3:
        return [match[0]]
    if any(p is not None and p not in _WILDCARD for p in parts[len(given) :]):
        raise PolicyError(f'"{_shown(match[0])}" has a number after a wildcard')
    if not given:
        raise PolicyError(f'"{_shown(match[0])}" is a wildcard with a pre-release')
    low = given + [0] * (3 - len(given))
    version = ".".join(map(str, low))
    if op in (">=", ">", "<", "<="):
        return [f"{op}{version}-{pre}"]
    major = given[0]
    if op == "^" and major == 0 and len(given) == 2 and given[1] > 0:
        high = f"0.{given[1] + 1}.0"
    elif op == "^" and major == 0 and len(given) == 2:
        high = "0.1.0"
    elif op == "^" or len(given) == 1:
        high = f"{major + 1}.0.0"
    else:  # "~", "=" or bare with major.minor
        high = f"{major}.{given[1] + 1}.0"
    return [f">={version}-{pre}", f"<{high}-0"]


def _alternatives(text: str) -> list[list[str]]:
    """The range as alternatives ("||"), each a list of npm comparisons (all must hold)."""
    alternatives = []
    for group in text.split("||"):
        group = _LOOSE_OPERATOR.sub(lambda m: _ALIASES.get(m[1], m[1]), group.replace(",", " "))
        words = group.split()
        comparisons: list[str] = []
        index = 0
        while index < len(words):
            word = words[index]
            if index + 2 < len(words) and words[index + 1] == "-":  # a hyphen range "a - b"
                pairs = [(">=", word), ("<=", words[index + 2])]
                index += 3
            else:
                for alias, op in _ALIASES.items():
                    if word.startswith(alias):
                        word = op + word[len(alias) :]
                pairs = [("", word)]
                index += 1
            for op, version in pairs:
                found = _COMPARISON.fullmatch(op + version)
                if found is None or (op and version[:1] in "<>=^~"):
                    raise PolicyError(
                        f'"{_shown(version)}" is not a comparison such as ">=1.2.0", "<2", '
                        '"^1.4", "~1.2.3" or "1.x"'
                    )
                comparisons += _expand(found)
        alternatives.append(comparisons or ["*"])
    return alternatives


@dataclass(frozen=True, slots=True)
class _Semver:
    text: str
    spec: NpmSpec  # matches release versions
    # Per alternative, if every comparison names a pre-release: its bounds, compared by
    # plain SemVer precedence (Masterminds' rule), else None (no pre-release matches).
    prerelease: tuple[tuple[Range, ...] | None, ...]

    def admits(self, version: Version) -> bool:
        if not version.prerelease:
            return bool(self.spec.match(version))
        return any(
            bounds is not None and all(bound.match(version) for bound in bounds)
            for bounds in self.prerelease
        )


def _plain(bound: Range) -> Range:
    """``bound`` compared by plain precedence; an upper bound npm derived from a caret or a
    tilde ("<2.0.0") keeps the next major's pre-releases out, as "<2.0.0-0" does."""
    target = bound.target
    if bound.operator == Range.OP_LT and not target.prerelease:
        target = Version(
            major=target.major, minor=target.minor, patch=target.patch, prerelease=("0",)
        )
    return Range(bound.operator, target, prerelease_policy=Range.PRERELEASE_ALWAYS)


def _semver(text: str) -> _Semver:
    if not text.strip():
        raise PolicyError('is empty: give a range such as ">=1.2 <2" or "*"')
    try:
        alternatives = _alternatives(text)
        normalised = " || ".join(" ".join(group) for group in alternatives)
        spec = NpmSpec(normalised)
        prerelease = tuple(
            tuple(_plain(r) for c in group for r in NpmSpec.Parser.parse_simple(c))
            if all(_COMPARISON.fullmatch(c)["pre"] for c in group)  # type: ignore[index]
            else None
            for group in alternatives
        )
    except PolicyError:
        raise
    except Exception as error:  # the library's own wording, as a last resort
        raise PolicyError(_shown(str(error)) or type(error).__name__) from None
    return _Semver(text, spec, prerelease)


@functools.lru_cache(maxsize=4096)  # a stream's tags are read again on each of its changes
def parse_version(tag: str) -> Version | None:
    """A tag as a strict semantic version ``X.Y.Z[-pre][+build]``, one leading "v" allowed
    (as Flux reads tags); None for anything else."""
    text = tag[1:] if tag.startswith("v") else tag
    if not text[:1].isdigit() or not text.isascii():
        return None
    try:
        return Version(text)
    except (ValueError, TypeError):
        return None


# -- the policy --------------------------------------------------------------------------


def _number(value: str) -> float | None:
    if not _NUMBER.fullmatch(value):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True, slots=True)
class TagPolicy:
    """A compiled policy with its filter; build it with ``compile_policy``."""

    kind: Kind
    argument: str  # the range, or the order
    pattern: re.Pattern[str] | None
    extract: str
    semver: _Semver | None

    def describe(self) -> str:
        """'semver range ">=1.2 <2"', 'alphabetical order desc'."""
        what = "range" if self.kind == "semver" else "order"
        rule = f'{self.kind} {what} "{_shown(self.argument)}"'
        if self.pattern is not None:
            rule += f' among tags matching "{_shown(self.pattern.pattern)}"'
        return rule

    def _value(self, tag: str) -> str | None:
        """What the policy orders for ``tag``: the tag, its extracted value, or None when
        the filter leaves it out."""
        if self.pattern is None:
            return tag
        found = self.pattern.search(tag)
        if found is None:
            return None
        return expand(found, self.extract) if self.extract else tag

    def choose(self, tags: Iterable[str], *, stream: str) -> Picked | Unmatched:
        """The tag to follow among ``tags`` (those with an image) of ImageStream ``stream``."""
        names = sorted(set(tags))
        if not names:
            return Unmatched(f"ImageStream {stream} has no tag with an image yet")
        values = [(value, tag) for tag in names if (value := self._value(tag)) is not None]
        counted = f"{len(names)} tag{'s' if len(names) != 1 else ''} of ImageStream {stream}"
        if not values:
            assert self.pattern is not None
            return Unmatched(
                f'none of the {counted} matches the pattern "{_shown(self.pattern.pattern)}" '
                "of spec.source.filterTags"
            )
        if self.kind == "semver":
            assert self.semver is not None
            versions = [(v, t) for value, t in values if (v := parse_version(value)) is not None]
            if not versions:
                return Unmatched(f"none of the {counted} is a semantic version such as 1.2.3")
            admitted = [(v, t) for v, t in versions if self.semver.admits(v)]
            if not admitted:
                newest = max(versions, key=_by_version)[1]
                return Unmatched(
                    f"none of the {counted} matches {self.describe()} "
                    f"(newest seen: {_shown(newest)})"
                )
            return Picked(max(admitted, key=_by_version)[1])
        if self.kind == "numerical":
            numbers = [(n, t) for value, t in values if (n := _number(value)) is not None]
            if not numbers:
                return Unmatched(f"none of the {counted} is a number")
            return Picked(_last(numbers, descending=self.argument == "desc"))
        return Picked(_last(values, descending=self.argument == "desc"))


def _last(candidates: list[tuple[Any, str]], *, descending: bool) -> str:
    """The tag whose value comes last in the order (``descending``: first in ascending
    order); of tags with equal values, the one that sorts last."""
    values = [value for value, _ in candidates]
    best = min(values) if descending else max(values)
    return max(tag for value, tag in candidates if value == best)


def _by_version(pair: tuple[Version, str]) -> tuple[Version, str]:
    # Version orders by precedence; build metadata does not count for precedence but would
    # for Version's own __lt__, so it is dropped from the key.
    version, tag = pair
    return version.truncate("prerelease"), tag


def expand(match: re.Match[str], template: str) -> str:
    """``template`` with Go's ``Regexp.Expand`` rules: ``$name``/``${name}`` is a group by
    name (digits: by number), ``$$`` a "$"; a group that does not exist or did not take part
    gives ""; a "$" starting no reference stays as it is."""

    def one(ref: re.Match[str]) -> str:
        if ref[1]:
            return "$"
        name = ref[2] or ref[3]
        try:
            found = match.group(int(name) if name.isdigit() else name)
        except (IndexError, ValueError, OverflowError):  # no such group
            return ""
        return found or ""

    return _TEMPLATE.sub(one, template)


def template_names(template: str) -> list[str]:
    """The group names and numbers ``template`` refers to."""
    return [ref[2] or ref[3] for ref in _TEMPLATE.finditer(template) if not ref[1]]


@functools.lru_cache(maxsize=512)
def compile_policy(kind: Kind, argument: str, pattern: str | None, extract: str) -> TagPolicy:
    """The policy ``kind`` with its ``argument`` (a semver range, or "asc"/"desc") and
    filter. Raises PolicyError naming the field at fault (range, pattern or extract)."""
    semver = _semver(argument) if kind == "semver" else None
    if kind != "semver" and argument not in ("asc", "desc"):
        raise PolicyError(f'order must be "asc" or "desc", not "{_shown(argument)}"')
    compiled = compile_pattern(pattern) if pattern is not None else None
    if extract:
        if compiled is None:
            raise PolicyError("extract needs a pattern to take groups from")
        check_extract(compiled, extract)
    return TagPolicy(kind, argument, compiled, extract, semver)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    try:
        with warnings.catch_warnings():  # FutureWarnings about syntax: no use to a user
            warnings.simplefilter("ignore")
            return re.compile(pattern)
    except (re.error, OverflowError, RecursionError, ValueError) as error:
        raise PolicyError(
            f'"{_shown(pattern)}" is not a regular expression: {_shown(str(error))}'
        ) from None


def check_extract(pattern: re.Pattern[str], extract: str) -> None:
    """Raise PolicyError if ``extract`` names a group ``pattern`` does not have (Go would
    expand it to nothing, silently; a person wants to know)."""
    names = set(pattern.groupindex)
    for name in template_names(extract):
        known = (int(name) <= pattern.groups) if name.isdigit() else name in names
        if not known:
            groups = [str(n) for n in range(1, pattern.groups + 1)] + [
                f'"{n}"' for n in pattern.groupindex
            ]
            have = f"its groups are {', '.join(groups)}" if groups else "it has no group"
            raise PolicyError(
                f'"{_shown(extract)}" refers to group "{_shown(name)}", which the pattern '
                f'"{_shown(pattern.pattern)}" does not have ({have})'
            )
