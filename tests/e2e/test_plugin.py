"""kubectl-imagetrigger, the installed plugin, against real objects on the real API server.

Every command runs the installed entry point (.venv/bin/kubectl-imagetrigger) as a user
would, with a kubeconfig; once it runs through the real kubectl binary, which finds it on
PATH. The operator runs only where its writes are part of the story (history,
suspend/resume, and the proof that why predicts what it then writes).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagestream_trigger.plugin.render import LIST_COLUMNS
from imagestream_trigger.report.conditions import short_digest
from tests.controlplane.cluster import ControlPlane, free_port
from tests.controlplane.kube import Kube, create_namespace, eventually_allowed, path_for
from tests.controlplane.kube import service_account_token as token_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    REPO,
    TRIGGERS,
    buildconfig,
    by_name,
    create,
    image_stream,
    image_trigger,
    images_of,
    imported,
    trigger_annotation,
    trigger_path,
    workload,
    workload_path,
)

PLUGIN = Path(sys.executable).parent / "kubectl-imagetrigger"
Plugin = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def plugin(control_plane: ControlPlane) -> Plugin:
    """Run the installed plugin as the admin (or with ``kubeconfig``); never raises."""
    assert PLUGIN.exists(), f"{PLUGIN} is not installed: run `make .venv/.synced`"

    def run(*args: str, kubeconfig: Path | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig or control_plane.kubeconfig)}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        return subprocess.run(
            [str(PLUGIN), *args], env=env, capture_output=True, text=True, timeout=60
        )

    return run


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout


def failed(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one line of a failed command."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr.removesuffix("\n")


def ready_reason(trigger: dict[str, Any]) -> str:
    conditions = trigger.get("status", {}).get("conditions", [])
    return next((str(c["reason"]) for c in conditions if c["type"] == "Ready"), "")


def counts(plugin: Plugin, namespace: str) -> dict[tuple[str, str], tuple[int, int, int, str]]:
    data = json.loads(ok(plugin("list", "-n", namespace, "-o", "json")))
    return {
        (r["kind"], r["name"]): (r["upToDate"], r["pending"], r["failed"], r["status"])
        for r in data["items"]
    }


def test_list_counts_up_to_date_pending_and_failed(
    kube: Kube, namespace: str, plugin: Plugin
) -> None:
    image_stream(kube, namespace)
    first = imported(kube, namespace)
    backend = {"tier": "backend"}
    create(
        kube, namespace, workload("Deployment", "current", {"web": first.reference}, labels=backend)
    )
    create(
        kube, namespace, workload("Deployment", "behind", {"web": f"{REPO}:latest"}, labels=backend)
    )
    selector = {"kind": "Deployment", "selector": {"matchLabels": backend}}
    create(kube, namespace, image_trigger("backend", "app:latest", [selector]))
    create(
        kube,
        namespace,
        image_trigger("ghost", "nothere:latest", [{"kind": "Deployment", "name": "current"}]),
    )
    for name, image, container in (
        ("api", f"{REPO}:latest", "api"),
        ("cache", first.reference, "cache"),
        ("broken", first.reference, "nope"),
    ):
        annotation = trigger_annotation(by_name(container))
        create(
            kube,
            namespace,
            workload("Deployment", name, {name: image}, annotation=annotation, labels={}),
        )

    assert counts(plugin, namespace) == {
        ("ImageTrigger", "backend"): (1, 1, 0, "Pending"),
        ("ImageTrigger", "ghost"): (0, 0, 0, "SourceNotFound"),
        ("Deployment", "api"): (0, 1, 0, "Pending"),
        ("Deployment", "broken"): (0, 0, 1, "ContainerNotFound"),
        ("Deployment", "cache"): (1, 0, 0, "InSync"),
    }
    lines = ok(plugin("list", "-n", namespace)).splitlines()
    assert re.split(r"\s{2,}", lines[0]) == list(LIST_COLUMNS)
    names = [line.split()[1] for line in lines[1:]]
    assert names == [
        "ImageTrigger/backend",
        "ImageTrigger/ghost",
        "Deployment/api",
        "Deployment/broken",
        "Deployment/cache",
    ]
    backend_row = lines[1].split()
    assert backend_row[2:8] == [
        f"{namespace}/app:latest",
        short_digest(first.reference),
        "1",
        "1",
        "0",
        "Pending",
    ]
    as_yaml = yaml.safe_load(ok(plugin("list", "-n", namespace, "-o", "yaml")))
    assert as_yaml == json.loads(ok(plugin("list", "-n", namespace, "-o", "json")))

    # The tag moves on: what was up to date is now pending too.
    imported(kube, namespace)
    found = counts(plugin, namespace)
    assert found[("ImageTrigger", "backend")] == (0, 2, 0, "Pending")
    assert found[("Deployment", "cache")] == (0, 1, 0, "Pending")


def test_why_explains_in_sync_paused_missing_source_and_pending_then_the_operator_agrees(
    kube: Kube, namespace: str, plugin: Plugin, run_operator: Callable[..., OperatorProcess]
) -> None:
    image_stream(kube, namespace)
    first = imported(kube, namespace)
    annotation = trigger_annotation(
        by_name("web"), by_name("sidecar", tag="tools:latest", paused=True)
    )
    create(
        kube,
        namespace,
        workload(
            "Deployment",
            "web",
            {"web": first.reference, "sidecar": "quay.io/acme/tools:1"},
            annotation=annotation,
        ),
    )
    create(
        kube,
        namespace,
        image_trigger("ghost", "nothere:latest", [{"kind": "Deployment", "name": "web"}]),
    )
    create(
        kube,
        namespace,
        workload(
            "Deployment",
            "api",
            {"api": f"{REPO}:latest"},
            annotation=trigger_annotation(by_name("api")),
        ),
    )

    lines = ok(plugin("why", "deploy/web", "-n", namespace)).splitlines()
    assert lines == [
        f"Deployment {namespace}/web",
        f'  annotation containers[?(@.name=="web")].image <- {namespace}/app:latest',
        f"    InSync: web already runs {first.reference}",
        f'  annotation containers[?(@.name=="sidecar")].image <- {namespace}/tools:latest',
        '    Paused: "paused": true, so OpenShift and the operator skip it until it is unpaused',
        f"  ImageTrigger ghost <- {namespace}/nothere:latest",
        f"    SourceNotFound: ImageStream {namespace}/nothere does not exist (or is not in a "
        "namespace this operator watches)",
        "Result: nothing would be written now (InSync, Paused, SourceNotFound)",
    ]
    change = f"api: {REPO}:latest -> {first.reference}"
    pending = json.loads(ok(plugin("why", "deployment", "api", "-n", namespace, "-o", "json")))
    assert [(f["verdict"], f["message"]) for f in pending["followers"]] == [
        ("Update", f"would set {change}")
    ]
    assert pending["writes"] == [change]

    # The operator, started now, writes exactly what why said, and nothing else.
    run_operator()
    kube.wait_for(
        workload_path("Deployment", namespace, "api"),
        lambda d: images_of(d)["api"] == first.reference,
    )
    web = kube.get(workload_path("Deployment", namespace, "web"))
    assert images_of(web) == {"web": first.reference, "sidecar": "quay.io/acme/tools:1"}
    after = ok(plugin("why", "deploy/api", "-n", namespace)).splitlines()
    assert after[-2:] == [
        f"    InSync: api already runs {first.reference}",
        "Result: in sync, nothing to write",
    ]


def test_history_after_two_tag_moves(
    kube: Kube, namespace: str, plugin: Plugin, run_operator: Callable[..., OperatorProcess]
) -> None:
    image_stream(kube, namespace)
    create(kube, namespace, workload("Deployment", "web", {"web": f"{REPO}:latest"}))
    create(kube, namespace, buildconfig("app-build", own_trigger=False))
    targets = [{"kind": "Deployment", "name": "web"}, {"kind": "BuildConfig", "name": "app-build"}]
    create(kube, namespace, image_trigger("follow", "app:latest", targets))
    assert "No image change recorded yet" in ok(plugin("history", "follow", "-n", namespace))

    run_operator()
    first = imported(kube, namespace)
    kube.wait_for(
        trigger_path(namespace),
        lambda t: (
            t.get("status", {}).get("builds", {}).get("app-build", {}).get("build") == "app-build-1"
        ),
    )
    second = imported(kube, namespace)
    kube.wait_for(
        trigger_path(namespace),
        lambda t: (
            len(t["status"].get("history", [])) == 2
            and t["status"].get("builds", {}).get("app-build", {}).get("build") == "app-build-2"
            and ready_reason(t) == "Applied"
        ),
    )

    data = json.loads(ok(plugin("history", "follow", "-n", namespace, "-o", "json")))
    assert [e["image"] for e in data["history"]] == [second.reference, first.reference]
    for entry in data["history"]:
        assert sorted(entry["updated"]) == ["BuildConfig/app-build", "Deployment/web"]
        assert entry["failed"] == []
    assert data["builds"]["app-build"]["image"] == second.reference
    assert data["builds"]["app-build"]["build"] == "app-build-2"

    lines = ok(plugin("history", "follow", "-n", namespace)).splitlines()
    assert lines[0] == f"ImageTrigger {namespace}/follow <- {namespace}/app:latest"
    assert lines[2].split() == ["TIME", "AGE", "IMAGE", "UPDATED", "FAILED"]
    newest, oldest = lines[3].split(), lines[4].split()
    assert newest[0] == data["history"][0]["time"]
    assert newest[2:] == [
        short_digest(second.reference),
        "BuildConfig/app-build,Deployment/web",
        "-",
    ]
    assert oldest[2] == short_digest(first.reference)
    assert lines[6].split() == ["BUILDCONFIG", "IMAGE", "REQUESTED", "BUILD"]
    assert lines[7].split()[:2] == ["app-build", short_digest(second.reference)]
    assert lines[7].split()[-1] == "app-build-2"


def test_suspend_and_resume_stop_and_restart_the_operator(
    kube: Kube, namespace: str, plugin: Plugin, run_operator: Callable[..., OperatorProcess]
) -> None:
    image_stream(kube, namespace)
    create(kube, namespace, workload("Deployment", "web", {"web": f"{REPO}:latest"}))
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "Deployment", "name": "web"}]),
    )
    run_operator()
    first = imported(kube, namespace)
    web = workload_path("Deployment", namespace, "web")
    kube.wait_for(web, lambda d: images_of(d)["web"] == first.reference)

    out = ok(plugin("suspend", "follow", "-n", namespace))
    assert out == (
        f"imagetrigger {namespace}/follow suspended (spec.suspend: false -> true): the operator "
        "writes nothing to its targets until resumed\n"
    )
    trigger = kube.get(trigger_path(namespace))
    assert trigger["spec"]["suspend"] is True
    again = ok(plugin("suspend", "follow", "-n", namespace))
    assert again == (
        f"imagetrigger {namespace}/follow is already suspended (spec.suspend is true): "
        "nothing changed\n"
    )
    # Nothing was sent: the spec's generation did not move.
    assert (
        kube.get(trigger_path(namespace))["metadata"]["generation"]
        == (trigger["metadata"]["generation"])
    )

    second = imported(kube, namespace)
    kube.wait_for(
        trigger_path(namespace),
        lambda t: t["status"].get("image") == second.reference and ready_reason(t) == "Suspended",
    )
    assert images_of(kube.get(web))["web"] == first.reference
    lines = ok(plugin("why", "deploy/web", "-n", namespace)).splitlines()
    assert lines[2] == (
        "    Suspended: spec.suspend is true, nothing is written; once resumed it would set "
        f"web: {first.reference} -> {second.reference}"
    )
    assert counts(plugin, namespace)[("ImageTrigger", "follow")] == (0, 1, 0, "Suspended")

    out = ok(plugin("resume", "follow", "-n", namespace))
    assert out == (
        f"imagetrigger {namespace}/follow resumed (spec.suspend: true -> false): its targets "
        "catch up with the source at the next pass\n"
    )
    assert kube.get(trigger_path(namespace))["spec"]["suspend"] is False
    kube.wait_for(web, lambda d: images_of(d)["web"] == second.reference)
    kube.wait_for(trigger_path(namespace), lambda t: ready_reason(t) == "Applied")
    assert counts(plugin, namespace)[("ImageTrigger", "follow")] == (1, 0, 0, "InSync")


def test_errors_are_one_line_with_the_right_exit_code(
    control_plane: ControlPlane, namespace: str, plugin: Plugin, tmp_path: Path
) -> None:
    assert failed(plugin("history", "nope", "-n", namespace), 1) == (
        f'error: ImageTrigger "nope" not found in namespace "{namespace}"'
    )
    assert failed(plugin("suspend", "nope", "-n", namespace), 1) == (
        f'error: ImageTrigger "nope" not found in namespace "{namespace}"'
    )
    assert failed(plugin("why", "sts/nope", "-n", namespace), 1) == (
        f'error: StatefulSet "nope" not found in namespace "{namespace}"'
    )
    assert "unknown kind 'pod'" in failed(plugin("why", "pod/x"), 2)

    down = control_plane.write_kubeconfig(
        tmp_path / "down", "token", server=f"https://127.0.0.1:{free_port()}"
    )
    assert failed(plugin("list", "-n", namespace, kubeconfig=down), 1).startswith(
        "error: cannot reach the Kubernetes API at https://127.0.0.1:"
    )
    stranger = control_plane.write_kubeconfig(tmp_path / "stranger", "not-a-token")
    assert "refused your credentials (401 Unauthorized)" in failed(
        plugin("list", "-n", namespace, kubeconfig=stranger), 2
    )
    missing = failed(plugin("list", kubeconfig=tmp_path / "absent"), 2)
    assert missing == (
        f"error: no Kubernetes credentials: KUBECONFIG names no readable file "
        f"({tmp_path / 'absent'}); set KUBECONFIG or log in (oc login)"
    )


def _viewer(control_plane: ControlPlane, kube: Kube, namespace: str, path: Path) -> Path:
    """A kubeconfig for a ServiceAccount that may read, not write, in ``namespace`` only."""
    rbac = "rbac.authorization.k8s.io/v1"
    kube.create(
        path_for(rbac, "roles", namespace),
        {
            "apiVersion": rbac,
            "kind": "Role",
            "metadata": {"name": "viewer"},
            "rules": [
                {
                    "apiGroups": [
                        "apps",
                        "batch",
                        "build.openshift.io",
                        "image.openshift.io",
                        "imagestream-trigger.dev",
                    ],
                    "resources": ["*"],
                    "verbs": ["get", "list"],
                }
            ],
        },
    )
    kube.create(
        path_for(rbac, "rolebindings", namespace),
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": {"name": "viewer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
            "subjects": [{"kind": "ServiceAccount", "name": "viewer", "namespace": namespace}],
        },
    )
    token = token_for(kube, namespace, "viewer")
    as_viewer = Kube(control_plane.url, token, control_plane.ca_file)
    eventually_allowed(lambda: as_viewer.get(path_for(TRIGGERS, "imagetriggers", namespace)))
    return control_plane.write_kubeconfig(path, token)


def test_a_user_sees_what_they_may_read_and_may_not_write(
    control_plane: ControlPlane, kube: Kube, namespace: str, plugin: Plugin, tmp_path: Path
) -> None:
    shared = f"shared-{secrets.token_hex(3)}"
    create_namespace(kube, shared)
    image_stream(kube, shared)
    first = imported(kube, shared)
    follows_shared = {**by_name("web"), "from": {**by_name("web")["from"], "namespace": shared}}
    create(
        kube,
        namespace,
        workload(
            "Deployment",
            "web",
            {"web": f"{REPO}:latest"},
            annotation=trigger_annotation(follows_shared),
        ),
    )
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "Deployment", "name": "web"}]),
    )
    viewer = _viewer(control_plane, kube, namespace, tmp_path / "viewer")

    as_admin = json.loads(ok(plugin("why", "deploy/web", "-n", namespace, "-o", "json")))
    assert as_admin["followers"][0]["verdict"] == "Update"
    assert as_admin["writes"] == [f"web: {REPO}:latest -> {first.reference}"]
    as_viewer = json.loads(
        ok(plugin("why", "deploy/web", "-n", namespace, "-o", "json", kubeconfig=viewer))
    )
    assert as_viewer["followers"][0]["verdict"] == "SourceUnreadable"
    assert (
        f"you may not read ImageStream {shared}/app (forbidden)"
        in (as_viewer["followers"][0]["message"])
    )

    refused = failed(plugin("suspend", "follow", "-n", namespace, kubeconfig=viewer), 1)
    assert refused.startswith(
        f'error: you may not patch ImageTrigger "follow" in namespace "{namespace}": '
    )
    assert "cannot patch resource" in refused
    assert kube.get(trigger_path(namespace))["spec"].get("suspend") in (None, False)
    everywhere = failed(plugin("list", "-A", kubeconfig=viewer), 1)
    assert everywhere.startswith("error: you may not list ")
    assert "in all namespaces (try -n NAMESPACE)" in everywhere

    # Without -n, the namespace of the kubeconfig's current context, as kubectl does.
    config = yaml.safe_load(viewer.read_text())
    config["contexts"][0]["context"]["namespace"] = namespace
    in_context = tmp_path / "in-context"
    in_context.write_text(yaml.safe_dump(config))
    lines = ok(plugin("list", kubeconfig=in_context)).splitlines()
    assert [line.split()[:2] for line in lines[1:]] == [
        [namespace, "ImageTrigger/follow"],
        [namespace, "Deployment/web"],
    ]


def test_kubectl_runs_the_plugin_from_path(
    control_plane: ControlPlane, kube: Kube, namespace: str, plugin: Plugin
) -> None:
    image_stream(kube, namespace)
    imported(kube, namespace)
    create(
        kube,
        namespace,
        workload(
            "Deployment",
            "web",
            {"web": f"{REPO}:latest"},
            annotation=trigger_annotation(by_name("web")),
        ),
    )
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        "PATH": f"{PLUGIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(control_plane.kubectl_path), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert str(PLUGIN) in kubectl("plugin", "list").stdout
    through_kubectl = kubectl("imagetrigger", "list", "-n", namespace)
    assert ok(through_kubectl) == ok(plugin("list", "-n", namespace))
    assert through_kubectl.stdout.splitlines()[1].split()[1:] == [
        "Deployment/web",
        f"{namespace}/app:latest",
        short_digest(imported_reference(kube, namespace)),
        "0",
        "1",
        "0",
        "Pending",
        "-",
    ]
    assert ok(kubectl("imagetrigger")).startswith("usage: kubectl imagetrigger")
    missing = kubectl("imagetrigger", "why", "deploy/nope", "-n", namespace)
    assert failed(missing, 1) == f'error: Deployment "nope" not found in namespace "{namespace}"'


def imported_reference(kube: Kube, namespace: str) -> str:
    stream = kube.get(path_for("image.openshift.io/v1", "imagestreams", namespace, "app"))
    reference: str = stream["status"]["tags"][0]["items"][0]["dockerImageReference"]
    return reference
