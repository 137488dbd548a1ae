"""The emulated OpenShift trigger controller follows OpenShift's rules, not ours."""

from __future__ import annotations

import json
from typing import Any

from tests.controlplane.builtin_triggers import apply_triggers, container_for, decode_triggers

FIELD = 'spec.template.spec.containers[?(@.name=="web")].image'
STREAM = {
    "metadata": {"namespace": "demo", "name": "app"},
    "spec": {"tags": [{"name": "latest"}]},
    "status": {
        "tags": [
            {
                "tag": "latest",
                "items": [
                    {"dockerImageReference": "quay.io/acme/app@sha256:new", "image": "sha256:new"}
                ],
            }
        ]
    },
}


def deployment(*entries: dict[str, Any], raw: str | None = None) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "demo",
            "name": "web",
            "annotations": {"image.openshift.io/triggers": raw or json.dumps(list(entries))},
        },
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "web", "image": "quay.io/acme/app:old"},
                        {"name": "proxy", "image": "nginx"},
                    ]
                }
            }
        },
    }


def entry(**extra: Any) -> dict[str, Any]:
    return {"from": {"kind": "ImageStreamTag", "name": "app:latest"}, "fieldPath": FIELD, **extra}


def images(obj: dict[str, Any]) -> list[str]:
    return [c["image"] for c in obj["spec"]["template"]["spec"]["containers"]]


def test_sets_only_the_named_container() -> None:
    obj = deployment(entry())
    assert apply_triggers(obj, "Deployment", {("demo", "app"): STREAM})
    assert images(obj) == ["quay.io/acme/app@sha256:new", "nginx"]
    assert not apply_triggers(obj, "Deployment", {("demo", "app"): STREAM})  # in sync


def test_a_string_paused_rejects_the_whole_annotation() -> None:
    obj = deployment(
        entry(), entry(paused="false", fieldPath="spec.template.spec.containers[1].image")
    )
    assert decode_triggers(obj["metadata"]["annotations"]["image.openshift.io/triggers"]) is None
    assert not apply_triggers(obj, "Deployment", {("demo", "app"): STREAM})


def test_the_console_pause_key_is_ignored_and_the_tag_followed() -> None:
    obj = deployment(entry(pause="true"))
    assert apply_triggers(obj, "Deployment", {("demo", "app"): STREAM})


def test_from_kind_is_not_checked_by_the_updater() -> None:
    obj = deployment({**entry(), "from": {"kind": "DockerImage", "name": "app:latest"}})
    assert apply_triggers(obj, "Deployment", {("demo", "app"): STREAM})


def test_single_quotes_and_other_bases_find_no_container() -> None:
    obj = deployment()
    assert container_for(obj, "Deployment", FIELD.replace('"', "'")) is None
    assert container_for(obj, "CronJob", FIELD) is None
    assert container_for(obj, "Deployment", "spec.template.spec.containers[5].image") is None
    assert container_for(obj, "Deployment", "spec.template.spec.containers[1].image") == {
        "name": "proxy",
        "image": "nginx",
    }
