"""timing.py: debounce, minImageAge, approval and maintenance windows (DST included), and
the spec fields behind them: any JSON there gives a clean error, never a traceback."""

from __future__ import annotations

import random
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from imagestream_trigger.api import Reason
from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.imagemeta import created_of
from imagestream_trigger.models import MAX_LINE, Rollout, parse_spec
from imagestream_trigger.plugin.cli import main as plugin_main
from imagestream_trigger.plugin.cluster import digest_of
from imagestream_trigger.report import status as status_model
from imagestream_trigger.resolve import ResolvedImage
from imagestream_trigger.timing import (
    Hold,
    Rule,
    approved,
    created_from_status,
    hold,
    next_opening,
    parse_time,
)
from tests.fuzz.inputs import ODD_TEXT, json_values

DIGEST = "sha256:" + "ab" * 32
IMAGE = ResolvedImage(f"registry.example/ns/app@{DIGEST}", DIGEST, "2026-11-30T10:00:00Z")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
HINT = "kubectl imagetrigger approve web -n ns"


def rollout(**fields: Any) -> Rollout:
    spec = parse_spec(
        {
            "source": {"imageStreamTag": "app:latest"},
            "targets": [{"kind": "Deployment", "name": "web"}],
            "rollout": fields,
        }
    )
    assert spec.rollout is not None
    return spec.rollout


def at(text: str) -> datetime:
    moment = parse_time(text)
    assert moment is not None
    return moment


def decide(
    r: Rollout, now: str, *, created: str | None = None, approve: str | None = None
) -> Hold | None:
    return hold(
        r,
        image=IMAGE,
        image_created=parse_time(created),
        approved_image=approve,
        approve_hint=HINT,
        now=at(now),
    )


def rule_of(held: Hold | None) -> Rule | None:
    return held.rule if held is not None else None


# -- debounce and minImageAge ---------------------------------------------------------


def test_debounce_holds_until_the_tag_event_plus_the_debounce() -> None:
    r = rollout(debounce="2m")
    held = decide(r, "2026-11-30T10:01:00Z")
    assert held is not None
    assert held.rule is Rule.Debounce
    assert held.reason is Reason.Waiting
    assert held.until == at("2026-11-30T10:02:00Z")
    assert "2026-11-30T10:02:00Z" in held.message
    assert decide(r, "2026-11-30T10:02:00Z") is None


def test_min_image_age_counts_from_the_image_and_falls_back_to_the_tag_event() -> None:
    r = rollout(minImageAge="1h")
    held = decide(r, "2026-11-30T10:30:00Z", created="2026-11-30T09:45:00Z")
    assert held is not None
    assert held.rule is Rule.MinImageAge
    assert held.until == at("2026-11-30T10:45:00Z")
    assert decide(r, "2026-11-30T10:30:00Z", created="2026-11-30T09:00:00Z") is None
    # No created time: from the tag event (10:00), and the message says so.
    fallback = decide(r, "2026-11-30T10:30:00Z")
    assert fallback is not None
    assert fallback.until == at("2026-11-30T11:00:00Z")
    assert "no created time" in fallback.message


def test_rules_are_asked_in_order_debounce_age_approval_windows() -> None:
    r = rollout(
        debounce="1m",
        minImageAge="1h",
        approval="Manual",
        windows=[{"start": "00:00", "end": "00:01"}],
    )
    created = "2026-11-30T09:50:00Z"
    assert rule_of(decide(r, "2026-11-30T10:00:30Z", created=created)) is Rule.Debounce
    assert rule_of(decide(r, "2026-11-30T10:05:00Z", created=created)) is Rule.MinImageAge
    pending = decide(r, "2026-11-30T11:00:00Z", created=created)
    assert pending is not None
    assert pending.rule is Rule.Approval
    assert pending.until is None
    assert pending.reason is Reason.PendingApproval
    assert HINT in pending.message
    window = decide(r, "2026-11-30T11:00:00Z", created=created, approve=DIGEST)
    assert window is not None
    assert window.rule is Rule.MaintenanceWindow
    assert window.until == at("2026-12-01T00:00:00Z")


def test_approval_matches_the_digest_or_a_reference_pinned_to_it() -> None:
    assert approved(DIGEST, IMAGE)
    assert approved(IMAGE.reference, IMAGE)
    assert approved(f"elsewhere/app@{DIGEST}", IMAGE)
    assert not approved("sha256:" + "cd" * 32, IMAGE)
    assert not approved("", IMAGE)
    assert not approved(None, IMAGE)


def test_without_rules_nothing_holds() -> None:
    assert decide(rollout(), "2026-11-30T10:00:00Z") is None
    assert not rollout().timed
    assert rollout(approval="Manual").timed


