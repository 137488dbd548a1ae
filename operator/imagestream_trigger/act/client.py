"""The operator's one door to the Kubernetes API: credentials, requests, watch streams.

Credentials are found as kubectl finds them (in a pod its ServiceAccount,
elsewhere $KUBECONFIG or ~/.kube/config) by the official client's loaders, and
the SAME settings feed our requests, our own watches and kopf's login
(``Api.credentials``), so they can never talk to two different clusters.

Requests go through one keep-alive aiohttp session with bodies as plain dicts:
the official client's model layer and per-request serialisation cost more
than the write itself in a burst, and a write's answer is barely read. A request
made for an ImageTrigger that acts as a ServiceAccount (``identity.py``) carries one
impersonation header more, on the same session and connections. Every
request is counted in ``imagestream_trigger_api_requests_total``; failures are
raised as our own error classes (``errors.py``). Nothing here retries a
request that is not idempotent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes.aio import client as k8s
from kubernetes.aio import config as k8s_config

from imagestream_trigger import __version__
from imagestream_trigger.errors import (
    ApiError,
    ConflictError,
    ForbiddenError,
    GoneError,
    InvalidPatchError,
    NotFoundError,
    NotLeaderError,
)
from imagestream_trigger.identity import ServiceAccount

log = logging.getLogger(__name__)

JSON = "application/json"
# A LIST answered with each object's metadata only (PartialObjectMetadataList), or
# with whole objects by a server that cannot: for finding what exists, whatever the
# size of the objects (an ImageStream's tag history, a workload's pod template).
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
# Worth another try: the server or the network, not the request, was the problem.
TRANSIENT = frozenset({429, 500, 502, 503, 504})
TOKEN_REFRESH_S = 60.0

# Called with (verb, resource, code) after every request: the metrics live above us.
Counter = Callable[[str, str, str], None]

USER_AGENT = f"imagestream-trigger/{__version__}"


def _error(status: int, body: Any, method: str, path: str) -> ApiError:
    message = body.get("message") if isinstance(body, dict) else None
    text = f"{method} {path}: HTTP {status}: {message or body}"
    if status == 403:
        return ForbiddenError(text, status=status, body=body)
    if status == 404:
        return NotFoundError(text, status=status, body=body)
    if status == 409:
        return ConflictError(text, status=status, body=body)
    if status == 410:
        return GoneError(text, status=status, body=body)
    if status == 422 and "test" in str(message):
        return InvalidPatchError(text, status=status, body=body)
    return ApiError(text, status=status, body=body)


def is_transient(error: ApiError) -> bool:
    return error.status is None or error.status in TRANSIENT


@dataclass(frozen=True)
class Credentials:
    """Where the API is and how to authenticate: one source for every client we run."""

    server: str
    ca_file: str | None
    verify: bool
    token: str | None  # without the "Bearer " prefix
    cert_file: str | None
    key_file: str | None
    tls_server_name: str | None = None


class Api:
    def __init__(
        self, configuration: k8s.Configuration, *, count: Counter | None = None, pool: int = 32
    ) -> None:
        self.configuration = configuration
        self.count: Counter = count or (lambda verb, resource, code: None)
        self.pool = pool
        self._session: aiohttp.ClientSession | None = None
        self._token_read = 0.0
        self._token: str | None = None
        # A kubeconfig's tls-server-name: the name the certificate is checked against.
        self._server_hostname: str | None = getattr(configuration, "tls_server_name", None) or None
        # With leader election: how long this replica may still write (0: not at all).
        # None: no election, always allowed.
        self.write_gate: Callable[[], float] | None = None

    @classmethod
    async def connect(cls, *, count: Counter | None = None, pool: int = 32) -> Api:
        """Credentials as kubectl finds them: in-cluster, else $KUBECONFIG / ~/.kube/config."""
        configuration = k8s.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            await k8s_config.load_kube_config(client_configuration=configuration)
        return cls(configuration, count=count, pool=pool)

    @property
    def server(self) -> str:
        return str(self.configuration.host).rstrip("/")

    def credentials(self) -> Credentials:
        """The current credentials (a rotated ServiceAccount token is re-read)."""
        c = self.configuration
        return Credentials(
            server=self.server,
            ca_file=c.ssl_ca_cert,
            verify=bool(c.verify_ssl),
            token=self._bearer(),
            cert_file=c.cert_file,
            key_file=c.key_file,
            tls_server_name=getattr(c, "tls_server_name", None) or None,
        )

    def _bearer(self) -> str | None:
        """The token, without its "Bearer " prefix; re-read from its source every minute
        (per request only a clock read: this is on every request's path)."""
        now = time.monotonic()
        if self._token is None or now - self._token_read > TOKEN_REFRESH_S:
            c = self.configuration
            hook = getattr(c, "refresh_api_key_hook", None)
            if hook is not None:
                hook(c)
            raw = (c.api_key or {}).get("BearerToken") or (c.api_key or {}).get("authorization")
            token = str(raw) if raw else None
            if token and token.split(" ", 1)[0].lower() == "bearer":
                token = token.split(" ", 1)[1]
            self._token, self._token_read = token, now
        return self._token

    def _ssl(self, credentials: Credentials) -> ssl.SSLContext | bool:
        if not credentials.verify:
            return False
        context = ssl.create_default_context(cafile=credentials.ca_file)
        if credentials.cert_file and credentials.key_file:
            context.load_cert_chain(credentials.cert_file, credentials.key_file)
        return context

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            credentials = self.credentials()
            self._session = aiohttp.ClientSession(
                # Idle connections kept a minute: a burst after a quiet spell should
                # not pay a TLS handshake per request.
                connector=aiohttp.TCPConnector(
                    ssl=self._ssl(credentials), limit=self.pool, keepalive_timeout=60
                ),
                # The API server is reached directly, never through an HTTP(S)_PROXY
                # (OpenShift's cluster-wide proxy lists it in NO_PROXY anyway).
                trust_env=False,
                json_serialize=json.dumps,
                # Names us in audit logs and as the field manager of what we write.
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    def _headers(
        self,
        content_type: str | None,
        impersonate: ServiceAccount | None = None,
        accept: str = JSON,
    ) -> dict[str, str]:
        headers = {"Accept": accept}
        token = self._bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if content_type:
            headers["Content-Type"] = content_type
        if impersonate is not None:
            headers.update(impersonate.headers())
        return headers

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
        resource: str,
        request_timeout: float = 30.0,
        gated: bool = True,
        impersonate: ServiceAccount | None = None,
        accept: str = JSON,
    ) -> Any:
        """One HTTP request; returns the decoded JSON, raises an ``ApiError`` on >= 400.

        ``impersonate``: sent as that ServiceAccount (the API server authorizes it as such).
        ``accept``: e.g. ``METADATA_ONLY`` for a listing of names and metadata only.
        A write (any method but GET) is refused with ``NotLeaderError`` unless the
        write gate is open, and given no longer than the gate stays open; ``gated``
        False is for the Lease itself and for reads sent as POST (access reviews).
        """
        verb = method.lower()
        if gated and method != "GET" and self.write_gate is not None:
            left = self.write_gate()
            if left <= 0:
                raise NotLeaderError(f"{method} {path}: not the leader", status=None)
            request_timeout = min(request_timeout, left)
        data = None if body is None else json.dumps(body, separators=(",", ":"))
        try:
            async with self.session().request(
                method,
                self.server + path,
                data=data,
                params=params,
                headers=self._headers(
                    content_type if data is not None else None, impersonate, accept
                ),
                timeout=aiohttp.ClientTimeout(total=request_timeout),
                server_hostname=self._server_hostname,
            ) as response:
                raw = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as error:
            self.count(verb, resource, "error")
            raise ApiError(f"{method} {path}: {error!r}", status=None) from error
        self.count(verb, resource, str(status))
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        if status >= 400:
            raise _error(status, decoded, method, path)
        return decoded

    async def with_retries(
        self,
        method: str,
        path: str,
        *,
        attempts: int = 3,
        first_delay: float = 0.2,
        **kwargs: Any,
    ) -> Any:
        """``request`` retried briefly while the failure is transient; idempotent calls only.

        Short on purpose: a longer outage is the work queue's to retry, with backoff,
        without holding a worker.
        """
        if method == "POST":
            raise ValueError("a POST is not idempotent: never retry it blindly")
        delay = first_delay
        for attempt in range(1, attempts + 1):
            try:
                return await self.request(method, path, **kwargs)
            except ApiError as error:
                if not is_transient(error) or attempt == attempts:
                    raise
                log.debug("retrying in %.1fs after: %s", delay, error)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    async def watch(
        self, path: str, *, resource_version: str, resource: str, timeout_s: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        """The events of one watch request, decoded; ends when the server ends it.

        Raises ``GoneError`` when the server says the resourceVersion is too old
        (HTTP 410, or an ERROR event with code 410): the caller must list again.
        """
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        try:
            async with self.session().get(
                self.server + path,
                params=params,
                headers=self._headers(None),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=10, sock_read=timeout_s + 30
                ),
                server_hostname=self._server_hostname,
            ) as response:
                self.count("watch", resource, str(response.status))
                if response.status >= 400:
                    raw = await response.read()
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = raw.decode(errors="replace")
                    raise _error(response.status, body, "WATCH", path)
                async for line in response.content:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        code = int(status.get("code") or 500)
                        raise _error(code, status, "WATCH", path)
                    yield event
        except (TimeoutError, aiohttp.ClientError) as error:
            self.count("watch", resource, "error")
            raise ApiError(f"WATCH {path}: {error!r}", status=None) from error


def api_path(group: str, version: str, plural: str, namespace: str = "", name: str = "") -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return f"{path}/{name}" if name else path


async def paged(
    api: Api,
    path: str,
    *,
    resource: str,
    params: Mapping[str, str] | None = None,
    limit: int = 500,
    impersonate: ServiceAccount | None = None,
    accept: str = JSON,
) -> AsyncIterator[dict[str, Any]]:
    """A LIST, page by page (following ``continue``); each page retried briefly."""
    token = ""
    while True:
        query = {**(params or {}), "limit": str(limit)}
        if token:
            query["continue"] = token
        page = await api.with_retries(
            "GET", path, params=query, resource=resource, impersonate=impersonate, accept=accept
        )
        page = page if isinstance(page, dict) else {}
        yield page
        token = (page.get("metadata") or {}).get("continue") or ""
        del page  # the consumer is done with it: not alive while the next one is fetched
        if not token:
            return
