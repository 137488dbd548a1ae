"""What a notification (``spec.rollout.notify``) says, and its three wire formats. Pure.

A ``Notification`` holds the facts of one event (Applied, Reverted, Pending, Failed);
``render`` turns it into the headers and body of one HTTP POST for a receiver's type:

- ``JSON``: our own document (``json_body``), stable and versioned (``"version": 1``);
- ``CloudEvents``: CloudEvents 1.0 in the HTTP binding's *binary* content mode: the
  context attributes travel as ``ce-*`` headers and the body is the JSON document above,
  so a receiver that ignores the headers still reads our JSON;
- ``Slack``: an incoming-webhook message, ``text`` (also the fallback of notifications)
  plus ``blocks``.

``pass_notifications`` decides, from one reconcile pass, which Applied and Failed
notifications are news: the same facts the pass writes into the status, compared with the
status it started from, so a retried pass (or a restart) does not say them twice.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote

from imagestream_trigger.act.client import api_path
from imagestream_trigger.act.writer import Outcome, WriteResult
from imagestream_trigger.api import GROUP, PLURAL, VERSION, Reason
from imagestream_trigger.gate import reported_targets
from imagestream_trigger.resolve import TagRef

SPECVERSION: Final = "1.0"
# ce-type of each event: reverse-DNS of our API group, then what happened.
TYPE_PREFIX: Final = "dev.imagestream-trigger.rollout."
JSON_KIND: Final = "ImageTriggerNotification"
JSON_VERSION: Final = 1
CONTENT_TYPE: Final = "application/json"
# Slack shows at most 3,000 characters in a section; messages are cut well before.
MAX_MESSAGE: Final = 2000


class NotifyEvent(StrEnum):
    """What a notification is about; ``spec.rollout.notify[].events`` names these."""

    Applied = "Applied"  # an image was written to targets (or a build started)
    Reverted = "Reverted"  # the health gate set a failed rollout back
    Pending = "Pending"  # an image waits for approval (spec.rollout.approval: Manual)
    Failed = "Failed"  # a rollout failed without revert, or a write was refused or failed


@dataclass(frozen=True, slots=True)
class Notification:
    event: NotifyEvent
    namespace: str  # the ImageTrigger's
    trigger: str
    image: str  # the digest-pinned image reference it is about
    source: TagRef | None  # the followed tag
    targets: tuple[str, ...]  # "Kind/name"
    message: str
    time: str  # RFC 3339, UTC
    # One id per notification, kept across its retries: receivers may drop duplicates.
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


def _targets(targets: Sequence[str]) -> list[dict[str, str]]:
    found = []
    for key in targets:
        kind, _, name = key.partition("/")
        found.append({"kind": kind, "name": name})
    return found


def _source(source: TagRef | None) -> dict[str, str] | None:
    if source is None:
        return None
    if not source.tag:  # a policy's stream before it picked a tag
        return {"namespace": source.namespace, "imageStream": source.stream}
    return {"namespace": source.namespace, "imageStreamTag": f"{source.stream}:{source.tag}"}


def json_body(n: Notification) -> dict[str, Any]:
    """Our JSON document (docs/imagetrigger.md, "Notifications"). Fields are only added."""
    return {
        "kind": JSON_KIND,
        "version": JSON_VERSION,
        "id": n.id,
        "event": str(n.event),
        "trigger": {"namespace": n.namespace, "name": n.trigger},
        "image": n.image,
        "source": _source(n.source),
        "targets": _targets(n.targets),
        "message": n.message[:MAX_MESSAGE],
        "time": n.time,
    }


def ce_type(event: NotifyEvent) -> str:
    return TYPE_PREFIX + str(event).lower()


def ce_source(n: Notification) -> str:
    """The ImageTrigger's API path: a URI reference, unique per trigger."""
    return api_path(GROUP, VERSION, PLURAL, n.namespace, n.trigger)


def _header_value(text: str) -> str:
    """A ``ce-*`` header value: the HTTP binding percent-encodes (as UTF-8) space, ``"``,
    ``%`` and everything outside printable ASCII."""
    return "".join(
        c if "\x21" <= c <= "\x7e" and c not in '"%' else quote(c, safe="") for c in text
    )


