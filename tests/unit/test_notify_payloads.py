"""Notifications, pure part: the receivers' spec, what a pass has to say, the three bodies."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from imagestream_trigger.act.writer import Outcome, WriteResult
from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.models import parse_spec
from imagestream_trigger.report.notification import (
    Notification,
    NotifyEvent,
    cloudevent_headers,
    json_body,
    pass_notifications,
    render,
    slack_body,
)
from imagestream_trigger.resolve import TagRef

IMAGE = "quay.io/acme/app@sha256:" + "3e" * 32
SOURCE = TagRef("team-a", "app", "latest")
TIME = "2025-01-10T12:10:03Z"


def notification(event: NotifyEvent, message: str = "something happened") -> Notification:
    return Notification(
        event, "team-a", "web", IMAGE, SOURCE, ("Deployment/web", "BuildConfig/b"), message, TIME
    )


# -- spec.rollout.notify --------------------------------------------------------------------


def spec(*receivers: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": {"imageStreamTag": "app:latest"},
        "targets": [{"kind": "Deployment", "name": "web"}],
        "rollout": {"notify": list(receivers)},
    }


def problem(*receivers: dict[str, Any]) -> str:
    with pytest.raises(InvalidSpecError) as raised:
        parse_spec(spec(*receivers))
    return raised.value.message


def test_a_receiver_takes_the_defaults() -> None:
    parsed = parse_spec(spec({"name": "team", "type": "Slack", "secretRef": {"name": "hook"}}))
    assert parsed.rollout is not None
    (receiver,) = parsed.rollout.notify
    assert receiver.secret_ref.key == "url"
    assert receiver.events == ("Applied", "Reverted", "Pending", "Failed")


def test_without_notify_there_are_no_receivers() -> None:
    parsed = parse_spec({**spec(), "rollout": {}})
    assert parsed.rollout is not None
    assert parsed.rollout.notify == ()


@pytest.mark.parametrize(
    ("receiver", "expected"),
    [
        pytest.param(
            {"name": "Team", "type": "Slack", "secretRef": {"name": "h"}},
            'spec.rollout.notify[0].name: "Team" is not a valid name',
            id="name",
        ),
        pytest.param(
            {"name": "t", "type": "Teams", "secretRef": {"name": "h"}},
            "spec.rollout.notify[0].type: must be one of 'Slack', 'JSON' or 'CloudEvents', "
            'not "Teams"',
            id="type",
        ),
        pytest.param(
            {"name": "t", "type": "JSON"},
            "spec.rollout.notify[0].secretRef: is required",
            id="secret-required",
        ),
        pytest.param(
            {"name": "t", "type": "JSON", "secretRef": {"name": "h", "key": "a/b"}},
            'spec.rollout.notify[0].secretRef.key: "a/b" is not a valid Secret key',
            id="key",
        ),
        pytest.param(
            {"name": "t", "type": "JSON", "secretRef": {"name": "h"}, "events": []},
            "spec.rollout.notify[0].events: must list at least one event",
            id="on-empty",
        ),
        pytest.param(
            {
                "name": "t",
                "type": "JSON",
                "secretRef": {"name": "h"},
                "events": ["Applied", "Done"],
            },
            "spec.rollout.notify[0].events[1]: must be one of 'Applied', 'Reverted', 'Pending' or "
            "'Failed', not \"Done\"",
            id="on-unknown",
        ),
        pytest.param(
            {
                "name": "t",
                "type": "JSON",
                "secretRef": {"name": "h"},
                "events": ["Failed", "Failed"],
            },
            'spec.rollout.notify[0].events: lists "Failed" more than once',
            id="on-twice",
        ),
    ],
)
def test_a_bad_receiver_is_named_with_what_is_wrong(
    receiver: dict[str, Any], expected: str
) -> None:
    assert expected in problem(receiver)


def test_receivers_have_distinct_names_and_are_at_most_ten() -> None:
    one = {"name": "same", "type": "JSON", "secretRef": {"name": "h"}}
    assert 'notify[0] and notify[1] are both named "same"' in problem(one, one)
    many = [{**one, "name": f"r{n}"} for n in range(11)]
    assert "must list at most 10 receivers, not 11" in problem(*many)


# -- what a pass says -------------------------------------------------------------------------


def says(
    done: list[WriteResult | None], previous: dict[str, Any] | None = None
) -> list[Notification]:
    return pass_notifications(
        namespace="team-a",
        trigger="web",
        source=SOURCE,
        image=IMAGE,
        previous=previous or {},
        keys=["Deployment/web", "Deployment/api", "BuildConfig/b"][: len(done)],
        done=done,
        now=TIME,
    )


def test_a_pass_that_wrote_says_applied_once_for_all_it_wrote() -> None:
    (applied,) = says(
        [WriteResult(Outcome.Written, image=IMAGE), None, WriteResult(Outcome.Written)]
    )
    assert applied.event is NotifyEvent.Applied
    assert applied.targets == ("Deployment/web", "BuildConfig/b")
    assert applied.message == f"{IMAGE} written to Deployment/web; built by BuildConfig/b"
    (built,) = says([None, None, WriteResult(Outcome.Written)])
    assert built.message == f"{IMAGE} built by BuildConfig/b"


def test_a_pass_that_wrote_nothing_says_nothing() -> None:
    nothing = [None, WriteResult(Outcome.NothingToDo), WriteResult(Outcome.DryRun)]
    assert says(nothing) == []
    assert says([WriteResult(Outcome.Conflict), WriteResult(Outcome.Unknown)]) == []


def test_a_refusal_is_said_once_and_a_transient_failure_not_at_all() -> None:
    refused = WriteResult(Outcome.Forbidden, "ServiceAccount team-a/d may not patch")
    transient = WriteResult(Outcome.Failed, "HTTP 503", transient=True)
    (failed,) = says([refused, transient])
    assert failed.event is NotifyEvent.Failed
    assert failed.targets == ("Deployment/web",)
    assert failed.message == "Deployment/web: Forbidden: ServiceAccount team-a/d may not patch"
    # The status of the pass that said it says so: the retry says nothing more.
    said = {
        "targets": [
            {"kind": "Deployment", "name": "web", "result": "Forbidden", "message": refused.message}
        ]
    }
    assert says([refused, transient], said) == []
    # Another problem on the same target is news.
    other = WriteResult(Outcome.Failed, "HTTP 422: invalid")
    (again,) = says([other], said)
    assert again.message == "Deployment/web: Failed: HTTP 422: invalid"


# -- the bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize("event", list(NotifyEvent))
def test_the_json_document(event: NotifyEvent) -> None:
    n = notification(event)
    assert json_body(n) == {
        "kind": "ImageTriggerNotification",
        "version": 1,
        "id": n.id,
        "event": event.value,
        "trigger": {"namespace": "team-a", "name": "web"},
        "image": IMAGE,
        "source": {"namespace": "team-a", "imageStreamTag": "app:latest"},
        "targets": [{"kind": "Deployment", "name": "web"}, {"kind": "BuildConfig", "name": "b"}],
        "message": "something happened",
        "time": TIME,
    }


def test_a_stream_whose_policy_picked_no_tag_yet_is_named_as_a_stream() -> None:
    n = Notification(NotifyEvent.Pending, "ns", "t", IMAGE, TagRef("ns", "app", ""), (), "m", TIME)
    assert json_body(n)["source"] == {"namespace": "ns", "imageStream": "app"}
    assert json_body(dataclasses.replace(n, source=None))["source"] is None


def test_each_notification_has_its_own_id() -> None:
    assert notification(NotifyEvent.Applied).id != notification(NotifyEvent.Applied).id


@pytest.mark.parametrize(
    ("event", "ce_type"),
    [
        (NotifyEvent.Applied, "dev.imagestream-trigger.rollout.applied"),
        (NotifyEvent.Reverted, "dev.imagestream-trigger.rollout.reverted"),
        (NotifyEvent.Pending, "dev.imagestream-trigger.rollout.pending"),
        (NotifyEvent.Failed, "dev.imagestream-trigger.rollout.failed"),
    ],
)
def test_a_cloudevent_in_binary_mode(event: NotifyEvent, ce_type: str) -> None:
    n = notification(event)
    headers, body = render("CloudEvents", n)
    assert headers == {
        "ce-specversion": "1.0",
        "ce-id": n.id,
        "ce-source": "/apis/imagestream-trigger.dev/v1alpha1/namespaces/team-a/imagetriggers/web",
        "ce-type": ce_type,
        "ce-time": TIME,
        "ce-subject": IMAGE,
        "Content-Type": "application/json",  # datacontenttype
    }
    assert json.loads(body) == json_body(n)  # data: our JSON document


def test_cloudevent_header_values_are_percent_encoded() -> None:
    odd = Notification(NotifyEvent.Failed, "ns", "t", 'a "b"%ü', None, (), "m", TIME)
    assert cloudevent_headers(odd)["ce-subject"] == "a%20%22b%22%25%C3%BC"


def test_a_slack_message_has_text_and_blocks() -> None:
    body = slack_body(notification(NotifyEvent.Reverted, "reverted web to x"))
    assert body["text"] == "Reverted: ImageTrigger team-a/web: reverted web to x"
    section, context = body["blocks"]
    assert section["type"] == "section"
    assert section["text"]["type"] == "mrkdwn"
    assert section["text"]["text"].splitlines() == [
        ":leftwards_arrow_with_hook: *Reverted*: ImageTrigger `team-a/web`",
        "reverted web to x",
        f"*Image:* `{IMAGE}`",
        "*Targets:* Deployment/web, BuildConfig/b",
    ]
    assert context["type"] == "context"
    assert context["elements"][0]["text"] == (
        f"following team-a/app:latest · imagestream-trigger · {TIME}"
    )


def test_slack_markup_in_a_message_is_escaped() -> None:
    body = slack_body(notification(NotifyEvent.Failed, "<!channel> & <http://x|y>"))
    assert "&lt;!channel&gt; &amp; &lt;http://x|y&gt;" in body["text"]
    assert "<!channel>" not in json.dumps(body)


@pytest.mark.parametrize("kind", ["Slack", "JSON"])
def test_slack_and_json_are_posted_as_json(kind: str) -> None:
    headers, body = render(kind, notification(NotifyEvent.Applied))
    assert headers == {"Content-Type": "application/json"}
    assert json.loads(body)


def test_a_long_message_is_cut() -> None:
    n = notification(NotifyEvent.Failed, "x" * 5000)
    assert len(json_body(n)["message"]) == 2000
    with pytest.raises(ValueError, match="unknown receiver type"):
        render("Teams", n)
