"""Deliver notifications (``spec.rollout.notify``) without ever holding up a reconcile.

``send`` only queues: each receiver ("<namespace>/<trigger>/<name>") has a bounded queue
and, while it holds anything, one task that delivers it in order. A full queue drops its
oldest notification (a log line and ``imagestream_trigger_notifications_total{result=
"dropped"}``); a queue that empties ends its task, so nothing is kept for a receiver that
has nothing to send.

Delivery: the receiver's URL is read from its Secret (in the trigger's namespace, as the
trigger's ServiceAccount when it names one, see identity.py; cached ``secret_ttl`` seconds),
then one HTTP POST, retried with exponential backoff on a network error, a timeout, 429 or
5xx, up to ``attempts`` in all; any other answer >= 300 is final. A Secret, key or URL that
is unusable is reported as a Warning Event ``NotificationFailed`` on the ImageTrigger (once
per distinct problem) and counted as failed; the rest of the trigger is not affected.

The URL is a credential (a Slack webhook's path is its secret): it is never logged, nor put
in an Event; the receiver is named instead.

At-least-once while the operator runs: a POST whose answer was lost is sent again, with
the same id. What is still queued when the operator stops gets ``stop``'s short drain;
a notification not delivered by then is lost (see docs/imagetrigger.md).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

from imagestream_trigger import __version__
from imagestream_trigger.act.client import Api, api_path
from imagestream_trigger.act.writer import utcnow
from imagestream_trigger.api import Reason
from imagestream_trigger.errors import ApiError, ForbiddenError, NotFoundError
from imagestream_trigger.identity import ServiceAccount, acting_as
from imagestream_trigger.index import ObjectRef, TriggerInfo
from imagestream_trigger.models import Receiver
from imagestream_trigger.report.events import Events
from imagestream_trigger.report.metrics import Metrics
from imagestream_trigger.report.notification import Notification, NotifyEvent, render
from imagestream_trigger.resolve import TagRef

log = logging.getLogger(__name__)

ATTEMPTS: Final = 5
FIRST_DELAY_S: Final = 1.0
MAX_DELAY_S: Final = 60.0
TIMEOUT_S: Final = 10.0
QUEUE_SIZE: Final = 100
SECRET_TTL_S: Final = 60.0
DRAIN_S: Final = 3.0
ANSWER_BYTES: Final = 64 * 1024
# Worth another attempt: the receiver or the network, not the request, was the problem.
_RETRIABLE: Final = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT: Final = f"imagestream-trigger/{__version__}"


class Unusable(Exception):
    """A receiver's Secret, key or URL cannot be used; the message says why (never the URL)."""


@dataclass(frozen=True, slots=True)
class _Item:
    trigger: ObjectRef
    receiver: Receiver
    identity: ServiceAccount | None
    notification: Notification


@dataclass(slots=True)
class _Queue:
    items: deque[_Item] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None


