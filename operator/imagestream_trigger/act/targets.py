"""Writes to targets: one JSON Patch per workload, one ``instantiate`` per build."""

from __future__ import annotations

import logging
from typing import Any

from imagestream_trigger.act.client import JSON_PATCH, MERGE_PATCH, Api, api_path
from imagestream_trigger.api import GROUP, PLURAL, TARGET_RESOURCES, VERSION, TargetKind
from imagestream_trigger.errors import ApiError
from imagestream_trigger.index import BuildConfigInfo, WorkloadInfo

log = logging.getLogger(__name__)

ALREADY_BUILT = "already instantiated a build for imageid"


async def patch_workload(api: Api, workload: WorkloadInfo, ops: list[dict[str, Any]]) -> Any:
    """Apply a guarded JSON Patch (see ``decide.workload_patch``); retried while transient."""
    resource = TARGET_RESOURCES[workload.kind]
    ref = workload.ref
    path = api_path(resource.group, resource.version, resource.plural, ref.namespace, ref.name)
    return await api.with_retries(
        "PATCH", path, body=ops, content_type=JSON_PATCH, resource=resource.plural
    )


async def instantiate(api: Api, bc: BuildConfigInfo, request: dict[str, Any]) -> str | None:
    """Start a build; returns its name, or None when the server had already built that image.

    OpenShift refuses a second build for the same image with a 500 whose message
    says so. For us that is success: the build we wanted exists.
    """
    resource = TARGET_RESOURCES[TargetKind.BuildConfig]
    path = api_path(
        resource.group, resource.version, resource.plural, bc.ref.namespace, bc.ref.name
    )
    try:
        build = await api.with_retries(
            "POST", path + "/instantiate", body=request, resource="buildconfigs/instantiate"
        )
    except ApiError as error:
        if ALREADY_BUILT in error.server_message:
            return None
        raise
    name: str = (build or {}).get("metadata", {}).get("name", "")
    return name


async def patch_trigger_status(api: Api, namespace: str, name: str, status: dict[str, Any]) -> Any:
    """Replace our own ImageTrigger's status (a merge patch on the status subresource)."""
    path = api_path(GROUP, VERSION, PLURAL, namespace, name) + "/status"
    return await api.with_retries(
        "PATCH",
        path,
        body={"status": status},
        content_type=MERGE_PATCH,
        resource="imagetriggers/status",
    )
