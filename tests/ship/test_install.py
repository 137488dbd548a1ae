"""Install what we ship, for real, and run the operator with exactly that RBAC.

`kubectl apply -k manifests/` (what `oc apply -k manifests/` does on crc) creates the
namespace, CRD, ServiceAccount, ClusterRole and binding, Deployment, Service,
ServiceMonitor and PrometheusRule on the real kube-apiserver. There is no kubelet, so the
Deployment never gets a pod: the operator runs here as a process instead, authenticated
with a TokenRequest token of the INSTALLED ServiceAccount (``bind=False``), so it has the
installed ClusterRole's rules and nothing else. A trigger then has to complete end to end,
and with one rule taken out of the installed ClusterRole the failure has to be reported
clearly.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube, create_namespace, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    BUILD,
    REPO,
    TRIGGERS,
    buildconfig,
    built_by_trigger,
    by_name,
    create,
    events_for,
    image_stream,
    image_trigger,
    images_of,
    imported,
    trigger_annotation,
    workload,
    workload_path,
)

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"
NAMESPACE = "imagestream-trigger"  # where manifests/ installs the operator
NAME = "imagestream-trigger"
RBAC = "rbac.authorization.k8s.io/v1"
HELM_NAMESPACE = "imagestream-trigger-helm"
HELM_RELEASE = "its"


def service_account_user(namespace: str) -> tuple[str, list[str]]:
    return f"system:serviceaccount:{namespace}:{NAME}", [
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    ]


def allowed(kube: Kube, sa_namespace: str, verb: str, group: str, resource: str) -> bool:
    """Would the API server allow this to the operator's ServiceAccount (cluster-wide)?"""
    user, groups = service_account_user(sa_namespace)
    subresource = ""
    if "/" in resource:
        resource, subresource = resource.split("/", 1)
    review = kube.create(
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": user,
                "groups": groups,
                "resourceAttributes": {
                    "verb": verb,
                    "group": group,
                    "resource": resource,
                    "subresource": subresource,
                },
            },
        },
    )
    return bool(review["status"].get("allowed"))


def wait_allowed(
    kube: Kube, sa_namespace: str, verb: str, group: str, resource: str, *, expected: bool
) -> None:
    # The RBAC authorizer reads roles from an informer: an edit applies a moment later.
    deadline = time.monotonic() + 15
    while allowed(kube, sa_namespace, verb, group, resource) is not expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{verb} {resource}.{group} never became allowed={expected}")
        time.sleep(0.05)


@contextlib.contextmanager
def installed_role_without(
    kube: Kube, edit: Callable[[list[dict[str, Any]]], None], probe: tuple[str, str, str]
) -> Iterator[None]:
    """Edit the INSTALLED ClusterRole's rules in place; put them back afterwards."""
    path = path_for(RBAC, "clusterroles", name=NAME)
    original = kube.get(path)["rules"]
    rules = copy.deepcopy(original)
    edit(rules)
    assert rules != original, "the edit removed nothing"
    kube.patch(path, {"rules": rules}, "merge")
    try:
        wait_allowed(kube, NAMESPACE, *probe, expected=False)
        yield
    finally:
        kube.patch(path, {"rules": original}, "merge")
        wait_allowed(kube, NAMESPACE, *probe, expected=True)


def ready(trigger: dict[str, Any]) -> dict[str, Any]:
    for condition in trigger.get("status", {}).get("conditions", []):
        if condition["type"] == "Ready":
            return dict(condition)
    return {}


def trigger_path(namespace: str) -> str:
    return path_for(TRIGGERS, "imagetriggers", namespace, "follow")


@pytest.fixture(scope="module")
def installed(control_plane: ControlPlane, kube: Kube, monitoring_crds: list[str]) -> str:
    """`kubectl apply -k manifests/`, for real; returns the operator's namespace."""
    result = control_plane.kubectl("apply", "-k", str(MANIFESTS))
    assert result.returncode == 0, f"kubectl apply -k manifests/ failed:\n{result.stderr}"
    for kind, name in (
        ("namespace", NAMESPACE),
        ("customresourcedefinition.apiextensions.k8s.io", "imagetriggers.imagestream-trigger.dev"),
        ("serviceaccount", NAME),
        ("clusterrole.rbac.authorization.k8s.io", NAME),
        ("clusterrolebinding.rbac.authorization.k8s.io", NAME),
        ("deployment.apps", NAME),
        ("service", "imagestream-trigger-metrics"),
        ("servicemonitor.monitoring.coreos.com", NAME),
        ("prometheusrule.monitoring.coreos.com", NAME),
    ):
        assert f"{kind}/{name} " in result.stdout, result.stdout
    # Stored as shipped: what the apiserver returns is what we applied.
    deployment = kube.get(path_for("apps/v1", "deployments", NAMESPACE, NAME))
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == NAME
    wait_allowed(kube, NAMESPACE, "list", "image.openshift.io", "imagestreams", expected=True)
    return NAMESPACE


