"""``spec.rollout`` and the status fields of safe rollouts: the model, the CRD, durations.

The runtime model and the shipped CRD must agree on the duration grammar, the default and
the bounds; the status model must take what the gate writes and read back leniently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagestream_trigger.api import Reason, RolloutState
from imagestream_trigger.durations import PATTERN, format_duration, parse_duration
from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.models import (
    MAX_ROLLOUT_TIMEOUT_S,
    MIN_ROLLOUT_TIMEOUT_S,
    ROLLOUT_TIMEOUT,
    Rollout,
    parse_spec,
)
from imagestream_trigger.report.conditions import TargetResult
from imagestream_trigger.report.status import check, read

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "manifests" / "crd" / "imagetriggers.yaml"
IMAGE = "quay.io/acme/app@sha256:" + "a" * 64
BASE: dict[str, Any] = {
    "source": {"imageStreamTag": "app:latest"},
    "targets": [{"kind": "Deployment", "name": "web"}],
}


def spec_with(rollout: Any) -> dict[str, Any]:
    return {**BASE, "rollout": rollout}


def problem(rollout: Any) -> str:
    with pytest.raises(InvalidSpecError) as error:
        parse_spec(spec_with(rollout))
    return error.value.message


# -- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("1h30m", 5400),
        ("1.5h", 5400),
        ("2m30s", 150),
        ("10000ms", 10),
        ("1h1m1s", 3661),
        ("5m5m", 600),  # Go adds repeated units up too
    ],
)
def test_go_durations_are_read(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "10", "10 m", "m", "-5m", "+5m", "1d", "1.m", ".5h", "10M", "1h 30m", "5µs", "1e3s"],
)
def test_what_is_no_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r'such as "90s", "10m" or "1h30m"'):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (10, "10s"), (90, "1m30s"), (600, "10m"), (5400, "1h30m"), (86400, "24h")],
)
def test_durations_are_shown_as_go_shows_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


# -- the model ------------------------------------------------------------------------------


def test_without_rollout_nothing_is_followed() -> None:
    assert parse_spec(BASE).rollout is None


def test_an_empty_rollout_takes_the_defaults() -> None:
    rollout = parse_spec(spec_with({})).rollout
    assert rollout == Rollout(timeout="10m", revert=True)
    assert rollout.timeout_s == 600


def test_both_fields() -> None:
    rollout = parse_spec(spec_with({"timeout": "1h30m", "revert": False})).rollout
    assert rollout is not None
    assert (rollout.timeout_s, rollout.revert) == (5400, False)


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        (
            {"timeout": "10x"},
            'spec.rollout.timeout: "10x" is not a duration: write numbers with the units h, '
            'm, s or ms, such as "90s", "10m" or "1h30m"',
        ),
        ({"timeout": "5s"}, 'spec.rollout.timeout: "5s" is out of range: use 10s to 24h'),
        ({"timeout": "25h"}, 'spec.rollout.timeout: "25h" is out of range: use 10s to 24h'),
        ({"timeout": 600}, "spec.rollout.timeout: must be a string, not 600"),
        ({"revert": "yes"}, 'spec.rollout.revert: must be true or false, not "yes"'),
        ({"timout": "1m"}, "spec.rollout.timout: is not a known field"),
        ("10m", 'spec.rollout: must be an object, not "10m"'),
    ],
    ids=["not-a-duration", "too-short", "too-long", "number", "revert-string", "typo", "string"],
)
def test_bad_rollouts_are_told_in_a_sentence(rollout: Any, message: str) -> None:
    assert problem(rollout) == message


def test_the_bounds_themselves_are_accepted() -> None:
    for text in ("10s", "24h", "1440m"):
        assert parse_spec(spec_with({"timeout": text})).rollout is not None


# -- the CRD --------------------------------------------------------------------------------


def crd_rollout() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rollout: dict[str, Any] = schema["properties"]["rollout"]
    return rollout


def test_the_crd_says_what_the_model_says() -> None:
    rollout = crd_rollout()
    timeout = rollout["properties"]["timeout"]
    assert timeout["pattern"] == PATTERN
    assert timeout["default"] == ROLLOUT_TIMEOUT
    assert timeout["maxLength"] == 64
    (rule,) = timeout["x-kubernetes-validations"]
    # The rule checks only what the pattern let through, with the same grammar.
    (guard,) = re.findall(r"self\.matches\('([^']+)'\)", rule["rule"])
    assert guard == PATTERN.replace("\\.", "[.]")
    bounds = re.findall(r"duration\('([^']+)'\)", rule["rule"])
    assert [parse_duration(b) for b in bounds] == [MIN_ROLLOUT_TIMEOUT_S, MAX_ROLLOUT_TIMEOUT_S]
    assert rule["message"] == "must be from 10s to 24h"
    assert rollout["properties"]["revert"] == {**rollout["properties"]["revert"], "default": True}
    assert "required" not in rollout  # both fields have defaults


def test_the_crd_lists_the_rollout_states() -> None:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert status["targets"]["items"]["properties"]["rollout"]["enum"] == list(RolloutState)
    entry = status["quarantine"]["items"]
    assert set(entry["properties"]) == {"image", "since", "reason", "message", "targets"}
    assert entry["required"] == ["image", "since"]
    assert status["quarantine"]["maxItems"] == 10


# -- the status -----------------------------------------------------------------------------


def test_rollout_fields_of_a_target_and_the_quarantine_fit_and_read_back() -> None:
    target = TargetResult(
        "Deployment",
        "web",
        result=Reason.Applied,
        message=f"runs {IMAGE}",
        image=IMAGE,
        rollout=RolloutState.Progressing,
        rollout_message="1 of 3 replicas updated, 0 available",
    ).as_status()
    assert target["rollout"] == "Progressing"
    assert target["rolloutMessage"] == "1 of 3 replicas updated, 0 available"
    status = {
        "targets": [target],
        "quarantine": [
            {
                "image": IMAGE,
                "since": "2025-01-10T12:10:03Z",
                "reason": "RolloutTimeout",
                "message": "not healthy 10m after ...",
                "targets": ["Deployment/web"],
            }
        ],
    }
    check(status)
    assert read(status) == status


def test_a_target_without_rollout_says_nothing_of_it() -> None:
    plain = TargetResult("Deployment", "web", Reason.Applied, "x")
    assert "rollout" not in plain.as_status()


def test_odd_quarantine_entries_are_dropped_alone() -> None:
    good = {"image": IMAGE, "since": "2025-01-10T12:10:03Z"}
    kept = read({"quarantine": [good, {"image": IMAGE}, "x", {**good, "targets": "web"}]})
    assert kept["quarantine"] == [good]
    assert "quarantine" not in read({"quarantine": {"not": "a list"}})
    assert (
        read(
            {
                "targets": [
                    {"kind": "Deployment", "name": "w", "result": "Applied", "rollout": "Sideways"}
                ]
            }
        )["targets"]
        == []
    )
