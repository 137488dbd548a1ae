"""spec.rollout.promoteTo through the operator's own parts (as test_rollout_wiring: all real
but the Api): which requests a pass sends, and what it reports."""

from __future__ import annotations

from typing import Any

from tests.unit.builders import NEW, B, imagestream
from tests.unit.test_rollout_wiring import Rig, complete, guarded, now, written

STABLE_ISTAG = "/apis/image.openshift.io/v1/namespaces/demo/imagestreamtags/app:stable"
PROD_ISTAG = "/apis/image.openshift.io/v1/namespaces/prod/imagestreamtags/app:stable"


def promoting(namespace: str | None = None) -> dict[str, Any]:
    to: dict[str, Any] = {"imageStreamTag": "app:stable"}
    if namespace is not None:
        to["namespace"] = namespace
    return guarded(rollout={"promoteTo": to})


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in status["conditions"] if c["type"] == kind)
    return found


async def test_a_healthy_image_is_tagged_into_the_known_good_tag_once() -> None:
    rig = Rig().load(imagestream(), written(at=now(), status=complete()), promoting())
    result = await rig.run()
    assert result.retry is None
    (put,) = rig.api.to(STABLE_ISTAG, "PUT")
    assert put.body["tag"]["from"] == {
        "kind": "ImageStreamImage",
        "name": f"app@{B}",
        "namespace": "demo",
    }
    status = rig.status()
    assert status["promoted"]["image"] == NEW
    assert status["promoted"]["to"] == "demo/app:stable"
    assert condition(status, "Promoted")["status"] == "True"
    assert [e["involvedObject"]["kind"] for e in rig.posted("Promoted")] == ["ImageTrigger"]
    assert rig.sample("promotions_total", result="promoted") == 1

    await rig.run()  # promoted already (the watch has not shown the tag yet): nothing more
    assert len(rig.api.to(STABLE_ISTAG, "PUT")) == 1
    assert condition(rig.status(), "Promoted")["status"] == "True"


async def test_a_rollout_still_progressing_promotes_nothing() -> None:
    rig = Rig().load(imagestream(), written(at=now()), promoting())
    await rig.run()
    assert rig.api.to(STABLE_ISTAG) == []
    assert "promoted" not in rig.status()


async def test_a_destination_already_on_the_image_is_left_alone() -> None:
    stream = imagestream(tags={"latest": NEW, "stable": NEW})
    rig = Rig().load(stream, written(at=now(), status=complete()), promoting())
    await rig.run()
    assert rig.api.to(STABLE_ISTAG) == []


async def test_another_namespace_without_consent_is_refused_clearly_and_retried() -> None:
    prod = imagestream(namespace="prod", tags={})
    rig = Rig().load(imagestream(), prod, written(at=now(), status=complete()), promoting("prod"))
    result = await rig.run()
    assert result.retry == "forbidden"
    assert rig.api.to(PROD_ISTAG) == []
    promoted = condition(rig.status(), "Promoted")
    assert (promoted["status"], promoted["reason"]) == ("False", "CrossNamespaceDenied")
    assert "imagestream-trigger.dev/allowed-namespaces" in promoted["message"]
    assert [e["type"] for e in rig.posted("PromotionFailed")] == ["Warning"]
    assert rig.sample("promotions_total", result="refused") == 1

    # With consent, the next pass promotes.
    rig.load(imagestream(namespace="prod", tags={}, allowed="demo"))
    assert (await rig.run()).retry is None
    assert len(rig.api.to(PROD_ISTAG, "PUT")) == 1
    assert condition(rig.status(), "Promoted")["status"] == "True"