def complete_a_trigger(kube: Kube, namespace: str) -> None:
    """A Deployment with OpenShift's annotation and a BuildConfig behind an ImageTrigger
    follow app:latest; an import must update the one and build the other."""
    image_stream(kube, namespace)
    create(
        kube,
        namespace,
        workload(
            "Deployment",
            "web",
            {"web": f"{REPO}:latest", "proxy": "quay.io/acme/proxy:1"},
            annotation=trigger_annotation(by_name("web")),
        ),
    )
    create(kube, namespace, buildconfig("app-build"))
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "BuildConfig", "name": "app-build"}]),
    )
    first = imported(kube, namespace)

    done = kube.wait_for(
        workload_path("Deployment", namespace, "web"),
        lambda d: images_of(d)["web"] == first.reference,
    )
    assert images_of(done)["proxy"] == "quay.io/acme/proxy:1"
    kube.wait_for(path_for(BUILD, "builds", namespace), lambda b: len(b["items"]) == 1)
    trigger = kube.wait_for(trigger_path(namespace), lambda t: ready(t).get("reason") == "Applied")
    assert trigger["status"]["image"] == first.reference
    # Events are written with the installed rules too.
    kube.wait_for(
        path_for("v1", "events", namespace),
        lambda _: any(e["type"] == "Normal" for e in events_for(kube, namespace, "follow")),
    )


def test_installed_manifests_run_the_operator_end_to_end(
    control_plane: ControlPlane, kube: Kube, installed: str, namespace: str
) -> None:
    # The installed ServiceAccount has what the ClusterRole grants, and nothing more.
    assert allowed(kube, installed, "patch", "apps", "deployments")
    assert allowed(kube, installed, "create", "build.openshift.io", "builds/docker")
    assert not allowed(kube, installed, "get", "", "secrets")
    assert not allowed(kube, installed, "create", "", "pods")
    assert not allowed(kube, installed, "update", "image.openshift.io", "imagestreams")

    with OperatorProcess(control_plane, kube, installed, serve=(), bind=False) as operator:
        complete_a_trigger(kube, namespace)
        operator.check_alive()


def drop_builds_docker(rules: list[dict[str, Any]]) -> None:
    for rule in rules:
        if "builds/docker" in rule["resources"]:
            rule["resources"].remove("builds/docker")


def drop_patch_on_deployments(rules: list[dict[str, Any]]) -> None:
    # The apps rule also covers statefulsets and daemonsets: split it, so that only
    # `patch deployments` goes.
    for rule in rules:
        if "deployments" in rule["resources"]:
            others = [r for r in rule["resources"] if r != "deployments"]
            rules.append({**rule, "resources": others})
            rule["resources"] = ["deployments"]
            rule["verbs"] = [v for v in rule["verbs"] if v != "patch"]
            return


def test_a_rule_removed_from_the_installed_role_is_reported_as_forbidden(
    control_plane: ControlPlane, kube: Kube, installed: str, namespace: str
) -> None:
    built_by_trigger(kube, namespace)
    # The rule goes while the operator runs (its start-up check has passed): an admin
    # tightening the ClusterRole under a running operator.
    with (
        OperatorProcess(control_plane, kube, installed, serve=(), bind=False) as operator,
        installed_role_without(
            kube, drop_builds_docker, ("create", "build.openshift.io", "builds/docker")
        ),
    ):
        imported(kube, namespace)
        trigger = kube.wait_for(
            trigger_path(namespace), lambda t: ready(t).get("reason") == "Forbidden"
        )
        message = ready(trigger)["message"]
        # The server's own words, naming the installed ServiceAccount and the missing rule.
        user, _ = service_account_user(installed)
        assert f'User "{user}" cannot create builds/docker' in message, message
        assert kube.get(path_for(BUILD, "builds", namespace))["items"] == []
        assert operator.metrics()['imagestream_trigger_builds_total{result="failed"}'] >= 1
        # Events are sent in the background, just after the status that shows them.
        kube.wait_for(
            path_for("v1", "events", namespace),
            lambda _: any(
                e["type"] == "Warning" and e["reason"] == "Forbidden"
                for e in events_for(kube, namespace, "follow")
            ),
        )
    # The rule is back: a restarted operator starts the build it could not start.
    with OperatorProcess(control_plane, kube, installed, serve=(), bind=False):
        kube.wait_for(path_for(BUILD, "builds", namespace), lambda b: len(b["items"]) == 1)
        kube.wait_for(trigger_path(namespace), lambda t: ready(t).get("reason") == "Applied")


