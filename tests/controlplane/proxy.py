"""The OpenShift emulation: an HTTPS front proxy in front of the real kube-apiserver.

Every request is forwarded unchanged (watch streams included, bytes passed
through as they arrive). Only what a CRD cannot express is answered here,
with the caller's own permissions checked by SelfSubjectAccessReview so RBAC
refusals look exactly as they would on OpenShift:

* ``POST .../buildconfigs/{name}/instantiate``: BuildRequest in, Build out.
* ``GET .../imagestreamtags[/{stream}:{tag}]``: synthesized from the ImageStream;
  a WATCH is refused with 405, as OpenShift does.
* discovery of both groups lists these subresources with their real verbs.

The state changes are computed by the pure functions in ``openshift.py``.

Run: ``python -m tests.controlplane.proxy --listen-port ... --upstream ...``
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import re
import ssl
from collections import defaultdict
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from tests.controlplane import openshift

log = logging.getLogger("openshift-emulation")

IMAGE = "image.openshift.io"
BUILD = "build.openshift.io"
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
_ISTAG = re.compile(
    rf"^/apis/{IMAGE}/v1/(?P<watch>watch/)?(?:namespaces/(?P<ns>[^/]+)/)?imagestreamtags(?:/(?P<name>[^/]+))?$"
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
        }
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


class Emulation:
    def __init__(self, upstream: str, ca_file: str, admin_token: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.admin_token = admin_token
        self.ssl = ssl.create_default_context(cafile=ca_file)
        self.session: ClientSession | None = None
        # One instantiate at a time per BuildConfig: the numbering and the
        # already-built check must not interleave.
        self.bc_locks: defaultdict[tuple[str, str], asyncio.Lock] = defaultdict(asyncio.Lock)

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
        if match := _INSTANTIATE.match(path):
            if request.method != "POST":
                return status(
                    405, "MethodNotAllowed", f"the server does not allow this method on {path}"
                )
            return await self.instantiate(request, match.group(1), match.group(2))
        if match := _ISTAG.match(path):
            return await self.imagestreamtags(request, match)
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
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (ConnectionResetError, asyncio.CancelledError):
                # The client went away (a watch was closed): drop the upstream too.
                upstream.close()
                raise
            await response.write_eof()
            return response

    async def api(
        self, method: str, path: str, body: Any = None, *, token: str | None = None
    ) -> tuple[int, Any]:
        """A JSON call to kube-apiserver, as admin unless ``token`` is given."""
        assert self.session is not None
        headers = {
            "Authorization": f"Bearer {token or self.admin_token}",
            "Accept": "application/json",
        }
        async with self.session.request(
            method, self.upstream + path, json=body, headers=headers
        ) as response:
            raw = await response.read()
            try:
                return response.status, json.loads(raw or b"null")
            except ValueError:  # e.g. "404 page not found" for a group that is not served
                return response.status, raw.decode(errors="replace")

    async def allowed(
        self,
        request: web.Request,
        verb: str,
        group: str,
        resource: str,
        namespace: str,
        **extra: str,
    ) -> tuple[bool, str]:
        """Ask the API server whether the caller may do this; returns (allowed, username)."""
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token:
            return False, "system:anonymous"
        attrs = {"verb": verb, "group": group, "resource": resource, "namespace": namespace}
        for key, value in extra.items():
            attrs[key] = value
        code, review = await self.api(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attrs},
            },
            token=token,
        )
        if code == 401:
            return False, "system:anonymous"
        _, who = await self.api(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            token=token,
        )
        username = (who or {}).get("status", {}).get("userInfo", {}).get("username", "unknown")
        return bool(code == 201 and review["status"].get("allowed")), username

    # -- build.openshift.io: instantiate -------------------------------------

    async def instantiate(self, request: web.Request, namespace: str, name: str) -> web.Response:
        ok, user = await self.allowed(
            request,
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
            ok, user = await self.allowed(
                request, "create", BUILD, "builds", namespace, subresource=strategy
            )
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
            return web.json_response(created, status=code)

    # -- image.openshift.io: imagestreamtags ---------------------------------

    async def imagestreamtags(self, request: web.Request, match: re.Match[str]) -> web.Response:
        namespace, name = match.group("ns"), match.group("name")
        if match.group("watch") or request.query.get("watch") in ("true", "1"):
            return status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if request.method != "GET":
            return status(
                501,
                "NotImplemented",
                f"{request.method} on imagestreamtags is not emulated by the test control plane",
            )
        ok, user = await self.allowed(
            request, "get" if name else "list", IMAGE, "imagestreamtags", namespace or ""
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