# -- windows --------------------------------------------------------------------------


def test_window_wraps_past_midnight_on_its_opening_day() -> None:
    # 2026-11-30 is a Monday. Weekday nights 22:00-06:00 Berlin (UTC+1 in winter).
    windows = rollout(
        windows=[{"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "start": "22:00", "end": "06:00"}],
        timeZone="Europe/Berlin",
    ).windows
    assert windows is not None
    assert next_opening(windows, BERLIN, at("2026-11-30T21:30:00Z")) is None  # Mon 22:30
    assert next_opening(windows, BERLIN, at("2026-12-01T04:59:00Z")) is None  # Tue 05:59
    assert next_opening(windows, BERLIN, at("2026-12-01T05:00:00Z")) == at("2026-12-01T21:00:00Z")
    # Friday's window runs into Saturday morning; Saturday's evening has none.
    assert next_opening(windows, BERLIN, at("2026-12-05T04:00:00Z")) is None  # Sat 05:00
    assert next_opening(windows, BERLIN, at("2026-12-05T12:00:00Z")) == at("2026-12-07T21:00:00Z")


def test_window_message_names_the_local_opening_and_the_instant() -> None:
    r = rollout(
        windows=[{"days": ["Tue"], "start": "22:00", "end": "06:00"}], timeZone="Europe/Berlin"
    )
    held = decide(r, "2026-11-30T12:00:00Z")
    assert held is not None
    assert held.message == (
        "waits for the maintenance window: next opens Tue 22:00 Europe/Berlin "
        "(2026-12-01T21:00:00Z)"
    )


def test_windows_follow_daylight_saving_time() -> None:
    windows = rollout(windows=[{"start": "09:00", "end": "10:00"}]).windows
    assert windows is not None
    # Europe/Berlin: CET (UTC+1) until 2027-03-28 02:00, then CEST (UTC+2).
    assert next_opening(windows, BERLIN, at("2027-03-27T10:00:00Z")) == at("2027-03-28T07:00:00Z")
    assert next_opening(windows, BERLIN, at("2027-03-28T07:30:00Z")) is None
    assert next_opening(windows, BERLIN, at("2027-03-28T08:00:00Z")) == at("2027-03-29T07:00:00Z")
    # And back on 2026-10-25: 09:00 is UTC+1 again.
    assert next_opening(windows, BERLIN, at("2026-10-24T12:00:00Z")) == at("2026-10-25T08:00:00Z")


def test_a_window_starting_in_the_skipped_hour_opens_after_the_gap() -> None:
    windows = rollout(windows=[{"start": "02:30", "end": "04:00"}]).windows
    assert windows is not None
    opens = next_opening(windows, BERLIN, at("2027-03-27T12:00:00Z"))
    assert opens is not None
    assert opens.astimezone(BERLIN).hour == 3
    # The window that wraps over the night the clocks go back lasts an hour longer.
    night = rollout(windows=[{"start": "22:00", "end": "06:00"}]).windows
    assert night is not None
    assert next_opening(night, BERLIN, at("2026-10-25T04:30:00Z")) is None  # 05:30 CET


def test_a_whole_day_window_and_utc_default() -> None:
    r = rollout(windows=[{"days": ["Sun"], "start": "00:00", "end": "24:00"}])
    assert r.time_zone == "UTC"
    assert decide(r, "2026-11-29T23:59:00Z") is None  # Sunday
    held = decide(r, "2026-11-30T00:00:00Z")
    assert held is not None
    assert held.until == at("2026-12-06T00:00:00Z")


def test_every_instant_is_either_open_or_before_the_next_opening() -> None:
    rng = random.Random(11)
    days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    for _ in range(300):
        start = f"{rng.randrange(24):02d}:{rng.choice([0, 15, 30, 59]):02d}"
        end = f"{rng.randrange(25):02d}:{rng.choice([0, 30]):02d}"
        if end in (start, "24:30"):
            continue
        window = {"days": rng.sample(days, rng.randint(1, 7)), "start": start, "end": end}
        zone = rng.choice(["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"])
        windows = rollout(windows=[window], timeZone=zone).windows
        assert windows is not None
        now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(525600))
        opens = next_opening(windows, zoneinfo.ZoneInfo(zone), now)
        if opens is not None:
            assert now < opens <= now + timedelta(days=8)
            # Open at the moment it says, and closed just before.
            assert next_opening(windows, zoneinfo.ZoneInfo(zone), opens) is None


# -- the spec fields ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"timeZone": "Mars/Olympus"}, 'spec.rollout.timeZone: "Mars/Olympus" is not a known'),
        ({"timeZone": "../../etc/passwd"}, "is not a known time zone"),
        ({"windows": [{"start": "25:00", "end": "06:00"}]}, '"25:00" is not a time of day'),
        ({"windows": [{"start": "22:00", "end": "6:00"}]}, '"6:00" is not a time of day'),
        ({"windows": [{"days": ["Monday"], "start": "1:00"}]}, "one of 'Mon'"),
        ({"windows": [{"days": [], "start": "01:00", "end": "02:00"}]}, "at least one day"),
        ({"windows": [{"start": "01:00", "end": "01:00"}]}, "the window would be empty"),
        ({"debounce": "soon"}, 'spec.rollout.debounce: "soon" is not a duration'),
        ({"minImageAge": "1d"}, 'spec.rollout.minImageAge: "1d" is not a duration'),
        ({"approval": "manual"}, "spec.rollout.approval: must be one of 'Automatic' or 'Manual'"),
    ],
)
def test_bad_timing_fields_get_clear_errors(fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidSpecError) as error:
        rollout(**fields)
    assert expected in error.value.message