@pytest.mark.parametrize(
    ("edit", "probe", "named"),
    [
        (
            drop_patch_on_deployments,
            ("patch", "apps", "deployments"),
            "patch deployments.apps (cluster-wide)",
        ),
        (
            drop_builds_docker,
            ("create", "build.openshift.io", "builds/docker"),
            "create builds/docker.build.openshift.io (cluster-wide)",
        ),
    ],
    ids=["patch-deployments", "create-builds-docker"],
)
def test_a_rule_missing_from_the_installed_role_stops_the_operator_at_start(
    control_plane: ControlPlane,
    kube: Kube,
    installed: str,
    edit: Callable[[list[dict[str, Any]]], None],
    probe: tuple[str, str, str],
    named: str,
) -> None:
    with installed_role_without(kube, edit, probe):
        operator = OperatorProcess(control_plane, kube, installed, serve=(), bind=False)
        code = operator.run_to_exit(timeout=60)
        output = operator.output()
    assert code == 2, output
    missing = output[output.index("lacks permissions it needs: ") :].splitlines()[0]
    # Exactly the one permission taken away is named, and how to fix it.
    assert missing.startswith(f"lacks permissions it needs: {named}. "), missing
    assert "manifests/rbac" in missing


# -- the same through the Helm chart, in another namespace -------------------------------


@pytest.fixture(scope="module")
def helm_installed(
    control_plane: ControlPlane, kube: Kube, monitoring_crds: list[str], helm: Any
) -> str:
    """`helm template | kubectl apply -f -` into another namespace, for real.

    Not `helm install`: the kube-apiserver built here reports its version as v0.0.0,
    which fails the chart's kubeVersion check; `helm template --kube-version` names the
    pinned release instead and renders the same objects.
    """
    if not kube.exists(path_for("v1", "namespaces", name=HELM_NAMESPACE)):
        create_namespace(kube, HELM_NAMESPACE)
    # The ServiceAccount keeps its usual name (OperatorProcess logs in as
    # <namespace>/imagestream-trigger); the cluster-wide objects get the release's.
    rendered = helm.template(
        f"serviceAccount.name={NAME}",
        "dashboard.enabled=true",
        release=HELM_RELEASE,
        namespace=HELM_NAMESPACE,
    )
    assert rendered.returncode == 0, rendered.stderr
    result = control_plane.kubectl("apply", "-f", "-", input=rendered.stdout)
    assert result.returncode == 0, f"kubectl apply of the chart failed:\n{result.stderr}"
    role = f"{HELM_RELEASE}-imagestream-trigger"
    assert f"clusterrole.rbac.authorization.k8s.io/{role} " in result.stdout, result.stdout
    binding = kube.get(path_for(RBAC, "clusterrolebindings", name=role))
    assert binding["subjects"][0] == {
        "kind": "ServiceAccount",
        "name": NAME,
        "namespace": HELM_NAMESPACE,
    }
    wait_allowed(kube, HELM_NAMESPACE, "list", "image.openshift.io", "imagestreams", expected=True)
    return HELM_NAMESPACE


def test_chart_installed_in_another_namespace_runs_the_operator_end_to_end(
    control_plane: ControlPlane, kube: Kube, helm_installed: str, namespace: str
) -> None:
    assert not allowed(kube, helm_installed, "get", "", "secrets")
    with OperatorProcess(control_plane, kube, helm_installed, serve=(), bind=False) as operator:
        complete_a_trigger(kube, namespace)
        operator.check_alive()
