"""Stand-ins for what OpenShift's image import and registry do to an ImageStream.

``import_image`` plays ``oc import-image`` / ``oc tag`` / a push to the internal
registry: it writes ``status.tags`` through the status subresource by the rules
in ``openshift.apply_import``. Optimistic concurrency is kept (resourceVersion
is sent back), so a concurrent writer causes a retry, never a lost update.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from tests.controlplane import openshift
from tests.controlplane.kube import ApiError, Kube, path_for

IMAGE_V1 = "image.openshift.io/v1"


@dataclass(frozen=True)
class Imported:
    reference: str  # dockerImageReference written into the new head item
    image: str  # sha256 digest
    changed: bool  # False when the digest was already the tag's head (re-import)
    resource_version: str  # of the ImageStream after the write


def _repository_for(stream: dict[str, Any], tag: str) -> str:
    for spec_tag in stream.get("spec", {}).get("tags", []) or []:
        source = spec_tag.get("from") or {}
        if spec_tag.get("name") == tag and source.get("kind") == "DockerImage":
            name: str = source["name"].split("@", 1)[0]
            # Strip a tag, not a registry port: the tag is after the last "/".
            head, _, last = name.rpartition("/")
            return f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
    meta = stream["metadata"]
    status_repo = stream.get("status", {}).get("dockerImageRepository")
    return status_repo or (
        f"image-registry.openshift-image-registry.svc:5000/{meta['namespace']}/{meta['name']}"
    )


def head(stream: dict[str, Any], tag: str) -> dict[str, Any] | None:
    for tag_status in stream.get("status", {}).get("tags", []) or []:
        if tag_status.get("tag") == tag and tag_status.get("items"):
            item: dict[str, Any] = tag_status["items"][0]
            return item
    return None


def import_image(
    kube: Kube,
    namespace: str,
    stream: str,
    tag: str,
    *,
    image: str | None = None,
    repository: str | None = None,
    now: dt.datetime | None = None,
    created: dt.datetime | None = None,
    attempts: int = 10,
) -> Imported:
    """Land an import of ``stream:tag``; a new random digest unless ``image`` is given.

    ``created``: when the image itself was built, kept in its Image object (cluster-scoped,
    one per digest) as ``dockerImageMetadata.Created``, as an import records it; without
    it no Image is written and the image has no created time.
    """
    digest = image or openshift.digest_for(secrets.token_hex(16))
    if created is not None:
        record_image(kube, digest, created)
    path = path_for(IMAGE_V1, "imagestreams", namespace, stream)
    for _ in range(attempts):
        current = kube.get(path)
        before = head(current, tag)
        reference = f"{repository or _repository_for(current, tag)}@{digest}"
        current["status"] = openshift.apply_import(
            current,
            tag,
            docker_image_reference=reference,
            image=digest,
            now=now or dt.datetime.now(dt.UTC),
        )
        try:
            written = kube.replace(path + "/status", current)
        except ApiError as error:
            if error.status == 409:
                continue
            raise
        after = head(written, tag)
        return Imported(
            reference=after["dockerImageReference"] if after else reference,
            image=digest,
            changed=before is None or (after is not None and after["image"] != before["image"]),
            resource_version=written["metadata"]["resourceVersion"],
        )
    raise RuntimeError(f"could not write {namespace}/{stream} after {attempts} conflicts")


def record_image(kube: Kube, digest: str, created: dt.datetime) -> None:
    """Write the Image ``digest`` with its Docker metadata's ``Created`` time."""
    body = {
        "apiVersion": IMAGE_V1,
        "kind": "Image",
        "metadata": {"name": openshift.image_object_name(digest)},
        "dockerImageMetadataVersion": "1.0",
        "dockerImageMetadata": {
            "kind": "DockerImage",
            "apiVersion": "1.0",
            "Created": openshift.rfc3339(created),
        },
    }
    path = path_for(IMAGE_V1, "images", "", openshift.image_object_name(digest))
    try:
        current = kube.get(path)
    except ApiError as error:
        if error.status != 404:
            raise
        kube.create(path_for(IMAGE_V1, "images", ""), body)
        return
    body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    kube.replace(path, body)
