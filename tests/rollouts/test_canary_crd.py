"""spec.rollout.canary and maxParallel at admission: the shipped CRD's schema and CEL rules,
judged by the real API server, refuse what the runtime model refuses (models.parse_spec)."""

from __future__ import annotations

from typing import Any

import pytest

from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.models import parse_spec
from tests.controlplane.kube import ApiError, Kube, path_for
from tests.e2e.objects import TRIGGERS

pytestmark = pytest.mark.controlplane

TARGETS: list[dict[str, Any]] = [
    {"kind": "Deployment", "name": "web-canary"},
    {"kind": "Deployment", "selector": {"matchLabels": {"tier": "web"}}},
    {"kind": "CronJob", "name": "report"},
]


def submit(kube: Kube, namespace: str, name: str, rollout: Any, targets: Any = None) -> Any:
    return kube.create(
        path_for(TRIGGERS, "imagetriggers", namespace),
        {
            "apiVersion": TRIGGERS,
            "kind": "ImageTrigger",
            "metadata": {"name": name},
            "spec": {
                "source": {"imageStreamTag": "app:latest"},
                "targets": targets or TARGETS,
                "rollout": rollout,
            },
        },
    )


@pytest.mark.parametrize(
    "rollout",
    [
        {"canary": {"names": ["web-canary"]}, "maxParallel": 2},
        {"canary": {"names": ["found-by-the-selector"]}},
        {"canary": {"selector": {"matchLabels": {"track": "canary"}}}},
        {"maxParallel": 1},
    ],
    ids=["names", "selected-name", "selector", "batches"],
)
def test_valid_canary_orders_are_stored_and_read(
    kube: Kube, namespace: str, rollout: dict[str, Any]
) -> None:
    created = submit(kube, namespace, "ok", rollout)
    assert {k: created["spec"]["rollout"][k] for k in rollout} == rollout
    parsed = parse_spec(created["spec"]).rollout
    assert parsed is not None
    assert parsed.ordered


ONLY_CRONJOB = [{"kind": "Deployment", "name": "web"}, {"kind": "CronJob", "name": "report"}]


@pytest.mark.parametrize(
    ("rollout", "targets", "message"),
    [
        ({"canary": {}}, None, "exactly one of names or selector must be set"),
        (
            {"canary": {"names": ["web"], "selector": {}}},
            None,
            "exactly one of names or selector must be set",
        ),
        ({"canary": {"names": []}}, None, "spec.rollout.canary.names: Invalid value"),
        (
            {"canary": {"names": ["a", "a"]}},
            None,
            'spec.rollout.canary.names[1]: Duplicate value: "a"',
        ),
        ({"canary": {"names": ["Web"]}}, None, "spec.rollout.canary.names[0] in body should match"),
        (
            {"maxParallel": 0},
            None,
            "spec.rollout.maxParallel in body should be greater than or equal to 1",
        ),
        ({"maxParallel": "2"}, None, "spec.rollout.maxParallel in body must be of type integer"),
        (
            {"canary": {"names": ["report"]}},
            ONLY_CRONJOB,
            "every rollout.canary.names entry must be a Deployment, StatefulSet or DaemonSet",
        ),
    ],
    ids=["neither", "both", "empty", "twice", "bad-name", "zero", "string", "cronjob"],
)
def test_invalid_canary_orders_are_refused_as_the_model_refuses_them(
    kube: Kube, namespace: str, rollout: dict[str, Any], targets: Any, message: str
) -> None:
    with pytest.raises(ApiError) as refused:
        submit(kube, namespace, "bad", rollout, targets)
    assert refused.value.status == 422
    assert message in refused.value.body["message"]
    with pytest.raises(InvalidSpecError):
        parse_spec(
            {
                "source": {"imageStreamTag": "app:latest"},
                "targets": targets or TARGETS,
                "rollout": rollout,
            }
        )
