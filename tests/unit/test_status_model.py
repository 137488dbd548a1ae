"""The ImageTrigger status model: lenient on what comes back, strict on what we write."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from imagestream_trigger.api import Reason
from imagestream_trigger.report.conditions import TargetResult, trigger_status
from imagestream_trigger.report.status import check, read

IMAGE = "quay.io/acme/app@sha256:" + "a" * 64


def written() -> dict[str, Any]:
    status = trigger_status(
        previous={},
        generation=3,
        now="2025-01-10T10:15:05Z",
        blocked=None,
        blocked_message="",
        image=IMAGE,
        results=[
            TargetResult(
                "Deployment", "web", Reason.Applied, f"runs {IMAGE}", IMAGE, ("web",), True
            )
        ],
        suspended=False,
    )
    status["builds"] = {"app-build": {"image": IMAGE, "requestedAt": "2025-01-10T10:15:05Z"}}
    return status


def test_what_we_write_fits_and_reads_back_unchanged() -> None:
    status = written()
    check(status)
    assert read(status) == status


@pytest.mark.parametrize(
    "junk",
    [
        {"observedGeneration": "three"},
        {"conditions": [{"type": "Ready"}]},
        {"targets": [{"kind": "Deployment", "name": "web", "result": "Applied", "surprise": 1}]},
        {"builds": {"app-build": {"requestedAt": "now"}}},
        {"history": "not a list"},
    ],
    ids=["scalar-type", "incomplete-condition", "unknown-key", "build-without-image", "history"],
)
def test_what_we_would_write_wrong_is_refused(junk: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        check({**written(), **junk})


def test_a_bad_part_read_back_costs_only_itself() -> None:
    status = written()
    status["observedGeneration"] = "three"
    status["targets"].append({"kind": 7})
    status["targets"][0]["surprise"] = True  # unknown key: dropped, the entry kept
    status["builds"]["broken"] = {"requestedAt": "now"}
    status["builds"][""] = "not an object"
    status["history"] = {"not": "a list"}
    kept = read(status)
    assert "observedGeneration" not in kept
    assert kept["targets"] == [written()["targets"][0]]
    assert kept["builds"] == written()["builds"]
    assert "history" not in kept
    assert kept["conditions"] == written()["conditions"]


@pytest.mark.parametrize("body", [None, [], "status", 3])
def test_a_status_that_is_not_an_object_reads_as_empty(body: Any) -> None:
    assert read(body) == {}
