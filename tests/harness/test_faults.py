"""The fault switches reliability tests rely on do exactly what they promise.

These share the session's control plane with every other test: the autouse
fixture in tests/conftest.py resets the switches after each one, outages stay
short, and restarts return only once the plane is fully ready again.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.controlplane import simulate
from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import ApiError, Kube, path_for, service_account_token

IMAGE = "image.openshift.io/v1"
BUILD = "build.openshift.io/v1"


@contextlib.asynccontextmanager
async def session_for(plane: ControlPlane) -> AsyncIterator[aiohttp.ClientSession]:
    """An admin aiohttp client through the proxy: the stack an operator would use."""
    async with aiohttp.ClientSession(
        base_url=plane.url,
        connector=aiohttp.TCPConnector(ssl=plane.ssl_context()),
        headers={"Authorization": f"Bearer {plane.admin_token}"},
    ) as session:
        yield session


async def open_watch(session: aiohttp.ClientSession, path: str) -> aiohttp.ClientResponse:
    response = await session.get(path, params={"watch": "true", "timeoutSeconds": "60"})
    assert response.status == 200
    return response


async def read_to_the_end(response: aiohttp.ClientResponse, within: float) -> str:
    """Read a stream until it ends: "broken" or "clean"; TimeoutError if it hangs."""
    try:
        async with asyncio.timeout(within):
            async for _ in response.content:
                pass
    except aiohttp.ClientError:
        return "broken"
    finally:
        response.release()
    return "clean"


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def make_buildconfig(kube: Kube, namespace: str) -> str:
    kube.create(
        path_for(IMAGE, "imagestreams", namespace),
        {
            "apiVersion": IMAGE,
            "kind": "ImageStream",
            "metadata": {"name": "app"},
            "spec": {"tags": [{"name": "latest", "referencePolicy": {"type": "Source"}}]},
        },
    )
    kube.create(
        path_for(BUILD, "buildconfigs", namespace),
        {
            "apiVersion": BUILD,
            "kind": "BuildConfig",
            "metadata": {"name": "app-build"},
            "spec": {
                "source": {"type": "Git", "git": {"uri": "https://example.invalid/app.git"}},
                "strategy": {
                    "type": "Docker",
                    "dockerStrategy": {"from": {"kind": "ImageStreamTag", "name": "app:latest"}},
                },
                "output": {"to": {"kind": "ImageStreamTag", "name": "app-built:latest"}},
            },
        },
    )
    return path_for(BUILD, "buildconfigs", namespace, "app-build") + "/instantiate"


def build_request(kube: Kube, namespace: str) -> dict[str, Any]:
    """A BuildRequest for a newly imported image (a repeated image would be refused)."""
    reference = simulate.import_image(kube, namespace, "app", "latest").reference
    return {
        "kind": "BuildRequest",
        "apiVersion": BUILD,
        "metadata": {"name": "app-build", "namespace": namespace},
        "triggeredByImage": {"kind": "DockerImage", "name": reference},
        "from": {"kind": "ImageStreamTag", "name": "app:latest", "namespace": namespace},
    }


def build_names(kube: Kube, namespace: str) -> list[str]:
    builds = kube.get(path_for(BUILD, "builds", namespace))["items"]
    return sorted(b["metadata"]["name"] for b in builds)


async def test_a_dropped_instantiate_response_still_did_the_work_exactly_once(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    instantiate = make_buildconfig(kube, namespace)
    missing = path_for(BUILD, "buildconfigs", namespace, "nope") + "/instantiate"
    control_plane.set_faults(drop_instantiate_responses=1)

    async with session_for(control_plane) as session:
        # A refusal is answered as usual and does not use the drop up.
        async with session.post(missing, json=build_request(kube, namespace)) as refused:
            assert refused.status == 404
        assert control_plane.faults()["drop_instantiate_responses"] == 1

        with pytest.raises((aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
            async with session.post(instantiate, json=build_request(kube, namespace)) as lost:
                await lost.read()

        assert build_names(kube, namespace) == ["app-build-1"]
        bc = kube.get(path_for(BUILD, "buildconfigs", namespace, "app-build"))
        assert bc["status"]["lastVersion"] == 1
        state = control_plane.faults()
        assert state["drop_instantiate_responses"] == 0
        assert state["instantiate_responses_dropped"] == 1
        assert state["instantiate_requests"] == 2

        async with session.post(instantiate, json=build_request(kube, namespace)) as answered:
            assert answered.status == 201
            assert (await answered.json())["metadata"]["name"] == "app-build-2"
    assert build_names(kube, namespace) == ["app-build-1", "app-build-2"]


async def test_an_outage_answers_503_and_ends_by_itself(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    kube.create(path_for("v1", "configmaps", namespace), configmap("cm", n="0"))
    path = path_for("v1", "configmaps", namespace, "cm")
    watch_path = path_for("v1", "configmaps", namespace)

    async with session_for(control_plane) as session:
        watch = await open_watch(session, watch_path)
        started = time.monotonic()
        assert control_plane.set_faults(unavailable_for_s=2.0)["unavailable_for_s"] > 1.5

        # A watch open when the outage starts breaks, as the server's going away would.
        assert await read_to_the_end(watch, within=5) == "broken"
        for url, params in ((path, {}), (watch_path, {"watch": "true"})):
            async with session.get(url, params=params) as refused:
                assert refused.status == 503
                body = await refused.json()
                assert (body["kind"], body["reason"], body["code"]) == (
                    "Status",
                    "ServiceUnavailable",
                    503,
                )
        with pytest.raises(ApiError) as refused_too:
            kube.get(path)
        assert refused_too.value.status == 503

        while True:
            async with session.get(path) as answer:
                if answer.status == 200:
                    break
                assert answer.status == 503
            assert time.monotonic() - started < 5, "the outage did not end by itself"
            await asyncio.sleep(0.05)
        assert time.monotonic() - started >= 1.9
        state = control_plane.faults()
        assert state["unavailable_for_s"] == 0
        assert state["unavailable_responses"] >= 3
        assert state["streams_broken"] >= 1
        watch = await open_watch(session, watch_path)
        watch.close()
    assert kube.get(path)["data"] == {"n": "0"}


async def test_apiserver_restart_keeps_port_and_data_and_breaks_watches(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    url, apiserver_url = control_plane.url, control_plane.apiserver_url
    kube.create(path_for("v1", "configmaps", namespace), configmap("before", n="1"))

    async with session_for(control_plane) as session:
        watch = await open_watch(session, path_for("v1", "configmaps", namespace))
        # From a thread that then ends: the new kube-apiserver must outlive it.
        restarter = Restarter(control_plane, down_for=2.0)
        # Ends (it must not hang) once kube-apiserver dies.
        assert await read_to_the_end(watch, within=10) in ("broken", "clean")
        async with session.get(path_for("v1", "configmaps", namespace, "before")) as down:
            assert down.status == 503
            assert (await down.json())["reason"] == "ServiceUnavailable"
        assert restarter.is_alive(), "kube-apiserver came back before it could be seen down"
        await asyncio.to_thread(restarter.join_or_raise)

    await asyncio.sleep(0.5)
    assert control_plane.apiserver_running()
    assert (control_plane.url, control_plane.apiserver_url) == (url, apiserver_url)
    assert control_plane.faults()["upstream_unavailable_responses"] >= 1
    assert kube.get(path_for("v1", "configmaps", namespace, "before"))["data"] == {"n": "1"}
    kube.create(path_for("v1", "configmaps", namespace), configmap("after", n="2"))
    direct = Kube(control_plane.apiserver_url, control_plane.admin_token, control_plane.ca_file)
    assert direct.get(path_for("v1", "configmaps", namespace, "after"))["data"] == {"n": "2"}


class Restarter(threading.Thread):
    """``restart_apiserver`` on a thread of its own, its error re-raised on join."""

    def __init__(self, plane: ControlPlane, down_for: float) -> None:
        super().__init__(name="restarter")
        self.plane, self.down_for = plane, down_for
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.plane.restart_apiserver(self.down_for)
        except BaseException as error:
            self.error = error

    def join_or_raise(self) -> None:
        self.join(90)
        assert not self.is_alive(), "restart_apiserver did not return"
        if self.error is not None:
            raise self.error


def first_watch_answer(kube: Kube, path: str, resource_version: str) -> tuple[str, int]:
    """The first event type and code of a resumed watch (or "HTTP" and its status)."""
    try:
        for event in kube.watch(path, resource_version=resource_version, timeout=5):
            return event["type"], event["object"].get("code", 0)
    except ApiError as error:
        return "HTTP", error.status
    return "END", 0


@contextlib.contextmanager
def took_at_most(seconds: float) -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < seconds


def test_a_watch_resumed_from_before_expiry_gets_410(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    configmaps = path_for("v1", "configmaps", namespace)
    streams = path_for(IMAGE, "imagestreams", namespace)
    old_cm = kube.create(configmaps, configmap("cm", n="0"))["metadata"]["resourceVersion"]
    old_stream = kube.create(
        streams, {"apiVersion": IMAGE, "kind": "ImageStream", "metadata": {"name": "app"}}
    )["metadata"]["resourceVersion"]
    kube.patch(f"{configmaps}/cm", {"data": {"n": "1"}}, "merge")
    direct = Kube(control_plane.apiserver_url, control_plane.admin_token, control_plane.ca_file)
    # Why compaction alone is not the recipe: the watch cache still serves it from memory.
    control_plane.compact_etcd()
    assert first_watch_answer(kube, configmaps, old_cm) == ("MODIFIED", 0)

    with took_at_most(30):
        control_plane.expire_watches()

    assert first_watch_answer(kube, configmaps, old_cm) == ("ERROR", 410)
    assert first_watch_answer(direct, configmaps, old_cm) == ("ERROR", 410)
    assert first_watch_answer(kube, streams, old_stream) == ("ERROR", 410)
    with pytest.raises(ApiError) as gone:
        kube.get(configmaps, resourceVersion=old_cm, resourceVersionMatch="Exact")
    assert gone.value.status == 410
    # Fully usable again: a relist's resourceVersion resumes as normal.
    fresh = kube.get(configmaps)["metadata"]["resourceVersion"]
    kube.patch(f"{configmaps}/cm", {"data": {"n": "2"}}, "merge")
    assert first_watch_answer(kube, configmaps, fresh) == ("MODIFIED", 0)
    assert kube.get(f"{configmaps}/cm")["data"] == {"n": "2"}


def test_fault_endpoint_is_admin_only_and_validates(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    token = service_account_token(kube, namespace, "nobody")
    as_sa = Kube(control_plane.url, token, control_plane.ca_file)
    with pytest.raises(ApiError) as forbidden:
        as_sa.request("PUT", "/_emulation/faults", {"unavailable_for_s": 60})
    assert forbidden.value.status == 403
    with pytest.raises(ApiError) as invalid:
        kube.request("PUT", "/_emulation/faults", {"drop_instantiate_responses": -1})
    assert invalid.value.status == 400
    with pytest.raises(ApiError) as unknown:
        kube.request("PUT", "/_emulation/faults", {"slow": True})
    assert unknown.value.status == 400
    assert control_plane.faults()["unavailable_for_s"] == 0
    assert control_plane.faults()["drop_instantiate_responses"] == 0


def test_openshift_apiservers_switch_names_openshift_apiserver_and_resets(
    control_plane: ControlPlane, kube: Kube
) -> None:
    path = "/apis/apiregistration.k8s.io/v1/apiservices/v1.image.openshift.io"
    # The CRD's own registration: local, no Service.
    assert kube.get(path)["spec"].get("service") is None
    control_plane.set_faults(openshift_apiservers=True)
    for group in ("image", "build"):
        served = kube.get(f"/apis/apiregistration.k8s.io/v1/apiservices/v1.{group}.openshift.io")
        assert served["spec"]["service"]["namespace"] == "openshift-apiserver"
        assert served["spec"]["group"] == f"{group}.openshift.io"
    # Only GETs of those two: the rest of the API registration is untouched.
    listed = kube.get("/apis/apiregistration.k8s.io/v1/apiservices")["items"]
    assert all(a["spec"].get("service") is None for a in listed)
    control_plane.reset_faults()
    assert kube.get(path)["spec"].get("service") is None
