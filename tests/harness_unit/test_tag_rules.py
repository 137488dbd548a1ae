"""What ``oc tag src/app@sha256:D dst/app:stable`` does to the destination stream, emulated
(controlplane/openshift.py) by the rules of openshift-apiserver's imagestream strategy."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.controlplane import openshift

NOW = dt.datetime(2025, 1, 10, 10, 15, 2, tzinfo=dt.UTC)
REGISTRY = openshift.INTERNAL_REGISTRY
GOOD = openshift.digest_for("good")
OLD = openshift.digest_for("old")


def stream(
    name: str, namespace: str, *, generation: int, spec: list[Any], status: list[Any]
) -> dict[str, Any]:
    return {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {"name": name, "namespace": namespace, "generation": generation},
        "spec": {"tags": spec},
        "status": {"dockerImageRepository": f"{REGISTRY}/{namespace}/{name}", "tags": status},
    }


def item(digest: str, ref: str, generation: int = 1) -> dict[str, Any]:
    return {
        "created": "2025-01-09T08:00:00Z",
        "dockerImageReference": ref,
        "image": digest,
        "generation": generation,
    }


def oc_tag(digest: str, stream_name: str = "app", namespace: str = "dev") -> dict[str, Any]:
    """The ``tag`` of the ImageStreamTag oc sends (pkg/cli/tag/tag.go)."""
    return {
        "name": "stable",
        "reference": False,
        "importPolicy": {"insecure": False, "scheduled": False, "importMode": "Legacy"},
        "referencePolicy": {"type": "Source"},
        "from": {
            "kind": "ImageStreamImage",
            "name": f"{stream_name}@{digest}",
            "namespace": namespace,
        },
    }


SOURCE = stream(
    "app",
    "dev",
    generation=3,
    spec=[],
    status=[
        {
            "tag": "latest",
            "items": [
                item(GOOD, f"quay.io/acme/app@{GOOD}", 3),
                item(OLD, f"quay.io/acme/app@{OLD}", 2),
            ],
        }
    ],
)


def tag(
    dest: dict[str, Any] | None, tag_ref: dict[str, Any], source: dict[str, Any] | None = SOURCE
) -> dict[str, Any]:
    """Spec write (the CRD moves metadata.generation by one), then the status, as the proxy."""
    spec, changed = openshift.spec_with_tag(dest, "stable", tag_ref, annotations=None)
    after = dict(dest or stream("app", "prod", generation=0, spec=[], status=[]))
    after["spec"] = spec
    after["metadata"] = {**after["metadata"], "generation": after["metadata"]["generation"] + 1}
    if not changed:
        return after
    event = openshift.tag_event_for(tag_ref, "app", source, now=NOW)
    assert event is not None
    src_ns, src_name = openshift.tag_source("prod", "app", tag_ref)
    after["status"] = openshift.apply_tag(
        after, "stable", event, source_namespace=src_ns, source_name=src_name
    )
    return after


def items(obj: dict[str, Any], name: str = "stable") -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = next(t for t in obj["status"]["tags"] if t["tag"] == name)[
        "items"
    ]
    return found


def test_a_new_tag_resolves_at_once_to_the_image_with_its_reference_and_the_generation() -> None:
    after = tag(None, oc_tag(GOOD))
    (stable,) = after["spec"]["tags"]
    assert stable["name"] == "stable"
    assert stable["generation"] == 1
    assert stable["from"] == {"kind": "ImageStreamImage", "name": f"app@{GOOD}", "namespace": "dev"}
    assert items(after) == [
        {
            "created": "2025-01-10T10:15:02Z",
            "dockerImageReference": f"quay.io/acme/app@{GOOD}",
            "image": GOOD,
            "generation": 1,
        }
    ]
    istag = openshift.image_stream_tag(after, "stable")
    assert istag is not None
    assert istag["image"]["dockerImageReference"] == f"quay.io/acme/app@{GOOD}"


def test_an_image_found_only_in_the_history_of_the_source_resolves_too() -> None:
    assert items(tag(None, oc_tag(OLD)))[0]["image"] == OLD


def test_moving_the_tag_prepends_an_item_and_keeps_the_old_one() -> None:
    dest = stream(
        "app",
        "prod",
        generation=4,
        spec=[{**oc_tag(OLD), "generation": 4}],
        status=[{"tag": "stable", "items": [item(OLD, f"quay.io/acme/app@{OLD}", 4)]}],
    )
    after = tag(dest, oc_tag(GOOD))
    assert [i["image"] for i in items(after)] == [GOOD, OLD]
    assert items(after)[0]["generation"] == 5
    assert after["spec"]["tags"][0]["generation"] == 5


def test_tagging_the_same_image_again_changes_nothing_in_status() -> None:
    once = tag(None, oc_tag(GOOD))
    spec, changed = openshift.spec_with_tag(once, "stable", oc_tag(GOOD), annotations=None)
    assert not changed
    assert spec["tags"][0]["generation"] == 1


def test_a_tag_tracking_the_moved_tag_follows_it() -> None:
    dest = stream(
        "app",
        "prod",
        generation=1,
        spec=[{"name": "live", "from": {"kind": "ImageStreamTag", "name": "stable"}}],
        status=[],
    )
    after = tag(dest, oc_tag(GOOD))
    assert items(after, "live")[0]["image"] == GOOD


def test_an_internal_registry_reference_is_repointed_at_the_destination_stream() -> None:
    source = stream(
        "app",
        "dev",
        generation=1,
        spec=[],
        status=[{"tag": "latest", "items": [item(GOOD, f"{REGISTRY}/dev/app@{GOOD}")]}],
    )
    after = tag(None, oc_tag(GOOD), source)
    assert items(after)[0]["dockerImageReference"] == f"{REGISTRY}/prod/app@{GOOD}"


def test_an_image_the_source_never_had_is_refused_as_invalid() -> None:
    with pytest.raises(openshift.Unresolvable) as refused:
        openshift.tag_event_for(oc_tag(openshift.digest_for("nope")), "app", SOURCE, now=NOW)
    assert refused.value.code == 422
    assert "not found" in str(refused.value)


def test_a_short_id_matching_two_images_is_a_conflict() -> None:
    source = stream(
        "app",
        "dev",
        generation=1,
        spec=[],
        status=[
            {
                "tag": "latest",
                "items": [item("sha256:abc1", "quay.io/a@sha256:abc1"), item("sha256:abc2", "x")],
            }
        ],
    )
    with pytest.raises(openshift.TagConflict) as refused:
        openshift.tag_event_for(oc_tag("abc"), "app", source, now=NOW)
    assert refused.value.code == 409


def test_a_malformed_from_is_refused() -> None:
    bad = {**oc_tag(GOOD), "from": {"kind": "ImageStreamImage", "name": "a@b@c"}}
    with pytest.raises(openshift.Unresolvable):
        openshift.tag_source("prod", "app", bad)
