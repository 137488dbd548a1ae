"""When an image was created, for ``spec.rollout.minImageAge``: read once per digest.

On OpenShift the Image's ``dockerImageMetadata.Created`` is readable per stream as
``GET .../namespaces/NS/imagestreamimages/STREAM@DIGEST`` (an ImageStreamImage: the Image
under ``image``). Images are immutable, so an answer (a time, or "none") is kept per digest;
only triggers with ``minImageAge`` ever ask. A failed read is not kept: the caller then
counts from the tag event, which is never earlier than the image's creation (stricter).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import Final

from imagestream_trigger.act.client import Api, api_path
from imagestream_trigger.errors import ApiError, NotFoundError
from imagestream_trigger.resolve import TagRef
from imagestream_trigger.timing import parse_time

log = logging.getLogger(__name__)

RESOURCE: Final = "imagestreamimages"
# Digests remembered; an entry is two short strings and a datetime.
LIMIT: Final = 4096


class ImageCreatedTimes:
    def __init__(self, api: Api, *, limit: int = LIMIT) -> None:
        self.api = api
        self.limit = limit
        self._known: OrderedDict[str, datetime | None] = OrderedDict()

    async def created(self, source: TagRef, digest: str) -> datetime | None:
        """The image's own created time; None when it has none or it cannot be read now."""
        if digest in self._known:
            self._known.move_to_end(digest)
            return self._known[digest]
        path = api_path(
            "image.openshift.io", "v1", RESOURCE, source.namespace, f"{source.stream}@{digest}"
        )
        try:
            body = await self.api.with_retries("GET", path, resource=RESOURCE)
        except NotFoundError:
            found = None  # not (or no longer) in the stream: the tag event's time it is
        except ApiError as error:
            log.warning("could not read when %s was created: %s", digest, error)
            return None
        else:
            found = created_of(body)
        self._known[digest] = found
        if len(self._known) > self.limit:
            self._known.popitem(last=False)
        return found


def created_of(body: object) -> datetime | None:
    """``image.dockerImageMetadata.Created`` of an ImageStreamImage body, if it has one."""
    image = body.get("image") if isinstance(body, Mapping) else None
    meta = image.get("dockerImageMetadata") if isinstance(image, Mapping) else None
    created = meta.get("Created") if isinstance(meta, Mapping) else None
    moment = parse_time(created if isinstance(created, str) else None)
    # Docker writes the zero time for "unknown"; an image is never that old.
    return moment if moment is not None and moment.year > 1970 else None
