"""The OpenShift emulation: an HTTPS front proxy in front of the real kube-apiserver.

Every request is forwarded unchanged (watch streams included, bytes passed
through as they arrive). Only what a CRD cannot express is answered here,
with the caller's own permissions checked by SubjectAccessReview so RBAC
refusals look exactly as they would on OpenShift. The caller is who
kube-apiserver says the request is from (a SelfSubjectReview with the request's
credentials and ``Impersonate-*`` headers), so an impersonated request is checked
as the impersonated user, as openshift-apiserver checks what kube-apiserver hands
it after impersonation:

* ``POST .../buildconfigs/{name}/instantiate``: BuildRequest in, Build out.
* ``GET .../imagestreamtags[/{stream}:{tag}]``: synthesized from the ImageStream;
  a WATCH is refused with 405, as OpenShift does.
* ``GET .../imagestreamimages/{stream}@{digest}``: the Image (an emulated cluster-scoped
  object, written by ``simulate.import_image(created=...)``) of a digest in the stream.
* ``PUT``/``POST .../imagestreamtags[/{stream}:{tag}]`` (``oc tag``): the spec tag is set
  and resolved at once into the stream's ``status.tags``.
* discovery of both groups lists these subresources with their real verbs.
* with the ``openshift_apiservers`` switch on, ``GET`` of the APIServices
  ``v1.image.openshift.io`` and ``v1.build.openshift.io`` says they are served by
  the Service ``openshift-apiserver/api``, as on a real OpenShift (here the CRDs'
  local APIServices answer, which name no Service).

The state changes are computed by the pure functions in ``openshift.py``.

Tests inject failures at run time through ``/_emulation/faults`` (admin token
only; see ``Faults``): dropped instantiate responses and a whole-API outage.
When kube-apiserver itself is down, every request is answered 503, as a load
balancer in front of a real cluster would, and open watch streams break.

Run: ``python -m tests.controlplane.proxy --listen-port ... --upstream ...``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout, TCPConnector, web
from multidict import CIMultiDict

from tests.controlplane import openshift

log = logging.getLogger("openshift-emulation")

IMAGE = "image.openshift.io"
BUILD = "build.openshift.io"
# The proxy's own endpoints; kube-apiserver never serves this prefix.
ADMIN_PREFIX = "/_emulation/"
FAULTS_PATH = "/_emulation/faults"
HEALTH_PATH = "/_emulation/healthz"
ANONYMOUS: dict[str, Any] = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
_INSTANTIATE = re.compile(
    rf"^/apis/{BUILD}/v1/namespaces/([^/]+)/buildconfigs/([^/]+)/instantiate$"
)
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_APISERVICE = re.compile(
    rf"^/apis/apiregistration\.k8s\.io/v1/apiservices/(v1\.(?:{re.escape(IMAGE)}|{re.escape(BUILD)}))$"
)
_ISTAG = re.compile(
    rf"^/apis/{IMAGE}/v1/(?P<watch>watch/)?(?:namespaces/(?P<ns>[^/]+)/)?imagestreamtags(?:/(?P<name>[^/]+))?$"
)
_ISIMAGE = re.compile(
    rf"^/apis/{IMAGE}/v1/(?P<watch>watch/)?(?:namespaces/(?P<ns>[^/]+)/)?imagestreamimages(?:/(?P<name>[^/]+))?$"
)
# What OpenShift's discovery documents say about the virtual resources.
_EXTRA_RESOURCES: dict[str, list[dict[str, Any]]] = {
    IMAGE: [
        {
            "name": "imagestreamtags",
            "singularName": "imagestreamtag",
            "namespaced": True,
            "kind": "ImageStreamTag",
            "shortNames": ["istag"],
            "verbs": ["create", "delete", "get", "list", "patch", "update"],
        },
        {
            "name": "imagestreamimages",
            "singularName": "imagestreamimage",
            "namespaced": True,
            "kind": "ImageStreamImage",
            "shortNames": ["isimage"],
            "verbs": ["get"],
        },
    ],
    BUILD: [
        {
            "name": "buildconfigs/instantiate",
            "singularName": "",
            "namespaced": True,
            "group": BUILD,
            "version": "v1",
            "kind": "BuildRequest",
            "verbs": ["create"],
        }
    ],
}


def status(code: int, reason: str, message: str, **details: Any) -> web.Response:
    """A metav1.Status body, the way kube-apiserver words its errors."""
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return web.json_response(body, status=code)


def unavailable(detail: str) -> web.Response:
    # kube-apiserver's own wording for StatusReasonServiceUnavailable.
    message = f"the server is currently unable to handle the request ({detail})"
    return status(503, "ServiceUnavailable", message)


@dataclass
class Faults:
    """Failures a test switches on with ``PUT /_emulation/faults``, and what they did.

    Switches: ``drop_instantiate_responses`` (int), ``unavailable_for_s``
    (float seconds from now; 0 ends an outage) and ``openshift_apiservers`` (bool:
    not a failure, the look of a real OpenShift's API registration). The rest are
    counters.
    """

    drop_instantiate_responses: int = 0
    openshift_apiservers: bool = False
    # A network partition of one client (by the SHA-256 of its bearer token): its open
    # streams break, its new requests wait until the partition ends and are forwarded
    # then only if the client is still waiting (it has not given up on them).
    partition_token_sha256: str = ""
    partition_until: float = 0.0  # time.monotonic()
    partition_started: float = 0.0
    partition_held: int = 0  # requests that waited for the partition to end
    partition_held_writes: int = 0  # ... of which writes
    partition_dropped: int = 0  # ... whose client gave up meanwhile: never forwarded
    partition_late_writes: int = 0  # writes of that client forwarded after it began
    unavailable_until: float = 0.0  # time.monotonic()
    instantiate_requests: int = 0  # received, refused ones included
    instantiate_responses_dropped: int = 0
    unavailable_responses: int = 0  # 503s from the outage switch
    upstream_unavailable_responses: int = 0  # 503s because kube-apiserver was unreachable
    streams_broken: int = 0  # streamed responses (watches) cut by an outage or a dead upstream

    def unavailable_for(self) -> float:
        return max(0.0, self.unavailable_until - time.monotonic())

    def partitioned(self, token: str | None) -> bool:
        return (
            bool(token)
            and bool(self.partition_token_sha256)
            and time.monotonic() < self.partition_until
            and hashlib.sha256(str(token).encode()).hexdigest() == self.partition_token_sha256
        )

    def cut_off_since_partition(self, token: str | None) -> bool:
        """The client was partitioned at some point (now or earlier)."""
        return (
            bool(token)
            and bool(self.partition_token_sha256)
            and self.partition_started > 0
            and hashlib.sha256(str(token).encode()).hexdigest() == self.partition_token_sha256
        )

    def state(self, streams_open: int) -> dict[str, Any]:
        return {
            "drop_instantiate_responses": self.drop_instantiate_responses,
            "unavailable_for_s": round(self.unavailable_for(), 3),
            "openshift_apiservers": self.openshift_apiservers,
            "partition_for_s": round(max(0.0, self.partition_until - time.monotonic()), 3),
            "partition_held": self.partition_held,
            "partition_held_writes": self.partition_held_writes,
            "partition_dropped": self.partition_dropped,
            "partition_late_writes": self.partition_late_writes,
            "instantiate_requests": self.instantiate_requests,
            "instantiate_responses_dropped": self.instantiate_responses_dropped,
            "unavailable_responses": self.unavailable_responses,
            "upstream_unavailable_responses": self.upstream_unavailable_responses,
            "streams_broken": self.streams_broken,
            "streams_open": streams_open,
        }


class Emulation:
    def __init__(self, upstream: str, ca_file: str, admin_token: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.admin_token = admin_token
        self.ssl = ssl.create_default_context(cafile=ca_file)
        self.session: ClientSession | None = None
        # One instantiate at a time per BuildConfig: the numbering and the
        # already-built check must not interleave.
        self.bc_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)
        self.faults = Faults()
        # Streamed responses in flight, so an outage can cut them.
        self.streams: dict[ClientResponse, web.Request] = {}

    async def start(self, _app: web.Application) -> None:
        self.session = ClientSession(
            connector=TCPConnector(ssl=self.ssl, limit=0),
            # Watches are long-lived: never time a read out here.
            timeout=ClientTimeout(total=None, sock_read=None),
            auto_decompress=False,
        )

    async def close(self, _app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    # -- generic forwarding ------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith(ADMIN_PREFIX):
            return await self.admin(request)
        if _INSTANTIATE.match(path):
            self.faults.instantiate_requests += 1
        if self.faults.unavailable_for() > 0:
            self.faults.unavailable_responses += 1
            return unavailable("outage injected by the test harness")
        token = _token(request)
        if self.faults.partitioned(token):
            self.faults.partition_held += 1
            self.faults.partition_held_writes += request.method in _WRITES
            while self.faults.partitioned(token):
                await asyncio.sleep(0.02)
                if request.transport is None or request.transport.is_closing():
                    self.faults.partition_dropped += 1
                    return web.Response(status=499)  # nobody is listening any more
        if request.method in _WRITES and self.faults.cut_off_since_partition(token):
            self.faults.partition_late_writes += 1
        try:
            return await self.route(request)
        except (ClientError, OSError) as error:
            # kube-apiserver is down or restarting (streams handle their own breaks).
            self.faults.upstream_unavailable_responses += 1
            log.warning("%s %s: kube-apiserver unreachable: %r", request.method, path, error)
            return unavailable(f"kube-apiserver unreachable: {type(error).__name__}")

    async def route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if match := _INSTANTIATE.match(path):
            if request.method != "POST":
                return status(
                    405, "MethodNotAllowed", f"the server does not allow this method on {path}"
                )
            return await self.instantiate(request, match.group(1), match.group(2))
        if match := _ISTAG.match(path):
            return await self.imagestreamtags(request, match)
        if match := _ISIMAGE.match(path):
            return await self.imagestreamimages(request, match)
        if (
            request.method == "GET"
            and self.faults.openshift_apiservers
            and (match := _APISERVICE.match(path))
        ):
            return await self.openshift_apiservice(request, match.group(1))
        if request.method == "GET" and path in (f"/apis/{IMAGE}/v1", f"/apis/{BUILD}/v1"):
            return await self.group_discovery(request, path.split("/")[2])
        if request.method == "GET" and path == "/apis":
            return await self.aggregated_discovery(request)
        return await self.forward(request)

    def _upstream_headers(self, request: web.Request) -> dict[str, str]:
        return {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}

    async def forward(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        body = await request.read() if request.body_exists else None
        async with self.session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=self._upstream_headers(request),
            data=body,
            allow_redirects=False,
        ) as upstream:
            headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
            if upstream.content_length is not None:
                return web.Response(
                    status=upstream.status, headers=headers, body=await upstream.read()
                )
            # Chunked: watches and large lists. Pass each chunk on as it comes.
            response = web.StreamResponse(status=upstream.status, headers=headers)
            await response.prepare(request)
            self.streams[upstream] = request
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                await response.write_eof()
            except asyncio.CancelledError:
                upstream.close()
                raise
            except (ClientError, OSError):
                # The client went away (a watch was closed), or kube-apiserver died
                # or an outage cut the stream: drop both ends, with no final chunk,
                # so the client sees the stream break as it would on a real cluster.
                upstream.close()
                if request.transport is not None and not request.transport.is_closing():
                    self.faults.streams_broken += 1
                    request.transport.abort()
            finally:
                self.streams.pop(upstream, None)
            return response

    async def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        impersonate: list[tuple[str, str]] | None = None,
    ) -> tuple[int, Any]:
        """A JSON call to kube-apiserver, as admin unless ``token`` is given
        (``impersonate``: the caller's Impersonate-* headers, passed on as they came)."""
        assert self.session is not None
        headers = CIMultiDict(
            {"Authorization": f"Bearer {token or self.admin_token}", "Accept": "application/json"}
        )
        for name, value in impersonate or ():
            headers.add(name, value)
        async with self.session.request(
            method, self.upstream + path, json=body, headers=headers
        ) as response:
            raw = await response.read()
            try:
                return response.status, json.loads(raw or b"null")
            except ValueError:  # e.g. "404 page not found" for a group that is not served
                return response.status, raw.decode(errors="replace")

    async def caller(self, request: web.Request) -> dict[str, Any] | web.Response:
        """Who the request acts as (its ``userInfo``), or kube-apiserver's own refusal.

        On OpenShift kube-apiserver authenticates a request and checks and applies its
        impersonation headers before openshift-apiserver sees it, with the resulting
        user: so a SelfSubjectReview with the same credentials and headers says who
        that is, and answers the same 403 when the impersonation is not allowed.
        """
        token = _token(request)
        if not token:
            return dict(ANONYMOUS)
        impersonate = [
            (name, value)
            for name, value in request.headers.items()
            if name.lower().startswith("impersonate-")
        ]
        code, who = await self.api(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            token=token,
            impersonate=impersonate,
        )
        if code == 401:
            return dict(ANONYMOUS)
        if code != 201:
            return web.json_response(who, status=code)
        user: dict[str, Any] = (who or {}).get("status", {}).get("userInfo", {})
        return user

    async def allowed(
        self,
        user: dict[str, Any],
        verb: str,
        group: str,
        resource: str,
        namespace: str,
        **extra: str,
    ) -> bool:
        """Whether ``user`` (from ``caller``) may do this: a SubjectAccessReview, as
        openshift-apiserver asks it."""
        attrs = {"verb": verb, "group": group, "resource": resource, "namespace": namespace}
        for key, value in extra.items():
            attrs[key] = value
        spec: dict[str, Any] = {
            "resourceAttributes": attrs,
            "user": user.get("username", ""),
            "groups": user.get("groups") or [],
        }
        if user.get("uid"):
            spec["uid"] = user["uid"]
        if user.get("extra"):
            spec["extra"] = user["extra"]
        code, review = await self.api(
            "POST",
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
        return bool(code == 201 and review["status"].get("allowed"))

    # -- build.openshift.io: instantiate -------------------------------------

    async def instantiate(self, request: web.Request, namespace: str, name: str) -> web.Response:
        who = await self.caller(request)
        if isinstance(who, web.Response):
            return who
        user = who.get("username", "unknown")
        ok = await self.allowed(
            who,
            "create",
            BUILD,
            "buildconfigs",
            namespace,
            subresource="instantiate",
            name=name,
        )
        if not ok:
            return status(
                403,
                "Forbidden",
                f'buildconfigs.{BUILD} "{name}" is forbidden: User "{user}" cannot create '
                f'resource "buildconfigs/instantiate" in API group "{BUILD}" '
                f'in the namespace "{namespace}"',
                name=name,
                group=BUILD,
                kind="buildconfigs",
            )
        try:
            build_request = await request.json()
        except ValueError:
            return status(400, "BadRequest", "the request body is not a JSON BuildRequest")
        bc_path = f"/apis/{BUILD}/v1/namespaces/{namespace}/buildconfigs/{name}"
        async with self.bc_locks[(namespace, name)]:
            code, bc = await self.api("GET", bc_path)
            if code != 200:
                return web.json_response(bc, status=code)
            # OpenShift's strategy admission: starting a build needs create on builds/<strategy>.
            try:
                strategy = openshift.strategy_subresource(bc)
            except openshift.OpenShiftError as refused:
                return status(refused.code, refused.reason, refused.status_message())
            ok = await self.allowed(who, "create", BUILD, "builds", namespace, subresource=strategy)
            if not ok:
                kind = openshift.strategy_type(bc["spec"]["strategy"])
                return status(
                    403,
                    "Forbidden",
                    f'builds.{BUILD} "{name}" is forbidden: build strategy {kind} is not '
                    f'allowed (User "{user}" cannot create builds/{strategy})',
                )
            try:
                build, bc_status = openshift.instantiate(bc, build_request, dt.datetime.now(dt.UTC))
            except openshift.OpenShiftError as refused:
                # Same code and words as openshift-apiserver (AlreadyBuilt is a 500 there).
                return status(refused.code, refused.reason, refused.status_message())
            bc["status"] = bc_status
            # resourceVersion is kept: a concurrent writer makes this 409, never lost.
            code, updated = await self.api("PUT", bc_path + "/status", bc)
            if code != 200:
                return web.json_response(updated, status=code)
            builds = f"/apis/{BUILD}/v1/namespaces/{namespace}/builds"
            code, created = await self.api("POST", builds, build)
            if code == 201:
                # POST drops status on a resource with a status subresource: set it apart.
                created["status"] = build.get("status", {})
                code_status, with_status = await self.api(
                    "PUT", f"{builds}/{created['metadata']['name']}/status", created
                )
                if code_status == 200:
                    created = with_status
            log.info(
                "instantiate %s/%s -> %s (%s)", namespace, name, build["metadata"]["name"], code
            )
            if code == 201 and self.faults.drop_instantiate_responses > 0:
                # The work is done; the caller never hears of it (a lost response).
                self.faults.drop_instantiate_responses -= 1
                self.faults.instantiate_responses_dropped += 1
                log.info("instantiate %s/%s: response dropped (fault injected)", namespace, name)
                if request.transport is not None:
                    request.transport.abort()
            return web.json_response(created, status=code)

    # -- fault injection -----------------------------------------------------

    async def admin(self, request: web.Request) -> web.Response:
        if request.path == HEALTH_PATH:
            # The proxy's own liveness: answered even during an injected outage.
            return web.Response(text="ok")
        if request.path != FAULTS_PATH:
            return status(404, "NotFound", f"{request.path} is not an emulation endpoint")
        token = _token(request)
        if token is None:
            return status(401, "Unauthorized", "Unauthorized")
        if not hmac.compare_digest(token.encode(), self.admin_token.encode()):
            return status(403, "Forbidden", "only the admin token may inject faults")
        if request.method == "DELETE":
            self.faults = Faults()
        elif request.method == "PUT":
            try:
                changes = await request.json()
            except ValueError:
                return status(400, "BadRequest", "the body must be a JSON object")
            problem = self.apply_faults(changes)
            if problem:
                return status(400, "BadRequest", problem)
        elif request.method != "GET":
            return status(405, "MethodNotAllowed", f"use GET, PUT or DELETE on {FAULTS_PATH}")
        return web.json_response(self.faults.state(len(self.streams)))

    def apply_faults(self, changes: Any) -> str | None:
        """Apply the switches in ``changes``; a problem (and no change at all) if invalid."""
        if not isinstance(changes, dict):
            return "the body must be a JSON object"
        unknown = set(changes) - {
            "drop_instantiate_responses",
            "unavailable_for_s",
            "openshift_apiservers",
            "partition_token_sha256",
            "partition_for_s",
        }
        if unknown:
            return f"unknown fault switches: {sorted(unknown)}"
        drops = changes.get("drop_instantiate_responses", self.faults.drop_instantiate_responses)
        if isinstance(drops, bool) or not isinstance(drops, int) or drops < 0:
            return "drop_instantiate_responses must be an integer >= 0"
        outage = changes.get("unavailable_for_s")
        if outage is not None and (
            isinstance(outage, bool) or not isinstance(outage, int | float) or outage < 0
        ):
            return "unavailable_for_s must be a number of seconds >= 0"
        cut = changes.get("partition_token_sha256")
        cut_for = changes.get("partition_for_s")
        if (cut is None) != (cut_for is None):
            return "partition_token_sha256 and partition_for_s go together"
        if cut is not None and (
            not isinstance(cut, str)
            or not re.fullmatch(r"[0-9a-f]{64}", cut)
            or isinstance(cut_for, bool)
            or not isinstance(cut_for, int | float)
            or cut_for <= 0
        ):
            return "partition_token_sha256 is a hex SHA-256, partition_for_s seconds > 0"
        served = changes.get("openshift_apiservers", self.faults.openshift_apiservers)
        if not isinstance(served, bool):
            return "openshift_apiservers must be true or false"
        self.faults.openshift_apiservers = served
        if cut is not None:
            assert isinstance(cut_for, int | float)
            self.faults.partition_token_sha256 = cut
            self.faults.partition_started = time.monotonic()
            self.faults.partition_until = time.monotonic() + cut_for
            log.warning("client %s… partitioned for %.3fs", cut[:12], cut_for)
            self.break_streams(token_sha256=cut)
        self.faults.drop_instantiate_responses = drops
        if outage is not None:
            self.faults.unavailable_until = time.monotonic() + outage
            log.warning("outage injected for %.3fs", outage)
            if outage > 0:
                self.break_streams()
        return None

    def break_streams(self, token_sha256: str = "") -> None:
        # An API server going away ends its watches abruptly; do the same (for one client
        # only, when it is the one cut off).
        for upstream, request in list(self.streams.items()):
            token = _token(request)
            if token_sha256 and hashlib.sha256(str(token).encode()).hexdigest() != token_sha256:
                continue
            upstream.close()
            if request.transport is not None and not request.transport.is_closing():
                self.faults.streams_broken += 1
                request.transport.abort()

    # -- API registration as on OpenShift -------------------------------------

    async def openshift_apiservice(self, request: web.Request, name: str) -> web.Response:
        """The group's APIService as openshift-apiserver registers it on OpenShift.

        Built from the real local one the CRD got (so kind, names and version are
        kube-apiserver's own), with what differs on OpenShift: a Service to proxy to,
        and no automanaged label (OpenShift's operator owns it, not the CRD).
        """
        code, found = await self.api("GET", request.path, token=_token(request))
        if code != 200:
            return web.json_response(found, status=code)
        labels = found.get("metadata", {}).get("labels") or {}
        labels.pop("kube-aggregator.kubernetes.io/automanaged", None)
        found["spec"] = {
            **found.get("spec", {}),
            "service": {"namespace": "openshift-apiserver", "name": "api", "port": 443},
            "groupPriorityMinimum": 9900,
            "versionPriority": 15,
        }
        return web.json_response(found)

    # -- image.openshift.io: imagestreamtags ---------------------------------

    async def imagestreamtags(self, request: web.Request, match: re.Match[str]) -> web.Response:
        namespace, name = match.group("ns"), match.group("name")
        if match.group("watch") or request.query.get("watch") in ("true", "1"):
            return status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if request.method in ("PUT", "POST") and namespace:
            return await self.tag_into(request, namespace, name)
        if request.method != "GET":
            return status(
                501,
                "NotImplemented",
                f"{request.method} on imagestreamtags is not emulated by the test control plane",
            )
        who = await self.caller(request)
        if isinstance(who, web.Response):
            return who
        user = who.get("username", "unknown")
        ok = await self.allowed(
            who, "get" if name else "list", IMAGE, "imagestreamtags", namespace or ""
        )
        if not ok:
            where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            return status(
                403,
                "Forbidden",
                f'imagestreamtags.{IMAGE} is forbidden: User "{user}" cannot '
                f'{"get" if name else "list"} resource "imagestreamtags" '
                f'in API group "{IMAGE}"{where}',
            )
        if name:
            stream, sep, tag = name.partition(":")
            if not sep or not stream or not tag:
                return status(
                    400,
                    "BadRequest",
                    f'"{name}" is not a valid ImageStreamTag name: use <stream>:<tag>',
                )
            assert namespace is not None
            code, body = await self.api(
                "GET", f"/apis/{IMAGE}/v1/namespaces/{namespace}/imagestreams/{stream}"
            )
            istag = openshift.image_stream_tag(body, tag) if code == 200 else None
            if istag is None:
                return status(
                    404,
                    "NotFound",
                    f'imagestreamtags.{IMAGE} "{name}" not found',
                    name=name,
                    group=IMAGE,
                    kind="imagestreamtags",
                )
            return web.json_response(istag)
        scope = f"/namespaces/{namespace}" if namespace else ""
        code, streams = await self.api("GET", f"/apis/{IMAGE}/v1{scope}/imagestreams")
        if code != 200:
            return web.json_response(streams, status=code)
        items = []
        for stream_obj in streams.get("items", []):
            for tag_status in stream_obj.get("status", {}).get("tags", []) or []:
                istag = openshift.image_stream_tag(stream_obj, tag_status["tag"])
                if istag is not None:
                    items.append(istag)
        return web.json_response(
            {
                "kind": "ImageStreamTagList",
                "apiVersion": f"{IMAGE}/v1",
                "metadata": {"resourceVersion": streams["metadata"].get("resourceVersion", "")},
                "items": items,
            }
        )

    async def imagestreamimages(self, request: web.Request, match: re.Match[str]) -> web.Response:
        """GET of one ImageStreamImage (the only verb OpenShift serves on it)."""
        namespace, name = match.group("ns"), match.group("name")
        if request.method != "GET" or match.group("watch") or not namespace or not name:
            return status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        who = await self.caller(request)
        if isinstance(who, web.Response):
            return who
        if not await self.allowed(who, "get", IMAGE, "imagestreamimages", namespace, name=name):
            user = who.get("username", "unknown")
            return status(
                403,
                "Forbidden",
                f'imagestreamimages.{IMAGE} "{name}" is forbidden: User "{user}" cannot get '
                f'resource "imagestreamimages" in API group "{IMAGE}" in the namespace '
                f'"{namespace}"',
            )
        stream, at, digest = name.partition("@")
        if not at or not stream or not digest:
            return status(
                400,
                "BadRequest",
                f'"{name}" is not a valid ImageStreamImage name: use <stream>@<digest>',
            )
        code, body = await self.api(
            "GET", f"/apis/{IMAGE}/v1/namespaces/{namespace}/imagestreams/{stream}"
        )
        found = None
        if code == 200:
            image_code, image = await self.api(
                "GET", f"/apis/{IMAGE}/v1/images/{openshift.image_object_name(digest)}"
            )
            found = openshift.image_stream_image(body, digest, image if image_code == 200 else None)
        if found is None:
            return status(
                404,
                "NotFound",
                f'imagestreamimages.{IMAGE} "{name}" not found',
                name=name,
                group=IMAGE,
                kind="imagestreamimages",
            )
        return web.json_response(found)

    async def tag_into(
        self, request: web.Request, namespace: str, name: str | None
    ) -> web.Response:
        """``oc tag``'s write: PUT (update, or create when missing) or POST (create) of an
        ImageStreamTag. As openshift-apiserver does it, the spec tag is set on the stream
        (the stream is created if need be) and a changed reference is resolved at once into
        ``status.tags`` (openshift.tag_event_for, spec_with_tag, apply_tag). Unlike the real
        server, spec and status are two writes (the CRD's status subresource), so a watch
        sees the spec change a moment before the new item."""
        create = request.method == "POST"
        verb = "create" if create else "update"
        who = await self.caller(request)
        if isinstance(who, web.Response):
            return who
        user = who.get("username", "unknown")
        try:
            body = await request.json()
        except ValueError:
            return status(400, "BadRequest", "the request body is not a JSON ImageStreamTag")
        if not isinstance(body, dict):
            return status(400, "BadRequest", "the request body is not a JSON ImageStreamTag")
        name = name or str((body.get("metadata") or {}).get("name", ""))
        stream_name, sep, tag = name.partition(":")
        if not sep or not stream_name or not tag or ":" in tag:
            return status(400, "BadRequest", f'"{name}" must be of the form <stream_name>:<tag>')
        if not await self.allowed(who, verb, IMAGE, "imagestreamtags", namespace, name=name):
            return status(
                403,
                "Forbidden",
                f'imagestreamtags.{IMAGE} "{name}" is forbidden: User "{user}" cannot {verb} '
                f'resource "imagestreamtags" in API group "{IMAGE}" in the namespace '
                f'"{namespace}"',
                name=name,
                group=IMAGE,
                kind="imagestreamtags",
            )
        tag_ref = body.get("tag")
        if not isinstance(tag_ref, dict):
            return status(
                400,
                "BadRequest",
                f"imagestreamtag {tag} is not a spec tag in imagestream "
                f"{namespace}/{stream_name}, cannot be updated",
            )
        annotations = (body.get("metadata") or {}).get("annotations")
        streams = f"/apis/{IMAGE}/v1/namespaces/{namespace}/imagestreams"
        for _ in range(10):
            code, stream = await self.api("GET", f"{streams}/{stream_name}")
            if code == 404:
                stream = None
            elif code != 200:
                return web.json_response(stream, status=code)
            existed = stream is not None and openshift.spec_tag(stream, tag) is not None
            if create and existed:
                return status(
                    409,
                    "AlreadyExists",
                    f'imagestreamtags.{IMAGE} "{name}" already exists',
                    name=name,
                    group=IMAGE,
                    kind="imagestreamtags",
                )
            src_ns, src_name = openshift.tag_source(namespace, stream_name, tag_ref)
            if src_ns != namespace and not await self.allowed(
                who, "get", IMAGE, "imagestreams", src_ns, subresource="layers", name=src_name
            ):
                # The strategy's TagVerifier: tagging from another namespace needs the
                # right to pull from it; refused as a validation error.
                return status(
                    422,
                    "Invalid",
                    f'ImageStream.{IMAGE} "{stream_name}" is invalid: spec.tags[{tag}].from: '
                    f"Forbidden: {src_ns}/{src_name}",
                )
            spec, changed = openshift.spec_with_tag(stream, tag, tag_ref, annotations=annotations)
            event = None
            if changed:
                if (src_ns, src_name) == (namespace, stream_name):
                    source = stream
                else:
                    code, source = await self.api(
                        "GET", f"/apis/{IMAGE}/v1/namespaces/{src_ns}/imagestreams/{src_name}"
                    )
                    source = source if code == 200 else None
                try:
                    event = openshift.tag_event_for(
                        tag_ref, stream_name, source, now=dt.datetime.now(dt.UTC)
                    )
                except openshift.OpenShiftError as refused:
                    return status(refused.code, refused.reason, refused.status_message())
            if stream is None:
                new = {
                    "apiVersion": f"{IMAGE}/v1",
                    "kind": "ImageStream",
                    "metadata": {"name": stream_name, "namespace": namespace},
                    "spec": spec,
                }
                code, written = await self.api("POST", streams, new)
            else:
                code, written = await self.api(
                    "PUT", f"{streams}/{stream_name}", {**stream, "spec": spec}
                )
            if code in (409,):
                continue  # someone wrote the stream meanwhile: start again from it
            if code not in (200, 201):
                return web.json_response(written, status=code)
            break
        else:
            return status(
                504,
                "Timeout",
                "Timeout: request did not complete within the allotted timeout",
            )
        while event is not None:
            written["status"] = openshift.apply_tag(
                written, tag, event, source_namespace=src_ns, source_name=src_name
            )
            code, updated = await self.api("PUT", f"{streams}/{stream_name}/status", written)
            if code == 200:
                written = updated
                break
            if code != 409:
                return web.json_response(updated, status=code)
            code, written = await self.api("GET", f"{streams}/{stream_name}")
            if code != 200:
                return web.json_response(written, status=code)
        log.info("tag %s/%s -> %s", namespace, name, (tag_ref.get("from") or {}).get("name"))
        istag = openshift.image_stream_tag(written, tag) or {
            "apiVersion": f"{IMAGE}/v1",
            "kind": "ImageStreamTag",
            "metadata": {"name": name, "namespace": namespace},
            "tag": openshift.spec_tag(written, tag),
        }
        return web.json_response(istag, status=200 if existed else 201)

    # -- discovery ---------------------------------------------------------

    async def group_discovery(self, request: web.Request, group: str) -> web.Response:
        code, doc = await self.api("GET", f"/apis/{group}/v1", token=_token(request))
        if not isinstance(doc, dict):  # not served: answer as kube-apiserver did
            return web.Response(status=code, text=str(doc))
        if code == 200:
            known = {r["name"] for r in doc.get("resources", [])}
            # Only once the CRDs are installed: the real group never exists without them.
            if known:
                doc["resources"] += [r for r in _EXTRA_RESOURCES[group] if r["name"] not in known]
        return web.json_response(doc, status=code)

    async def aggregated_discovery(self, request: web.Request) -> web.StreamResponse:
        accept = request.headers.get("Accept", "")
        if "apidiscovery.k8s.io" not in accept:
            return await self.forward(request)
        assert self.session is not None
        # Ask for JSON only (never protobuf) so the document can be amended.
        json_accept = (
            ",".join(part for part in accept.split(",") if "protobuf" not in part)
            or "application/json"
        )
        headers = {**self._upstream_headers(request), "Accept": json_accept}
        async with self.session.get(self.upstream + "/apis", headers=headers) as upstream:
            raw = await upstream.read()
            content_type = upstream.headers.get("Content-Type", "application/json")
            code = upstream.status
        if code != 200 or upstream.headers.get("Content-Encoding"):
            return web.Response(
                status=code, body=raw, content_type=None, headers={"Content-Type": content_type}
            )
        doc = json.loads(raw)
        for group in doc.get("items", []):
            extra = _EXTRA_RESOURCES.get(group.get("metadata", {}).get("name", ""))
            if not extra:
                continue
            for version in group.get("versions", []):
                if version.get("version") == "v1":
                    _amend_aggregated(version, group["metadata"]["name"])
        return web.Response(
            status=200, body=json.dumps(doc).encode(), headers={"Content-Type": content_type}
        )


def _amend_aggregated(version: dict[str, Any], group: str) -> None:
    resources = version.setdefault("resources", [])
    if group == IMAGE and not any(r.get("resource") == "imagestreamimages" for r in resources):
        resources.append(
            {
                "resource": "imagestreamimages",
                "responseKind": {"group": IMAGE, "version": "v1", "kind": "ImageStreamImage"},
                "scope": "Namespaced",
                "singularResource": "imagestreamimage",
                "shortNames": ["isimage"],
                "verbs": ["get"],
            }
        )
    if group == IMAGE and not any(r.get("resource") == "imagestreamtags" for r in resources):
        resources.append(
            {
                "resource": "imagestreamtags",
                "responseKind": {"group": IMAGE, "version": "v1", "kind": "ImageStreamTag"},
                "scope": "Namespaced",
                "singularResource": "imagestreamtag",
                "shortNames": ["istag"],
                "verbs": ["create", "delete", "get", "list", "patch", "update"],
            }
        )
    if group == BUILD:
        for resource in resources:
            if resource.get("resource") == "buildconfigs":
                subs = resource.setdefault("subresources", [])
                if not any(s.get("subresource") == "instantiate" for s in subs):
                    subs.append(
                        {
                            "subresource": "instantiate",
                            "responseKind": {
                                "group": BUILD,
                                "version": "v1",
                                "kind": "BuildRequest",
                            },
                            "verbs": ["create"],
                        }
                    )


def _token(request: web.Request) -> str | None:
    token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return token or None


def admin_token_from(token_file: str) -> str:
    """The first token of a kube-apiserver static token file (ours holds one admin line)."""
    with open(token_file) as handle:
        return handle.readline().split(",", 1)[0].strip()


def make_app(emulation: Emulation) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.on_startup.append(emulation.start)
    app.on_cleanup.append(emulation.close)
    app.router.add_route("*", "/{tail:.*}", emulation.handle)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="kube-apiserver URL")
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--cert-file", required=True)
    parser.add_argument("--key-file", required=True)
    parser.add_argument(
        "--token-file", required=True, help="static token file; first line is admin"
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    emulation = Emulation(args.upstream, args.ca_file, admin_token_from(args.token_file))
    server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ssl.load_cert_chain(args.cert_file, args.key_file)
    web.run_app(
        make_app(emulation),
        host="127.0.0.1",
        port=args.listen_port,
        ssl_context=server_ssl,
        access_log=log if args.access_log else None,
        print=None,
    )


if __name__ == "__main__":
    main()