def test_approved_image_is_a_spec_field() -> None:
    spec = parse_spec(
        {
            "source": {"imageStreamTag": "app:latest"},
            "targets": [{"kind": "Deployment", "name": "web"}],
            "approvedImage": DIGEST,
        }
    )
    assert spec.approved_image == DIGEST


@pytest.mark.parametrize("field", ["debounce", "minImageAge", "windows", "timeZone", "approval"])
def test_any_json_in_the_timing_fields_gives_a_clean_error(field: str) -> None:
    rng = random.Random(field)
    values: list[Any] = [*ODD_TEXT, *json_values(rng, 300)]
    values += [[{"days": v, "start": v, "end": v}] for v in values[:100]]
    for value in values:
        problems: tuple[str, ...] = ()
        try:
            r = rollout(**{field: value})
        except InvalidSpecError as error:
            problems = tuple(error.problems)
        if problems:
            assert all(0 < len(p) <= MAX_LINE for p in problems)
            "; ".join(problems).encode()
            continue
        # Accepted: then the rules run without raising at any time.
        decide(r, "2026-11-30T10:00:00Z")


# -- what is read back from the cluster -------------------------------------------------


def test_status_pending_and_waiting_are_read_back_and_odd_ones_dropped() -> None:
    pending = {"image": IMAGE.reference, "since": "2026-11-30T10:00:00Z"}
    waiting = {"image": IMAGE.reference, "reason": "Debounce", "until": "2026-11-30T10:02:00Z"}
    kept = status_model.read({"pending": pending, "waiting": waiting})
    assert kept == {"pending": pending, "waiting": waiting}
    assert status_model.read({"pending": {"image": 3}, "waiting": "soon"}) == {}
    status_model.check({"pending": pending, "waiting": {**waiting, "message": "m"}})


def test_an_images_created_time_comes_from_its_docker_metadata() -> None:
    body = {"image": {"dockerImageMetadata": {"Created": "2026-11-30T09:00:00Z"}}}
    assert created_of(body) == at("2026-11-30T09:00:00Z")
    # Docker's zero time, no metadata, odd shapes: no created time.
    assert (
        created_of({"image": {"dockerImageMetadata": {"Created": "0001-01-01T00:00:00Z"}}}) is None
    )
    for odd in (None, {}, {"image": None}, {"image": {"dockerImageMetadata": {"Created": 5}}}, []):
        assert created_of(odd) is None


def test_approve_refuses_an_image_without_a_digest_before_asking_the_cluster(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert plugin_main(["approve", "web", "-n", "demo", "--image", "app:latest"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: --image 'app:latest' names no image digest")
    assert digest_of(f"quay.io/acme/app@{DIGEST}") == DIGEST
    assert digest_of("sha256:short") == ""


def test_the_plugin_reads_the_created_time_the_operator_counted_from() -> None:
    rollout = Rollout.model_validate({"minImageAge": "1h"})
    status = {
        "waiting": {
            "image": "quay.io/a/b@sha256:1",
            "reason": "MinImageAge",
            "until": "2025-01-10T11:00:00Z",
        }
    }
    born = created_from_status(status, rollout, "quay.io/a/b@sha256:1")
    assert born == datetime(2025, 1, 10, 10, 0, tzinfo=UTC)
    assert created_from_status(status, rollout, "quay.io/a/b@sha256:2") is None  # another image
    assert created_from_status({"waiting": {"reason": "Debounce"}}, rollout, "x") is None
    assert created_from_status(status, Rollout(), "quay.io/a/b@sha256:1") is None
