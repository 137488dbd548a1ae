"""Deterministic generators of hostile and odd inputs, for fuzz tests.

Every generator takes a seeded ``random.Random`` and a count ``n`` and yields exactly ``n``
items: the same seed gives the same items, so a failure reproduces from its seed and index.
Only the standard library is used (no hypothesis). Categories are taken in turn, so any
``n`` of 100 or more covers each of them many times. Every value can also be sent to a real
API server by an end-to-end test: strings are valid UTF-8 once JSON-encoded (a lone
surrogate only ever appears as a JSON escape, which the API server stores as U+FFFD).

``annotations(rng, n)`` yields ``AnnotationCase``: values for the
``image.openshift.io/triggers`` annotation, each with the workload kind its expectation is
for, and the ``ProblemCode`` of the ONE problem expected (``problem``) or ``honoured`` when
no problem and at least one trigger are expected (neither: only the invariants hold).
Values are at most ``MAX_VALUE_BYTES`` UTF-8 bytes (an object's annotations share 256 KiB).

- ``invalid-json``: truncated arrays, garbage, single quotes, trailing commas, comments,
  NaN/Infinity, a BOM, raw control characters in strings, bad escapes, leading zeros, text
  after the first value, empty or blank values -> InvalidJSON;
- ``deep``: arrays and/or objects nested from ``MAX_DEPTH + 1`` to 10,000 levels, closed or
  not, alone, under a valid entry's unknown key or under ``from``, with brackets and escaped
  quotes inside strings before them -> NestedTooDeeply;
- ``at-limit``: exactly ``MAX_DEPTH`` levels, parsed normally: a bare nest of arrays is an
  InvalidType, a valid entry whose unknown key reaches the limit is honoured;
- ``huge``: strings of 10 to ~200 KB in fieldPath, from.kind, from.name, from.namespace, a
  container name, an index, an unknown key or its value; hundreds of valid entries, thousands
  of bad ones;
- ``wrong-type``: a wrong JSON type in from, from.kind, from.name, from.namespace,
  from.apiVersion, fieldPath or paused, at the top level or as an entry -> InvalidType or
  PausedNotBoolean; keys are written in any case, sometimes with the Unicode letters Go
  folds to ASCII (KELVIN SIGN for k, LATIN SMALL LETTER LONG S for s);
- ``unicode``: emoji, right-to-left override, zero-width and combining characters, CJK,
  NUL (``\\u0000``) and lone surrogate escapes (``\\ud800``) in every string field;
- ``duplicate``: two entries with one fieldPath -> DuplicateFieldPath; many of them (only
  invariants); a key repeated in one object, in the same or another case (the last wins,
  in Go as in Python) -> honoured;
- ``valid``: 1 to 5 well-formed triggers for the case's kind -> honoured;
- ``mutated``: a valid annotation with characters inserted, deleted or replaced (nothing
  pinned: only the invariants hold).

``imagestream_bodies(rng, n, strict=False)`` yields ImageStream objects (dicts) with odd
status and spec: status.tags entries sharing a tag (the first wins, as in OpenShift), with
``items: []``, without items or with ``items: null``, items missing any of created,
dockerImageReference and image; odd strings everywhere (empty, blank, unicode, lone
surrogates, NUL, ports, digests, "@"/":"/"/" alone, 10 KB long); spec.tags without name,
without from, with odd kinds and referencePolicy types; a missing spec or status. It keeps
status.tags a list of objects with a string ``tag`` and items a list of objects, so a loose
schema (or x-kubernetes-preserve-unknown-fields) accepts them. With ``strict=True`` only
bodies the emulation CRD (tests/controlplane/crds/imagestreams.yaml) accepts are made:
unique tag names in status and spec, spec tags named, items complete with an RFC 3339
``created``, referencePolicy.type Source or Local.

``imagetrigger_specs(rng, n)`` yields ``SpecCase``: ImageTrigger specs with whether the CRD
admits them unchanged (``admitted``; None when it depends on the server) and whether
``parse_spec`` accepts them (``valid``; None when not pinned):

- ``extreme``: admitted and valid at every limit: 50 targets, names of 253 and labels of 63
  characters, 50 containers and init containers, 100 matchExpressions, 30 matchLabels with
  253-character prefixes, a 253:128 imageStreamTag, suspend and dryRun;
- ``runtime-invalid``: admitted (the CRD does not check selectors) but invalid at runtime:
  unicode, blank or 64-character label values, malformed label keys;
- ``rejected``: not stored as given (the CRD refuses it, or prunes its unknown fields) and
  refused by ``parse_spec``: wrong types, 51 to 10,000 targets, missing fields, unknown
  kinds and fields, bad names, duplicates, name and selector both or neither, containers on
  a BuildConfig, In without values, ~200 KB strings, nested selectors, lone surrogates, a
  spec that is not an object;
- ``junk``: any JSON value (from ``json_values``).

``json_values(rng, n)`` yields arbitrary JSON values: any type, nested a few levels (now
and then a thousand), odd strings and numbers, to check that a function is total.
"""

