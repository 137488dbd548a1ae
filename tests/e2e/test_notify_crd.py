"""spec.rollout.notify at admission: the shipped CRD and the runtime model agree on what a
receiver may be, judged by the real API server."""

from __future__ import annotations

from typing import Any

import pytest

from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.models import parse_spec
from tests.controlplane.kube import ApiError, Kube
from tests.e2e.test_rollout_crd import BASE, submit

SLACK = {"name": "team", "type": "Slack", "secretRef": {"name": "hook"}}


def test_a_receiver_is_stored_with_its_key_defaulted(kube: Kube, namespace: str) -> None:
    created = submit(kube, namespace, "ok", {"notify": [SLACK, {**SLACK, "name": "other"}]})
    stored = created["spec"]["rollout"]["notify"]
    assert stored[0] == {
        "name": "team",
        "type": "Slack",
        "secretRef": {"name": "hook", "key": "url"},
    }
    parsed = parse_spec(created["spec"])  # and the operator takes what was stored
    assert parsed.rollout is not None
    assert [r.events for r in parsed.rollout.notify] == [
        ("Applied", "Reverted", "Pending", "Failed")
    ] * 2


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ([{**SLACK, "type": "Teams"}], 'spec.rollout.notify[0].type: Unsupported value: "Teams"'),
        ([{**SLACK, "name": "Team"}], "spec.rollout.notify[0].name in body should match"),
        (
            [SLACK, SLACK],
            'spec.rollout.notify[1]: Duplicate value: {"name":"team"}',
        ),
        ([{"name": "t", "type": "JSON"}], "spec.rollout.notify[0].secretRef: Required value"),
        (
            [{**SLACK, "events": []}],
            "spec.rollout.notify[0].events in body should have at least 1 items",
        ),
        (
            [{**SLACK, "events": ["Done"]}],
            'spec.rollout.notify[0].events[0]: Unsupported value: "Done"',
        ),
        (
            [{**SLACK, "events": ["Failed", "Failed"]}],
            'spec.rollout.notify[0].events[1]: Duplicate value: "Failed"',
        ),
        (
            [{**SLACK, "secretRef": {"name": "hook", "key": "a/b"}}],
            "spec.rollout.notify[0].secretRef.key in body should match",
        ),
        ([{**SLACK, "name": f"r{n}"} for n in range(11)], "must have at most 10 items"),
    ],
    ids=[
        "type",
        "name",
        "duplicate",
        "no-secret",
        "on-empty",
        "on-unknown",
        "on-twice",
        "key",
        "eleven",
    ],
)
def test_a_bad_receiver_is_refused_as_the_model_refuses_it(
    kube: Kube, namespace: str, notify: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ApiError) as refused:
        submit(kube, namespace, "bad", {"notify": notify})
    assert refused.value.status == 422
    assert message in refused.value.body["message"]
    with pytest.raises(InvalidSpecError):
        parse_spec({**BASE, "rollout": {"notify": notify}})
