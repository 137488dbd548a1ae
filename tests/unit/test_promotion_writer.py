"""The promotion's write (Writer.promote): what ``oc tag`` sends, in oc's order, as whom."""

from __future__ import annotations

import asyncio
from typing import cast

from imagestream_trigger.act.client import Api
from imagestream_trigger.act.writer import Outcome, Writer
from imagestream_trigger.identity import ServiceAccount
from imagestream_trigger.promote import Promotion
from imagestream_trigger.resolve import ResolvedImage, TagRef
from tests.unit.builders import NOW, FakeApi, api_error

D = "sha256:" + "d" * 64
PROMOTION = Promotion(
    TagRef("dev", "app", "latest"),
    ResolvedImage(f"quay.io/acme/app@{D}", D, None),
    TagRef("prod", "app", "stable"),
)
ISTAGS = "/apis/image.openshift.io/v1/namespaces/prod/imagestreamtags"
DEPLOYER = ServiceAccount("dev", "deployer")


def promote(api: FakeApi, **kw: object) -> Outcome:
    writer = Writer(cast(Api, api), now=lambda: NOW, environ={})
    identity = kw.pop("identity", None)
    result = asyncio.run(writer.promote(PROMOTION, identity=identity, **kw))  # type: ignore[arg-type]
    return result.outcome


def test_the_tag_is_updated_as_the_triggers_service_account() -> None:
    api = FakeApi()
    assert promote(api, identity=DEPLOYER) is Outcome.Written
    (call,) = api.calls
    assert (call.method, call.path) == ("PUT", f"{ISTAGS}/app:stable")
    assert call.acting_as == "system:serviceaccount:dev:deployer"
    assert call.body["tag"]["from"] == {
        "kind": "ImageStreamImage",
        "name": f"app@{D}",
        "namespace": "dev",
    }


def test_a_tag_the_server_does_not_have_is_created_as_oc_does() -> None:
    api = FakeApi().on("PUT", "/app:stable", api_error(404, "not found"))
    assert promote(api) is Outcome.Written
    assert [(c.method, c.path) for c in api.calls] == [
        ("PUT", f"{ISTAGS}/app:stable"),
        ("POST", ISTAGS),
    ]


def test_a_refusal_says_which_right_the_service_account_lacks() -> None:
    api = FakeApi().on(
        "PUT",
        "/app:stable",
        api_error(403, 'User "system:serviceaccount:dev:deployer" cannot update resource'),
    )
    writer = Writer(cast(Api, api), now=lambda: NOW, environ={})
    result = asyncio.run(writer.promote(PROMOTION, identity=DEPLOYER))
    assert result.outcome is Outcome.Forbidden
    assert "ServiceAccount dev/deployer may not update imagestreamtags" in result.message
    assert "namespace prod" in result.message


def test_a_dry_run_sends_nothing() -> None:
    api = FakeApi()
    assert promote(api, dry_run=True) is Outcome.DryRun
    assert api.calls == []
