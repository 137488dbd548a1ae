"""Runtime validation of the ImageTrigger spec, and the messages users read."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from imagestream_trigger.api import TargetKind
from imagestream_trigger.errors import ImagestreamTriggerError, InvalidSpecError
from imagestream_trigger.models import (
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
