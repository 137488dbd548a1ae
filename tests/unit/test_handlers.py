"""The kopf wiring's own logic: one set of credentials, and finding deletions after a relist."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from kubernetes.aio import client as k8s

from imagestream_trigger.act.client import METADATA_ONLY, Api
from imagestream_trigger.api import IMAGESTREAM_RESOURCE, IMAGETRIGGER_RESOURCE
from imagestream_trigger.handlers import Sweeper, connection_info
from imagestream_trigger.index import Indexes
from imagestream_trigger.inflight import Overlay
from imagestream_trigger.intake import IMAGETRIGGER, Intake, Key, Wake
from tests.unit.builders import FakeApi, image_trigger, imagestream


def test_kopf_logs_in_with_the_operators_own_credentials() -> None:
    configuration = k8s.Configuration(host="https://api.crc.testing:6443")
    configuration.api_key = {"BearerToken": "Bearer sha256~secret"}
    configuration.ssl_ca_cert = "/var/run/ca.crt"
    api = Api(configuration)
    info = connection_info(api)
    credentials = api.credentials()
    assert info.server == credentials.server == "https://api.crc.testing:6443"
    assert info.token == credentials.token == "sha256~secret"
    assert info.scheme == "Bearer"
    assert info.ca_path == "/var/run/ca.crt"
    assert info.insecure is False


def rig() -> tuple[Intake, FakeApi, list[Wake]]:
    intake = Intake(Indexes(), Overlay(), native=True)
    intake.load("ImageStream", imagestream(name="app"))
    intake.load("ImageStream", imagestream(name="gone"))
    intake.load(IMAGETRIGGER, image_trigger([{"kind": "Deployment", "name": "web"}]))
    return intake, FakeApi(), []


async def test_a_relist_sweep_drops_what_the_list_lacks_and_wakes_its_followers() -> None:
    intake, api, woken = rig()
    listed = {"metadata": {"resourceVersion": "9"}, "items": [imagestream(name="app")]}
    api.on("GET", "/imagestreams", listed)
    sweeper = Sweeper(cast(Api, api), intake, woken.extend, selected=lambda ns: True, delay=0.01)
    sweeper.relisted("ImageStream", IMAGESTREAM_RESOURCE)
    sweeper.relisted("ImageStream", IMAGESTREAM_RESOURCE)  # one sweep per relist, not per event
    for _ in range(100):
        if api.calls and not sweeper._running:
            break
        await asyncio.sleep(0.01)
    assert len(api.calls) == 1
    # Names are all it needs: it asks for the objects' metadata only.
    assert api.accepts == [METADATA_ONLY]
    assert intake.indexes.streams.get("demo", "gone") is None
    assert intake.indexes.streams.get("demo", "app") is not None
    # The trigger follows "app", still there: deleting "gone" wakes nobody.
    assert woken == []


async def test_a_swept_trigger_is_forgotten_through_its_key() -> None:
    intake, api, woken = rig()
    api.on("GET", "/imagetriggers", {"metadata": {}, "items": []})
    sweeper = Sweeper(cast(Api, api), intake, woken.extend, selected=lambda ns: True, delay=0)
    await sweeper.sweep(IMAGETRIGGER, IMAGETRIGGER_RESOURCE)
    assert [key for key, _ in woken] == [Key(IMAGETRIGGER, "demo", "follow-app")]
    assert len(intake.indexes.triggers) == 0


async def test_an_object_indexed_after_the_list_was_asked_for_is_not_forgotten() -> None:
    intake, api, woken = rig()

    def answer(_: Any) -> dict[str, Any]:
        # While the LIST is in flight, a new stream's ADDED event is indexed.
        intake.stream("ADDED", imagestream(name="new"))
        return {"metadata": {}, "items": [imagestream(name="app"), imagestream(name="gone")]}

    api.on("GET", "/imagestreams", answer)
    sweeper = Sweeper(cast(Api, api), intake, woken.extend, selected=lambda ns: True)
    await sweeper.sweep("ImageStream", IMAGESTREAM_RESOURCE)
    assert intake.indexes.streams.get("demo", "new") is not None


async def test_a_failed_sweep_changes_nothing(caplog: Any) -> None:
    from tests.unit.builders import api_error

    intake, api, woken = rig()
    api.on("GET", "/imagestreams", api_error(503, "unavailable"))
    sweeper = Sweeper(cast(Api, api), intake, woken.extend, selected=lambda ns: True)
    await sweeper.sweep("ImageStream", IMAGESTREAM_RESOURCE)
    assert len(intake.indexes.streams) == 2
    assert woken == []
    assert "could not list imagestreams" in caplog.text


async def test_a_relist_of_our_own_watch_sweeps_both_kopf_resources() -> None:
    intake, api, woken = rig()
    api.on("GET", "/imagestreams", {"metadata": {}, "items": [imagestream(name="app")]})
    api.on("GET", "/imagetriggers", {"metadata": {}, "items": []})
    sweeper = Sweeper(cast(Api, api), intake, woken.extend, selected=lambda ns: True, delay=0)
    sweeper.everything()
    for _ in range(100):
        if len(api.calls) == 2 and not sweeper._running:
            break
        await asyncio.sleep(0.01)
    assert sorted(c.path.rsplit("/", 1)[1] for c in api.calls) == ["imagestreams", "imagetriggers"]
    assert intake.indexes.streams.get("demo", "gone") is None
    assert len(intake.indexes.triggers) == 0


def test_a_kubeconfigs_tls_server_name_is_what_certificates_are_checked_against() -> None:
    configuration = k8s.Configuration(host="https://10.0.0.1:6443")
    configuration.tls_server_name = "api.crc.testing"
    assert Api(configuration)._server_hostname == "api.crc.testing"
    assert Api(k8s.Configuration(host="https://10.0.0.1:6443"))._server_hostname is None
