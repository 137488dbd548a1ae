"""The kubectl plugin's pure parts: parsing, tables and ages, and what list and why say.

The answers are built on indexes loaded from bodies by ``Intake.load``, as the plugin
loads what it lists; the cluster itself is tested in tests/e2e/test_plugin.py.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

import pytest
import yaml

from imagestream_trigger.api import TargetKind
from imagestream_trigger.index import Indexes
from imagestream_trigger.inflight import Overlay
from imagestream_trigger.intake import Intake
from imagestream_trigger.plan import describe_changes, plan_annotated
from imagestream_trigger.plugin import cli, render
from imagestream_trigger.plugin.cli import UsageError, main, parse_kind, parse_target
from imagestream_trigger.plugin.explain import (
    Snapshot,
    annotated_row,
    explain,
    history,
    last_applied_time,
    rows,
    summary,
)
from tests.fuzz.inputs import annotations as fuzz_annotations
from tests.unit.builders import (
    ENVOY,
    NEW,
    OLD,
    annotation,
    buildconfig,
    image_trigger,
    imagestream,
    workload,
)

NOW = dt.datetime(2025, 1, 10, 10, 20, tzinfo=dt.UTC)


def snapshot_of(
    *bodies: dict[str, Any], unreadable: dict[tuple[str, str], str] | None = None
) -> Snapshot:
    indexes = Indexes()
    intake = Intake(indexes, Overlay(), native=True)
    found = Snapshot(indexes, unreadable=dict(unreadable or {}))
    for body in bodies:
        intake.load(body["kind"], body)
        if body["kind"] == "ImageTrigger":
            meta = body["metadata"]
            found.raw_targets[(meta["namespace"], meta["name"])] = body["spec"].get("targets", [])
    return found


def verdicts(why: Any) -> list[tuple[str, str, str]]:
    return [
        (f.via, f.name if f.via == "ImageTrigger" else f.source, f.verdict) for f in why.followers
    ]


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "kind"),
    [
        ("deploy", TargetKind.Deployment),
        ("Deployment", TargetKind.Deployment),
        ("deployments.apps", TargetKind.Deployment),
        ("sts", TargetKind.StatefulSet),
        ("ds", TargetKind.DaemonSet),
        ("cj", TargetKind.CronJob),
        ("cronjob.batch", TargetKind.CronJob),
        ("bc", TargetKind.BuildConfig),
        ("buildconfigs.build.openshift.io", TargetKind.BuildConfig),
    ],
)
def test_kinds_are_read_as_kubectl_spells_them(word: str, kind: TargetKind) -> None:
    assert parse_kind(word) is kind


@pytest.mark.parametrize("word", ["pod", "deployment.batch", "dc", ""])
def test_an_unknown_kind_names_the_ones_there_are(word: str) -> None:
    with pytest.raises(
        UsageError, match=r"unknown kind .*deployment \(deploy\).*buildconfig \(bc\)"
    ):
        parse_kind(word)


def test_targets_are_kind_slash_name_or_kind_then_name() -> None:
    assert parse_target(["deploy/web"]) == (TargetKind.Deployment, "web")
    assert parse_target(["bc", "app-build"]) == (TargetKind.BuildConfig, "app-build")
    with pytest.raises(UsageError, match="which one"):
        parse_target(["deploy"])
    with pytest.raises(UsageError, match="names no kind"):
        parse_target(["web"])
    with pytest.raises(UsageError, match="is not KIND/NAME"):
        parse_target(["deploy/"])
    with pytest.raises(UsageError, match="is not KIND/NAME"):
        parse_target(["deploy/a/b"])


def test_no_arguments_print_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for command in ("list", "why", "history", "suspend", "resume"):
        assert f"    {command} " in out
    assert "KUBECONFIG" in out


@pytest.mark.parametrize("command", ["list", "why", "history", "suspend", "resume"])
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: kubectl imagetrigger {command}")
    assert "-n NS, --namespace NS" in out


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["why"], "the following arguments are required: KIND/NAME"),
        (["why", "pod/x"], "unknown kind 'pod'"),
        (["list", "-A", "-n", "x"], "not allowed with argument"),
        (["list", "-o", "wide"], "invalid choice: 'wide'"),
        (["history"], "the following arguments are required: NAME"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")
    assert says in captured.err
    assert captured.err.count("\n") == 1


def test_missing_credentials_are_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nowhere"))
    assert main(["list"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: no Kubernetes credentials: KUBECONFIG names no readable file "
        f"({tmp_path / 'nowhere'}); set KUBECONFIG or log in (oc login)\n"
    )
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["why", "deploy/web"]) == 2
    assert "KUBECONFIG is not set and" in capsys.readouterr().err


# -- tables and ages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600 + 120, "5h2m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (3 * 86400 + 5 * 3600, "3d5h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (3 * 365 * 86400 + 10 * 86400, "3y10d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_read_as_kubectl_prints_them(seconds: float, shown: str) -> None:
    assert render.human_duration(seconds) == shown


def test_age_of_a_timestamp_or_a_dash() -> None:
    assert render.age("2025-01-10T10:15:05Z", NOW) == "4m55s"
    assert render.age("", NOW) == "-"
    assert render.age("yesterday", NOW) == "-"


def test_tables_are_laid_out_as_kubectl_get() -> None:
    lines = render.table(("NAME", "X", "LAST"), [("web", "1", "3s"), ("a-longer-name", "22", "")])
    assert lines == [
        "NAME            X     LAST",
        "web             1     3s",
        "a-longer-name   22    ",
    ]


def test_the_list_table_has_its_documented_columns() -> None:
    found = rows(
        snapshot_of(
            imagestream(),
            workload(web=NEW, triggers=annotation("Deployment", ("app:latest", "web"))),
        )
    )
    header, line = render.list_lines(found, NOW)
    assert header.split() == [
        "NAMESPACE",
        "NAME",
        "SOURCE",
        "IMAGE",
        "UP-TO-DATE",
        "PENDING",
        "FAILED",
        "STATUS",
        "LAST",
        "CHANGE",
    ]
    assert line.split() == [
        "demo",
        "Deployment/web",
        "demo/app:latest",
        "sha256:bbbbbbbbbbbb",
        "1",
        "0",
        "0",
        "InSync",
        "-",
    ]


# -- list ---------------------------------------------------------------------------------------


def test_list_counts_targets_of_an_imagetrigger() -> None:
    found = rows(
        snapshot_of(
            imagestream(),
            workload(name="web", web=NEW, labels={"tier": "back"}),
            workload(name="old", web=OLD, labels={"tier": "back"}),
            workload(
                name="nomatch", containers=[{"name": "x", "image": ENVOY}], labels={"tier": "back"}
            ),
            workload(name="front", web=OLD, labels={"tier": "front"}),
            image_trigger(
                [{"kind": "Deployment", "selector": {"matchLabels": {"tier": "back"}}}],
                name="backend",
                status={"lastTriggerTime": "2025-01-10T10:15:05Z"},
            ),
        )
    )
    (row,) = rows_named(found, "backend")
    assert (row.up_to_date, row.pending, row.failed) == (1, 1, 1)
    assert row.status == "NoMatchingContainer"  # a failing target wins over a pending one
    assert row.image == NEW
    assert row.last_change == "2025-01-10T10:15:05Z"


def rows_named(found: list[Any], name: str) -> list[Any]:
    return [r for r in found if r.name == name]


@pytest.mark.parametrize(
    ("spec", "status"),
    [({}, "Pending"), ({"suspend": True}, "Suspended"), ({"dry_run": True}, "DryRun")],
)
def test_pending_targets_and_what_holds_them(spec: dict[str, bool], status: str) -> None:
    found = rows(
        snapshot_of(
            imagestream(),
            workload(web=OLD),
            buildconfig(name="app-build"),
            image_trigger(
                [
                    {"kind": "Deployment", "name": "web"},
                    {"kind": "BuildConfig", "name": "app-build"},
                ],
                **spec,
            ),
        )
    )
    (row,) = found
    assert (row.up_to_date, row.pending, row.failed, row.status) == (0, 2, 0, status)


def test_a_write_the_operator_reported_refused_counts_as_failed() -> None:
    status = {
        "targets": [{"kind": "Deployment", "name": "web", "result": "Forbidden", "message": "no"}]
    }
    found = rows(
        snapshot_of(
            imagestream(),
            workload(web=OLD),
            image_trigger([{"kind": "Deployment", "name": "web"}], status=status),
        )
    )
    (row,) = found
    assert (row.pending, row.failed, row.status) == (0, 1, "Forbidden")


@pytest.mark.parametrize(
    ("bodies", "status"),
    [
        ([], "SourceNotFound"),
        ([imagestream(tags={})], "TagNotResolved"),
        ([imagestream(namespace="shared")], "CrossNamespaceDenied"),
    ],
)
def test_a_blocked_imagetrigger_counts_nothing(bodies: list[dict[str, Any]], status: str) -> None:
    source_namespace = "shared" if status == "CrossNamespaceDenied" else None
    trigger = image_trigger(
        [{"kind": "Deployment", "name": "web"}], source_namespace=source_namespace
    )
    (row,) = [
        r for r in rows(snapshot_of(*bodies, workload(), trigger)) if r.kind == "ImageTrigger"
    ]
    assert (row.up_to_date, row.pending, row.failed, row.status) == (0, 0, 0, status)


def test_an_invalid_imagetrigger_is_listed_as_such() -> None:
    trigger = image_trigger([{"kind": "Deployment", "name": "web", "containers": ["Web"]}])
    (row,) = rows(snapshot_of(imagestream(), workload(), trigger))
    assert row.status == "InvalidSpec"
    assert row.sources == ()


def test_annotated_rows_count_entries_and_show_our_last_write() -> None:
    record = json.dumps(
        {
            "web": {"image": NEW, "source": "demo/app:latest", "time": "2025-01-10T10:15:05Z"},
            "init:setup": {
                "image": NEW,
                "source": "demo/app:latest",
                "time": "2025-01-09T08:00:00Z",
            },
        }
    )
    body = workload(
        containers=[{"name": "web", "image": NEW}, {"name": "proxy", "image": OLD}],
        triggers=json.dumps(
            json.loads(annotation("Deployment", ("app:latest", "web"), ("app:latest", "proxy")))
            + json.loads(annotation("Deployment", ("tools:v1", "setup"), paused=True))
        ),
        last_applied=record,
    )
    (row,) = rows(snapshot_of(imagestream(), body))
    assert (row.up_to_date, row.pending, row.failed, row.status) == (1, 1, 0, "Pending")
    assert row.sources == ("demo/app:latest", "demo/tools:v1")
    assert row.last_change == "2025-01-10T10:15:05Z"


@pytest.mark.parametrize(
    ("record", "time"),
    [
        (None, ""),
        ("not json", ""),
        ("[]", ""),
        ('{"web": {"time": 3}}', ""),
        ('{"a": {"time": "t1"}, "b": {"time": "t2"}}', "t2"),
    ],
)
def test_last_applied_time_reads_any_record(record: str | None, time: str) -> None:
    assert last_applied_time(record) == time


@pytest.mark.parametrize(
    ("triggers", "status"),
    [
        ("not json", "InvalidAnnotation"),
        ("[]", "NoTriggers"),
        (annotation("Deployment", ("app:latest", "web"), paused=True), "Paused"),
        (annotation("Deployment", ("missing:latest", "web")), "SourceNotFound"),
        (annotation("Deployment", ("app:latest", "nope")), "ContainerNotFound"),
    ],
)
def test_annotated_row_status(triggers: str, status: str) -> None:
    (row,) = rows(snapshot_of(imagestream(), workload(triggers=triggers)))
    assert row.status == status


# -- why ----------------------------------------------------------------------------------------


def test_why_explains_each_annotation_entry_and_each_imagetrigger() -> None:
    triggers = json.dumps(
        json.loads(annotation("Deployment", ("app:latest", "web")))
        + json.loads(annotation("Deployment", ("tools:v1", "proxy"), paused=True))
        + json.loads(annotation("Deployment", ("gone:latest", "setup")))
    )
    snap = snapshot_of(
        imagestream(),
        workload(web=NEW, triggers=triggers),
        image_trigger([{"kind": "Deployment", "name": "web"}], name="follow"),
        image_trigger(
            [{"kind": "Deployment", "name": "web"}], name="ghost", source="nothere:latest"
        ),
        image_trigger([{"kind": "Deployment", "name": "other"}], name="elsewhere"),
        image_trigger([{"kind": "StatefulSet", "name": "web"}], name="other-kind"),
        image_trigger(
            [{"kind": "Deployment", "selector": {"matchLabels": {"app": "web"}}}],
            name="by-label",
            suspend=True,
        ),
    )
    why = explain(snap, TargetKind.Deployment, "demo", "web")
    assert verdicts(why) == [
        ("annotation", "demo/app:latest", "InSync"),
        ("annotation", "demo/tools:v1", "Paused"),
        ("annotation", "demo/gone:latest", "SourceNotFound"),
        ("ImageTrigger", "by-label", "InSync"),
        ("ImageTrigger", "follow", "InSync"),
        ("ImageTrigger", "ghost", "SourceNotFound"),
    ]
    assert why.exists
    assert why.annotated
    assert why.writes == ()
    assert summary(why) == "nothing would be written now (InSync, Paused, SourceNotFound)"
    text = "\n".join(render.why_lines(why))
    assert 'annotation containers[?(@.name=="web")].image <- demo/app:latest' in text
    assert f"    InSync: web already runs {NEW}" in text
    assert "    SourceNotFound: ImageStream demo/gone does not exist" in text


def test_why_says_what_would_be_written_and_what_holds_it() -> None:
    snap = snapshot_of(
        imagestream(),
        workload(web=OLD, triggers=annotation("Deployment", ("app:latest", "web"))),
        image_trigger([{"kind": "Deployment", "name": "web"}], name="a"),
        image_trigger([{"kind": "Deployment", "name": "web"}], name="b", suspend=True),
        image_trigger([{"kind": "Deployment", "name": "web"}], name="c", dry_run=True),
    )
    why = explain(snap, TargetKind.Deployment, "demo", "web")
    change = f"web: {OLD} -> {NEW}"
    assert [(f.verdict, f.message) for f in why.followers] == [
        ("Update", f"would set {change}"),
        ("Update", f"would set {change}"),
        (
            "Suspended",
            f"spec.suspend is true, nothing is written; once resumed it would set {change}",
        ),
        ("DryRun", f"spec.dryRun is true, nothing is written; it would set {change}"),
    ]
    assert why.writes == (change, f"Deployment/web: {change}")
    assert summary(why) == "would write now (Update above)"


def test_why_a_buildconfig_would_be_built_or_is_already() -> None:
    trigger = image_trigger([{"kind": "BuildConfig", "name": "app-build"}])
    why = explain(
        snapshot_of(imagestream(), buildconfig(name="app-build"), trigger),
        TargetKind.BuildConfig,
        "demo",
        "app-build",
    )
    assert [(f.verdict, f.message) for f in why.followers] == [
        ("Build", f"would start a build for {NEW}")
    ]
    built = buildconfig(name="app-build", built=[("app:latest", NEW)])
    why = explain(
        snapshot_of(imagestream(), built, trigger), TargetKind.BuildConfig, "demo", "app-build"
    )
    assert [f.verdict for f in why.followers] == ["InSync"]
    assert summary(why) == "in sync, nothing to write"


def test_why_a_container_the_annotation_cannot_find_voids_the_rest() -> None:
    triggers = annotation("Deployment", ("app:latest", "web"), ("app:latest", "nope"))
    why = explain(
        snapshot_of(imagestream(), workload(web=OLD, triggers=triggers)),
        TargetKind.Deployment,
        "demo",
        "web",
    )
    assert [f.verdict for f in why.followers] == ["Voided", "ContainerNotFound"]
    assert why.writes == ()
    assert any(p.startswith("ContainerNotFound: ") for p in why.problems)


def test_why_the_later_of_two_entries_on_one_container_wins() -> None:
    triggers = json.dumps(
        [
            {
                "from": {"kind": "ImageStreamTag", "name": "app:latest"},
                "fieldPath": "spec.template.spec.containers[0].image",
            },
            {
                "from": {"kind": "ImageStreamTag", "name": "app:next"},
                "fieldPath": 'spec.template.spec.containers[?(@.name=="web")].image',
            },
        ]
    )
    stream = imagestream(tags={"latest": NEW, "next": OLD})
    why = explain(
        snapshot_of(stream, workload(web=NEW, triggers=triggers)),
        TargetKind.Deployment,
        "demo",
        "web",
    )
    assert [f.verdict for f in why.followers] == ["Overridden", "Update"]
    assert why.writes == (f"web: {NEW} -> {OLD}",)


def test_why_an_unreadable_source_is_not_called_missing() -> None:
    snap = snapshot_of(
        workload(triggers=annotation("Deployment", ("app:latest", "web"), namespace="shared")),
        image_trigger([{"kind": "Deployment", "name": "web"}], source_namespace="shared"),
        unreadable={("shared", "app"): "forbidden"},
    )
    why = explain(snap, TargetKind.Deployment, "demo", "web")
    assert [f.verdict for f in why.followers] == ["SourceUnreadable", "SourceUnreadable"]
    assert "you may not read ImageStream shared/app (forbidden)" in why.followers[0].message


def test_why_an_invalid_imagetrigger_that_may_target_it() -> None:
    bad = image_trigger([{"kind": "Deployment", "name": "web", "containers": ["Web"]}], name="bad")
    unrelated = image_trigger(
        [{"kind": "CronJob", "name": "web", "containers": ["Web"]}], name="unrelated"
    )
    why = explain(
        snapshot_of(imagestream(), workload(), bad, unrelated), TargetKind.Deployment, "demo", "web"
    )
    (follower,) = why.followers
    assert (follower.name, follower.verdict) == ("bad", "InvalidSpec")
    assert 'spec.targets[0].containers[0]: "Web" is not a valid name' in follower.message


def test_why_a_missing_object_that_a_trigger_names() -> None:
    trigger = image_trigger([{"kind": "Deployment", "name": "web"}])
    why = explain(snapshot_of(imagestream(), trigger), TargetKind.Deployment, "demo", "web")
    assert not why.exists
    assert [(f.verdict, f.message) for f in why.followers] == [
        ("TargetNotFound", "Deployment demo/web does not exist")
    ]
    assert render.why_lines(why)[0] == "Deployment demo/web (does not exist)"


def test_why_nothing_follows() -> None:
    why = explain(snapshot_of(imagestream(), workload()), TargetKind.Deployment, "demo", "web")
    assert why.followers == ()
    assert render.why_lines(why) == [
        "Deployment demo/web",
        "Result: nothing follows Deployment demo/web: it has no image.openshift.io/triggers "
        "annotation and no ImageTrigger targets it",
    ]


def test_why_the_operator_last_attempt_is_told() -> None:
    status = {
        "targets": [
            {"kind": "Deployment", "name": "web", "result": "Forbidden", "message": "cannot patch"}
        ]
    }
    snap = snapshot_of(
        imagestream(),
        workload(web=OLD),
        image_trigger([{"kind": "Deployment", "name": "web"}], status=status),
    )
    (follower,) = explain(snap, TargetKind.Deployment, "demo", "web").followers
    assert follower.notes == ("the operator's last attempt: Forbidden: cannot patch",)


def test_why_data_for_machines() -> None:
    snap = snapshot_of(
        imagestream(), workload(web=OLD, triggers=annotation("Deployment", ("app:latest", "web")))
    )
    data = render.why_data(explain(snap, TargetKind.Deployment, "demo", "web"))
    assert (
        json.loads(render.dump(data, "json")) == yaml.safe_load(render.dump(data, "yaml")) == data
    )
    assert data["writes"] == [f"web: {OLD} -> {NEW}"]
    assert data["followers"][0]["verdict"] == "Update"


@pytest.mark.parametrize("seed", [20_250_601])
def test_why_writes_exactly_what_the_planner_plans(seed: int) -> None:
    """For any annotation the fuzzer makes, the Update verdicts add up to the plan's changes."""
    rng = random.Random(seed)
    for number, case in enumerate(fuzz_annotations(rng, 300)):
        kind = TargetKind(case.kind)
        body = workload(kind, web=rng.choice([OLD, NEW]), triggers=case.value)
        snap = snapshot_of(imagestream(tags={"latest": NEW, "v1": OLD}), body)
        info = snap.indexes.workload(kind, "demo", "web")
        assert info is not None
        planned = sorted(describe_changes([c]) for c in plan_annotated(snap.indexes, info).changes)
        why = explain(snap, kind, "demo", "web")
        assert sorted(why.writes) == planned, (case.what, number)
        assert all(f.message for f in why.followers), (case.what, number)
        annotated_row(snap, info)  # total as well


