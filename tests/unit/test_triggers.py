"""The image.openshift.io/triggers annotation: what OpenShift honours, and what we report.

Reference: library-go pkg/image/trigger/annotations.go and openshift-controller-manager
pkg/image/controller/trigger/cache.go.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagestream_trigger import triggers as triggers_module
from imagestream_trigger.kinds import Container
from imagestream_trigger.resolve import TagRef
from imagestream_trigger.triggers import (
    MAX_DEPTH,
    MAX_PROBLEMS,
    AnnotationTrigger,
    ContainerSelector,
    Problem,
    ProblemCode,
    check_containers,
    describe_containers,
    parse_triggers_annotation,
    select_container,
)

BASE = "spec.template.spec."
CRON_BASE = "spec.jobTemplate.spec.template.spec."
WEB = BASE + 'containers[?(@.name=="web")].image'
APP_LATEST = TagRef("demo", "app", "latest")


def entry(
    field_path: str = WEB,
    name: str = "app:latest",
    kind: str = "ImageStreamTag",
    **extra: Any,
) -> dict[str, Any]:
    return {"from": {"kind": kind, "name": name}, "fieldPath": field_path, **extra}


def annotation(*entries: Any) -> str:
    return json.dumps(list(entries))


def parse(value: str, kind: str = "Deployment") -> tuple[Any, Any]:
    return parse_triggers_annotation(value, kind=kind, namespace="demo")


def trigger(
    selector: ContainerSelector,
    field_path: str,
    *,
    source: TagRef = APP_LATEST,
    paused: bool = False,
) -> AnnotationTrigger:
    return AnnotationTrigger(
        source=source, container=selector, paused=paused, field_path=field_path
    )


def by_name(name: str, init: bool = False) -> ContainerSelector:
    return ContainerSelector(init=init, index=None, name=name)


def by_index(index: int, init: bool = False) -> ContainerSelector:
    return ContainerSelector(init=init, index=index, name=None)


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        (annotation(entry()), "Deployment", [trigger(by_name("web"), WEB)]),
        (
            annotation(entry(BASE + "containers[1].image")),
            "StatefulSet",
            [trigger(by_index(1), BASE + "containers[1].image")],
        ),
        (
            annotation(entry(BASE + "initContainers[0].image")),
            "DaemonSet",
            [trigger(by_index(0, init=True), BASE + "initContainers[0].image")],
        ),
        (
            annotation(entry(BASE + 'initContainers[?(@.name=="setup")].image')),
            "Deployment",
            [
                trigger(
                    by_name("setup", init=True), BASE + 'initContainers[?(@.name=="setup")].image'
                )
            ],
        ),
        (
            annotation(entry(CRON_BASE + 'containers[?(@.name=="job")].image')),
            "CronJob",
            [trigger(by_name("job"), CRON_BASE + 'containers[?(@.name=="job")].image')],
        ),
        (
            annotation(entry(paused=True)),
            "Deployment",
            [trigger(by_name("web"), WEB, paused=True)],
        ),
        (annotation(entry(paused=None)), "Deployment", [trigger(by_name("web"), WEB)]),
        (
            annotation(
                {
                    "from": {"kind": "ImageStreamTag", "name": "app:v1", "namespace": "base"},
                    "fieldPath": WEB,
                }
            ),
            "Deployment",
            [trigger(by_name("web"), WEB, source=TagRef("base", "app", "v1"))],
        ),
        (
            annotation(
                {
                    "from": {"kind": "ImageStreamTag", "name": "app:v1", "namespace": ""},
                    "fieldPath": WEB,
                }
            ),
            "Deployment",
            [trigger(by_name("web"), WEB, source=TagRef("demo", "app", "v1"))],
        ),
        (annotation(entry(name="app:")), "Deployment", [trigger(by_name("web"), WEB)]),
        (
            annotation(
                {
                    "FROM": {"Kind": "ImageStreamTag", "NAME": "app:latest"},
                    "FieldPath": WEB,
                    "Paused": False,
                }
            ),
            "Deployment",
            [trigger(by_name("web"), WEB)],
        ),
        (
            annotation(entry(note="ignored", extra=[1])),
            "Deployment",
            [trigger(by_name("web"), WEB)],
        ),
        (
            annotation(entry(BASE + "containers[0]image")),
            "Deployment",
            [trigger(by_index(0), BASE + "containers[0]image")],
        ),
        (
            annotation(entry(BASE + "containers[+1].image")),
            "Deployment",
            [trigger(by_index(1), BASE + "containers[+1].image")],
        ),
        ("null", "Deployment", []),
        ("[]", "Deployment", []),
    ],
    ids=[
        "name-selector",
        "index-selector",
        "init-index",
        "init-name",
        "cronjob-base",
        "paused-kept-and-flagged",
        "paused-null-is-false",
        "cross-namespace-from",
        "empty-namespace-is-workload-namespace",
        "empty-tag-is-latest-like-openshift",
        "keys-are-case-insensitive-like-go",
        "unknown-keys-ignored",
        "dot-before-image-optional-like-openshift",
        "signed-index-like-go-atoi",
        "json-null",
        "empty-array",
    ],
)
def test_honoured(value: str, kind: str, expected: list[AnnotationTrigger]) -> None:
    triggers, problems = parse(value, kind)
    assert problems == ()
    assert list(triggers) == expected


# Problems that make OpenShift ignore the whole annotation: nothing may be returned.
@pytest.mark.parametrize(
    ("value", "code", "fragments"),
    [
        ('[{"from": ', ProblemCode.InvalidJSON, ["is not valid JSON", "line 1 column"]),
        ("", ProblemCode.InvalidJSON, ["is not valid JSON"]),
        ('[{"paused": NaN}]', ProblemCode.InvalidJSON, ["NaN is not JSON"]),
        (json.dumps(entry()), ProblemCode.InvalidType, ["must be a JSON array", "a JSON object"]),
        (annotation(entry(), "web"), ProblemCode.InvalidType, ["trigger [1]", '"web"']),
        (
            annotation(entry(paused="false")),
            ProblemCode.PausedNotBoolean,
            ['trigger [0] has "paused": "false"', 'Write "paused": false without quotes'],
        ),
        (
            annotation(entry(paused="True")),
            ProblemCode.PausedNotBoolean,
            ['"paused": "True"', 'Write "paused": true without quotes'],
        ),
        (annotation(entry(paused=0)), ProblemCode.PausedNotBoolean, ['"paused": 0']),
        (
            annotation({"from": {"kind": "ImageStreamTag", "name": "a:b"}, "fieldPath": 3}),
            ProblemCode.InvalidType,
            ['trigger [0] has "fieldPath": 3, which must be a string'],
        ),
        (
            annotation({"from": "app:latest", "fieldPath": WEB}),
            ProblemCode.InvalidType,
            ['"from": "app:latest", which must be a JSON object'],
        ),
        (
            annotation({"from": {"kind": "ImageStreamTag", "name": 7}, "fieldPath": WEB}),
            ProblemCode.InvalidType,
            ['"from.name": 7, which must be a string'],
        ),
        (
            annotation(entry(), entry(name="other:v1")),
            ProblemCode.DuplicateFieldPath,
            ["triggers [0] and [1] both have fieldPath", WEB.replace('"', '\\"')],
        ),
        (
            annotation(entry(), entry(name="other:v1", paused=True)),
            ProblemCode.DuplicateFieldPath,
            ["triggers [0] and [1]"],
        ),
        (annotation(None, None), ProblemCode.DuplicateFieldPath, ['fieldPath ""']),
        (
            annotation(entry(BASE + "containers[?(@.name=='web')].image")),
            ProblemCode.SingleQuotedSelector,
            [
                "only accepts double quotes",
                'Use "spec.template.spec.containers[?(@.name==\\"web\\")].image"',
            ],
        ),
        (
            annotation(entry(BASE + "containers[?(@.name == 'web')].image")),
            ProblemCode.SingleQuotedSelector,
            ['Use "spec.template.spec.containers[?(@.name==\\"web\\")].image"'],
        ),
        (
            annotation(entry(BASE + "containers[0].imag")),
            ProblemCode.InvalidFieldPath,
            ['trigger [0] has fieldPath "spec.template.spec.containers[0].imag"'],
        ),
        (
            annotation(entry(BASE + "containers[0.image")),
            ProblemCode.InvalidFieldPath,
            ["containers[INDEX].image"],
        ),
        (
            annotation(entry(BASE + "volumes[0].image")),
            ProblemCode.InvalidFieldPath,
            ['after "spec.template.spec."'],
        ),
        (
            annotation(entry(BASE + "containers[web].image")),
            ProblemCode.InvalidFieldPath,
            ['containers[?(@.name=="NAME")].image'],
        ),
    ],
    ids=[
        "truncated-json",
        "empty-string",
        "nan-is-not-json",
        "object-not-array",
        "entry-not-object",
        "paused-string-false",
        "paused-string-true",
        "paused-number",
        "fieldpath-not-string",
        "from-not-object",
        "from-name-not-string",
        "duplicate-fieldpath",
        "duplicate-fieldpath-counts-paused",
        "two-null-entries-duplicate-empty-fieldpath",
        "single-quoted-selector",
        "single-quoted-selector-with-spaces",
        "not-ending-in-image",
        "unclosed-bracket",
        "not-a-container-list",
        "bare-name-selector",
    ],
)
def test_whole_annotation_ignored(value: str, code: str, fragments: list[str]) -> None:
    triggers, problems = parse(value)
    assert triggers == ()
    assert [p.reason for p in problems] == [code]
    for fragment in fragments:
        assert fragment in problems[0].message


# Problems that make OpenShift ignore one entry: the valid entry next to it still works.
@pytest.mark.parametrize(
    ("bad", "kind", "code", "fragments"),
    [
        (
            entry(BASE + "containers[1].image", name="app"),
            "Deployment",
            ProblemCode.InvalidTagName,
            ['trigger [1] has from.name "app"', '"stream:tag"'],
        ),
        (
            entry(BASE + "containers[1].image", name=":latest"),
            "Deployment",
            ProblemCode.InvalidTagName,
            ['from.name ":latest"'],
        ),
        (
            entry(BASE + "containers[1].image", name="app@sha256:abc"),
            "Deployment",
            ProblemCode.InvalidTagName,
            ['from.name "app@sha256:abc"'],
        ),
        (
            entry(CRON_BASE + "containers[1].image"),
            "Deployment",
            ProblemCode.InvalidFieldPath,
            [
                'does not start with "spec.template.spec." as a Deployment requires',
                'Use "spec.template.spec.containers[1].image"',
            ],
        ),
        (
            entry("containers[1].image"),
            "Deployment",
            ProblemCode.InvalidFieldPath,
            ['fieldPath "containers[1].image"', 'Use "spec.template.spec.containers[1].image"'],
        ),
        (
            entry(BASE + "containers[?(@.name=='side')].image", paused=True),
            "Deployment",
            ProblemCode.SingleQuotedSelector,
            ["It is paused, so for now only this trigger is ignored"],
        ),
        (
            entry(BASE + "containers[0].env", paused=True),
            "Deployment",
            ProblemCode.InvalidFieldPath,
            ["It is paused"],
        ),
    ],
    ids=[
        "name-without-colon",
        "name-without-stream",
        "name-is-stream-image",
        "deployment-path-base-on-wrong-kind",
        "missing-base",
        "paused-single-quoted",
        "paused-bad-tail",
    ],
)
def test_one_entry_ignored(bad: dict[str, Any], kind: str, code: str, fragments: list[str]) -> None:
    triggers, problems = parse(annotation(entry(), bad), kind)
    assert triggers == (trigger(by_name("web"), WEB),)
    assert [p.reason for p in problems] == [code]
    for fragment in fragments:
        assert fragment in problems[0].message


def test_cronjob_message_shows_the_cronjob_prefix() -> None:
    field_path = BASE + "containers[0].image"
    triggers, problems = parse(annotation(entry(field_path)), "CronJob")
    assert triggers == ()
    assert problems[0].reason == ProblemCode.InvalidFieldPath
    assert problems[0].message == (
        'trigger [0] has fieldPath "spec.template.spec.containers[0].image", which does not '
        'start with "spec.jobTemplate.spec.template.spec." as a CronJob requires; OpenShift '
        "ignores this trigger. "
        'Use "spec.jobTemplate.spec.template.spec.containers[0].image".'
    )


def test_suffix_only_name_selector_is_honoured_like_openshift() -> None:
    # OpenShift trims '?(@.name=="' and '")' independently: 'web")' names "web".
    field_path = BASE + 'containers[web")].image'
    triggers, problems = parse(annotation(entry(field_path)))
    assert problems == ()
    assert triggers == (trigger(by_name("web"), field_path),)


def test_annotation_on_a_kind_without_pod_template_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="BuildConfig"):
        parse(annotation(entry()), "BuildConfig")


def test_selector_needs_exactly_one_of_index_or_name() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        ContainerSelector(init=False, index=0, name="web")
    with pytest.raises(ValueError, match="exactly one"):
        ContainerSelector(init=False, index=None, name=None)


CONTAINERS = (
    Container(name="web", image="quay.io/acme/app:v1", init=False, index=0),
    Container(name="proxy", image="envoy:v1", init=False, index=1),
    Container(name="setup", image="busybox", init=True, index=0),
)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        (by_name("web"), CONTAINERS[0]),
        (by_index(1), CONTAINERS[1]),
        (by_index(0, init=True), CONTAINERS[2]),
        (by_name("setup", init=True), CONTAINERS[2]),
        (by_name("setup"), CONTAINERS[2]),
        (by_index(2), None),
        (by_index(-1), None),
        (by_name("db"), None),
    ],
    ids=[
        "by-name",
        "by-index",
        "init-by-index",
        "init-by-name",
        "name-finds-init-container-like-openshift",
        "index-out-of-range",
        "negative-index",
        "unknown-name",
    ],
)
def test_select_container(selector: ContainerSelector, expected: Container | None) -> None:
    assert select_container(selector, CONTAINERS) == expected


@pytest.mark.parametrize(
    ("triggers", "messages"),
    [
        ([trigger(by_name("web"), WEB), trigger(by_index(0, True), "i")], []),
        (
            [trigger(by_name("db"), BASE + 'containers[?(@.name=="db")].image')],
            [
                'trigger with fieldPath "spec.template.spec.containers[?(@.name==\\"db\\")].image"'
                ' selects container "db", but this object has containers "web", "proxy" and '
                'init containers "setup"; OpenShift stops applying every trigger of this object '
                "once demo/app:latest resolves. Fix the selector."
            ],
        ),
        (
            [trigger(by_index(2), BASE + "containers[2].image")],
            ["selects containers[2] (valid indexes: 0..1)"],
        ),
        (
            [trigger(by_index(1, True), BASE + "initContainers[1].image")],
            ["selects initContainers[1] (valid indexes: 0..0)"],
        ),
        ([trigger(by_name("db"), "p", paused=True)], []),
    ],
    ids=["all-found", "unknown-name", "index-out-of-range", "init-index-out-of-range", "paused"],
)
def test_check_containers(triggers: list[AnnotationTrigger], messages: list[str]) -> None:
    problems = check_containers(triggers, CONTAINERS)
    assert [p.reason for p in problems] == [ProblemCode.ContainerNotFound] * len(messages)
    for problem, message in zip(problems, messages, strict=True):
        assert message in problem.message


def test_check_containers_of_an_empty_pod_spec() -> None:
    (problem,) = check_containers([trigger(by_index(0), "p")], ())
    assert "selects containers[0] (valid indexes: none)" in problem.message
    assert "but this object has no containers" in problem.message


# Hostile input: never a traceback, one clear problem, and short messages.


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


NESTED_MESSAGE = (
    "annotation image.openshift.io/triggers is nested too deeply: its JSON arrays and objects "
    f"go more than {MAX_DEPTH} levels deep, where a list of triggers needs 3; OpenShift "
    "ignores the whole annotation, so no trigger on this object works. Write a flat JSON "
    'array such as [{"from": {"kind": "ImageStreamTag", "name": "app:latest"}, '
    '"fieldPath": "...", "paused": false}].'
)


def with_unknown_key(raw_value: str) -> str:
    """A valid entry carrying ``raw_value`` (JSON text) under a key OpenShift ignores."""
    return annotation(entry())[:-2] + f', "x": {raw_value}}}]'


@pytest.mark.parametrize(
    "value",
    [
        nested(10_000),
        "[" * 10_000,
        '{"a": ' * 5_000,
        nested(MAX_DEPTH + 1),
        with_unknown_key(nested(MAX_DEPTH - 1)),
        '[{"s": "]]]\\"]]]", "x": ' + nested(MAX_DEPTH) + "}]",
        " \n" + nested(MAX_DEPTH + 1),
    ],
    ids=[
        "10000-arrays",
        "10000-unclosed",
        "5000-objects-unclosed",
        "one-past-the-limit",
        "one-past-the-limit-under-an-unknown-key",
        "brackets-after-a-string-with-escaped-quotes",
        "leading-whitespace",
    ],
)
def test_nested_too_deeply_is_one_problem(value: str) -> None:
    for kind in ("Deployment", "StatefulSet", "DaemonSet", "CronJob"):
        triggers, problems = parse(value, kind)
        assert triggers == ()
        assert problems == (Problem(ProblemCode.NestedTooDeeply, NESTED_MESSAGE),)


def test_nesting_at_the_limit_is_parsed_normally() -> None:
    triggers, problems = parse(with_unknown_key(nested(MAX_DEPTH - 2)))
    assert problems == ()
    assert triggers == (trigger(by_name("web"), WEB),)
    _, problems = parse(nested(MAX_DEPTH))
    assert [p.reason for p in problems] == [ProblemCode.InvalidType]


def test_brackets_inside_strings_do_not_count() -> None:
    value = with_unknown_key(json.dumps("[{" * 100 + '\\"' + "[" * 100))
    triggers, problems = parse(value)
    assert problems == ()
    assert triggers == (trigger(by_name("web"), WEB),)


def test_nothing_after_the_first_value_is_counted() -> None:
    # json.loads stops at the end of the first value, as Go's decoder reports "invalid
    # character after top-level value".
    _, problems = parse("[] " + "[" * 10_000)
    assert [p.reason for p in problems] == [ProblemCode.InvalidJSON]
    assert "Extra data" in problems[0].message
    _, problems = parse("]" + "[" * 10_000)
    assert [p.reason for p in problems] == [ProblemCode.InvalidJSON]


def test_recursion_error_is_still_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(triggers_module, "_too_deep", lambda value: False)
    triggers, problems = parse(nested(100_000))
    assert triggers == ()
    assert problems == (Problem(ProblemCode.NestedTooDeeply, NESTED_MESSAGE),)


HUGE = "x" * 200_000


@pytest.mark.parametrize(
    ("value", "code", "start"),
    [
        (annotation(entry(HUGE)), ProblemCode.InvalidFieldPath, 'trigger [0] has fieldPath "xxx'),
        (annotation(entry(name=HUGE)), ProblemCode.InvalidTagName, 'trigger [0] has from.name "x'),
        (annotation(entry(kind=HUGE)), ProblemCode.UnsupportedFromKind, "trigger [0] has from.k"),
        (
            annotation(
                {
                    "from": {"kind": "ImageStreamTag", "name": "a:b", "apiVersion": HUGE},
                    "fieldPath": WEB,
                }
            ),
            ProblemCode.UnsupportedFromKind,
            'trigger [0] sets from.apiVersion "xxx',
        ),
        (
            annotation(entry(BASE + f"containers[?(@.name=='{HUGE}')].image")),
            ProblemCode.SingleQuotedSelector,
            'trigger [0] has fieldPath "spec.template.spec.containers[?(@.name==',
        ),
        (
            annotation(entry(BASE + f"containers[{HUGE}].image")),
            ProblemCode.InvalidFieldPath,
            'trigger [0] has fieldPath "spec.template.spec.containers[xxx',
        ),
        (annotation(entry(paused=HUGE)), ProblemCode.PausedNotBoolean, 'trigger [0] has "pau'),
        (annotation(entry(paused=[HUGE])), ProblemCode.PausedNotBoolean, 'trigger [0] has "pau'),
        (annotation([HUGE]), ProblemCode.InvalidType, "trigger [0] must be a JSON object"),
        (
            annotation(entry(HUGE), entry(HUGE)),
            ProblemCode.DuplicateFieldPath,
            'triggers [0] and [1] both have fieldPath "xxx',
        ),
    ],
    ids=[
        "fieldPath",
        "from-name",
        "from-kind",
        "from-apiVersion",
        "single-quoted-name",
        "selector",
        "paused-string",
        "paused-array",
        "entry",
        "duplicate-huge-fieldPath",
    ],
)
def test_huge_values_are_quoted_as_a_short_excerpt(value: str, code: str, start: str) -> None:
    _, problems = parse(value)
    assert [p.reason for p in problems] == [code]
    assert problems[0].message.startswith(start)
    assert len(problems[0].message) < 900
    assert '..."' not in problems[0].message  # the excerpt is cut after the quote
    assert "..." in problems[0].message


def test_excerpt_keeps_any_valid_field_path_whole() -> None:
    # The longest valid form: a CronJob, initContainers and a 63-character name.
    field_path = CRON_BASE + 'initContainers[?(@.name=="' + "n" * 63 + '")].imag'
    _, problems = parse(annotation(entry(field_path)), "CronJob")
    assert json.dumps(field_path) in problems[0].message


def test_huge_but_valid_values_are_honoured() -> None:
    name_selector = BASE + f'containers[?(@.name=="{HUGE}")].image'
    value = annotation(
        {
            "from": {"kind": "ImageStreamTag", "name": "app:v1", "namespace": HUGE},
            "fieldPath": name_selector,
            HUGE: HUGE,
        }
    )
    triggers, problems = parse(value)
    assert problems == ()
    assert triggers == (trigger(by_name(HUGE), name_selector, source=TagRef(HUGE, "app", "v1")),)
    (problem,) = check_containers(triggers, CONTAINERS)
    assert len(problem.message) < 1_000


def test_numbers_python_cannot_convert_are_read_like_go() -> None:
    # More than 4,300 digits: int() refuses, Go reads the number (and ignores its key).
    digits = "1" * 5_000
    value = annotation(entry())[:-2] + f', "x": {digits}}}]'
    triggers, problems = parse(value)
    assert problems == ()
    assert len(triggers) == 1
    value = annotation(entry())[:-2] + f', "paused": {digits}}}]'
    _, problems = parse(value)
    assert [p.reason for p in problems] == [ProblemCode.PausedNotBoolean]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("9223372036854775807", by_index(9223372036854775807)),
        ("-9223372036854775808", by_index(-9223372036854775808)),
        ("000000000000000000000000001", by_index(1)),
        ("9223372036854775808", None),
        ("-9223372036854775809", None),
        ("9" * 5_000, None),
    ],
    ids=["int64-max", "int64-min", "leading-zeros", "past-int64", "below-int64", "5000-digits"],
)
def test_index_selectors_are_read_like_go_atoi(
    selector: str, expected: ContainerSelector | None
) -> None:
    field_path = BASE + f"containers[{selector}].image"
    triggers, problems = parse(annotation(entry(field_path)))
    if expected is None:  # not an int64: not a name either, so OpenShift fails
        assert [p.reason for p in problems] == [ProblemCode.InvalidFieldPath]
    else:
        assert problems == ()
        assert triggers == (trigger(expected, field_path),)


@pytest.mark.parametrize(
    "value",
    [
        annotation({"from": {"kind": "ImageStreamTag", "name": "app:\ud800"}, "fieldPath": WEB}),
        '[{"from": {"kind": "ImageStreamTag", "name": "app:\ud800"}, "fieldPath": '
        + json.dumps(WEB)
        + "}]",
    ],
    ids=["escaped", "raw"],
)
def test_lone_surrogates_are_decoded_as_go_does(value: str) -> None:
    triggers, problems = parse(value)
    assert problems == ()
    assert triggers == (trigger(by_name("web"), WEB, source=TagRef("demo", "app", "\ufffd")),)


@pytest.mark.parametrize(
    ("document", "shown"),
    [
        ([entry(kind="\ud800")], 'from.kind "\ufffd"'),
        ([entry(kind="\u0000\u202e")], 'from.kind "\\u0000\u202e"'),
        ([entry(paused="\udc00")], '"paused": "\ufffd"'),
        ([entry(paused={"\ud800": ["\udfff"]})], '"paused": {"\ufffd": ["\ufffd"]}'),
        ([entry(BASE + "containers[?(@.name=='\ud83d')].image")], "@.name=='\ufffd'"),
    ],
    ids=["kind", "nul-and-rtl", "paused", "paused-object", "single-quoted"],
)
def test_messages_are_always_encodable(document: Any, shown: str) -> None:
    _, problems = parse(json.dumps(document))
    assert len(problems) == 1
    problems[0].message.encode("utf-8")
    assert shown in problems[0].message


def test_container_names_that_cannot_be_encoded_are_escaped() -> None:
    containers = [Container(name="w\ud800", image="app", init=False, index=0)]
    (problem,) = check_containers([trigger(by_name("x\udc00"), "p\ud83d")], containers)
    problem.message.encode("utf-8")
    assert 'fieldPath "p\\ud83d" selects container "x\\udc00"' in problem.message
    assert 'this object has containers "w\\ud800"' in problem.message


def test_source_with_control_characters_is_escaped() -> None:
    source = TagRef("demo\n", "app\x00", "v1")
    (problem,) = check_containers([trigger(by_index(5), "p", source=source)], CONTAINERS)
    assert "once demo\\n/app\\u0000:v1 resolves" in problem.message


@pytest.mark.parametrize(
    ("key", "code"),
    [("pau\u017fed", ProblemCode.PausedNotBoolean), ("PAUSED", ProblemCode.PausedNotBoolean)],
    ids=["long-s", "upper-case"],
)
def test_keys_fold_like_go(key: str, code: str) -> None:
    document = [{"from": {"\u212aind": "ImageStreamTag", "name": "app:v1"}, "fieldPath": WEB}]
    triggers, problems = parse(json.dumps(document))
    assert problems == ()
    assert triggers == (trigger(by_name("web"), WEB, source=TagRef("demo", "app", "v1")),)
    document[0][key] = "false"
    _, problems = parse(json.dumps(document))
    assert [p.reason for p in problems] == [code]


def test_only_the_first_problems_are_described() -> None:
    value = json.dumps(list(range(50)))
    triggers, problems = parse(value)
    assert triggers == ()
    assert len(problems) == MAX_PROBLEMS
    assert [p.message for p in problems[:-1]] == [
        f"trigger [{n}] must be a JSON object with from and fieldPath but is a number {n}; "
        "OpenShift ignores the whole annotation, so no trigger on this object works."
        for n in range(MAX_PROBLEMS - 1)
    ]
    assert problems[-1].message.endswith(
        " This annotation has 40 more problems, not listed; fix these first."
    )


def test_only_the_first_ignored_entries_are_described_and_the_others_still_work() -> None:
    bad = [entry(BASE + f"containers[{n}].image", name="app") for n in range(1, 30)]
    triggers, problems = parse(annotation(entry(), *bad))
    assert triggers == (trigger(by_name("web"), WEB),)
    assert len(problems) == MAX_PROBLEMS
    assert problems[-1].message.endswith(
        "This annotation has 19 more problems, not listed; fix these first."
    )


def test_check_containers_describes_the_first_problems_only() -> None:
    missing = [trigger(by_index(n), f"p{n}") for n in range(5, 25)]
    problems = check_containers(missing, CONTAINERS)
    assert len(problems) == MAX_PROBLEMS
    assert "This annotation has 10 more problems" in problems[-1].message


def test_describe_containers_lists_at_most_ten_names_of_each_kind() -> None:
    many = [Container(name=f"c{n}", image="", init=n >= 12, index=n) for n in range(15)]
    assert describe_containers(many) == (
        'containers "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9" and 2 more and '
        'init containers "c12", "c13", "c14"'
    )


# -- "pause" for "paused" ------------------------------------------------------------------
# Issue 9 says the console writes it; the console's source (dev-console
# resource-label-utils.ts) writes "paused": <boolean>. Hand edits and old docs do write it.


@pytest.mark.parametrize(
    "pause",
    [
        pytest.param({"pause": "true"}, id="console-string"),
        pytest.param({"pause": True}, id="boolean"),
        pytest.param({"Pause": "TRUE"}, id="any-case"),
    ],
)
def test_a_pause_key_is_ignored_as_by_openshift_and_reported(
    pause: dict[str, Any],
) -> None:
    triggers, problems = parse(annotation(entry(**pause)))
    # Go's decoder knows only "paused": the trigger stays active, as OpenShift has it.
    assert triggers == (AnnotationTrigger(APP_LATEST, by_name("web"), False, WEB),)
    [problem] = problems
    assert problem.reason == ProblemCode.PauseKeyIgnored
    assert '(the key is "paused")' in problem.message
    assert "is not paused" in problem.message
    assert "demo/app:latest" in problem.message
    assert '"paused": true' in problem.message


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"pause": "false"}, id="pause-false"),
        pytest.param({"pause": False}, id="pause-false-boolean"),
        pytest.param({"pause": "true", "paused": True}, id="paused-as-well"),
        pytest.param({"pause": None}, id="pause-null"),
    ],
)
def test_a_pause_key_that_changes_nothing_is_not_reported(extra: dict[str, Any]) -> None:
    triggers, problems = parse(annotation(entry(**extra)))
    assert problems == ()
    assert [t.paused for t in triggers] == [bool(extra.get("paused"))]


# -- entries OpenShift does not watch, but applies -----------------------------------------
# openshift-controller-manager's trigger cache indexes only from.kind ImageStreamTag without
# apiVersion; library-go's UpdateObjectFromImages checks neither, so when the object is
# processed (created, changed, or woken by another trigger) such an entry is applied too.


@pytest.mark.parametrize(
    ("source", "fragments"),
    [
        pytest.param(
            {"kind": "DockerImage", "name": "app:latest"},
            ['trigger [1] has from.kind "DockerImage"', 'Write "kind": "ImageStreamTag"'],
            id="docker-image",
        ),
        pytest.param({"name": "app:latest"}, ["trigger [1] has no from.kind"], id="kind-missing"),
        pytest.param(
            {"kind": "ImageStreamTag", "name": "app:latest", "apiVersion": "image/v1"},
            ['trigger [1] sets from.apiVersion "image/v1"', "Remove from.apiVersion"],
            id="api-version",
        ),
    ],
)
def test_an_unwatched_entry_is_kept_and_reported(
    source: dict[str, str], fragments: list[str]
) -> None:
    field_path = BASE + "containers[1].image"
    triggers, problems = parse(annotation(entry(), {"from": source, "fieldPath": field_path}))
    assert triggers == (
        trigger(by_name("web"), WEB),
        AnnotationTrigger(
            APP_LATEST, ContainerSelector(False, 1, None), False, field_path, watched=False
        ),
    )
    [problem] = problems
    assert problem.reason == ProblemCode.UnsupportedFromKind
    assert "a move of the tag does not update this object" in problem.message
    for fragment in fragments:
        assert fragment in problem.message


def test_an_unwatched_entry_with_a_bad_name_is_ignored_for_the_name() -> None:
    # OpenShift's updater cannot split the name either, and skips the entry.
    bad = entry(BASE + "containers[1].image", kind="DockerImage", name="quay.io/acme/app")
    triggers, problems = parse(annotation(entry(), bad))
    assert triggers == (trigger(by_name("web"), WEB),)
    assert [p.reason for p in problems] == [ProblemCode.InvalidTagName]
