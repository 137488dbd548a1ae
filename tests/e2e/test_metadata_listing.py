"""The sweep's LIST asks for metadata only: every resource it sweeps answers that way."""

from __future__ import annotations

from typing import Any

import pytest

from imagestream_trigger.act.client import Api
from imagestream_trigger.api import (
    IMAGESTREAM_RESOURCE,
    IMAGETRIGGER_RESOURCE,
    ApiResource,
    TargetKind,
)
from imagestream_trigger.kinds import KINDS
from imagestream_trigger.watch import list_each
from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube
from tests.e2e.objects import (
    api_for,
    buildconfig,
    create,
    image_stream,
    image_trigger,
    imported,
    workload,
)

pytestmark = pytest.mark.controlplane


async def listed(api: Api, resource: ApiResource, namespace: str, **kw: Any) -> list[Any]:
    items: list[Any] = []
    await list_each(api, resource, namespace, "Whatever", items.append, **kw)
    return items


async def test_metadata_only_listings_name_every_object_and_carry_no_body(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    image_stream(kube, namespace)
    imported(kube, namespace)  # a tag history in its status: what a full LIST would carry
    create(kube, namespace, workload("Deployment", "web", {"web": "x"}))
    create(kube, namespace, buildconfig("app-build"))
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "Deployment", "name": "web"}]),
    )
    resources = {
        "ImageStream": (IMAGESTREAM_RESOURCE, "app"),
        "ImageTrigger": (IMAGETRIGGER_RESOURCE, "follow"),
        "Deployment": (KINDS[TargetKind.Deployment].resource, "web"),
        "BuildConfig": (KINDS[TargetKind.BuildConfig].resource, "app-build"),
    }
    api = api_for(control_plane)
    try:
        for kind, (resource, name) in resources.items():
            whole = await listed(api, resource, namespace)
            slim = await listed(api, resource, namespace, metadata_only=True)
            assert [i["metadata"]["name"] for i in slim] == [name], kind
            assert [i["metadata"]["namespace"] for i in slim] == [namespace], kind
            # Only the metadata came: no spec, no status, whatever the server.
            assert slim[0]["kind"] == "PartialObjectMetadata", kind
            assert set(slim[0]) <= {"kind", "apiVersion", "metadata"}, kind
            assert "spec" in whole[0], kind
    finally:
        await api.close()