# -- history --------------------------------------------------------------------------------------


def test_history_newest_first_with_builds() -> None:
    status = {
        "history": [
            {
                "image": NEW,
                "time": "2025-01-10T10:15:05Z",
                "updated": ["Deployment/web", "BuildConfig/app-build"],
                "failed": [],
            },
            {
                "image": OLD,
                "time": "2025-01-09T08:00:04Z",
                "updated": [],
                "failed": ["Deployment/x"],
            },
            {"image": 3},  # does not fit the status model: dropped
        ],
        "builds": {
            "app-build": {
                "image": NEW,
                "requestedAt": "2025-01-10T10:15:05Z",
                "build": "app-build-7",
            }
        },
    }
    found = history(
        image_trigger([{"kind": "Deployment", "name": "web"}], name="web", status=status)
    )
    assert render.history_lines(found, NOW) == [
        "ImageTrigger demo/web <- demo/app:latest",
        "",
        "TIME                   AGE     IMAGE                 "
        "UPDATED                                FAILED",
        "2025-01-10T10:15:05Z   4m55s   sha256:bbbbbbbbbbbb   "
        "BuildConfig/app-build,Deployment/web   -",
        "2025-01-09T08:00:04Z   26h     sha256:aaaaaaaaaaaa   "
        "-                                      Deployment/x",
        "",
        "BUILDCONFIG   IMAGE                 REQUESTED              BUILD",
        "app-build     sha256:bbbbbbbbbbbb   2025-01-10T10:15:05Z   app-build-7",
    ]
    data = render.history_data(found)
    assert [e["image"] for e in data["history"]] == [NEW, OLD]
    assert data["builds"]["app-build"]["build"] == "app-build-7"


