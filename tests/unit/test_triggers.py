"""The image.openshift.io/triggers annotation: what OpenShift honours, and what we report.

Reference: library-go pkg/image/trigger/annotations.go and openshift-controller-manager
pkg/image/controller/trigger/cache.go.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagestream_trigger.decide import Container
from imagestream_trigger.resolve import TagRef
from imagestream_trigger.triggers import (
    AnnotationTrigger,
    ContainerSelector,
    ProblemCode,
    check_containers,
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
            entry(BASE + "containers[1].image", kind="DockerImage"),
            "Deployment",
            ProblemCode.UnsupportedFromKind,
            ['trigger [1] has from.kind "DockerImage"', 'only "ImageStreamTag"'],
        ),
        (
            {"fieldPath": BASE + "containers[1].image"},
            "Deployment",
            ProblemCode.UnsupportedFromKind,
            ["trigger [1] has no from.kind"],
        ),
        (
            {
                "from": {"kind": "ImageStreamTag", "name": "a:b", "apiVersion": "image/v1"},
                "fieldPath": BASE + "containers[1].image",
            },
            "Deployment",
            ProblemCode.UnsupportedFromKind,
            ['sets from.apiVersion "image/v1"'],
        ),
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
        "from-kind-dockerimage",
        "from-kind-missing",
        "from-apiversion-set",
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