class Notifier:
    def __init__(
        self,
        api: Api,
        events: Events,
        metrics: Metrics,
        *,
        default_service_account: str = "",
        attempts: int = ATTEMPTS,
        first_delay: float = FIRST_DELAY_S,
        timeout: float = TIMEOUT_S,
        queue_size: int = QUEUE_SIZE,
        secret_ttl: float = SECRET_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.events = events
        self.metrics = metrics
        # Lockdown: triggers naming no ServiceAccount read their Secrets as this one.
        self.default_service_account = default_service_account
        self.attempts = attempts
        self.first_delay = first_delay
        self.timeout = timeout
        self.queue_size = queue_size
        self.secret_ttl = secret_ttl
        self.clock = clock
        self._queues: dict[str, _Queue] = {}
        # (namespace, Secret, who reads it) -> (its data, read at)
        self._secrets: dict[tuple[str, str, str], tuple[Mapping[str, Any], float]] = {}
        # The last problem reported per receiver: a Warning is an edge, not a drumbeat.
        self._warned: dict[str, str] = {}
        # Receivers counted per ImageTrigger, to drop their series with it.
        self._receivers: dict[tuple[str, str], set[str]] = {}
        self._session: aiohttp.ClientSession | None = None

    # -- what callers use ---------------------------------------------------------------

    def send(self, trigger: TriggerInfo, notification: Notification) -> None:
        """Queue ``notification`` for each receiver of ``trigger`` that wants its event.
        Never waits: safe on a reconcile pass."""
        spec = trigger.spec
        receivers = spec.rollout.notify if spec is not None and spec.rollout is not None else ()
        if not receivers:
            return
        ref = trigger.ref
        identity = acting_as(
            ref.namespace, trigger.service_account_name, self.default_service_account
        )
        for receiver in receivers:
            if notification.event in receiver.events:
                self._enqueue(_Item(ref, receiver, identity, notification))

    def pending(
        self, trigger: TriggerInfo, image: str, since: str, source: TagRef | None = None
    ) -> None:
        """Approval pending (``status.pending``): say it once when it starts. ``source``:
        the tag followed (a policy's pick); default the spec's."""
        source = source or trigger.source
        self.send(
            trigger,
            Notification(
                NotifyEvent.Pending,
                trigger.ref.namespace,
                trigger.ref.name,
                image,
                source,
                (),
                f"{image} waits for approval since {since}: approve it by setting "
                f"spec.approvedImage of ImageTrigger {trigger.ref.namespace}/{trigger.ref.name}",
                utcnow(),
            ),
        )

    def forget(self, namespace: str, name: str) -> None:
        """The ImageTrigger is gone: drop what is kept for it (what is queued still goes)."""
        for key in [k for k in self._secrets if k[0] == namespace]:
            del self._secrets[key]  # re-read at most once a minute anyway
        for receiver in self._receivers.pop((namespace, name), set()):
            self._warned.pop(receiver, None)
            if receiver not in self._queues:
                self.metrics.forget_receiver(receiver)

    async def stop(self, drain_s: float = DRAIN_S) -> None:
        """Deliver what is queued for at most ``drain_s``, then stop."""
        tasks = [q.task for q in self._queues.values() if q.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=drain_s)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._queues.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def tracked(self) -> int:
        """Entries kept per object: a leak check for tests."""
        return len(self._queues) + len(self._warned) + len(self._receivers)

    # -- the queues ---------------------------------------------------------------------

    def _enqueue(self, item: _Item) -> None:
        name = receiver_name(item.trigger, item.receiver)
        known = self._receivers.setdefault((item.trigger.namespace, item.trigger.name), set())
        if name not in known:
            known.add(name)
            self.metrics.receiver_series(name)
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _Queue()
        if len(queue.items) >= self.queue_size:
            dropped = queue.items.popleft()
            self.metrics.notifications.labels(name, "dropped").inc()
            log.warning(
                "notification receiver %s: queue full (%d): dropped the oldest (%s of %s)",
                name,
                self.queue_size,
                dropped.notification.event,
                dropped.notification.image,
            )
        queue.items.append(item)
        if queue.task is None or queue.task.done():
            queue.task = asyncio.create_task(self._drain(name, queue))

    async def _drain(self, name: str, queue: _Queue) -> None:
        try:
            while queue.items:
                item = queue.items.popleft()
                try:
                    await self._deliver(name, item)
                except Exception:  # a bug, not an input: keep delivering the others
                    log.exception("notification receiver %s: delivery failed", name)
                    self.metrics.notifications.labels(name, "failed").inc()
        finally:
            if self._queues.get(name) is queue and not queue.items:
                del self._queues[name]
                namespace, trigger, _ = name.split("/", 2)
                if name not in self._receivers.get((namespace, trigger), ()):
                    # Its ImageTrigger went while this was delivered: its series go now.
                    self.metrics.forget_receiver(name)

    # -- one delivery -------------------------------------------------------------------

    async def _deliver(self, name: str, item: _Item) -> None:
        counter = self.metrics.notifications
        try:
            url = await self._url(item)
        except Unusable as unusable:
            counter.labels(name, "failed").inc()
            self._warn(item, name, f"cannot notify receiver {item.receiver.name}: {unusable}")
            return
        headers, body = render(item.receiver.type, item.notification)
        headers["User-Agent"] = USER_AGENT
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            outcome = await self._post(url, headers, body)
            if outcome is None:
                counter.labels(name, "sent").inc()
                log.info(
                    "notified %s: %s of %s",
                    name,
                    item.notification.event,
                    item.notification.image,
                )
                self._warned.pop(name, None)
                return
            problem, retriable = outcome
            if not retriable or attempt == self.attempts:
                counter.labels(name, "failed").inc()
                tried = f" (after {attempt} attempts)" if attempt > 1 else ""
                self._warn(
                    item,
                    name,
                    f"could not notify receiver {item.receiver.name} of "
                    f"{item.notification.event}: {problem}{tried}",
                )
                return
            counter.labels(name, "retried").inc()
            log.info("notification receiver %s: %s; again in %.1fs", name, problem, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY_S)

    async def _post(
        self, url: str, headers: dict[str, str], body: bytes
    ) -> tuple[str, bool] | None:
        """None when delivered; else why not, and whether it is worth another attempt."""
        try:
            async with self._client().post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # A redirect could carry the body somewhere the Secret does not name.
                allow_redirects=False,
            ) as response:
                # The answer is not used: a little is read so the connection can be kept,
                # never all of what a receiver might send.
                await response.content.read(ANSWER_BYTES)
                status = response.status
        except TimeoutError:
            return f"no answer within {self.timeout:g}s", True
        except aiohttp.ClientError as error:
            # The error's text may quote the URL: only its kind is said.
            return f"connection failed ({type(error).__name__})", True
        if 200 <= status < 300:
            return None
        return f"HTTP {status}", status in _RETRIABLE

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # trust_env: receivers are outside the cluster, reached through the cluster's
            # egress proxy when one is set (HTTPS_PROXY, NO_PROXY).
            self._session = aiohttp.ClientSession(trust_env=True)
        return self._session

    async def _url(self, item: _Item) -> str:
        ref, secret = item.trigger, item.receiver.secret_ref
        where = f"Secret {ref.namespace}/{secret.name}"
        data = await self._secret(item)
        raw = data.get(secret.key)
        if not isinstance(raw, str):
            raise Unusable(f'{where} has no key "{secret.key}"')
        try:
            url = base64.b64decode(raw, validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            raise Unusable(f'key "{secret.key}" of {where} is not text') from None
        problem = url_problem(url)
        if problem:
            raise Unusable(f'key "{secret.key}" of {where} {problem}')
        return url

    async def _secret(self, item: _Item) -> Mapping[str, Any]:
        """The Secret's data, read as the trigger's identity; kept ``secret_ttl`` seconds
        (receivers of one trigger often share a Secret)."""
        ref, name = item.trigger, item.receiver.secret_ref.name
        reader = item.identity.username if item.identity is not None else ""
        key = (ref.namespace, name, reader)
        now = self.clock()
        cached = self._secrets.get(key)
        if cached is not None and now - cached[1] < self.secret_ttl:
            return cached[0]
        where = f"Secret {ref.namespace}/{name}"
        try:
            found = await self.api.with_retries(
                "GET",
                api_path("", "v1", "secrets", ref.namespace, name),
                resource="secrets",
                impersonate=item.identity,
            )
        except NotFoundError:
            raise Unusable(f"{where} does not exist") from None
        except ForbiddenError:
            who = f"ServiceAccount {item.identity}" if item.identity is not None else "the operator"
            raise Unusable(
                f"{who} may not read {where}: grant it get on secrets in namespace "
                f"{ref.namespace} (a Role and a RoleBinding)"
            ) from None
        except ApiError as error:
            raise Unusable(f"cannot read {where}: HTTP {error.status or 'error'}") from None
        data = found.get("data") if isinstance(found, Mapping) else None
        data = data if isinstance(data, Mapping) else {}
        # Expired entries go when another is added: at most one per Secret in use.
        for old in [k for k, (_, at) in self._secrets.items() if now - at >= self.secret_ttl]:
            del self._secrets[old]
        self._secrets[key] = (data, now)
        return data

    def _warn(self, item: _Item, name: str, message: str) -> None:
        log.warning("notification receiver %s: %s", name, message)
        if self._warned.get(name) == message:
            return
        self._warned[name] = message
        self.events.warning(item.trigger, Reason.NotificationFailed, message)


def receiver_name(trigger: ObjectRef, receiver: Receiver) -> str:
    """How logs and the metric name a receiver: "<namespace>/<trigger>/<name>"."""
    return f"{trigger.namespace}/{trigger.name}/{receiver.name}"


def url_problem(url: str) -> str:
    """Why ``url`` cannot be POSTed to ("" when it can), without quoting it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises on a port that is no number
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not parts.hostname:
        return "is a URL without a host"
    if any(c.isspace() for c in url):
        return "is not a URL: it contains white space"
    return ""