# No "from __future__ import annotations": it would be shadowed by annotations() below.
import json
import random
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from imagestream_trigger.triggers import MAX_DEPTH, ProblemCode

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "CronJob")
TARGET_KINDS = (*WORKLOAD_KINDS, "BuildConfig")
MAX_VALUE_BYTES = 200_000

_BASES = {
    "Deployment": "spec.template.spec.",
    "StatefulSet": "spec.template.spec.",
    "DaemonSet": "spec.template.spec.",
    "CronJob": "spec.jobTemplate.spec.template.spec.",
}

# Odd text that keeps clear of the characters the annotation's syntax uses (":", "@", "]",
# quotes), so that where it is put decides the expected outcome.
ODD_TEXT = (
    "🚀",
    "👩\u200d👩\u200d👧",  # emoji joined by zero-width joiners
    "\u202eevil",  # right-to-left override
    "\u200b",  # zero-width space
    "e\u0301",  # combining acute accent
    "名前",
    "مرحبا",
    "\x00",  # becomes \u0000 in JSON
    "\ud800",  # lone high surrogate: becomes the escape \ud800 in JSON
    "\udc00",  # lone low surrogate
    "\ud83d",  # half of an emoji
    "\ufeff",  # byte order mark
    "\ufffd",
    "\u212a",  # KELVIN SIGN
    "\u017f",  # LATIN SMALL LETTER LONG S
    "\u0130",  # LATIN CAPITAL LETTER I WITH DOT ABOVE
    " ",
    "\t",
    "\n",
    "\\",
    "${HOME}",
    "../..",
    "%00",
    "",
)
ODD_PULL_SPECS = (
    "",
    " ",
    "app",
    "app:v1",
    "quay.io/acme/app@sha256:" + "a" * 64,
    "quay.io/acme/app:v1@sha256:" + "b" * 64,
    "host:5000/ns/app",
    "host:5000/ns/app:v1",
    "[::1]:5000/ns/app:v1",
    ":",
    "@",
    "/",
    "::::",
    "a@b@c",
    "a/b:c/d",
    "🚀/🚀:🚀",
    "\u202eapp",
    "app\x00:v1",
    "app\ud800:v1",
    "sha256:",
    "UPPER/Case:Tag",
)


@dataclass(frozen=True)
class AnnotationCase:
    what: str  # category, for failure messages
    value: str  # the annotation's value
    kind: str  # the workload kind the expectation is for
    problem: ProblemCode | None = None  # exactly this one problem is expected
    honoured: bool = False  # no problem, and at least one trigger, is expected


@dataclass(frozen=True)
class SpecCase:
    what: str
    spec: Any  # usually a dict; any JSON value in "rejected" and "junk"
    admitted: bool | None  # the CRD stores it unchanged (None: depends on the server)
    valid: bool | None  # parse_spec accepts it (None: not pinned)


# --- annotations -----------------------------------------------------------------------


def annotations(rng: random.Random, n: int) -> Iterator[AnnotationCase]:
    makers: tuple[Callable[[random.Random, str], AnnotationCase], ...] = (
        _invalid_json,
        _deep,
        _at_limit,
        _huge,
        _wrong_type,
        _unicode,
        _duplicate,
        _valid,
        _mutated,
    )
    for number in range(n):
        case = makers[number % len(makers)](rng, rng.choice(WORKLOAD_KINDS))
        size = len(case.value.encode("utf-8"))
        assert size <= MAX_VALUE_BYTES, (case.what, size)
        yield case


def _dumps(document: Any, rng: random.Random | None = None) -> str:
    """JSON text; non-ASCII raw or escaped at random, a lone surrogate always escaped."""
    raw = rng is not None and rng.random() < 0.5
    text = json.dumps(document, ensure_ascii=not raw)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(document)
    return text


def _fold_variant(rng: random.Random, key: str) -> str:
    """``key`` as Go still matches it: any letter case, maybe Unicode folds of k and s."""
    roll = rng.random()
    if roll < 0.5:
        return key
    if roll < 0.8:
        return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in key)
    return key.replace("k", "\u212a").replace("s", "\u017f")


def _dns_label(rng: random.Random, length: int | None = None) -> str:
    length = length or rng.randint(1, 12)
    if length == 1:
        return rng.choice(string.ascii_lowercase)
    middle = "".join(rng.choices(string.ascii_lowercase + string.digits + "-", k=length - 2))
    return rng.choice(string.ascii_lowercase) + middle + rng.choice(string.digits + "a")


