"""Tenancy: whom an ImageTrigger's writes impersonate, the headers that say so, and what
a refusal under impersonation tells a person."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from kubernetes.aio import client as k8s

from imagestream_trigger.act.client import Api
from imagestream_trigger.identity import (
    LOCKDOWN_FLAG,
    SPEC_FIELD,
    Right,
    ServiceAccount,
    acting_as,
    describe_denial,
    missing_right,
)

DEPLOYER = ServiceAccount("team-a", "deployer")
PATCH_WEB = Right("patch", "deployments", "apps", "team-a")
INSTANTIATE = Right("create", "buildconfigs/instantiate", "build.openshift.io", "team-a")


def test_the_impersonated_user_is_the_service_accounts_username() -> None:
    assert DEPLOYER.username == "system:serviceaccount:team-a:deployer"
    assert str(DEPLOYER) == "team-a/deployer"


def test_only_impersonate_user_is_sent() -> None:
    # The API server adds a ServiceAccount's groups itself when no Impersonate-Group is
    # sent; sending them would need "impersonate" on groups too.
    assert DEPLOYER.headers() == {"Impersonate-User": "system:serviceaccount:team-a:deployer"}


@pytest.mark.parametrize(
    ("named", "default", "expected"),
    [
        ("deployer", "", ServiceAccount("team-a", "deployer", SPEC_FIELD)),
        ("deployer", "locked", ServiceAccount("team-a", "deployer", SPEC_FIELD)),
        (None, "locked", ServiceAccount("team-a", "locked", LOCKDOWN_FLAG)),
        ("", "locked", ServiceAccount("team-a", "locked", LOCKDOWN_FLAG)),
        (None, "", None),
    ],
    ids=["named", "named-wins-over-default", "lockdown-default", "empty-is-unset", "operator"],
)
def test_who_a_trigger_acts_as(
    named: str | None, default: str, expected: ServiceAccount | None
) -> None:
    assert acting_as("team-a", named, default) == expected


@pytest.mark.parametrize(
    ("message", "attempted", "right"),
    [
        pytest.param(
            'deployments.apps "web" is forbidden: User "system:serviceaccount:team-a:deployer" '
            'cannot patch resource "deployments" in API group "apps" in the namespace "team-a"',
            PATCH_WEB,
            "patch deployments (API group apps) in namespace team-a",
            id="kube-apiserver",
        ),
        pytest.param(
            'buildconfigs.build.openshift.io "app" is forbidden: User "system:serviceaccount:'
            'team-a:deployer" cannot create resource "buildconfigs/instantiate" in API group '
            '"build.openshift.io" in the namespace "team-a"',
            INSTANTIATE,
            "create buildconfigs/instantiate (API group build.openshift.io) in namespace team-a",
            id="subresource",
        ),
        pytest.param(
            'buildconfigs.build.openshift.io "app" is forbidden: build strategy Custom is not '
            "allowed",
            INSTANTIATE,
            "create builds/custom (API group build.openshift.io) in namespace team-a",
            id="openshift-strategy-admission",
        ),
        pytest.param(
            'imagestreams.image.openshift.io "base" is forbidden: User "system:serviceaccount:'
            'team-a:deployer" cannot get resource "imagestreams" in API group '
            '"image.openshift.io" in the namespace "shared"',
            Right("get", "imagestreams", "image.openshift.io", "shared"),
            "get imagestreams (API group image.openshift.io) in namespace shared",
            id="cross-namespace-source",
        ),
        pytest.param(
            'configmaps is forbidden: User "u" cannot list resource "configmaps" in API group ""'
            ' in the namespace "team-a"',
            PATCH_WEB,
            "list configmaps in namespace team-a",
            id="core-group",
        ),
        pytest.param(
            "denied by a webhook", PATCH_WEB, str(PATCH_WEB), id="unparsed-falls-back-to-attempt"
        ),
    ],
)
def test_the_missing_right_is_read_from_the_refusal(
    message: str, attempted: Right, right: str
) -> None:
    assert str(missing_right(message, attempted)) == right


def test_a_refusal_names_the_service_account_the_right_and_a_missing_account() -> None:
    message = describe_denial(
        DEPLOYER,
        INSTANTIATE,
        'buildconfigs.build.openshift.io "app" is forbidden: build strategy Custom is not allowed',
    )
    assert message.startswith(
        "ServiceAccount team-a/deployer may not create builds/custom "
        "(API group build.openshift.io) in namespace team-a."
    )
    assert "spec.serviceAccountName" in message
    assert "RoleBinding" in message
    assert "check that the ServiceAccount exists" in message
    # Understood: the server's words add nothing.
    assert "API server:" not in message


def test_a_refusal_not_understood_keeps_the_servers_words() -> None:
    locked = ServiceAccount("team-a", "locked", LOCKDOWN_FLAG)
    message = describe_denial(locked, PATCH_WEB, "admission webhook said no")
    assert message.startswith(
        "ServiceAccount team-a/locked may not patch deployments (API group apps) in namespace "
        "team-a."
    )
    assert "--default-service-account" in message
    assert message.endswith("API server: admission webhook said no")


def test_an_operator_without_impersonate_is_told_apart() -> None:
    message = describe_denial(
        DEPLOYER,
        PATCH_WEB,
        'serviceaccounts "deployer" is forbidden: User "system:serviceaccount:ops:'
        'imagestream-trigger" cannot impersonate resource "serviceaccounts" in API group "" '
        'in the namespace "team-a"',
    )
    assert message.startswith("the operator may not act as ServiceAccount team-a/deployer")
    assert '"impersonate" on "serviceaccounts"' in message


# -- the real client: one session, one header more -----------------------------------------


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[tuple[dict[str, str], object]]]]:
    """A local HTTP server recording each request's headers and the connection it came on."""
    seen: list[tuple[dict[str, str], object]] = []

    async def handle(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.append((dict(request.headers), peer))
        return web.json_response({"kind": "Status"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_impersonated_requests_share_the_operators_session_and_connection(
    recorder: tuple[str, list[tuple[dict[str, str], object]]],
) -> None:
    url, seen = recorder
    configuration = k8s.Configuration(host=url)
    configuration.api_key = {"BearerToken": "operator-token"}
    api = Api(configuration)
    try:
        await api.request("GET", "/a", resource="a")
        session = api.session()
        await api.request("PATCH", "/b", body=[], resource="b", impersonate=DEPLOYER)
        await api.with_retries("GET", "/c", resource="c", impersonate=DEPLOYER)
        await api.request("GET", "/d", resource="d")
        assert api.session() is session
    finally:
        await api.close()
        await asyncio.sleep(0)
    headers = [h for h, _ in seen]
    assert all(h["Authorization"] == "Bearer operator-token" for h in headers)
    assert [h.get("Impersonate-User") for h in headers] == [
        None,
        "system:serviceaccount:team-a:deployer",
        "system:serviceaccount:team-a:deployer",
        None,
    ]
    assert not any("Impersonate-Group" in h for h in headers)
    # Sequential requests on one keep-alive connection: the impersonated ones included.
    assert len({peer for _, peer in seen}) == 1
