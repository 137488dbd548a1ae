"""The operator's own exceptions, so callers never depend on a client library's classes.

::

    ImagestreamTriggerError        base of everything we raise on purpose
    ├── ConfigurationError         bad settings at start-up; fix and restart
    ├── InvalidSpecError           an ImageTrigger spec fails runtime validation (not retried)
    └── ApiError                   a Kubernetes API call failed; chains the client's exception
        ├── ForbiddenError         403: RBAC is missing (reported as Reason.Forbidden)
        ├── NotFoundError          404: the object (or the resource type) does not exist
        ├── ConflictError          409: someone wrote first; re-read and retry
        ├── GoneError              410: a watch's resourceVersion is too old; list again
        └── InvalidPatchError      422 from a JSON Patch ``test`` op: the object moved; re-plan
"""

from __future__ import annotations

from collections.abc import Sequence


class ImagestreamTriggerError(Exception):
    """Base class: catch this to handle any error the operator raises deliberately."""


class ConfigurationError(ImagestreamTriggerError):
    """The operator's settings are unusable; retrying cannot help."""


class InvalidSpecError(ImagestreamTriggerError):
    """An ImageTrigger spec is invalid; the message is meant for the user, as is."""

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        # Each problem alone ("spec.targets[0]: ..."), for status fields that list them.
        self.problems: tuple[str, ...] = tuple(problems) or (message,)


class ApiError(ImagestreamTriggerError):
    """A Kubernetes API request failed; ``status`` is the HTTP code when there was one."""

    def __init__(self, message: str, *, status: int | None = None, body: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body

    @property
    def server_message(self) -> str:
        """The API server's own words (the Status ``message``), else our summary."""
        if isinstance(self.body, dict) and isinstance(self.body.get("message"), str):
            return str(self.body["message"])
        return str(self)


class ForbiddenError(ApiError):
    """HTTP 403: the ServiceAccount lacks a permission."""


class NotFoundError(ApiError):
    """HTTP 404: the object, or its resource type, does not exist."""


class ConflictError(ApiError):
    """HTTP 409: the object changed under us; a re-read and retry usually succeeds."""


class GoneError(ApiError):
    """HTTP 410: the resourceVersion a watch resumed from is no longer available."""


class NotLeaderError(ApiError):
    """Not sent: this replica does not hold the Lease (or no longer does), so it must not write."""


class InvalidPatchError(ApiError):
    """HTTP 422 because a JSON Patch ``test`` op failed: the object changed since it was read."""
