"""The operator's one door to the Kubernetes API for its own requests (kopf does the watching).

Built on the official client's asyncio flavour (``kubernetes.aio``) for what it
does well: kubeconfig and in-cluster credentials, TLS, a connection pool. Bodies
stay plain dicts: a write returns JSON we barely read, and deserialising whole
typed models per write would cost time and memory for nothing. Every request
is counted in ``imagestream_trigger_api_requests_total``; failures are raised
as our own error classes (``errors.py``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

import aiohttp
from kubernetes.aio import client as k8s
from kubernetes.aio import config as k8s_config

from imagestream_trigger.errors import (
    ApiError,
    ConflictError,
    ForbiddenError,
    InvalidPatchError,
    NotFoundError,
)
from imagestream_trigger.report.metrics import Metrics

log = logging.getLogger(__name__)

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
# Worth another try: the server or the network, not the request, was the problem.
TRANSIENT = frozenset({429, 500, 502, 503, 504})


def _error(status: int, body: Any, method: str, path: str) -> ApiError:
    message = body.get("message") if isinstance(body, dict) else None
    text = f"{method} {path}: HTTP {status}: {message or body}"
    if status == 403:
        return ForbiddenError(text, status=status, body=body)
    if status == 404:
        return NotFoundError(text, status=status, body=body)
    if status == 409:
        return ConflictError(text, status=status, body=body)
    if status == 422 and "test" in str(message):
        return InvalidPatchError(text, status=status, body=body)
    return ApiError(text, status=status, body=body)


class Api:
    def __init__(self, client: k8s.ApiClient, metrics: Metrics) -> None:
        self.client = client
        self.metrics = metrics

    @classmethod
    async def connect(cls, metrics: Metrics, *, pool: int = 32) -> Api:
        """Credentials as kubectl finds them: in-cluster, else $KUBECONFIG / ~/.kube/config."""
        configuration = k8s.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
            k8s_config.load_incluster_config(client_configuration=configuration)
        else:
            await k8s_config.load_kube_config(client_configuration=configuration)
        configuration.connection_pool_maxsize = pool
        # The API server is reached directly, never through an HTTP(S)_PROXY (OpenShift's
        # cluster-wide proxy lists it in NO_PROXY anyway); trust_env would also cost a
        # thread-pool hop per request to look up proxies and ~/.netrc.
        configuration.client_session_kwargs = {"trust_env": False}
        # We retry ourselves, with our own policy and metrics.
        configuration.retries = None
        return cls(k8s.ApiClient(configuration), metrics)

    async def close(self) -> None:
        await self.client.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        resource: str,
        request_timeout: float = 30.0,
    ) -> Any:
        """One HTTP request; returns the decoded JSON, raises an ``ApiError`` on >= 400."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        _, url, headers, serialized, _ = await self.client.param_serialize(
            method=method,
            resource_path=path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        verb = method.lower()
        try:
            response = await self.client.call_api(
                method,
                url,
                header_params=headers,
                body=serialized,
                _request_timeout=request_timeout,
            )
            raw = await response.read()
        except (TimeoutError, aiohttp.ClientError, k8s.ApiException) as error:
            self.metrics.api_requests.labels(verb, resource, "error").inc()
            raise ApiError(f"{method} {path}: {error!r}", status=None) from error
        status = int(response.status)
        self.metrics.api_requests.labels(verb, resource, str(status)).inc()
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
        attempts: int = 5,
        first_delay: float = 0.2,
        **kwargs: Any,
    ) -> Any:
        """``request`` retried with exponential backoff while the failure is transient."""
        delay = first_delay
        for attempt in range(1, attempts + 1):
            try:
                return await self.request(method, path, **kwargs)
            except ApiError as error:
                retryable = error.status is None or error.status in TRANSIENT
                if not retryable or attempt == attempts or _permanent(error):
                    raise
                log.info("retrying in %.1fs after: %s", delay, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")


def _permanent(error: ApiError) -> bool:
    # OpenShift answers "already instantiated a build for imageid" with a 500:
    # retrying that would only repeat the refusal.
    return "already instantiated a build" in str(error)


def api_path(group: str, version: str, plural: str, namespace: str, name: str = "") -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    path = f"{base}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path
