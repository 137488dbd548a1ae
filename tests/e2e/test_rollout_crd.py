"""spec.rollout at admission: the shipped CRD's pattern, CEL bounds and defaults, judged by
the real API server, agree with the runtime model (models.parse_spec)."""

from __future__ import annotations

from typing import Any

import pytest

from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.models import parse_spec
from tests.controlplane.kube import ApiError, Kube, path_for
from tests.e2e.objects import TRIGGERS

BASE: dict[str, Any] = {
    "source": {"imageStreamTag": "app:latest"},
    "targets": [{"kind": "Deployment", "name": "web"}],
}


def submit(kube: Kube, namespace: str, name: str, rollout: Any) -> dict[str, Any]:
    created: dict[str, Any] = kube.create(
        path_for(TRIGGERS, "imagetriggers", namespace),
        {
            "apiVersion": TRIGGERS,
            "kind": "ImageTrigger",
            "metadata": {"name": name},
            "spec": {**BASE, "rollout": rollout},
        },
    )
    return created


@pytest.mark.parametrize(
    ("rollout", "stored"),
    [
        ({}, {"timeout": "10m", "revert": True}),
        ({"timeout": "1h30m", "revert": False}, {"timeout": "1h30m", "revert": False}),
        ({"timeout": "10s"}, {"timeout": "10s", "revert": True}),
        ({"timeout": "24h"}, {"timeout": "24h", "revert": True}),
        ({"timeout": "90000ms"}, {"timeout": "90000ms", "revert": True}),
    ],
    ids=["defaults", "both", "lowest", "highest", "milliseconds"],
)
def test_valid_rollouts_are_stored_with_their_defaults(
    kube: Kube, namespace: str, rollout: dict[str, Any], stored: dict[str, Any]
) -> None:
    created = submit(kube, namespace, "ok", rollout)
    assert created["spec"]["rollout"] == stored
    parse_spec(created["spec"])  # and the operator takes what was stored


@pytest.mark.parametrize(
    ("rollout", "message"),
    [
        ({"timeout": "10x"}, "spec.rollout.timeout in body should match"),
        ({"timeout": "1d"}, "spec.rollout.timeout in body should match"),
        ({"timeout": "9s"}, "must be from 10s to 24h"),
        ({"timeout": "24h1s"}, "must be from 10s to 24h"),
        ({"revert": "yes"}, "spec.rollout.revert in body must be of type boolean"),
    ],
    ids=["unit", "days", "too-short", "too-long", "revert-string"],
)
def test_invalid_rollouts_are_refused_as_the_model_refuses_them(
    kube: Kube, namespace: str, rollout: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as refused:
        submit(kube, namespace, "bad", rollout)
    assert refused.value.status == 422
    assert message in refused.value.body["message"]
    # One error per problem: the bounds are not checked on what is no duration.
    assert "type conversion error" not in refused.value.body["message"]
    with pytest.raises(InvalidSpecError):
        parse_spec({**BASE, "rollout": rollout})
