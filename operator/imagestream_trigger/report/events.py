"""Kubernetes Events on the objects we act on: where ``kubectl describe`` users look.

Events are best effort: a refused Event is logged, never allowed to fail the
work it describes. Warnings are posted on transitions only (the caller keeps
the memo), Normal events once per change made.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket

from imagestream_trigger.act.client import Api
from imagestream_trigger.errors import ApiError
from imagestream_trigger.index import ObjectRef

log = logging.getLogger(__name__)

COMPONENT = "imagestream-trigger"
# The API server refuses longer messages.
MAX_MESSAGE = 1024


class Events:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.instance = socket.gethostname()

    async def post(self, ref: ObjectRef, kind: str, reason: str, message: str) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace},
            "involvedObject": {
                "apiVersion": ref.api_version,
                "kind": ref.kind,
                "name": ref.name,
                "namespace": ref.namespace,
                "uid": ref.uid,
            },
            "type": kind,
            "reason": reason,
            "message": message[:MAX_MESSAGE],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self.api.request(
                "POST", f"/api/v1/namespaces/{ref.namespace}/events", body=event, resource="events"
            )
        except ApiError as error:
            log.warning("could not post %s event %s on %s: %s", kind, reason, ref, error)

    async def normal(self, ref: ObjectRef, reason: str, message: str) -> None:
        await self.post(ref, "Normal", reason, message)

    async def warning(self, ref: ObjectRef, reason: str, message: str) -> None:
        await self.post(ref, "Warning", reason, message)