def test_history_of_a_trigger_that_never_moved() -> None:
    found = history(image_trigger([{"kind": "Deployment", "name": "web"}], name="web"))
    assert (
        render.history_lines(found, NOW)[-1]
        == "No image change recorded yet (status.history is empty)."
    )


def test_row_data_keys() -> None:
    (row,) = rows(
        snapshot_of(
            imagestream(),
            workload(web=NEW, triggers=annotation("Deployment", ("app:latest", "web"))),
        )
    )
    assert render.row_data(row) == {
        "namespace": "demo",
        "kind": "Deployment",
        "name": "web",
        "sources": ["demo/app:latest"],
        "image": NEW,
        "upToDate": 1,
        "pending": 0,
        "failed": 0,
        "status": "InSync",
        "lastChange": "",
    }


@pytest.mark.parametrize(
    ("spec", "verdict", "writes"),
    [({}, "Recover", 1), ({"suspend": True}, "Suspended", 0), ({"dry_run": True}, "DryRun", 0)],
)
def test_why_a_build_whose_outcome_is_unknown(
    spec: dict[str, bool], verdict: str, writes: int
) -> None:
    # The intent is in the status, without the Build's name: the operator asks first.
    status = {"builds": {"app-build": {"image": NEW, "requestedAt": "2025-01-10T10:15:05Z"}}}
    trigger = image_trigger([{"kind": "BuildConfig", "name": "app-build"}], status=status, **spec)
    snap = snapshot_of(imagestream(), buildconfig(name="app-build"), trigger)
    (follower,) = explain(snap, TargetKind.BuildConfig, "demo", "app-build").followers
    assert follower.verdict == verdict
    assert f"would look for the Build requested earlier for {NEW}" in follower.message
    assert len(follower.writes) == writes


