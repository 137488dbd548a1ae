"""Runtime validation of the ImageTrigger spec, and the messages users read."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from imagestream_trigger.api import TargetKind
from imagestream_trigger.errors import ImagestreamTriggerError, InvalidSpecError
from imagestream_trigger.models import (
    MAX_LINE,
    MAX_LISTED,
    LabelSelector,
    parse_spec,
    selector_matches,
)
from imagestream_trigger.resolve import TagRef

VALID: dict[str, Any] = {
    "source": {"imageStreamTag": "app:latest"},
    "targets": [{"kind": "Deployment", "name": "web"}],
}


def spec_with(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(VALID)
    spec.update(changes)
    return spec


def target(**fields: Any) -> dict[str, Any]:
    return {"kind": "Deployment", "name": "web", **fields}


def test_minimal_spec_and_defaults() -> None:
    spec = parse_spec(VALID)
    assert spec.source.image_stream_tag == "app:latest"
    assert spec.source.tag_ref("demo") == TagRef("demo", "app", "latest")
    assert spec.targets[0].kind is TargetKind.Deployment
    assert spec.targets[0].name == "web"
    assert spec.targets[0].containers is None
    assert (spec.suspend, spec.dry_run) == (False, False)


def test_full_spec() -> None:
    spec = parse_spec(
        {
            "source": {"imageStreamTag": "base.images:v1.2_3-rc", "namespace": "shared"},
            "targets": [
                {"kind": "Deployment", "name": "web", "containers": ["web"]},
                {"kind": "StatefulSet", "name": "db", "initContainers": ["migrate"]},
                {
                    "kind": "CronJob",
                    "selector": {
                        "matchLabels": {"app.kubernetes.io/part-of": "shop"},
                        "matchExpressions": [{"key": "tier", "operator": "Exists"}],
                    },
                },
                {"kind": "BuildConfig", "name": "web"},
            ],
            "suspend": True,
            "dryRun": True,
        }
    )
    assert spec.source.tag_ref("demo") == TagRef("shared", "base.images", "v1.2_3-rc")
    assert spec.targets[0].containers == ("web",)
    assert spec.targets[1].init_containers == ("migrate",)
    selector = spec.targets[2].selector
    assert selector is not None
    assert selector.match_labels == {"app.kubernetes.io/part-of": "shop"}
    assert (spec.suspend, spec.dry_run) == (True, True)
    assert spec.model_dump(exclude_defaults=True)["targets"][1] == {
        "kind": TargetKind.StatefulSet,
        "name": "db",
        "initContainers": ("migrate",),
    }


def test_service_account_name() -> None:
    assert parse_spec(VALID).service_account_name is None
    assert parse_spec(spec_with(serviceAccountName="deployer")).service_account_name == "deployer"
    with pytest.raises(InvalidSpecError) as caught:
        parse_spec(spec_with(serviceAccountName="Deployer"))
    assert caught.value.message.startswith(
        'spec.serviceAccountName: "Deployer" is not a valid name: use lowercase letters'
    )


def test_models_are_frozen() -> None:
    spec = parse_spec(VALID)
    with pytest.raises(ValidationError):
        spec.suspend = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "spec.source: is required; spec.targets: is required"),
        (
            spec_with(source={"imageStreamTag": "app"}),
            'spec.source.imageStreamTag: "app" must be "name:tag", for example "app:latest"',
        ),
        (
            spec_with(source={"imageStreamTag": "App:latest"}),
            'spec.source.imageStreamTag: ImageStream name "App" in "App:latest" is invalid: use '
            'lowercase letters, digits, "-" and ".", starting and ending with a letter or digit',
        ),
        (
            spec_with(source={"imageStreamTag": "app:-x"}),
            'spec.source.imageStreamTag: tag "-x" in "app:-x" is invalid: use 1 to 128 letters, '
            'digits, "_", "." and "-", not starting with "." or "-"',
        ),
        (
            spec_with(source={"imageStreamTag": "app:"}),
            'spec.source.imageStreamTag: tag "" in "app:" is invalid: use 1 to 128 letters, '
            'digits, "_", "." and "-", not starting with "." or "-"',
        ),
        (
            spec_with(source={"imageStreamTag": "app:" + "t" * 129}),
            "is invalid: use 1 to 128 letters",
        ),
        (
            spec_with(source={"imageStreamTag": "app:latest", "namespace": "My_NS"}),
            'spec.source.namespace: "My_NS" is not a valid name: use at most 63 lowercase '
            'letters, digits and "-", starting and ending with a letter or digit',
        ),
        (
            spec_with(source={"imageStreamTag": "app:latest", "name": "x"}),
            "spec.source.name: is not a known field",
        ),
        (spec_with(targets=[]), "spec.targets: must list at least one target"),
        (
            spec_with(targets=[target(name=f"w{i}") for i in range(51)]),
            "spec.targets: must list at most 50 targets, not 51",
        ),
        (
            spec_with(targets=[target(kind="Job")]),
            "spec.targets[0].kind: must be one of 'Deployment', 'StatefulSet', 'DaemonSet', "
            "'CronJob' or 'BuildConfig', not \"Job\"",
        ),
        (
            spec_with(targets=[{"kind": "Deployment"}]),
            "spec.targets[0]: exactly one of name or selector must be set",
        ),
        (
            spec_with(targets=[target(selector={"matchLabels": {"app": "web"}})]),
            "spec.targets[0]: exactly one of name or selector must be set",
        ),
        (
            spec_with(targets=[target(name="Web_1")]),
            'spec.targets[0].name: "Web_1" is not a valid name: use lowercase letters, digits, '
            '"-" and ".", starting and ending with a letter or digit (at most 253 characters)',
        ),
        (
            spec_with(targets=[{"kind": "BuildConfig", "name": "b", "containers": ["x"]}]),
            "spec.targets[0]: containers and initContainers are not allowed for kind "
            "BuildConfig: a build is started, no container is changed",
        ),
        (
            spec_with(targets=[target(containers=["a", "b", "a"])]),
            'spec.targets[0].containers: lists "a" more than once',
        ),
        (
            spec_with(targets=[target(containers=[])]),
            "spec.targets[0].containers: must list at least one container name",
        ),
        (
            spec_with(targets=[target(containers=["web"], initContainers=["web"])]),
            'spec.targets[0]: "web" is listed in both containers and initContainers, but '
            "container names are unique within a pod",
        ),
        (
            spec_with(targets=[target(initContainers=["Setup"])]),
            'spec.targets[0].initContainers[0]: "Setup" is not a valid name',
        ),
        (
            spec_with(targets=[target(), target(kind="CronJob"), target()]),
            'spec.targets: targets[0] and targets[2] are both Deployment "web"; '
            "list each target once",
        ),
        (spec_with(dryRun="true"), 'spec.dryRun: must be true or false, not "true"'),
        (spec_with(dry_run=True), "spec.dry_run: is not a known field"),
        (
            spec_with(
                targets=[
                    target(
                        name=None,
                        selector={"matchExpressions": [{"key": "tier", "operator": "In"}]},
                    )
                ]
            ),
            "spec.targets[0].selector.matchExpressions[0]: operator In needs at least one "
            "value in values",
        ),
        (
            spec_with(
                targets=[
                    target(
                        name=None,
                        selector={
                            "matchExpressions": [
                                {"key": "tier", "operator": "Exists", "values": ["a"]}
                            ]
                        },
                    )
                ]
            ),
            "spec.targets[0].selector.matchExpressions[0]: operator Exists takes no values; "
            "remove values",
        ),
        (
            spec_with(
                targets=[
                    target(
                        name=None,
                        selector={
                            "matchExpressions": [
                                {"key": "tier", "operator": "Like", "values": ["a"]}
                            ]
                        },
                    )
                ]
            ),
            "spec.targets[0].selector.matchExpressions[0].operator: must be one of 'In', "
            "'NotIn', 'Exists' or 'DoesNotExist', not \"Like\"",
        ),
        (
            spec_with(targets=[target(name=None, selector={"matchLabels": {"-bad": "x"}})]),
            'spec.targets[0].selector.matchLabels: label key "-bad" is invalid: its name must '
            'be 1 to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or '
            "digit",
        ),
        (
            spec_with(targets=[target(name=None, selector={"matchLabels": {"Bad_/x": "x y"}})]),
            'spec.targets[0].selector.matchLabels: label key "Bad_/x" has an invalid prefix: '
            'it must be a DNS subdomain; label value "x y" is invalid',
        ),
        (
            spec_with(targets=[target(name=None, selector={"matchLabels": {"app": 1}})]),
            "spec.targets[0].selector.matchLabels.app: must be a string, not 1",
        ),
        (
            spec_with(targets=[target(name=None, selector={"matchLabels": {"a.b/c": 1}})]),
            'spec.targets[0].selector.matchLabels["a.b/c"]: must be a string, not 1',
        ),
        (
            spec_with(targets=["web"]),
            'spec.targets[0]: must be an object, not "web"',
        ),
        (
            {"source": {"imageStreamTag": "app"}, "targets": [{"kind": "Deployment"}]},
            'spec.source.imageStreamTag: "app" must be "name:tag", for example "app:latest"; '
            "spec.targets[0]: exactly one of name or selector must be set",
        ),
    ],
    ids=[
        "empty",
        "tag-without-colon",
        "stream-name-uppercase",
        "tag-starts-with-dash",
        "empty-tag",
        "tag-too-long",
        "namespace-invalid",
        "unknown-source-field",
        "no-targets",
        "too-many-targets",
        "unknown-kind",
        "neither-name-nor-selector",
        "both-name-and-selector",
        "target-name-invalid",
        "buildconfig-with-containers",
        "duplicate-container-name",
        "empty-container-list",
        "container-in-both-lists",
        "init-container-name-invalid",
        "duplicate-target",
        "dryrun-string",
        "snake-case-key-rejected",
        "in-without-values",
        "exists-with-values",
        "unknown-operator",
        "bad-label-key",
        "bad-label-prefix-and-value",
        "label-value-not-string",
        "label-value-not-string-dotted-key",
        "target-not-object",
        "several-problems-all-listed",
    ],
)
def test_invalid_spec_messages(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError) as caught:
        parse_spec(spec)
    assert message in caught.value.message
    assert str(caught.value) == caught.value.message
    assert "Value error" not in caught.value.message
    assert "Input should" not in caught.value.message


def test_invalid_spec_error_lists_problems_separately() -> None:
    with pytest.raises(InvalidSpecError) as caught:
        parse_spec({})
    assert caught.value.problems == ("spec.source: is required", "spec.targets: is required")
    assert isinstance(caught.value, ImagestreamTriggerError)


def test_a_spec_that_is_not_an_object() -> None:
    with pytest.raises(InvalidSpecError, match=r"^spec: must be an object$"):
        parse_spec(None)  # type: ignore[arg-type]


def test_selector_targets_may_share_a_kind() -> None:
    selector = {"matchLabels": {"app": "web"}}
    spec = parse_spec(spec_with(targets=[{"kind": "Deployment", "selector": selector}] * 2))
    assert len(spec.targets) == 2


def selector(**fields: Any) -> LabelSelector:
    return LabelSelector.model_validate(fields)


@pytest.mark.parametrize(
    ("sel", "labels", "matches"),
    [
        (selector(), {}, True),
        (selector(), {"app": "web"}, True),
        (selector(matchLabels={"app": "web"}), {"app": "web", "tier": "fe"}, True),
        (selector(matchLabels={"app": "web"}), {"app": "db"}, False),
        (selector(matchLabels={"app": "web"}), {}, False),
        (selector(matchLabels={"app": ""}), {"app": ""}, True),
        (
            selector(matchExpressions=[{"key": "t", "operator": "In", "values": ["a", "b"]}]),
            {"t": "b"},
            True,
        ),
        (selector(matchExpressions=[{"key": "t", "operator": "In", "values": ["a"]}]), {}, False),
        (
            selector(matchExpressions=[{"key": "t", "operator": "NotIn", "values": ["a"]}]),
            {"t": "a"},
            False,
        ),
        (selector(matchExpressions=[{"key": "t", "operator": "NotIn", "values": ["a"]}]), {}, True),
        (selector(matchExpressions=[{"key": "t", "operator": "Exists"}]), {"t": ""}, True),
        (selector(matchExpressions=[{"key": "t", "operator": "Exists"}]), {}, False),
        (selector(matchExpressions=[{"key": "t", "operator": "DoesNotExist"}]), {}, True),
        (selector(matchExpressions=[{"key": "t", "operator": "DoesNotExist"}]), {"t": "x"}, False),
        (
            selector(
                matchLabels={"app": "web"},
                matchExpressions=[{"key": "t", "operator": "In", "values": ["a"]}],
            ),
            {"app": "web", "t": "b"},
            False,
        ),
    ],
    ids=[
        "empty-matches-no-labels",
        "empty-matches-everything",
        "match-labels-subset",
        "match-labels-other-value",
        "match-labels-missing-key",
        "match-labels-empty-value",
        "in",
        "in-missing-key",
        "notin-excluded",
        "notin-missing-key-matches",
        "exists",
        "exists-missing",
        "doesnotexist",
        "doesnotexist-present",
        "all-terms-must-match",
    ],
)
def test_selector_matches(sel: LabelSelector, labels: dict[str, str], matches: bool) -> None:
    assert selector_matches(sel, labels) is matches


# Hostile specs: only InvalidSpecError, with a short message that can be encoded.


def deeply_nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def invalid(spec: Any) -> InvalidSpecError:
    with pytest.raises(InvalidSpecError) as caught:
        parse_spec(spec)
    error = caught.value
    error.message.encode("utf-8")
    assert error.message == "; ".join(error.problems)
    assert all(len(problem) <= MAX_LINE for problem in error.problems)
    return error


@pytest.mark.parametrize("spec", [None, [], [VALID], "spec", 1, 1.5, True], ids=repr)
def test_a_spec_that_is_no_object_is_invalid(spec: Any) -> None:
    assert invalid(spec).message == "spec: must be an object"


def test_only_the_first_problems_are_listed() -> None:
    error = invalid(spec_with(**{f"unknown{n}": n for n in range(30)}))
    assert len(error.problems) == MAX_LISTED + 1
    assert error.problems[0] == "spec.unknown0: is not a known field"
    assert error.problems[-1] == "and 20 more problems"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            spec_with(source={"imageStreamTag": "a" * 200_000}),
            'spec.source.imageStreamTag: "' + "a" * 156 + '... must be "name:tag", for example '
            '"app:latest"',
        ),
        (
            spec_with(targets=[target(name="N" * 300)]),
            'spec.targets[0].name: "' + "N" * 156 + "... is not a valid name",
        ),
        (
            spec_with(targets=[target(**{"x" * 100_000: 1})]),
            'spec.targets[0]["' + "x" * 156 + "...]: is not a known field",
        ),
        (
            spec_with(targets=[target(name=None, selector={"matchLabels": deeply_nested(10_000)})]),
            'spec.targets[0].selector.matchLabels.a: must be a string, not {"a": {"a": {"a": '
            "{...}}}}",
        ),
        (
            spec_with(
                targets=[target(name=None, selector={"matchLabels": {"a": list(range(99))}})]
            ),
            "spec.targets[0].selector.matchLabels.a: must be a string, not [0, 1, 2, 3, ...]",
        ),
        (
            spec_with(source={"imageStreamTag": 10**5000}),
            "spec.source.imageStreamTag: must be a string, not a very large number",
        ),
        (
            spec_with(dryRun=float("nan")),
            "spec.dryRun: must be true or false, not NaN",
        ),
        (
            spec_with(targets=[target(containers=[f"c{n}" for n in range(51)])]),
            "spec.targets[0].containers: must list at most 50 container names, not 51",
        ),
        (
            spec_with(targets=[target(containers=["a", "b", "c", "d"] * 2)]),
            'spec.targets[0].containers: lists "a", "b", "c" and 1 other more than once',
        ),
        (
            spec_with(
                targets=[
                    target(name=None, selector={"matchLabels": {f"-k{n}": "x" for n in range(9)}})
                ]
            ),
            'spec.targets[0].selector.matchLabels: label keys "-k0", "-k1", "-k2" and 6 others are '
            "invalid: their names must be 1 to 63 letters",
        ),
        (
            spec_with(
                targets=[
                    target(
                        name=None,
                        selector={
                            "matchExpressions": [
                                {"key": "k", "operator": "In", "values": ["🚀"] * 10_000}
                            ]
                        },
                    )
                ]
            ),
            'spec.targets[0].selector.matchExpressions[0].values: label values "🚀", "🚀", "🚀" '
            "and 9997 others are invalid: use at most 63 letters",
        ),
    ],
    ids=[
        "huge-tag",
        "long-name",
        "long-unknown-key",
        "deeply-nested-selector",
        "long-list",
        "huge-number",
        "nan",
        "too-many-containers",
        "many-repeated-containers",
        "many-bad-label-keys",
        "many-bad-label-values",
    ],
)
def test_hostile_specs_give_short_messages(spec: dict[str, Any], message: str) -> None:
    error = invalid(spec)
    assert message in error.message
    assert len(error.message) < 1_000


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            spec_with(targets=[target(name=None, selector={"matchLabels": {"\ud800": "v\udfff"}})]),
            'label key "\\ud800" is invalid: its name must be 1 to 63 letters, digits, "-", "_" '
            'or ".", starting and ending with a letter or digit; label value "v\\udfff" is invalid',
        ),
        (
            spec_with(source={"imageStreamTag": "app:latest", "\udc00": 1}),
            'spec.source: must be valid Unicode text, not "\\udc00"',
        ),
        (
            spec_with(targets=[target(name="web\ud83d")]),
            'spec.targets[0].name: "web\\ud83d" is not a valid name',
        ),
    ],
    ids=["label", "key", "name"],
)
def test_lone_surrogates_are_shown_escaped(spec: dict[str, Any], message: str) -> None:
    assert message in invalid(spec).message


def test_the_extreme_valid_spec_is_accepted() -> None:
    stream = ".".join(["s" * 63] * 4)[:253].rstrip(".")
    names = [f"c{n:02d}-" + "x" * 57 + f"{n:02d}" for n in range(50)]
    spec = parse_spec(
        {
            "source": {"imageStreamTag": f"{stream}:{'t' * 128}", "namespace": "n" * 63},
            "targets": [
                {"kind": "Deployment", "name": f"t{n}." + "w" * 60, "containers": names}
                for n in range(50)
            ],
        }
    )
    assert len(spec.targets) == 50
