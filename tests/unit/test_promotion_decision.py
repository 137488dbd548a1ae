"""When an image earns the known-good tag (promote.decide), and what ``oc tag`` would send."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from imagestream_trigger.api import RolloutState
from imagestream_trigger.gate import Quarantine, TargetRollout
from imagestream_trigger.index import StreamInfo
from imagestream_trigger.models import InvalidSpecError, PromoteTo, parse_spec
from imagestream_trigger.promote import (
    Promotion,
    Refusal,
    decide,
    image_stream_tag,
    promoted_before,
)
from imagestream_trigger.resolve import ResolvedImage, TagRef

D = "sha256:" + "d" * 64
E = "sha256:" + "e" * 64
IMAGE = ResolvedImage(f"quay.io/acme/app@{D}", D, None)
SOURCE = TagRef("dev", "app", "latest")
STABLE = PromoteTo.model_validate({"imageStreamTag": "app:stable"})
HEALTHY = TargetRollout(RolloutState.Healthy, "3 of 3 updated")
WEB, API = "Deployment/web", "StatefulSet/api"


def stream(
    namespace: str = "dev",
    tags: Mapping[str, str] | None = None,
    allowed: frozenset[str] = frozenset(),
) -> StreamInfo:
    return StreamInfo(
        namespace=namespace,
        name="app",
        tags={
            tag: ResolvedImage(f"quay.io/acme/app@{digest}", digest, None)
            for tag, digest in (tags or {}).items()
        },
        repositories=frozenset(),
        allowed_namespaces=allowed,
    )


def ask(**changes: Any) -> Promotion | Refusal | None:
    args: dict[str, Any] = {
        "namespace": "dev",
        "source": SOURCE,
        "image": IMAGE,
        "followed": [WEB, API],
        "rollouts": {WEB: HEALTHY, API: HEALTHY},
        "quarantine": (),
        "reverting": False,
        "destination": stream(tags={"latest": D, "stable": E}),
        "previous": {},
    }
    promote_to = changes.pop("promote_to", STABLE)
    args.update(changes)
    return decide(promote_to, **args)


def test_every_target_healthy_promotes_the_image_into_the_tag() -> None:
    assert ask() == Promotion(SOURCE, IMAGE, TagRef("dev", "app", "stable"))


def test_a_destination_stream_that_does_not_exist_yet_is_created_by_the_tag() -> None:
    assert isinstance(ask(destination=None), Promotion)


def test_without_promote_to_nothing_happens() -> None:
    assert ask(promote_to=None) is None


@pytest.mark.parametrize(
    "state", [RolloutState.Progressing, RolloutState.Failed, RolloutState.Reverted]
)
def test_one_target_not_healthy_holds_the_promotion_back(state: RolloutState) -> None:
    assert ask(rollouts={WEB: HEALTHY, API: TargetRollout(state, "")}) is None


def test_a_target_not_followed_at_all_holds_it_back() -> None:
    assert ask(rollouts={WEB: HEALTHY}) is None


def test_no_workload_target_with_a_rollout_means_nothing_to_promote() -> None:
    assert ask(followed=[], rollouts={}) is None


def test_a_quarantined_image_or_a_revert_in_progress_is_never_promoted() -> None:
    bad = Quarantine(IMAGE.reference, "2025-01-10T12:00:00Z", "RolloutTimeout", "", (WEB,))
    assert ask(quarantine=(bad,)) is None
    assert ask(reverting=True) is None


def test_a_tag_already_on_the_image_is_left_alone() -> None:
    assert ask(destination=stream(tags={"stable": D})) is None


def test_an_image_promoted_once_is_not_promoted_again_after_someone_moved_the_tag() -> None:
    previous = {"promoted": {"image": IMAGE.reference, "to": "dev/app:stable", "time": "t"}}
    assert promoted_before(previous) == (IMAGE.reference, "dev/app:stable")
    assert ask(previous=previous) is None
    # Promoted elsewhere before: this destination still gets it.
    elsewhere = {"promoted": {"image": IMAGE.reference, "to": "dev/app:old", "time": "t"}}
    assert isinstance(ask(previous=elsewhere), Promotion)


def test_another_namespace_needs_the_destination_streams_consent() -> None:
    prod = PromoteTo.model_validate({"imageStreamTag": "app:stable", "namespace": "prod"})
    refused = ask(promote_to=prod, destination=stream("prod"))
    assert isinstance(refused, Refusal)
    assert 'does not allow promotion from namespace "dev"' in refused.message
    assert "imagestream-trigger.dev/allowed-namespaces" in refused.message
    missing = ask(promote_to=prod, destination=None)
    assert isinstance(missing, Refusal)
    assert "does not exist" in missing.message
    for allowed in ({"dev"}, {"*"}):
        done = ask(promote_to=prod, destination=stream("prod", allowed=frozenset(allowed)))
        assert done == Promotion(SOURCE, IMAGE, TagRef("prod", "app", "stable"))


def test_the_write_is_what_oc_tag_sends() -> None:
    body = image_stream_tag(Promotion(SOURCE, IMAGE, TagRef("prod", "app", "stable")))
    assert body["metadata"] == {"name": "app:stable", "namespace": "prod"}
    assert body["tag"] == {
        "name": "stable",
        "reference": False,
        "importPolicy": {"insecure": False, "scheduled": False, "importMode": "Legacy"},
        "referencePolicy": {"type": "Source"},
        "from": {"kind": "ImageStreamImage", "name": f"app@{D}", "namespace": "dev"},
    }


def test_promote_to_is_validated_like_the_source() -> None:
    spec = {
        "source": {"imageStreamTag": "app:latest"},
        "targets": [{"kind": "Deployment", "name": "web"}],
        "rollout": {"promoteTo": {"imageStreamTag": "app:stable", "namespace": "prod"}},
    }
    parsed = parse_spec(spec)
    assert parsed.rollout is not None
    assert parsed.rollout.promote_to is not None
    assert parsed.rollout.promote_to.tag_ref("dev") == TagRef("prod", "app", "stable")
    with pytest.raises(InvalidSpecError, match=r"spec\.rollout\.promoteTo\.imageStreamTag"):
        parse_spec({**spec, "rollout": {"promoteTo": {"imageStreamTag": "stable"}}})
    with pytest.raises(InvalidSpecError, match="names the followed tag"):
        parse_spec({**spec, "rollout": {"promoteTo": {"imageStreamTag": "app:latest"}}})