def _dns_subdomain(rng: random.Random, length: int) -> str:
    """A DNS-1123 subdomain of exactly ``length`` characters (1 to 253)."""
    parts: list[str] = []
    left = length
    while left > 0:
        take = min(63, left)
        if left - take == 1:  # never leave room for a dot alone
            take -= 1
        parts.append(_dns_label(rng, take))
        left -= take + 1
    return ".".join(parts)


def _tag(rng: random.Random, length: int | None = None) -> str:
    length = length or rng.randint(1, 10)
    rest = "".join(rng.choices(string.ascii_letters + string.digits + "_.-", k=length - 1))
    return rng.choice(string.ascii_letters + string.digits + "_") + rest


def _big(rng: random.Random, size: int, alphabet: str = string.ascii_letters) -> str:
    """About ``size`` characters, cheaply: a random chunk repeated."""
    chunk = "".join(rng.choices(alphabet, k=64))
    return (chunk * (size // 64 + 1))[:size]


def _big_size(rng: random.Random) -> int:
    return rng.choice((10_000, 50_000, 120_000, 180_000))


def _selector(rng: random.Random, number: int) -> tuple[str, str]:
    """A container list and a selector, distinct for each ``number``."""
    field = "initContainers" if rng.random() < 0.3 else "containers"
    if rng.random() < 0.5:
        return field, str(number)
    return field, f'?(@.name=="{_dns_label(rng)}-{number}")'


def _entry(rng: random.Random, kind: str, number: int) -> dict[str, Any]:
    """A trigger OpenShift honours on ``kind``, its fieldPath distinct for each ``number``."""
    field, selector = _selector(rng, number)
    source: dict[str, Any] = {
        _fold_variant(rng, "kind"): "ImageStreamTag",
        _fold_variant(rng, "name"): f"{_dns_label(rng)}:{_tag(rng)}",
    }
    if rng.random() < 0.3:
        source[_fold_variant(rng, "namespace")] = _dns_label(rng)
    entry: dict[str, Any] = {
        _fold_variant(rng, "from"): source,
        _fold_variant(rng, "fieldPath"): f"{_BASES[kind]}{field}[{selector}].image",
    }
    roll = rng.random()
    if roll < 0.2:
        entry[_fold_variant(rng, "paused")] = False
    elif roll < 0.3:
        entry["paused"] = None
    elif roll < 0.4:
        entry["note"] = "unknown keys are ignored"
    return entry


def _entries(rng: random.Random, kind: str, count: int) -> list[dict[str, Any]]:
    return [_entry(rng, kind, number) for number in range(count)]


def _invalid_json(rng: random.Random, kind: str) -> AnnotationCase:
    valid = _dumps(_entries(rng, kind, rng.randint(1, 3)))
    entry = '{"from": {"kind": "ImageStreamTag", "name": "app:v1"}, "fieldPath": "x"'
    texts = (
        valid[: rng.randrange(len(valid))],  # every proper prefix of an array is invalid
        valid.replace('"', "'"),
        valid[:-1] + ",]",
        "// triggers\n" + valid,
        "[/* none */]",
        f'[{entry}, "paused": NaN}}]',
        f'[{entry}, "x": Infinity}}]',
        f'[{entry}, "x": -Infinity}}]',
        "\ufeff" + valid,
        f'[{entry[:-1]}\x00"}}]',
        f'[{entry[:-1]}\n"}}]',
        f'[{entry[:-1]}\\x41"}}]',
        f'[{entry[:-1]}\\u12"}}]',
        "",
        " \t\n",
        "[",
        "]",
        "]]]][[[[",
        "{",
        ",",
        "[1,]",
        "[01]",
        "[.5]",
        "[1.]",
        "[+1]",
        "[0x10]",
        '["a" "b"]',
        '{"a" 1}',
        "[] x",
        "[] [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        "[]]",
        "undefined",
        "True",
        "None",
        "'[]'",
        _big(rng, rng.choice((100, 10_000)), ',:x}]"'),  # no opening bracket: never deep
    )
    text = rng.choice(texts)
    return AnnotationCase("invalid-json", text, kind, problem=ProblemCode.InvalidJSON)


def _nest(rng: random.Random, depth: int, closed: bool = True) -> str:
    """``depth`` levels of arrays and/or objects around a scalar."""
    shape = rng.choice(("array", "object", "mixed"))
    opens: list[str] = []
    closes: list[str] = []
    for level in range(depth):
        use_array = shape == "array" or (shape == "mixed" and level % 2 == 0)
        opens.append("[" if use_array else '{"a": ')
        closes.append("]" if use_array else "}")
    return "".join(opens) + "1" + ("".join(reversed(closes)) if closed else "")


def _deep(rng: random.Random, kind: str) -> AnnotationCase:
    depth = rng.choice((MAX_DEPTH + 1, MAX_DEPTH + 2, 100, 999, 1000, 1001, 5000, 10_000))
    depth = rng.choice((depth, rng.randint(MAX_DEPTH + 1, 10_000)))
    closed = rng.random() < 0.7
    where = rng.choice(("alone", "unknown-key", "from", "after-strings"))
    if where == "alone":
        text = _nest(rng, depth, closed)
    else:
        entry = _dumps(_entry(rng, kind, 0))[:-1]  # open: one more key comes
        if where == "unknown-key":  # an entry is 2 levels deep: the value adds the rest
            text = f'[{entry}, "x": {_nest(rng, depth - 2, closed)}}}]'
        elif where == "from":
            text = (
                f'[{{"from": {{"kind": "ImageStreamTag", "x": {_nest(rng, depth - 3, closed)}}}}}]'
            )
        else:
            text = (
                f'[{entry}, "s": "]]}}}}\\"[[[[{{{{\\\\", "x": {_nest(rng, depth - 2, closed)}}}]'
            )
    return AnnotationCase(f"deep-{where}", text, kind, problem=ProblemCode.NestedTooDeeply)


def _at_limit(rng: random.Random, kind: str) -> AnnotationCase:
    if rng.random() < 0.5:
        text = "[" * MAX_DEPTH + "]" * MAX_DEPTH
        return AnnotationCase("at-limit-arrays", text, kind, problem=ProblemCode.InvalidType)
    entry = _dumps(_entry(rng, kind, 0))[:-1]
    text = f'[{entry}, "x": {"[" * (MAX_DEPTH - 2)}{"]" * (MAX_DEPTH - 2)}}}]'
    return AnnotationCase("at-limit-unknown-key", text, kind, honoured=True)


def _huge(rng: random.Random, kind: str) -> AnnotationCase:
    size = _big_size(rng)
    entry = _entry(rng, kind, 0)
    entry = {"from": {"kind": "ImageStreamTag", "name": "app:v1"}, "fieldPath": _fieldpath(entry)}
    base = _BASES[kind]
    where = rng.choice(
        (
            "fieldPath",
            "kind",
            "name",
            "namespace",
            "container",
            "index",
            "unknown-value",
            "unknown-key",
            "many-valid",
            "many-bad",
        )
    )
    problem: ProblemCode | None = None
    honoured = False
    if where == "fieldPath":
        entry["fieldPath"] = _big(rng, size)
        problem = ProblemCode.InvalidFieldPath
    elif where == "kind":
        entry["from"]["kind"] = _big(rng, size)
        problem = ProblemCode.UnsupportedFromKind
    elif where == "name":  # no colon: not an ImageStreamTag
        entry["from"]["name"] = _big(rng, size)
        problem = ProblemCode.InvalidTagName
    elif where == "namespace":
        entry["from"]["namespace"] = _big(rng, size, string.ascii_lowercase)
        honoured = True
    elif where == "container":
        entry["fieldPath"] = f'{base}containers[?(@.name=="{_big(rng, size)}")].image'
        honoured = True
    elif where == "index":  # past int64: Go's Atoi fails, and no name selector either
        entry["fieldPath"] = f"{base}containers[{_big(rng, size, string.digits)}].image"
        problem = ProblemCode.InvalidFieldPath
    elif where == "unknown-value":
        entry["x"] = _big(rng, size, string.ascii_letters + string.punctuation + " ")
        honoured = True
    elif where == "unknown-key":
        entry[_big(rng, size)] = 1
        honoured = True
    if where == "many-valid":
        text = _dumps([_entry(rng, kind, number) for number in range(rng.choice((200, 600)))])
        return AnnotationCase("huge-many-valid", text, kind, honoured=True)
    if where == "many-bad":
        count = rng.choice((1000, 10_000))
        text = "[" + ",".join(rng.choices(("1", '"x"', "[]", "true"), k=count)) + "]"
        return AnnotationCase("huge-many-bad", text, kind)
    return AnnotationCase(f"huge-{where}", _dumps([entry], rng), kind, problem, honoured)


def _fieldpath(entry: dict[str, Any]) -> str:
    return str(next(v for k, v in entry.items() if k.lower() == "fieldpath"))


_WRONG_VALUES: dict[str, tuple[Any, ...]] = {
    "from": ("app:v1", 1, ["ImageStreamTag"], True, 0.5),
    "string": (1, -1, 1.5, 1e300, ["app:v1"], {"name": "app:v1"}, True, False),
    "paused": ("false", "true", "", "yes", 0, 1, -1, 1.5, [], {}, [False], {"paused": False}),
}


def _wrong_type(rng: random.Random, kind: str) -> AnnotationCase:
    entries: list[Any] = _entries(rng, kind, rng.randint(1, 3))
    victim = rng.randrange(len(entries))
    field = rng.choice(
        ("from", "kind", "name", "namespace", "apiVersion", "fieldPath", "paused", "top", "entry")
    )
    if field == "top":
        document: Any = rng.choice(({"from": {}}, "[]", 1, -0.5, True, False, {}))
        return AnnotationCase("wrong-type-top", _dumps(document), kind, ProblemCode.InvalidType)
    if field == "entry":
        entries[victim] = rng.choice((1, "trigger", ["from"], True, False, 0.5, []))
        return AnnotationCase("wrong-type-entry", _dumps(entries), kind, ProblemCode.InvalidType)
    entry = {k: v for k, v in entries[victim].items() if k.lower() != field.lower()}
    code = ProblemCode.InvalidType
    if field == "from":
        entry[_fold_variant(rng, "from")] = rng.choice(_WRONG_VALUES["from"])
    elif field == "fieldPath":
        entry[_fold_variant(rng, "fieldPath")] = rng.choice(_WRONG_VALUES["string"])
    elif field == "paused":
        entry[_fold_variant(rng, "paused")] = rng.choice(_WRONG_VALUES["paused"])
        code = ProblemCode.PausedNotBoolean
    else:
        source = next(v for k, v in entry.items() if k.lower() == "from")
        source = {k: v for k, v in source.items() if k.lower() != field.lower()}
        source[_fold_variant(rng, field)] = rng.choice(_WRONG_VALUES["string"])
        entry = {k: v for k, v in entry.items() if k.lower() != "from"}
        entry["from"] = source
    entries[victim] = entry
    return AnnotationCase(f"wrong-type-{field}", _dumps(entries, rng), kind, code)


def _odd(rng: random.Random) -> str:
    return "".join(rng.choice(ODD_TEXT) for _ in range(rng.randint(1, 4)))


def _unicode(rng: random.Random, kind: str) -> AnnotationCase:
    entries = _entries(rng, kind, rng.randint(1, 3))
    victim = rng.randrange(len(entries))
    odd = _odd(rng) or "🚀"
    where = rng.choice(
        ("container", "stream", "tag", "namespace", "kind", "base", "unknown", "apiVersion")
    )
    entry: dict[str, Any] = {
        k.lower() if k.lower() in ("from", "fieldpath") else k: v
        for k, v in entries[victim].items()
    }
    source = {k.lower(): v for k, v in entry["from"].items()}
    entry["from"] = source
    problem: ProblemCode | None = None
    if where == "container":
        field, _ = _selector(rng, 0)
        entry["fieldpath"] = f'{_BASES[kind]}{field}[?(@.name=="{odd}-{victim}")].image'
    elif where == "stream":
        source["name"] = f"{odd}:{_tag(rng)}"
    elif where == "tag":
        source["name"] = f"{_dns_label(rng)}:{odd}"
    elif where == "namespace":
        source["namespace"] = odd
    elif where == "kind":
        source["kind"] = rng.choice(("ImageStreamTag", "")) + odd
        problem = ProblemCode.UnsupportedFromKind
    elif where == "apiVersion":
        source["apiversion"] = odd
        problem = ProblemCode.UnsupportedFromKind
    elif where == "base":
        entry["fieldpath"] = odd + entry["fieldpath"]
        problem = ProblemCode.InvalidFieldPath
    else:
        entry[odd] = odd
    entries[victim] = entry
    # A problem here ignores this entry only: the others still work, and it is the only one.
    honoured = problem is None
    return AnnotationCase(f"unicode-{where}", _dumps(entries, rng), kind, problem, honoured)


def _duplicate(rng: random.Random, kind: str) -> AnnotationCase:
    roll = rng.random()
    entries = _entries(rng, kind, rng.randint(1, 3))
    if roll < 0.5:
        twin = _entry(rng, kind, 99)
        twin = {k: v for k, v in twin.items() if k.lower() != "fieldpath"}
        twin["fieldPath"] = _fieldpath(entries[0])
        entries.insert(rng.randint(1, len(entries)), twin)
        return AnnotationCase(
            "duplicate-fieldPath", _dumps(entries), kind, ProblemCode.DuplicateFieldPath
        )
    if roll < 0.7:
        copies = [entries[0]] * rng.randint(3, 200)
        return AnnotationCase("duplicate-many", _dumps(copies), kind)
    # A key twice in one object: Go and Python both keep the last value.
    path = _dumps(_fieldpath(entries[0]))
    spelled = rng.choice(("fieldPath", "FieldPath", "FIELDPATH"))
    text = (
        '[{"from": {"kind": "ImageStreamTag", "name": "app:v1"}, '
        f'"fieldPath": "wrong", "{spelled}": {path}}}]'
    )
    return AnnotationCase("duplicate-key", text, kind, honoured=True)


def _valid(rng: random.Random, kind: str) -> AnnotationCase:
    entries = _entries(rng, kind, rng.randint(1, 5))
    if rng.random() < 0.3:
        entries[0]["paused"] = True
    text = _dumps(entries, rng)
    if rng.random() < 0.3:
        text = rng.choice((" ", "\n", "\t", "\r\n")) + text + rng.choice(("", " ", "\n"))
    return AnnotationCase("valid", text, kind, honoured=True)


_MUTATIONS = (*'[]{}",:\\ \x000-en', "\\ud800", "🚀")  # one character each, or an escape


def _mutated(rng: random.Random, kind: str) -> AnnotationCase:
    text = _dumps(_entries(rng, kind, rng.randint(1, 3)))
    for _ in range(rng.randint(1, 5)):
        at = rng.randrange(len(text) + 1)
        action = rng.random()
        if action < 0.4:
            text = text[:at] + rng.choice(_MUTATIONS) + text[at:]
        elif action < 0.7:
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + rng.choice(_MUTATIONS) + text[at + 1 :]
    return AnnotationCase("mutated", text, kind)


# --- ImageStreams ----------------------------------------------------------------------


def imagestream_bodies(
    rng: random.Random, n: int, *, strict: bool = False
) -> Iterator[dict[str, Any]]:
    for number in range(n):
        yield _imagestream(rng, number, strict)


def _odd_string(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        return rng.choice(ODD_PULL_SPECS)
    if roll < 0.8:
        return _odd(rng)
    if roll < 0.95:
        return rng.choice(("latest", "v1", "", " ", "x:y", "a@b", "LATEST"))
    return _big(rng, 10_000, string.printable)


def _tag_names(rng: random.Random, count: int, strict: bool) -> list[str]:
    pool = ["latest", "v1", "v2", "", " ", "🚀", "\u202elatest", "x:y", "a@b", "\ud800", "latest "]
    names = [rng.choice(pool) for _ in range(count)]
    if strict:
        names = list(dict.fromkeys(names))
    return names


def _created(rng: random.Random, strict: bool) -> str:
    if strict or rng.random() < 0.6:
        return rng.choice(("2025-01-10T10:15:02Z", "2024-02-29T23:59:59Z", "1970-01-01T00:00:00Z"))
    return rng.choice(("", "yesterday", "2025-13-45T99:99:99Z", "🚀", "0"))


def _item(rng: random.Random, strict: bool) -> dict[str, Any]:
    item: dict[str, Any] = {
        "created": _created(rng, strict),
        "dockerImageReference": _odd_string(rng),
        "image": rng.choice(("sha256:" + "c" * 64, "", "sha256:", "🚀", "x@y", _odd(rng))),
        "generation": rng.choice((0, 1, 2, 2**62)),
    }
    if not strict:
        for key in list(item):
            if rng.random() < 0.25:
                del item[key]
    return item


def _imagestream(rng: random.Random, number: int, strict: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": f"fuzz-{number}"},
    }
    if strict or rng.random() < 0.9:
        spec: dict[str, Any] = {}
        if rng.random() < 0.3:
            spec["dockerImageRepository"] = _odd_string(rng)
        spec_tags = []
        for name in _tag_names(rng, rng.randint(0, 5), strict):
            tag: dict[str, Any] = {"name": name}
            if not strict and rng.random() < 0.15:
                del tag["name"]
            if rng.random() < 0.8:
                kind = rng.choice(("DockerImage", "ImageStreamTag", "ImageStreamImage", "", "🚀"))
                tag["from"] = {"kind": kind, "name": _odd_string(rng)}
            if rng.random() < 0.7:
                policy = ("Source", "Local") if strict else ("Source", "Local", "", "local", "🚀")
                tag["referencePolicy"] = {"type": rng.choice(policy)}
            spec_tags.append(tag)
        if spec_tags or rng.random() < 0.5:
            spec["tags"] = spec_tags
        body["spec"] = spec
    if strict or rng.random() < 0.9:
        status: dict[str, Any] = {}
        for field in ("dockerImageRepository", "publicDockerImageRepository"):
            if rng.random() < 0.7:
                status[field] = _odd_string(rng)
        status_tags = []
        for name in _tag_names(rng, rng.randint(0, 6), strict):
            entry: dict[str, Any] = {"tag": name}
            roll = rng.random()
            if roll < 0.15:
                entry["items"] = []
            elif roll < 0.25 and not strict:
                pass  # no items at all
            elif roll < 0.3:
                entry["items"] = None
            else:
                entry["items"] = [_item(rng, strict) for _ in range(rng.randint(1, 3))]
            status_tags.append(entry)
        if status_tags or rng.random() < 0.5:
            status["tags"] = status_tags
        body["status"] = status
    return body


# --- ImageTrigger specs ----------------------------------------------------------------


def imagetrigger_specs(rng: random.Random, n: int) -> Iterator[SpecCase]:
    makers: tuple[Callable[[random.Random], SpecCase], ...] = (
        _extreme_spec,
        _runtime_invalid_spec,
        _rejected_spec,
        _junk_spec,
    )
    for number in range(n):
        yield makers[number % len(makers)](rng)


def _label_name(rng: random.Random, length: int) -> str:
    alnum = string.ascii_letters + string.digits
    if length == 1:
        return rng.choice(alnum)
    middle = "".join(rng.choices(alnum + "-_.", k=length - 2))
    return rng.choice(alnum) + middle + rng.choice(alnum)


def _label_key(rng: random.Random) -> str:
    name = _label_name(rng, rng.choice((1, 5, 63)))
    if rng.random() < 0.5:
        return name
    return f"{_dns_subdomain(rng, rng.choice((1, 20, 253)))}/{name}"


def _label_value(rng: random.Random) -> str:
    return rng.choice(("", _label_name(rng, rng.choice((1, 8, 63)))))


def _requirement(rng: random.Random, key: str) -> dict[str, Any]:
    operator = rng.choice(("In", "NotIn", "Exists", "DoesNotExist"))
    requirement: dict[str, Any] = {"key": key, "operator": operator}
    if operator in ("In", "NotIn"):
        requirement["values"] = [_label_value(rng) for _ in range(rng.randint(1, 5))]
    return requirement


def _valid_selector(rng: random.Random, *, big: bool) -> dict[str, Any]:
    selector: dict[str, Any] = {}
    if rng.random() < 0.7:
        count = 30 if big else rng.randint(0, 3)
        selector["matchLabels"] = {_label_key(rng): _label_value(rng) for _ in range(count)}
    if rng.random() < 0.7:
        count = 100 if big else rng.randint(0, 3)
        selector["matchExpressions"] = [_requirement(rng, _label_key(rng)) for _ in range(count)]
    return selector


def _valid_target(rng: random.Random, number: int, *, big: bool) -> dict[str, Any]:
    kind = rng.choice(TARGET_KINDS)
    target: dict[str, Any] = {"kind": kind}
    if rng.random() < 0.6:
        unique = f"t{number}"  # no two targets share a name
        length = 253 if big else rng.randint(1, 30)
        rest = length - len(unique) - 1
        target["name"] = f"{unique}.{_dns_subdomain(rng, rest)}" if rest > 0 else unique
    else:
        target["selector"] = _valid_selector(rng, big=big)
    if kind != "BuildConfig" and rng.random() < 0.5:
        count = 50 if big else rng.randint(1, 4)
        names = list(dict.fromkeys(_dns_label(rng, 63 if big else None) for _ in range(count)))
        split = rng.randint(0, len(names))
        if names[:split]:
            target["containers"] = names[:split]
        if names[split:]:
            target["initContainers"] = names[split:]
    return target


def _valid_spec(rng: random.Random, *, big: bool = False) -> dict[str, Any]:
    stream = _dns_subdomain(rng, 253 if big else rng.randint(1, 20))
    spec: dict[str, Any] = {
        "source": {"imageStreamTag": f"{stream}:{_tag(rng, 128 if big else None)}"},
        # At most 3 targets at every limit, so the object stays far below etcd's 1.5 MiB.
        "targets": [
            _valid_target(rng, number, big=big and number < 3)
            for number in range(50 if big else rng.randint(1, 4))
        ],
    }
    if rng.random() < 0.5:
        spec["source"]["namespace"] = _dns_label(rng, 63 if big else None)
    for field in ("suspend", "dryRun"):
        if rng.random() < 0.5:
            spec[field] = rng.random() < 0.5
    return spec


def _extreme_spec(rng: random.Random) -> SpecCase:
    return SpecCase("extreme", _valid_spec(rng, big=rng.random() < 0.3), True, True)


def _selector_target(rng: random.Random, spec: dict[str, Any]) -> dict[str, Any]:
    """Add a target choosing by selector; return its (empty) selector to fill."""
    selector: dict[str, Any] = {}
    spec["targets"].append({"kind": rng.choice(TARGET_KINDS), "selector": selector})
    return selector


def _runtime_invalid_spec(rng: random.Random) -> SpecCase:
    spec = _valid_spec(rng)
    selector = _selector_target(rng, spec)
    bad_value = rng.choice(
        ("🚀", "\u202eadmin", "名前", "a b", " ", "-x", "x-", "_", "v" * 64, "e\u0301", "\x00")
    )
    bad_key = rng.choice(
        ("-bad", "bad-", "a b", "Bad_/x", "/x", "x/", "a/b/c", "k" * 64, "🚀", "p" * 254 + "/x")
    )
    roll = rng.random()
    if roll < 0.4:
        selector["matchLabels"] = {_label_key(rng): bad_value}
    elif roll < 0.7:
        selector["matchLabels"] = {bad_key: _label_value(rng)}
    elif roll < 0.85:
        selector["matchExpressions"] = [{"key": "tier", "operator": "In", "values": [bad_value]}]
    else:
        selector["matchExpressions"] = [{"key": bad_key, "operator": "Exists"}]
    return SpecCase("runtime-invalid", spec, True, False)


def _deeply_nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def _rejected_spec(rng: random.Random) -> SpecCase:
    spec: Any = _valid_spec(rng)
    target = spec["targets"][0]
    source = spec["source"]
    change = rng.randrange(24)
    if change == 0:
        source["imageStreamTag"] = rng.choice((5, 1.5, None, True, ["app:v1"], {"a": "b"}))
    elif change == 1:
        target["kind"] = rng.choice((1, "Job", "deployment", "", "🚀", None))
    elif change == 2:
        target["name"] = rng.choice((1.5, "Web_1", "-web", "a" * 254, "web.", "🚀", ""))
    elif change == 3:
        spec["targets"] = [
            {"kind": "Deployment", "name": f"n{i}"} for i in range(rng.choice((51, 10_000)))
        ]
    elif change == 4:
        del spec[rng.choice(("source", "targets"))]
    elif change == 5:
        spec[rng.choice(("unknown", "dry_run", "Suspend", "🚀", "x" * 10_000))] = True
    elif change == 6:
        spec["targets"] = [target, dict(target)] if "name" in target else [{"kind": "Deployment"}]
    elif change == 7:
        target["name"], target["selector"] = "web", {}
    elif change == 8:
        spec["targets"] = [{"kind": "Deployment"}]
    elif change == 9:
        spec["targets"] = [{"kind": "BuildConfig", "name": "b", "containers": ["x"]}]
    elif change == 10:
        spec["targets"] = [
            {
                "kind": "Deployment",
                "selector": {"matchExpressions": [{"key": "k", "operator": "In"}]},
            }
        ]
    elif change == 11:
        source["imageStreamTag"] = _big(rng, 200_000)
    elif change == 12:
        spec["targets"] = [
            {
                "kind": "Deployment",
                "selector": {"matchLabels": _deeply_nested(rng.choice((10, 1000)))},
            }
        ]
    elif change == 13:
        spec = rng.choice(([], "spec", 1, None, True, [spec]))
    elif change == 14:
        spec["suspend"] = rng.choice(("true", 1, None, [], {}))
    elif change == 15:
        spec["targets"] = [{"kind": "Deployment", "name": "web", "containers": ["a", "a"]}]
    elif change == 16:
        spec["targets"] = [
            {"kind": "Deployment", "name": "web", "containers": ["a"], "initContainers": ["a"]}
        ]
    elif change == 17:
        source["imageStreamTag"] = "app\ud800:v1"
    elif change == 18:
        spec["targets"] = [
            {"kind": "Deployment", "name": "web", "containers": [f"c{i}" for i in range(51)]}
        ]
    elif change == 19:
        spec["targets"] = [
            {
                "kind": "Deployment",
                "name": "web",
                "containers": rng.choice(("web", [], [1], ["Web"])),
            }
        ]
    elif change == 20:
        source["namespace"] = rng.choice(("My_NS", "a" * 64, 1, ""))
    elif change == 21:
        spec["targets"] = rng.choice(({}, "web", 1, [[]], [None]))
    elif change == 22:
        selector = _selector_target(rng, spec)
        selector["matchLabels"] = rng.choice(([], "app=web", {"a": 1}, {"a": None}, {"a": ["b"]}))
    else:
        source["imageStreamTag"] = rng.choice(
            ("app", "app:", ":v1", "App:v1", "app:-x", "app:" + "t" * 129)
        )
    return SpecCase(f"rejected-{change}", spec, False if change not in (12, 17) else None, False)


def _junk_spec(rng: random.Random) -> SpecCase:
    return SpecCase("junk", next(json_values(rng, 1)), None, None)


# --- any JSON --------------------------------------------------------------------------


def json_values(rng: random.Random, n: int) -> Iterator[Any]:
    for _ in range(n):
        if rng.random() < 0.02:
            yield _deeply_nested(1000) if rng.random() < 0.5 else _deep_list(1000)
        else:
            yield _json_value(rng, rng.randint(0, 5))


def _deep_list(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


# Keys the functions under test read, so that junk reaches them.
_KEYS: tuple[str, ...] = (
    "status",
    "spec",
    "tags",
    "tag",
    "items",
    "name",
    "from",
    "kind",
    "image",
    "type",
)
_KEYS += ("dockerImageReference", "dockerImageRepository", "referencePolicy", "created")
_KEYS += ("source", "targets", "imageStreamTag", "selector", "matchLabels", "x")
_SCALARS: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**63,
    1.5,
    -0.0,
    1e308,
    "",
    "latest",
    "Local",
)
_SCALARS += ("DockerImage", "ImageStreamTag", "Deployment")


def _json_value(rng: random.Random, depth: int) -> Any:
    roll = rng.random()
    if depth <= 0 or roll < 0.4:
        return rng.choice((*_SCALARS, rng.choice(ODD_PULL_SPECS), _odd(rng)))
    if roll < 0.7:
        return [_json_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(_KEYS): _json_value(rng, depth - 1) for _ in range(rng.randint(0, 4))}