def cloudevent_headers(n: Notification) -> dict[str, str]:
    """The context attributes in binary content mode (``datacontenttype`` is the
    ``Content-Type``)."""
    attributes = {
        "specversion": SPECVERSION,
        "id": n.id,
        "source": ce_source(n),
        "type": ce_type(n.event),
        "time": n.time,
        "subject": n.image,
    }
    headers = {f"ce-{name}": _header_value(value) for name, value in attributes.items() if value}
    headers["Content-Type"] = CONTENT_TYPE
    return headers


_SLACK_ICON: Final = {
    NotifyEvent.Applied: ":rocket:",
    NotifyEvent.Reverted: ":leftwards_arrow_with_hook:",
    NotifyEvent.Pending: ":hourglass_flowing_sand:",
    NotifyEvent.Failed: ":x:",
}


def slack_escape(text: str) -> str:
    """Slack reads ``&``, ``<`` and ``>`` as markup (``<!channel>`` would ping everyone)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(n: Notification) -> dict[str, Any]:
    """An incoming-webhook message: ``text`` for clients and notifications, ``blocks``
    for the message as shown."""
    who = f"{n.namespace}/{n.trigger}"
    message = slack_escape(n.message[:MAX_MESSAGE])
    headline = f"{_SLACK_ICON[n.event]} *{n.event}*: ImageTrigger `{slack_escape(who)}`"
    lines = [headline, message]
    if n.image:
        lines.append(f"*Image:* `{slack_escape(n.image)}`")
    if n.targets:
        lines.append(f"*Targets:* {slack_escape(', '.join(n.targets))}")
    context = [f"imagestream-trigger · {n.time}"]
    if n.source is not None:
        context.insert(0, f"following {slack_escape(str(n.source))}")
    return {
        "text": f"{n.event}: ImageTrigger {slack_escape(who)}: {message}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]},
        ],
    }


def render(receiver_type: str, n: Notification) -> tuple[dict[str, str], bytes]:
    """The headers and body of the POST to a receiver of ``receiver_type``."""
    if receiver_type == "Slack":
        headers, document = {"Content-Type": CONTENT_TYPE}, slack_body(n)
    elif receiver_type == "CloudEvents":
        headers, document = cloudevent_headers(n), json_body(n)
    elif receiver_type == "JSON":
        headers, document = {"Content-Type": CONTENT_TYPE}, json_body(n)
    else:
        raise ValueError(f"unknown receiver type {receiver_type!r}")
    return headers, json.dumps(document, separators=(",", ":")).encode()


# -- what a pass has to say ---------------------------------------------------------------

BUILDCONFIG: Final = "BuildConfig/"
_REFUSED: Final = frozenset({Outcome.Forbidden, Outcome.Failed})
_SAID: Final = {Outcome.Forbidden: Reason.Forbidden, Outcome.Failed: Reason.Failed}


def pass_notifications(
    *,
    namespace: str,
    trigger: str,
    source: TagRef | None,
    image: str,
    previous: Mapping[str, Any],
    keys: Sequence[str],
    done: Sequence[WriteResult | None],
    now: str,
) -> list[Notification]:
    """Applied for the targets (``keys``, "Kind/name") this pass wrote (``done``: each
    one's write result, None when nothing was to be written); Failed for those whose write
    was refused or failed for good (not a 5xx or a timeout: the queue retries those) unless
    the status the pass started from (``previous``) says so already: a retried pass, or
    one after a restart, does not say it again."""
    before = reported_targets(previous)
    found = []
    written = [k for k, r in zip(keys, done, strict=True) if r and r.outcome is Outcome.Written]
    if written:
        workloads = [k for k in written if not k.startswith(BUILDCONFIG)]
        builds = [k for k in written if k.startswith(BUILDCONFIG)]
        parts = [f"written to {', '.join(workloads)}"] if workloads else []
        parts += [f"built by {', '.join(builds)}"] if builds else []
        found.append(
            Notification(
                NotifyEvent.Applied,
                namespace,
                trigger,
                image,
                source,
                tuple(written),
                f"{image} {'; '.join(parts)}",
                now,
            )
        )
    failed = []
    for key, result in zip(keys, done, strict=True):
        if result is None or result.outcome not in _REFUSED or result.transient:
            continue
        said = before.get(key) or {}
        if said.get("result") == _SAID[result.outcome] and said.get("message") == result.message:
            continue
        failed.append((key, result))
    if failed:
        found.append(
            Notification(
                NotifyEvent.Failed,
                namespace,
                trigger,
                image,
                source,
                tuple(k for k, _ in failed),
                "; ".join(f"{k}: {r.outcome}: {r.message}" for k, r in failed),
                now,
            )
        )
    return found
