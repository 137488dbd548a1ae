"""A deliberately small JSON client for tests, the demo and the benchmark.

Tests drive the API server with their own plain HTTP client rather than the
library the operator uses, so a bug in how the operator talks to the API is
not hidden by the same bug in the test. Patch content types are explicit.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")

PATCH_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}

# kind -> (plural, namespaced) for the kinds this project applies from YAML.
KINDS: dict[str, tuple[str, bool]] = {
    "Namespace": ("namespaces", False),
    "ServiceAccount": ("serviceaccounts", True),
    "Service": ("services", True),
    "ConfigMap": ("configmaps", True),
    "Secret": ("secrets", True),
    "Deployment": ("deployments", True),
    "StatefulSet": ("statefulsets", True),
    "DaemonSet": ("daemonsets", True),
    "CronJob": ("cronjobs", True),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
    "ImageStream": ("imagestreams", True),
    "BuildConfig": ("buildconfigs", True),
    "Build": ("builds", True),
    "ImageTrigger": ("imagetriggers", True),
    "ServiceMonitor": ("servicemonitors", True),
    "PrometheusRule": ("prometheusrules", True),
}


class ApiError(Exception):
    def __init__(self, status: int, body: Any, method: str, path: str) -> None:
        self.status = status
        self.body = body
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"{method} {path} -> {status}: {message}")

    @property
    def reason(self) -> str:
        return self.body.get("reason", "") if isinstance(self.body, dict) else ""


def path_for(
    api_version: str, plural: str, namespace: str | None = None, name: str | None = None
) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return f"{base}/{name}" if name else base


def object_path(obj: Mapping[str, Any], *, with_name: bool = True) -> str:
    plural, namespaced = KINDS[obj["kind"]]
    meta = obj.get("metadata", {})
    return path_for(
        obj["apiVersion"],
        plural,
        meta.get("namespace") if namespaced else None,
        meta["name"] if with_name else None,
    )


class Kube:
    def __init__(
        self, server: str, token: str, ca_file: Path | str, *, impersonate: str | None = None
    ) -> None:
        self.server = server.rstrip("/")
        self.token = token
        self.ca_file = ca_file
        self.ssl = ssl.create_default_context(cafile=str(ca_file))
        # Acts as this user (kubectl --as): the token's owner must be allowed to impersonate.
        self.impersonate = impersonate

    def as_user(self, user: str) -> Kube:
        """The same credentials, impersonating ``user``."""
        return Kube(self.server, self.token, self.ca_file, impersonate=user)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
        timeout: float = 30,
    ) -> Any:
        url = self.server + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if self.impersonate:
            request.add_header("Impersonate-User", self.impersonate)
        if data is not None:
            request.add_header("Content-Type", content_type)
        for attempt in range(20):
            try:
                with urllib.request.urlopen(request, timeout=timeout, context=self.ssl) as response:
                    raw = response.read()
                break
            except urllib.error.HTTPError as error:
                raw = error.read()
                # 429 while a resource's watch cache (re)initializes, e.g. right after
                # its CRD was created: the server asks to come back, so do.
                if error.code == 429 and attempt < 19:
                    time.sleep(min(float(error.headers.get("Retry-After") or 1), 1.0))
                    continue
                try:
                    decoded: Any = json.loads(raw)
                except ValueError:
                    decoded = raw.decode(errors="replace")
                raise ApiError(error.code, decoded, method, path) from None
        return json.loads(raw) if raw else None

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, query=query or None)

    def create(self, path: str, obj: Any, **query: str) -> Any:
        return self.request("POST", path, obj, query=query or None)

    def replace(self, path: str, obj: Any) -> Any:
        return self.request("PUT", path, obj)

    def patch(self, path: str, body: Any, kind: str = "strategic", **query: str) -> Any:
        return self.request(
            "PATCH", path, body, content_type=PATCH_TYPES[kind], query=query or None
        )

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def exists(self, path: str) -> bool:
        try:
            self.get(path)
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    def watch(
        self, path: str, *, resource_version: str | None = None, timeout: float = 30
    ) -> Iterator[dict[str, Any]]:
        """Yield watch events (dicts with type and object) until the server ends the stream."""
        query = {
            "watch": "true",
            "timeoutSeconds": str(int(timeout)),
            "allowWatchBookmarks": "false",
        }
        if resource_version is not None:
            query["resourceVersion"] = resource_version
        url = f"{self.server}{path}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url)
        request.add_header("Authorization", f"Bearer {self.token}")
        try:
            response = urllib.request.urlopen(request, timeout=timeout + 5, context=self.ssl)
        except urllib.error.HTTPError as error:
            raise ApiError(error.code, json.loads(error.read() or b"null"), "WATCH", path) from None
        with response:
            for line in response:
                if line.strip():
                    yield json.loads(line)

    def apply(self, obj: Mapping[str, Any]) -> Any:
        """Create the object, or replace it (keeping its resourceVersion) if it exists."""
        try:
            return self.create(object_path(obj, with_name=False), obj)
        except ApiError as error:
            if error.status != 409:
                raise
        path = object_path(obj)
        current = self.get(path)
        desired = json.loads(json.dumps(obj))
        desired.setdefault("metadata", {})["resourceVersion"] = current["metadata"][
            "resourceVersion"
        ]
        return self.replace(path, desired)

    def wait_for(
        self, path: str, predicate: Any, *, timeout: float = 20, interval: float = 0.05
    ) -> Any:
        """Poll ``path`` until ``predicate(obj)`` is truthy; return the object."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while True:
            try:
                last = self.get(path)
                if predicate(last):
                    return last
            except ApiError as error:
                if error.status != 404:
                    raise
                last = error.body
            if time.monotonic() > deadline:
                raise TimeoutError(f"{path} did not reach the expected state in {timeout}s: {last}")
            time.sleep(interval)


