"""The last-applied record's ``previous`` and the revert patch (decide.py).

The patches are applied with a real JSON Patch implementation to bodies as the API server
returns them, so a guard that does not guard fails here.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import pytest

from imagestream_trigger.api import LAST_APPLIED_ANNOTATION
from imagestream_trigger.decide import (
    Applied,
    ImageChange,
    applied_record,
    previous_image,
    revert_patch,
    revertible,
    workload_patch,
)
from imagestream_trigger.kinds import containers_of
from imagestream_trigger.resolve import TagRef

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
C = "sha256:" + "c" * 64
GOOD = f"quay.io/acme/app@{A}"
BAD = f"quay.io/acme/app@{B}"
NEXT = f"quay.io/acme/app@{C}"
ENVOY = "docker.io/envoyproxy/envoy:v1.31"
APP = TagRef("demo", "app", "latest")
TOOLS = TagRef("demo", "tools", "v1")
T0 = "2025-01-10T12:00:03Z"
T1 = "2025-01-10T12:10:03Z"
T2 = "2025-01-10T12:20:00Z"


def deployment(
    web: str, *, record: dict[str, Any] | None = None, setup: str = GOOD
) -> dict[str, Any]:
    annotations: dict[str, str] = {"team": "shop"}
    if record is not None:
        annotations[LAST_APPLIED_ANNOTATION] = json.dumps(record)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo", "annotations": annotations},
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": web, "ports": [{"containerPort": 8080}]},
                        {"name": "proxy", "image": ENVOY},
                    ],
                    "initContainers": [{"name": "setup", "image": setup}],
                },
            },
        },
    }


def write(body: dict[str, Any], image: str, now: str, *, known_good: bool = True) -> dict[str, Any]:
    """``body`` after our write of ``image`` to its web container (the patch applied)."""
    containers = containers_of("Deployment", body)
    patch = workload_patch(
        "Deployment",
        [ImageChange(containers[0], image, APP)],
        annotations=body["metadata"].get("annotations"),
        now=now,
        known_good=known_good,
    )
    result: dict[str, Any] = jsonpatch.apply_patch(body, patch)
    return result


def record_of(body: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(body["metadata"]["annotations"][LAST_APPLIED_ANNOTATION])
    return found


def revert(body: dict[str, Any], now: str = T1, source: TagRef = APP) -> list[dict[str, Any]]:
    return revert_patch(
        "Deployment",
        containers_of("Deployment", body),
        source=str(source),
        annotations=body["metadata"]["annotations"],
        now=now,
    )


# -- previous -------------------------------------------------------------------------------


def test_a_first_write_records_what_the_container_ran() -> None:
    body = write(deployment(GOOD), BAD, T0)
    assert record_of(body)["web"] == {
        "image": BAD,
        "previous": GOOD,
        "source": "demo/app:latest",
        "time": T0,
    }


def test_a_write_over_a_healthy_write_of_ours_goes_back_to_it() -> None:
    healthy = write(deployment(GOOD), BAD, T0)
    body = write(healthy, NEXT, T1, known_good=True)
    assert record_of(body)["web"]["previous"] == BAD


def test_a_write_over_an_unproven_write_of_ours_keeps_the_earlier_previous() -> None:
    # The tag moved again while the rollout of BAD was still followed (or had failed
    # without revert): a revert of NEXT must not go back to BAD, which never proved itself.
    unproven = write(deployment(GOOD), BAD, T0)
    body = write(unproven, NEXT, T1, known_good=False)
    assert record_of(body)["web"]["previous"] == GOOD


def test_an_image_someone_else_set_since_our_write_is_theirs_and_good() -> None:
    ours = write(deployment(GOOD), BAD, T0)
    ours["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/acme/app:hotfix"
    body = write(ours, NEXT, T1, known_good=False)
    assert record_of(body)["web"]["previous"] == "quay.io/acme/app:hotfix"


def test_after_a_revert_the_restored_image_is_previous() -> None:
    failed = write(deployment(GOOD), BAD, T0)
    reverted: dict[str, Any] = jsonpatch.apply_patch(failed, revert(failed))
    body = write(reverted, NEXT, T2, known_good=False)
    assert record_of(body)["web"] == {
        "image": NEXT,
        "previous": GOOD,
        "source": "demo/app:latest",
        "time": T2,
    }


def test_a_record_without_previous_falls_back_to_what_runs() -> None:
    # Written by an earlier version: no "previous".
    old = deployment(BAD, record={"web": {"image": BAD, "source": "demo/app:latest", "time": T0}})
    body = write(old, NEXT, T1, known_good=False)
    assert record_of(body)["web"]["previous"] == BAD


def test_a_container_without_image_gets_no_previous() -> None:
    body = deployment("")
    body["spec"]["template"]["spec"]["containers"][0].pop("image")
    (web, *_) = containers_of("Deployment", body)
    patch = workload_patch("Deployment", [ImageChange(web, BAD, APP)], annotations={}, now=T0)
    assert "previous" not in json.loads(patch[-1]["value"])["web"]


@pytest.mark.parametrize(
    ("entry", "known_good", "expected"),
    [
        (None, False, GOOD),
        (Applied(GOOD, previous="x"), False, "x"),
        (Applied(GOOD, previous="x"), True, GOOD),
        (Applied(GOOD, previous="x", reverted=T1), False, GOOD),
        (Applied(BAD, previous="x"), False, GOOD),
        (Applied(GOOD), False, GOOD),
    ],
    ids=["no-entry", "ours-unproven", "ours-healthy", "ours-reverted", "not-ours", "no-previous"],
)
def test_previous_image_rule(entry: Applied | None, known_good: bool, expected: str) -> None:
    (web, *_) = containers_of("Deployment", deployment(GOOD))
    assert previous_image(web, entry, known_good=known_good) == expected


# -- the record, read -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [None, "not json", "[1]", '{"web": 3}', '{"web": {"image": 3}}', '{"web": {}}', '{"": null}'],
)
def test_a_record_that_says_nothing_usable_reads_as_empty(raw: str | None) -> None:
    annotations = {} if raw is None else {LAST_APPLIED_ANNOTATION: raw}
    assert applied_record(annotations) == {}
    assert applied_record(None) == {}


def test_a_record_nested_deeper_than_python_decodes_reads_as_empty() -> None:
    assert applied_record({LAST_APPLIED_ANNOTATION: "[" * 100_000}) == {}


def test_odd_fields_of_an_entry_read_as_empty() -> None:
    raw = json.dumps({"web": {"image": BAD, "previous": 7, "time": None, "reverted": ["x"]}})
    assert applied_record({LAST_APPLIED_ANNOTATION: raw}) == {"web": Applied(BAD)}


# -- the revert patch -------------------------------------------------------------------------


def test_a_revert_sets_back_the_image_we_wrote_and_marks_the_record() -> None:
    failed = write(deployment(GOOD), BAD, T0)
    patch = revert(failed)
    assert patch[:3] == [
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "web"},
        {"op": "test", "path": "/spec/template/spec/containers/0/image", "value": BAD},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": GOOD},
    ]
    reverted: dict[str, Any] = jsonpatch.apply_patch(failed, patch)
    expected = copy.deepcopy(failed)
    expected["spec"]["template"]["spec"]["containers"][0]["image"] = GOOD
    expected["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] = json.dumps(
        {
            "web": {
                "image": BAD,
                "previous": GOOD,
                "reverted": T1,
                "source": "demo/app:latest",
                "time": T0,
            }
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    assert reverted == expected  # the sidecar, the ports, the other annotations: untouched


def test_a_revert_is_refused_when_the_image_changed_meanwhile() -> None:
    failed = write(deployment(GOOD), BAD, T0)
    patch = revert(failed)
    failed["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/acme/app:hotfix"
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(failed, patch)


def test_a_revert_is_refused_when_the_containers_moved() -> None:
    failed = write(deployment(GOOD), BAD, T0)
    patch = revert(failed)
    failed["spec"]["template"]["spec"]["containers"].reverse()
    with pytest.raises(jsonpatch.JsonPatchTestFailed):
        jsonpatch.apply_patch(failed, patch)


def test_only_the_images_we_changed_for_this_source_are_reverted() -> None:
    record = {
        "web": {"image": BAD, "previous": GOOD, "source": "demo/app:latest", "time": T0},
        # Written for another tag: another trigger's business.
        "init:setup": {"image": NEXT, "previous": GOOD, "source": "demo/tools:v1", "time": T0},
    }
    body = deployment(BAD, record=record, setup=NEXT)
    patch = revert(body)
    touched = {op["path"] for op in patch if op["op"] == "replace"}
    assert touched == {"/spec/template/spec/containers/0/image"}
    assert (
        revertible(
            containers_of("Deployment", body), applied_record(body["metadata"]["annotations"]), "x"
        )
        == []
    )
    tools = revert(body, source=TOOLS)
    assert {op["path"] for op in tools if op["op"] == "replace"} == {
        "/spec/template/spec/initContainers/0/image"
    }


@pytest.mark.parametrize(
    "record",
    [
        None,
        {"web": {"image": BAD, "source": "demo/app:latest", "time": T0}},  # no previous
        {"web": {"image": BAD, "previous": BAD, "source": "demo/app:latest", "time": T0}},
        {"web": {"image": NEXT, "previous": GOOD, "source": "demo/app:latest", "time": T0}},
        {
            "web": {
                "image": BAD,
                "previous": GOOD,
                "source": "demo/app:latest",
                "time": T0,
                "reverted": T1,
            }
        },
    ],
    ids=["no-record", "no-previous", "previous-is-the-same", "runs-another-image", "reverted"],
)
def test_nothing_to_revert_is_no_patch(record: dict[str, Any] | None) -> None:
    assert revert(deployment(BAD, record=record)) == []