def test_an_unexpected_failure_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def broken(args: Any) -> int:
        raise RuntimeError("something odd")

    monkeypatch.setattr(cli, "_run", broken)
    assert main(["list"]) == 1
    assert capsys.readouterr().err == "error: unexpected RuntimeError: something odd\n"


def test_why_names_the_service_account_a_write_is_made_as() -> None:
    trigger = image_trigger([{"kind": "Deployment", "name": "web"}])
    trigger["spec"]["serviceAccountName"] = "deployer"
    snap = snapshot_of(imagestream(), workload(web=OLD), trigger)
    (follower,) = explain(snap, TargetKind.Deployment, "demo", "web").followers
    assert follower.notes == (
        "written as ServiceAccount demo/deployer (spec.serviceAccountName): its rights decide",
    )


# -- timing rules and approval (timing.py), as the reconcile pass asks them -------------------


def held_trigger(rollout: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body = image_trigger([{"kind": "Deployment", "name": "web"}])
    body["spec"]["rollout"] = rollout
    body["spec"] |= spec
    return body


def test_an_image_waiting_for_approval_is_pending_not_about_to_be_written() -> None:
    snapshot = snapshot_of(imagestream(), workload(web=OLD), held_trigger({"approval": "Manual"}))
    why = explain(snapshot, TargetKind.Deployment, "demo", "web")
    (follower,) = why.followers
    assert follower.verdict == "PendingApproval"
    assert "kubectl imagetrigger approve follow-app -n demo" in follower.message
    assert follower.writes == ()
    assert summary(why) == "nothing would be written now (PendingApproval)"
    (row,) = rows(snapshot)
    assert (row.up_to_date, row.pending, row.failed) == (0, 1, 0)
    # Approved (by digest): it would be written now.
    approved = held_trigger({"approval": "Manual"}, approvedImage=NEW.rpartition("@")[2])
    why = explain(snapshot_of(imagestream(), workload(web=OLD), approved), *WEB)
    assert [f.verdict for f in why.followers] == ["Update"]


def test_a_closed_maintenance_window_says_when_it_opens() -> None:
    # 10:20 UTC on a Friday; the window is 22:00-23:00 UTC every day.
    window = {"windows": [{"start": "22:00", "end": "23:00"}]}
    snapshot = snapshot_of(imagestream(), workload(web=OLD), held_trigger(window))
    snapshot.now = NOW
    (follower,) = explain(snapshot, *WEB).followers
    assert follower.verdict == "Waiting"
    assert follower.message.endswith("next opens Fri 22:00 UTC (2025-01-10T22:00:00Z)")
    snapshot.now = NOW.replace(hour=22, minute=30)
    assert [f.verdict for f in explain(snapshot, *WEB).followers] == ["Update"]


WEB = (TargetKind.Deployment, "demo", "web")


def test_a_held_imagetrigger_is_listed_with_its_hold_and_its_targets_pending() -> None:
    (row,) = rows(
        snapshot_of(imagestream(), workload(web=OLD), held_trigger({"approval": "Manual"}))
    )
    assert (row.status, row.image, row.pending) == ("PendingApproval", NEW, 1)
