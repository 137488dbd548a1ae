"""Keep-alive HTTP clients for the benchmark: one connection per thread, no per-request TLS.

The floor (a plain client patching Deployments) must not pay a handshake the
operator does not pay either, so the benchmark cannot use the test client,
which opens a connection per request.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any


class HttpError(Exception):
    def __init__(self, status: int, body: Any, method: str, path: str) -> None:
        self.status = status
        self.body = body
        super().__init__(f"{method} {path} -> {status}: {body}")


class Client:
    """Thread-safe: each thread gets its own persistent connection."""

    def __init__(self, server: str, token: str, ca_file: str) -> None:
        parsed = urllib.parse.urlparse(server)
        self.host = parsed.hostname or "127.0.0.1"
        self.port = parsed.port or 443
        self.token = token
        self.context = ssl.create_default_context(cafile=ca_file)
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPSConnection:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPSConnection(
                self.host, self.port, context=self.context, timeout=60
            )
            self.local.connection = connection
        return connection

    def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        for attempt in range(30):
            connection = self._connection()
            try:
                connection.request(method, path, body=data, headers=headers)
                response = connection.getresponse()
                raw = response.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                connection.close()
                self.local.connection = None
                if attempt == 29:
                    raise
                continue
            if response.status == 429:  # a new resource's watch cache is warming up
                time.sleep(0.2)
                continue
            decoded = json.loads(raw) if raw else None
            if response.status >= 400:
                raise HttpError(response.status, decoded, method, path)
            return decoded
        raise HttpError(429, "still 429 after retries", method, path)

    def timed(self, method: str, path: str, body: Any, content_type: str) -> float:
        started = time.perf_counter()
        self.request(method, path, body, content_type)
        return time.perf_counter() - started


@dataclass
class DeploymentWatch:
    """Follows every Deployment's container images from one watch, with arrival times.

    ``wait_for`` blocks until the given Deployments run the given images and
    returns when each was first seen doing so.
    """

    client: Client
    images: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    seen_at: dict[tuple[str, str, str], float] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)
    stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        listing = self.client.request("GET", "/apis/apps/v1/deployments")
        for item in listing["items"]:
            self._record(item, time.perf_counter())
        self.thread = threading.Thread(
            target=self._run, args=(listing["metadata"]["resourceVersion"],), daemon=True
        )
        self.thread.start()

    def _record(self, obj: dict[str, Any], now: float) -> None:
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        images = {c["name"]: c["image"] for c in obj["spec"]["template"]["spec"]["containers"]}
        with self.changed:
            self.images[key] = images
            for image in images.values():
                self.seen_at.setdefault((*key, image), now)
            self.changed.notify_all()

    def _run(self, resource_version: str) -> None:
        context = self.client.context
        while not self.stop.is_set():
            connection = http.client.HTTPSConnection(
                self.client.host, self.client.port, context=context, timeout=3600
            )
            query = urllib.parse.urlencode(
                {
                    "watch": "true",
                    "resourceVersion": resource_version,
                    "allowWatchBookmarks": "true",
                    "timeoutSeconds": "3600",
                }
            )
            connection.request(
                "GET",
                f"/apis/apps/v1/deployments?{query}",
                headers={"Authorization": f"Bearer {self.client.token}"},
            )
            response = connection.getresponse()
            while not self.stop.is_set():
                line = response.readline()
                if not line:
                    break
                event = json.loads(line)
                now = time.perf_counter()
                obj = event["object"]
                resource_version = obj["metadata"].get("resourceVersion", resource_version)
                if event["type"] in ("ADDED", "MODIFIED"):
                    self._record(obj, now)
            connection.close()

    def wait_for(
        self, wanted: Iterable[tuple[str, str, str]], timeout: float = 120
    ) -> dict[tuple[str, str, str], float]:
        """Wait until each (namespace, name, image) was seen; return first-seen times."""
        pending = set(wanted)
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                pending = {w for w in pending if w not in self.seen_at}
                if not pending:
                    return {w: self.seen_at[w] for w in wanted}
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(pending)} targets never got their image, e.g. {sorted(pending)[:3]}"
                    )
                self.changed.wait(left)


def parallel(calls: Iterable[Callable[[], Any]], workers: int) -> list[Any]:
    """Run the calls on ``workers`` threads; re-raise the first failure."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [f.result() for f in [pool.submit(call) for call in calls]]
