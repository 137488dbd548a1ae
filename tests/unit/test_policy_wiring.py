"""Tag policies through the operator: the spec model, the planner and intake's wakes.

A trigger with ``spec.source.imageStream`` follows a whole stream: intake wakes it on any
tag change of that stream (and only of that one), the planner follows the tag its policy
picks, and everything downstream sees that tag as the source.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagestream_trigger.api import LAST_APPLIED_ANNOTATION as LAST_APPLIED
from imagestream_trigger.api import Reason, TargetKind
from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.index import Indexes, trigger_info
from imagestream_trigger.inflight import Overlay
from imagestream_trigger.intake import Intake
from imagestream_trigger.models import parse_spec
from imagestream_trigger.plan import Action, plan_trigger
from imagestream_trigger.plugin.explain import Snapshot, explain, rows
from imagestream_trigger.resolve import TagRef
from tests.unit.builders import NEW, OLD, image_trigger, imagestream, workload
from tests.unit.builders import B as DIGEST
from tests.unit.test_rollout_wiring import DEPLOYMENTS, FOLLOW, Rig, complete, now

A = "quay.io/acme/app@sha256:" + "a" * 64
B = "quay.io/acme/app@sha256:" + "b" * 64
C = "quay.io/acme/app@sha256:" + "c" * 64
TARGETS = [{"kind": "Deployment", "name": "web"}]
SEMVER = {"imageStream": "app", "policy": {"semver": {"range": ">=1.2 <2"}}}


def policy_trigger(source: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body = image_trigger(TARGETS)
    body["spec"]["source"] = source
    body["spec"].update(spec)
    return body


# -- the spec ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            {"imageStream": "app", "policy": {"semver": {"range": ">=1.2 <<2"}}},
            'spec.source.policy.semver.range: ">=1.2 <<2" is not a semver range: "<<2" is '
            'not a comparison such as ">=1.2.0", "<2", "^1.4", "~1.2.3" or "1.x"',
            id="bad-range",
        ),
        pytest.param(
            {"imageStream": "app"},
            "spec.source: imageStream needs a policy (semver, alphabetical or numerical) to "
            "pick its tag",
            id="stream-without-policy",
        ),
        pytest.param(
            {"imageStreamTag": "app:latest", "policy": {"alphabetical": {}}},
            "spec.source: policy picks a tag of imageStream; with imageStreamTag the tag is "
            "fixed: remove policy, or follow imageStream instead",
            id="policy-with-fixed-tag",
        ),
        pytest.param(
            {"imageStreamTag": "app:latest", "imageStream": "app", "policy": {"alphabetical": {}}},
            'spec.source: set exactly one of imageStreamTag (one tag, "app:latest") or '
            "imageStream (a stream whose tag a policy picks)",
            id="both",
        ),
        pytest.param(
            {"imageStream": "app", "policy": {"semver": {"range": "1.x"}, "numerical": {}}},
            "spec.source.policy: set exactly one of semver, alphabetical or numerical, not "
            "semver and numerical",
            id="two-policies",
        ),
        pytest.param(
            {"imageStream": "app", "policy": {"numerical": {"order": "up"}}},
            "spec.source.policy.numerical.order: must be one of 'asc' or 'desc', not \"up\"",
            id="bad-order",
        ),
        pytest.param(
            {
                "imageStream": "app",
                "policy": {"semver": {"range": "*"}},
                "filterTags": {"pattern": "^v(?P<v>.*)$", "extract": "$version"},
            },
            'spec.source.filterTags.extract: "$version" refers to group "version", which the '
            'pattern "^v(?P<v>.*)$" does not have (its groups are 1, "v")',
            id="extract-unknown-group",
        ),
        pytest.param(
            {
                "imageStream": "app",
                "policy": {"semver": {"range": "*"}},
                "filterTags": {"pattern": "[a-"},
            },
            'spec.source.filterTags.pattern: "[a-" is not a regular expression: unterminated '
            "character set at position 0",
            id="bad-pattern",
        ),
    ],
)
def test_invalid_sources_are_named_in_one_sentence(source: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSpecError) as raised:
        parse_spec({"source": source, "targets": TARGETS})
    assert raised.value.message == message


def test_a_policy_source_follows_the_stream_without_a_tag() -> None:
    spec = parse_spec({"source": {**SEMVER, "namespace": "builds"}, "targets": TARGETS})
    assert spec.source.tag_ref("demo") == TagRef("builds", "app", "")
    assert str(spec.source.tag_ref("demo")) == "builds/app"
    policy = spec.source.tag_policy()
    assert policy is not None
    assert policy.describe() == 'semver range ">=1.2 <2"'
    # The fixed tag is as it always was.
    fixed = parse_spec({"source": {"imageStreamTag": "app:latest"}, "targets": TARGETS})
    assert fixed.source.tag_policy() is None
    assert fixed.source.tag_ref("demo") == TagRef("demo", "app", "latest")


def test_promote_to_keeps_its_fixed_tag_shape() -> None:
    with pytest.raises(
        InvalidSpecError, match=r"spec.rollout.promoteTo.imageStream: is not a known"
    ):
        parse_spec(
            {
                "source": SEMVER,
                "targets": TARGETS,
                "rollout": {"promoteTo": {"imageStreamTag": "app:stable", "imageStream": "app"}},
            }
        )


# -- planning ----------------------------------------------------------------------------


def world(*bodies: dict[str, Any]) -> Indexes:
    indexes = Indexes()
    intake = Intake(indexes, Overlay(), native=True)
    for body in bodies:
        intake.load(body["kind"], body)
    return indexes


STREAM = imagestream(tags={"latest": C, "1.2.0": A, "v1.4.2": B, "2.0.0": C, "1.5.0-rc.1": C})


def test_the_plan_follows_the_tag_the_policy_picks() -> None:
    indexes = world(STREAM, workload(name="web", web=A), policy_trigger(SEMVER))
    trigger = indexes.triggers.get("demo", "follow-app")
    assert trigger is not None
    plan = plan_trigger(indexes, trigger)
    assert plan.blocked is None
    assert plan.picked == TagRef("demo", "app", "v1.4.2")
    assert plan.source == plan.picked
    assert plan.image is not None
    assert plan.image.reference == B
    [target] = plan.targets
    assert target.action is Action.Update
    assert [str(c.source) for c in target.changes] == ["demo/app:v1.4.2"]


def test_nothing_matching_blocks_with_no_tag_matches() -> None:
    stream = imagestream(tags={"latest": A, "2.0.1": B})
    indexes = world(stream, workload(name="web", web=A), policy_trigger(SEMVER))
    trigger = indexes.triggers.get("demo", "follow-app")
    assert trigger is not None
    plan = plan_trigger(indexes, trigger)
    assert plan.blocked is Reason.NoTagMatches
    assert plan.message == (
        'none of the 2 tags of ImageStream demo/app matches semver range ">=1.2 <2" '
        "(newest seen: 2.0.1)"
    )
    assert plan.picked is None


def test_the_consent_rule_applies_before_any_tag_is_picked() -> None:
    source = {**SEMVER, "namespace": "builds"}
    indexes = world(imagestream(namespace="builds", tags={"1.2.0": A}), policy_trigger(source))
    trigger = indexes.triggers.get("demo", "follow-app")
    assert trigger is not None
    assert plan_trigger(indexes, trigger).blocked is Reason.CrossNamespaceDenied


def test_the_promotion_tag_of_the_same_stream_is_no_candidate() -> None:
    stream = imagestream(tags={"1.2.0": A, "1.3.0": B})
    alphabetical = {"imageStream": "app", "policy": {"alphabetical": {"order": "asc"}}}
    body = policy_trigger(alphabetical, rollout={"promoteTo": {"imageStreamTag": "app:stable"}})
    plain = world(stream, workload(name="web", web=A), body)
    with_stable = world(
        imagestream(tags={"1.2.0": A, "1.3.0": B, "stable": A}),
        workload(name="web", web=A),
        body,
    )
    for indexes in (plain, with_stable):
        trigger = indexes.triggers.get("demo", "follow-app")
        assert trigger is not None
        assert plan_trigger(indexes, trigger).picked == TagRef("demo", "app", "1.3.0")


# -- intake ------------------------------------------------------------------------------


def test_any_tag_change_of_the_stream_wakes_a_policy_trigger() -> None:
    indexes = Indexes()
    intake = Intake(indexes, Overlay(), native=True)
    fixed = image_trigger(TARGETS, name="fixed", source="app:latest")
    for body in (imagestream(tags={"latest": A, "1.2.0": A}), policy_trigger(SEMVER), fixed):
        intake.load(body["kind"], body)
    # A new tag: the policy trigger wakes (the move is its cause), the fixed one does not.
    wakes = intake.stream("MODIFIED", imagestream(tags={"latest": A, "1.2.0": A, "1.3.0": B}))
    assert wakes == [(FOLLOW, frozenset({TagRef("demo", "app", "1.3.0")}))]
    # A tag going away is news to it too.
    wakes = intake.stream("MODIFIED", imagestream(tags={"latest": A, "1.3.0": B}))
    assert [key for key, _ in wakes] == [FOLLOW]
    # The fixed trigger's own tag moving wakes both.
    wakes = intake.stream("MODIFIED", imagestream(tags={"latest": C, "1.3.0": B}))
    assert sorted(str(key) for key, _ in wakes) == [
        "ImageTrigger demo/fixed",
        "ImageTrigger demo/follow-app",
    ]
    # Nothing changed (a resync, a status-only update): nobody wakes.
    assert intake.stream("MODIFIED", imagestream(tags={"latest": C, "1.3.0": B})) == []
    # Another stream's tags are no news to it.
    other = imagestream(name="other", tags={"1.9.0": C})
    intake.load("ImageStream", other)
    assert intake.stream("MODIFIED", imagestream(name="other", tags={"1.9.1": C})) == []


def test_trigger_info_keeps_the_stream_as_its_source() -> None:
    info = trigger_info(policy_trigger(SEMVER))
    assert info.error is None
    assert info.source == TagRef("demo", "app", "")
    assert info.spec is not None
    assert [t.kind for t in info.spec.targets] == [TargetKind.Deployment]


# -- a pass: the write, the status, the health gate and promotion -------------------------

PICKED = TagRef("demo", "app", "1.4.2")
STABLE_ISTAG = "/apis/image.openshift.io/v1/namespaces/demo/imagestreamtags/app:stable"


def releases() -> dict[str, Any]:
    # NEW and OLD as the rollout tests' builders spell them; 1.4.2 is the newest 1.x.
    return imagestream(tags={"latest": OLD, "1.2.0": OLD, "1.4.2": NEW, "2.0.0": OLD})


async def test_a_pass_writes_the_picked_tags_image_and_says_which_tag() -> None:
    rig = Rig().load(releases(), workload(web=OLD), policy_trigger(SEMVER))
    result = await rig.reconciler.reconcile(FOLLOW, frozenset({PICKED}))
    assert result.retry is None
    (patch,) = rig.api.to(DEPLOYMENTS, "PATCH")
    (added,) = [op for op in patch.body if op["path"].startswith("/metadata/annotations")]
    record = added["value"] if isinstance(added["value"], str) else added["value"][LAST_APPLIED]
    assert json.loads(record)["web"]["source"] == "demo/app:1.4.2"
    status = rig.status()
    assert status["tag"] == "1.4.2"
    assert status["image"] == NEW
    # The move of the picked tag caused it: counted as such (not a routine pass).
    assert (
        rig.sample(
            "target_updates_total", kind="Deployment", source="imagetrigger", result="updated"
        )
        == 1
    )


async def test_a_policy_source_is_gated_and_promoted_like_a_fixed_tag() -> None:
    entry = {"image": NEW, "previous": OLD, "source": str(PICKED), "time": now()}
    deployment = workload(web=NEW, last_applied=json.dumps({"web": entry}))
    deployment["metadata"]["generation"] = 2
    deployment["spec"]["replicas"] = 2
    deployment["status"] = complete()
    trigger = policy_trigger(SEMVER, rollout={"promoteTo": {"imageStreamTag": "app:stable"}})
    rig = Rig().load(releases(), deployment, trigger)
    assert (await rig.run()).retry is None
    (put,) = rig.api.to(STABLE_ISTAG, "PUT")
    assert put.body["tag"]["from"] == {
        "kind": "ImageStreamImage",
        "name": f"app@{DIGEST}",
        "namespace": "demo",
    }
    status = rig.status()
    assert status["targets"][0]["rollout"] == "Healthy"
    assert status["promoted"] == {
        "image": NEW,
        "to": "demo/app:stable",
        "time": status["promoted"]["time"],
    }
    assert status["tag"] == "1.4.2"


async def test_the_tag_stays_in_the_status_while_nothing_qualifies() -> None:
    rig = Rig().load(releases(), workload(web=OLD), policy_trigger(SEMVER))
    await rig.run()
    assert rig.status()["tag"] == "1.4.2"
    rig.load(imagestream(tags={"latest": OLD, "2.0.0": OLD}))
    await rig.run()
    status = rig.status()
    assert status["tag"] == "1.4.2"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NoTagMatches")


# -- the kubectl plugin: why and list plan as the operator does ----------------------------


def test_why_and_list_name_the_picked_tag() -> None:
    indexes = world(releases(), workload(web=OLD), policy_trigger(SEMVER))
    snapshot = Snapshot(indexes)
    snapshot.raw_targets[("demo", "follow-app")] = TARGETS
    why = explain(snapshot, TargetKind.Deployment, "demo", "web")
    (follower,) = why.followers
    assert follower.source == "demo/app:1.4.2"
    assert follower.verdict == "Update"
    assert follower.writes == (f"Deployment/web: web: {OLD} -> {NEW}",)
    (row,) = rows(snapshot)
    assert row.sources == ("demo/app:1.4.2",)

    blocked = world(imagestream(tags={"2.0.0": OLD}), workload(web=OLD), policy_trigger(SEMVER))
    snapshot = Snapshot(blocked)
    why = explain(snapshot, TargetKind.Deployment, "demo", "web")
    (follower,) = why.followers
    assert (follower.source, follower.verdict) == ("demo/app", "NoTagMatches")
    assert "none of the 1 tag of ImageStream demo/app matches" in follower.message
