"""Intake: a watch event updates the real indexes and says which keys to reconcile.

Every test feeds bodies as the watches deliver them and checks the wakes: which keys,
and which moved tags caused them. What is no news (a status-only update, a relist of
what the index has, the echo of our own write) must wake nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from imagestream_trigger.api import TargetKind
from imagestream_trigger.index import Indexes
from imagestream_trigger.inflight import Overlay, Written
from imagestream_trigger.intake import DELETED, IMAGETRIGGER, NO_MOVES, Intake, Key, Wake
from imagestream_trigger.resolve import TagRef
from tests.unit.builders import (
    APP,
    ENVOY,
    NEW,
    OLD,
    OTHER,
    annotation,
    buildconfig,
    image_trigger,
    imagestream,
    workload,
)

ADDED, MODIFIED = "ADDED", "MODIFIED"
DEPLOY = TargetKind.Deployment
WEB = Key("Deployment", "demo", "web")
FOLLOW = Key(IMAGETRIGGER, "demo", "follow-app")
NEXT = TagRef("demo", "app", "next")


class Rig:
    def __init__(self, *, native: bool = True) -> None:
        self.indexes = Indexes()
        self.overlay = Overlay()
        self.moves: list[tuple[TagRef, str]] = []
        self.intake = Intake(
            self.indexes,
            self.overlay,
            native=native,
            clock=lambda: 100.0,
            on_moved=lambda tag, reference: self.moves.append((tag, reference)),
        )

    def load(self, *bodies: dict[str, Any]) -> Rig:
        for body in bodies:
            self.intake.load(body["kind"], body)
        return self

    def event(self, event: str | None, body: dict[str, Any]) -> list[Wake]:
        kind = body["kind"]
        if kind == "ImageStream":
            return self.intake.stream(event, body)
        if kind == IMAGETRIGGER:
            return self.intake.trigger(event, body)
        if kind == "BuildConfig":
            return self.intake.buildconfig(event, body)
        return self.intake.workload(TargetKind(kind), event, body)


def keys(wakes: list[Wake]) -> set[Key]:
    return {key for key, _ in wakes}


def annotated(name: str = "web", tag: str = "app:latest", **kw: Any) -> dict[str, Any]:
    return workload(name=name, triggers=annotation("Deployment", (tag, "web")), **kw)


def selecting(
    selector: dict[str, Any] | None = None, *, name: str = "follow-app", target: str | None = None
) -> dict[str, Any]:
    """An ImageTrigger on app:latest with one Deployment target (by name or selector)."""
    spec: dict[str, Any] = {"kind": "Deployment"}
    if target is not None:
        spec["name"] = target
    else:
        spec["selector"] = selector if selector is not None else {"matchLabels": {"tier": "web"}}
    return image_trigger([spec], name=name)


# -- ImageStreams ------------------------------------------------------------------------------


def test_tag_move_wakes_annotated_followers_of_that_tag_and_imagetriggers() -> None:
    rig = Rig().load(
        imagestream(tags={"latest": OLD, "next": OLD}),
        annotated("web", "app:latest"),
        annotated("beta", "app:next"),
        annotated("elsewhere", "other:latest"),
        workload(name="plain"),  # not annotated: only ImageTriggers reach it
        selecting(target="plain"),
        image_trigger(
            [{"kind": "Deployment", "name": "beta"}], name="follow-next", source="app:next"
        ),
    )
    wakes = rig.event(MODIFIED, imagestream(tags={"latest": NEW, "next": OLD}))
    assert sorted(wakes, key=str) == sorted(
        [(WEB, frozenset({APP})), (FOLLOW, frozenset({APP}))], key=str
    )
    assert rig.moves == [(APP, NEW)]
    stream = rig.indexes.stream("demo", "app")
    assert stream is not None
    assert stream.tags["latest"].reference == NEW
    assert stream.moved_at == {"latest": 100.0, "next": 100.0}


def test_each_moved_tag_wakes_its_own_followers() -> None:
    rig = Rig().load(
        imagestream(tags={"latest": OLD, "next": OLD}),
        annotated("web", "app:latest"),
        annotated("beta", "app:next"),
    )
    wakes = rig.event(MODIFIED, imagestream(tags={"latest": NEW, "next": NEW}))
    both = frozenset({APP, NEXT})
    assert sorted(wakes, key=str) == [(Key("Deployment", "demo", "beta"), both), (WEB, both)]
    assert sorted(rig.moves, key=str) == [(APP, NEW), (NEXT, NEW)]


def test_a_new_tag_is_a_move() -> None:
    rig = Rig().load(imagestream(tags={"latest": OLD}), annotated("beta", "app:next"))
    wakes = rig.event(MODIFIED, imagestream(tags={"latest": OLD, "next": NEW}))
    assert wakes == [(Key("Deployment", "demo", "beta"), frozenset({NEXT}))]


def test_a_removed_tag_wakes_its_followers_without_a_cause() -> None:
    rig = Rig().load(
        imagestream(tags={"latest": OLD, "next": OLD}),
        annotated("beta", "app:next"),
        image_trigger([{"kind": "Deployment", "name": "beta"}], source="app:next"),
    )
    wakes = rig.event(MODIFIED, imagestream(tags={"latest": OLD}))
    assert sorted(wakes, key=str) == sorted(
        [(Key("Deployment", "demo", "beta"), NO_MOVES), (FOLLOW, NO_MOVES)], key=str
    )
    assert rig.moves == []


def test_stream_status_noise_wakes_nothing() -> None:
    rig = Rig().load(imagestream(tags={"latest": OLD}), annotated(), selecting())
    noisy = imagestream(
        tags={"latest": OLD},
        generation=5,
        conditions=[{"type": "ImportSuccess", "status": "False", "reason": "NotFound"}],
    )
    noisy["metadata"]["resourceVersion"] = "1234"
    assert rig.event(MODIFIED, noisy) == []
    assert rig.moves == []


def test_a_stream_relist_that_repeats_the_index_wakes_nothing() -> None:
    rig = Rig().load(imagestream(tags={"latest": OLD}), annotated(), selecting())
    assert rig.event(None, imagestream(tags={"latest": OLD})) == []


def test_first_sight_of_a_stream_after_start_up_is_a_move_listed_or_not() -> None:
    # The start-up listing goes through load(); a stream kopf lists later (created after
    # the start-up listing, or found by a relist) is news, and its tags moved.
    rig = Rig().load(annotated(), selecting())
    wakes = rig.event(None, imagestream(tags={"latest": NEW}))
    assert keys(wakes) == {WEB, FOLLOW}
    assert rig.moves == [(APP, NEW)]
    rig2 = Rig().load(annotated(), selecting())
    assert keys(rig2.event(ADDED, imagestream(tags={"latest": NEW}))) == {WEB, FOLLOW}
    assert rig2.moves == [(APP, NEW)]


def test_allowed_namespaces_change_wakes_imagetriggers_only() -> None:
    rig = Rig().load(imagestream(tags={"latest": OLD}), annotated(), selecting())
    wakes = rig.event(MODIFIED, imagestream(tags={"latest": OLD}, allowed="team-a"))
    assert wakes == [(FOLLOW, NO_MOVES)]


def test_deleting_a_stream_wakes_its_imagetriggers_only() -> None:
    rig = Rig().load(
        imagestream(tags={"latest": OLD}),
        annotated(),
        selecting(),
        image_trigger([{"kind": "Deployment", "name": "web"}], name="other", source="base:v1"),
    )
    wakes = rig.event(DELETED, imagestream(tags={"latest": OLD}))
    assert wakes == [(FOLLOW, NO_MOVES)]
    assert rig.indexes.stream("demo", "app") is None
    # Deleting it again (a relist after the watch saw it) is no news.
    assert rig.event(DELETED, imagestream()) == []


def test_native_off_never_wakes_annotated_workloads() -> None:
    rig = Rig(native=False).load(imagestream(tags={"latest": OLD}), annotated(), selecting())
    wakes = rig.event(MODIFIED, imagestream(tags={"latest": NEW}))
    assert wakes == [(FOLLOW, frozenset({APP}))]
    found = rig.indexes.workload("Deployment", "demo", "web")
    assert found is not None
    assert found.annotated is False
    assert found.triggers == ()
    assert rig.indexes.workloads.followers("demo", "app") == ()
    assert rig.intake.everything() == [(FOLLOW, NO_MOVES)]
    # Its own events wake no key of its own either.
    assert rig.event(MODIFIED, annotated(web=NEW)) == []


# -- workloads ----------------------------------------------------------------------------------


def test_workload_status_only_change_wakes_nothing() -> None:
    rig = Rig().load(imagestream(), annotated(labels={"tier": "web"}), selecting())
    body = annotated(labels={"tier": "web"}, replicas=3, resource_version="2")
    assert rig.event(MODIFIED, body) == []


def test_the_echo_of_our_write_wakes_nothing_and_prunes_the_overlay() -> None:
    rig = Rig().load(imagestream(), annotated(labels={"tier": "web"}), selecting())
    target = ("Deployment", "demo", "web")
    rig.overlay.record(target, {"web": Written(OLD, NEW)})
    record = '{"web":{"image":"' + NEW + '","source":"demo/app:latest","time":"t"}}'
    echo = annotated(labels={"tier": "web"}, web=NEW, last_applied=record, resource_version="2")
    assert rig.event(MODIFIED, echo) == []
    assert rig.overlay.images == {}
    found = rig.indexes.workload("Deployment", "demo", "web")
    assert found is not None
    assert found.containers[0].image == NEW
    assert found.last_applied == record


def test_someone_elses_image_change_wakes_the_selecting_triggers_and_its_own_key() -> None:
    rig = Rig().load(
        imagestream(),
        annotated(labels={"tier": "web"}),
        selecting(),
        selecting(name="by-name", target="web"),
        selecting({"matchLabels": {"tier": "db"}}, name="not-me"),
    )
    wakes = rig.event(MODIFIED, annotated(labels={"tier": "web"}, web=OTHER))
    assert keys(wakes) == {WEB, FOLLOW, Key(IMAGETRIGGER, "demo", "by-name")}
    assert all(moved == NO_MOVES for _, moved in wakes)


def test_a_different_image_than_ours_is_no_echo() -> None:
    rig = Rig().load(imagestream(), annotated(labels={"tier": "web"}), selecting())
    target = ("Deployment", "demo", "web")
    rig.overlay.record(target, {"web": Written(OLD, NEW)})
    wakes = rig.event(MODIFIED, annotated(labels={"tier": "web"}, web=OTHER))
    assert keys(wakes) == {WEB, FOLLOW}
    assert rig.overlay.images == {}  # theirs wins: our entry is done with


def test_our_image_plus_another_change_is_no_echo() -> None:
    rig = Rig().load(imagestream(), annotated(labels={"tier": "web"}), selecting())
    rig.overlay.record(("Deployment", "demo", "web"), {"web": Written(OLD, NEW)})
    body = annotated(labels={"tier": "web", "new": "label"}, web=NEW)
    assert keys(rig.event(MODIFIED, body)) == {WEB, FOLLOW}
    assert rig.overlay.images == {}


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param({"tier": "db"}, {"tier": "web"}, id="joins"),
        pytest.param({"tier": "web"}, {"tier": "db"}, id="leaves"),
    ],
)
def test_a_label_change_across_a_selector_wakes_the_trigger(
    before: dict[str, str], after: dict[str, str]
) -> None:
    rig = Rig().load(imagestream(), workload(labels=before), selecting())
    assert rig.event(MODIFIED, workload(labels=after)) == [(FOLLOW, NO_MOVES)]


def test_a_label_change_outside_every_selector_wakes_nothing() -> None:
    rig = Rig().load(imagestream(), workload(labels={"tier": "db"}), selecting())
    assert rig.event(MODIFIED, workload(labels={"tier": "cache"})) == []


def test_a_new_workload_matching_a_selector_wakes_it() -> None:
    rig = Rig().load(
        imagestream(), selecting(), selecting({"matchLabels": {"tier": "db"}}, name="db")
    )
    wakes = rig.event(ADDED, workload(name="fresh", labels={"tier": "web"}))
    assert wakes == [(FOLLOW, NO_MOVES)]
    # Another kind with the same labels is not selected by a Deployment target.
    body = workload("StatefulSet", name="fresh", labels={"tier": "web"})
    assert rig.event(ADDED, body) == []


def test_a_new_annotated_workload_wakes_its_own_key() -> None:
    rig = Rig().load(imagestream())
    assert rig.event(ADDED, annotated()) == [(WEB, NO_MOVES)]
    assert rig.indexes.workloads.followers("demo", "app") == (("Deployment", "demo", "web"),)


def test_losing_the_annotation_wakes_its_own_key_once_more() -> None:
    rig = Rig().load(imagestream(), annotated())
    assert rig.event(MODIFIED, workload()) == [(WEB, NO_MOVES)]
    assert rig.indexes.workloads.followers("demo", "app") == ()
    assert rig.indexes.workloads.annotated() == ()


def test_deleting_a_workload_wakes_triggers_that_named_or_selected_it_and_its_own_key() -> None:
    rig = Rig().load(
        imagestream(),
        annotated(labels={"tier": "web"}),
        selecting(),
        selecting(name="by-name", target="web"),
        selecting({"matchLabels": {"tier": "db"}}, name="not-me"),
    )
    rig.overlay.record(("Deployment", "demo", "web"), {"web": Written(OLD, NEW)})
    wakes = rig.event(DELETED, annotated(labels={"tier": "web"}))
    assert keys(wakes) == {WEB, FOLLOW, Key(IMAGETRIGGER, "demo", "by-name")}
    assert rig.indexes.workload("Deployment", "demo", "web") is None
    assert rig.overlay.images == {}
    assert rig.event(DELETED, annotated()) == []


def test_deleting_a_plain_workload_does_not_wake_its_own_key() -> None:
    rig = Rig().load(imagestream(), workload(labels={"tier": "web"}), selecting())
    assert rig.event(DELETED, workload(labels={"tier": "web"})) == [(FOLLOW, NO_MOVES)]


def test_triggers_in_other_namespaces_are_not_woken() -> None:
    rig = Rig().load(
        imagestream(),
        image_trigger([{"kind": "Deployment", "selector": {}}], namespace="other"),
    )
    assert rig.event(ADDED, workload(name="fresh")) == []


def test_an_invalid_trigger_selects_nothing() -> None:
    rig = Rig().load(imagestream(), image_trigger([], name="broken"))
    assert rig.event(ADDED, workload()) == []


# -- BuildConfigs -------------------------------------------------------------------------------


def test_buildconfig_events() -> None:
    rig = Rig().load(
        imagestream(),
        image_trigger([{"kind": "BuildConfig", "selector": {"matchLabels": {"app": "web"}}}]),
    )
    assert rig.event(ADDED, buildconfig()) == [(FOLLOW, NO_MOVES)]
    # A build started: status.imageChangeTriggers moved, our own doing.
    assert rig.event(MODIFIED, buildconfig(built=[("app:latest", NEW)])) == []
    assert rig.event(MODIFIED, buildconfig(labels={"app": "other"})) == [(FOLLOW, NO_MOVES)]
    assert rig.event(MODIFIED, buildconfig(labels={"app": "none"})) == []
    assert rig.event(DELETED, buildconfig(labels={"app": "none"})) == []
    assert rig.event(ADDED, buildconfig()) == [(FOLLOW, NO_MOVES)]
    assert rig.event(DELETED, buildconfig()) == [(FOLLOW, NO_MOVES)]
    assert rig.indexes.buildconfig("demo", "web") is None


# -- ImageTriggers ------------------------------------------------------------------------------


def test_imagetrigger_status_only_change_wakes_nothing_but_a_spec_change_does() -> None:
    body = selecting()
    rig = Rig()
    assert rig.event(ADDED, body) == [(FOLLOW, NO_MOVES)]
    written = selecting()
    written["status"] = {"observedGeneration": 1, "conditions": [{"type": "Ready"}]}
    assert rig.event(MODIFIED, written) == []
    # The index keeps the newest status even though it is no news.
    found = rig.indexes.triggers.get("demo", "follow-app")
    assert found is not None
    assert found.status == written["status"]
    changed = selecting({"matchLabels": {"tier": "db"}})
    changed["metadata"]["generation"] = 2
    assert rig.event(MODIFIED, changed) == [(FOLLOW, NO_MOVES)]
    assert rig.event(DELETED, changed) == [(FOLLOW, NO_MOVES)]
    assert rig.event(DELETED, changed) == []


def test_imagetrigger_source_change_moves_it_to_the_new_stream() -> None:
    rig = Rig().load(imagestream(), imagestream(name="base"), selecting())
    moved = image_trigger([{"kind": "Deployment", "name": "web"}], source="base:latest")
    moved["metadata"]["generation"] = 2
    assert rig.event(MODIFIED, moved) == [(FOLLOW, NO_MOVES)]
    assert rig.event(MODIFIED, imagestream(tags={"latest": OTHER})) == []
    assert keys(rig.event(MODIFIED, imagestream(name="base", tags={"latest": OTHER}))) == {FOLLOW}


# -- start-up and relists ---------------------------------------------------------------------


def test_load_wakes_nothing_and_everything_lists_every_key() -> None:
    rig = Rig().load(
        imagestream(),
        annotated("web"),
        annotated("api", namespace="other"),
        workload(name="plain"),
        workload("CronJob", name="nightly", triggers=annotation("CronJob", ("app:latest", "web"))),
        selecting(),
        image_trigger([], name="broken"),
        buildconfig(),
    )
    assert sorted(rig.intake.everything(), key=str) == sorted(
        [
            (WEB, NO_MOVES),
            (Key("Deployment", "other", "api"), NO_MOVES),
            (Key("CronJob", "demo", "nightly"), NO_MOVES),
            (FOLLOW, NO_MOVES),
            (Key(IMAGETRIGGER, "demo", "broken"), NO_MOVES),
        ],
        key=str,
    )
    assert rig.moves == []


def test_forget_missing_deletes_what_a_relist_lacks_and_wakes() -> None:
    rig = Rig().load(
        imagestream(),
        annotated("web", labels={"tier": "web"}),
        annotated("gone", labels={"tier": "web"}),
        annotated("elsewhere", namespace="other"),
        selecting(),
    )
    present = {("demo", "web")}
    wakes = rig.intake.forget_missing("Deployment", present, "demo")
    assert keys(wakes) == {Key("Deployment", "demo", "gone"), FOLLOW}
    assert rig.indexes.workload("Deployment", "demo", "gone") is None
    # The relist covered "demo" only: "other" is left alone.
    assert rig.indexes.workload("Deployment", "other", "elsewhere") is not None
    assert rig.indexes.workload("Deployment", "demo", "web") is not None
    # A cluster-wide relist lacking it deletes it.
    wakes = rig.intake.forget_missing("Deployment", present)
    assert keys(wakes) == {Key("Deployment", "other", "elsewhere")}
    assert rig.intake.forget_missing("Deployment", present) == []


@pytest.mark.parametrize("namespace", ["", "demo"])
def test_forget_missing_for_every_kind(namespace: str) -> None:
    rig = Rig().load(
        imagestream(),
        imagestream(name="keep"),
        buildconfig(),
        selecting(),
        image_trigger([{"kind": "BuildConfig", "name": "web"}], name="builds"),
    )
    wakes = rig.intake.forget_missing("ImageStream", {("demo", "keep")}, namespace)
    assert set(wakes) == {(FOLLOW, NO_MOVES), (Key(IMAGETRIGGER, "demo", "builds"), NO_MOVES)}
    assert rig.indexes.stream("demo", "app") is None
    assert rig.indexes.stream("demo", "keep") is not None
    wakes = rig.intake.forget_missing("BuildConfig", set(), namespace)
    assert wakes == [(Key(IMAGETRIGGER, "demo", "builds"), NO_MOVES)]
    assert rig.indexes.buildconfig("demo", "web") is None
    wakes = rig.intake.forget_missing(IMAGETRIGGER, {("demo", "builds")}, namespace)
    assert wakes == [(FOLLOW, NO_MOVES)]
    assert len(rig.indexes.triggers) == 1


def test_forget_missing_keeps_what_another_namespace_holds() -> None:
    rig = Rig().load(
        imagestream(namespace="other"),
        image_trigger([{"kind": "Deployment", "name": "web"}], namespace="other"),
    )
    assert rig.intake.forget_missing("ImageStream", set(), "demo") == []
    assert rig.intake.forget_missing(IMAGETRIGGER, set(), "demo") == []
    assert rig.indexes.sizes()["imagestreams"] == 1
    assert rig.indexes.sizes()["imagetriggers"] == 1


# -- memory ------------------------------------------------------------------------------------


def test_every_per_object_map_is_empty_after_everything_is_deleted() -> None:
    rig = Rig()
    n = 30
    for i in range(n):
        ns = f"ns-{i % 3}"
        rig.event(ADDED, imagestream(namespace=ns, name=f"s{i}", tags={"latest": OLD}))
        rig.event(
            ADDED,
            workload(
                name=f"w{i}",
                namespace=ns,
                labels={"tier": "web"},
                triggers=annotation("Deployment", (f"s{i}:latest", "web")),
            ),
        )
        rig.event(ADDED, workload("CronJob", name=f"c{i}", namespace=ns))
        rig.event(ADDED, buildconfig(name=f"b{i}", namespace=ns))
        rig.event(
            ADDED,
            image_trigger(
                [{"kind": "Deployment", "selector": {"matchLabels": {"tier": "web"}}}],
                name=f"t{i}",
                namespace=ns,
                source=f"s{i}:latest",
            ),
        )
        # A tag move, our write in flight, and its echo.
        rig.event(MODIFIED, imagestream(namespace=ns, name=f"s{i}", tags={"latest": NEW}))
        rig.overlay.record(("Deployment", ns, f"w{i}"), {"web": Written(OLD, NEW)})
        if i % 2:
            rig.event(
                MODIFIED,
                workload(
                    name=f"w{i}",
                    namespace=ns,
                    labels={"tier": "web"},
                    web=NEW,
                    triggers=annotation("Deployment", (f"s{i}:latest", "web")),
                ),
            )
    assert len(rig.overlay) == n // 2  # the writes whose echo has not come yet
    for i in range(n):
        ns = f"ns-{i % 3}"
        rig.event(DELETED, image_trigger([], name=f"t{i}", namespace=ns))
        rig.event(DELETED, workload(name=f"w{i}", namespace=ns))
        rig.event(DELETED, workload("CronJob", name=f"c{i}", namespace=ns))
        rig.event(DELETED, buildconfig(name=f"b{i}", namespace=ns))
        rig.event(DELETED, imagestream(namespace=ns, name=f"s{i}"))

    ix = rig.indexes
    assert ix.sizes() == {"imagestreams": 0, "workloads": 0, "buildconfigs": 0, "imagetriggers": 0}
    assert ix.streams._by == {}
    assert ix.workloads._by == {}
    assert ix.workloads._names == {}
    assert ix.workloads._followers == {}
    assert set(ix.workloads._annotated.values()) <= {0}
    assert ix.buildconfigs._by == {}
    assert ix.buildconfigs._names == {}
    assert ix.triggers._by == {}
    assert ix.triggers._in == {}
    assert ix.triggers._following == {}
    assert rig.overlay.images == {}
    assert ix.workloads.annotated() == ()
    assert rig.intake.everything() == []


def test_forget_missing_leaves_no_trace_either() -> None:
    rig = Rig().load(imagestream(), annotated(labels={"tier": "web"}), selecting(), buildconfig())
    rig.overlay.record(("Deployment", "demo", "web"), {"web": Written(OLD, NEW)})
    for kind in ("Deployment", "BuildConfig", IMAGETRIGGER, "ImageStream"):
        rig.intake.forget_missing(kind, set())
    assert rig.indexes.sizes() == {
        "imagestreams": 0,
        "workloads": 0,
        "buildconfigs": 0,
        "imagetriggers": 0,
    }
    assert rig.indexes.workloads._followers == {}
    assert rig.indexes.triggers._following == {}
    assert rig.overlay.images == {}


def test_sidecar_images_are_not_followers() -> None:
    # A workload whose proxy runs something unrelated follows nothing by that.
    rig = Rig().load(imagestream())
    rig.event(ADDED, workload(containers=[{"name": "proxy", "image": ENVOY}]))
    assert rig.indexes.workloads.followers("demo", "app") == ()


def test_an_unwatched_trigger_is_not_woken_by_its_tag_but_by_its_object() -> None:
    # from.kind DockerImage: OpenShift's stream index skips it, its updater applies it
    # when the object itself is processed.
    entries = json.loads(annotation("Deployment", ("app:latest", "web")))
    entries[0]["from"]["kind"] = "DockerImage"
    body = workload(name="web", triggers=json.dumps(entries))
    rig = Rig().load(imagestream(tags={"latest": OLD}), body)
    assert rig.event(MODIFIED, imagestream(tags={"latest": NEW})) == []
    assert rig.indexes.workloads.followers("demo", "app") == ()
    changed = workload(name="web", triggers=json.dumps(entries), labels={"app": "web", "v": "2"})
    assert keys(rig.event(MODIFIED, changed)) == {WEB}