def eventually_allowed(call: Callable[[], T], *, timeout: float = 10) -> T:
    """Retry ``call`` while it is refused with 403.

    The RBAC authorizer reads Roles and bindings from an informer cache, so a
    grant takes a few milliseconds to apply.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ApiError as error:
            if error.status != 403 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def load_yaml(paths: Iterable[Path]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in paths:
        docs += [d for d in yaml.safe_load_all(Path(path).read_text()) if d]
    return docs


def install_crds(kube: Kube, files: Iterable[Path | str], *, timeout: float = 30) -> list[str]:
    """Create or update each CRD and wait until the API server serves it."""
    names = []
    for crd in load_yaml(Path(f) for f in files):
        kube.apply(crd)
        names.append(crd["metadata"]["name"])
    wait_established(kube, names, timeout=timeout)
    return names


def wait_established(kube: Kube, names: Iterable[str], *, timeout: float = 30) -> None:
    for name in names:
        kube.wait_for(
            path_for("apiextensions.k8s.io/v1", "customresourcedefinitions", name=name),
            lambda crd: any(
                c["type"] == "Established" and c["status"] == "True"
                # A CRD just created can report "conditions": null.
                for c in (crd.get("status") or {}).get("conditions") or []
            ),
            timeout=timeout,
        )


def create_namespace(kube: Kube, name: str) -> None:
    kube.create(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )


def service_account_token(
    kube: Kube, namespace: str, name: str, *, seconds: int = 3600, create: bool = True
) -> str:
    """Create the ServiceAccount if needed and mint a token for it with TokenRequest."""
    if create and not kube.exists(path_for("v1", "serviceaccounts", namespace, name)):
        kube.create(
            path_for("v1", "serviceaccounts", namespace),
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
        )
    review = kube.create(
        path_for("v1", "serviceaccounts", namespace, name) + "/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        },
    )
    token: str = review["status"]["token"]
    return token
