"""Install what we ship, for real, and run the operator with exactly that RBAC.

`kubectl apply -k manifests/` (what `oc apply -k manifests/` does on crc) creates the
namespace, CRD, ServiceAccount, ClusterRole and binding, the leader-election Role and
binding, Deployment, PodDisruptionBudget, Service, ServiceMonitor and PrometheusRule on the
real kube-apiserver. There is no kubelet, so the Deployment never gets a pod: the operator
runs here as a process instead, authenticated with a TokenRequest token of the INSTALLED
ServiceAccount (``bind=False``), so it has the installed roles' rules and nothing else, and
with the Lease placed as the Deployment's downward-API variables place it. It has to win
the Lease and complete a trigger end to end, and with one rule taken out of an installed
role the failure has to be reported clearly.
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
LEASES = "coordination.k8s.io"
LEASE_ROLE = f"{NAME}-leader-election"
LEASE_VERBS = ("get", "list", "watch", "create", "update")
# The name the kubelet would give the operator's pod (the Lease's holder identity). One for
# every run: a holder that could not release its Lease is then followed at once.
POD = f"{NAME}-7d9f8b6c5-x2x4q"
HELM_NAMESPACE = "imagestream-trigger-helm"
HELM_RELEASE = "its"
HELM_FULLNAME = f"{HELM_RELEASE}-imagestream-trigger"
# The Deployment (and the Lease) of each install, by namespace.
NAME_OF = {NAMESPACE: NAME, HELM_NAMESPACE: HELM_FULLNAME}


def service_account_user(namespace: str) -> tuple[str, list[str]]:
    return f"system:serviceaccount:{namespace}:{NAME}", [
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    ]


def allowed(
    kube: Kube, sa_namespace: str, verb: str, group: str, resource: str, namespace: str = ""
) -> bool:
    """Would the API server allow this to the operator's ServiceAccount (in ``namespace``;
    empty: cluster-wide)?"""
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
                    "namespace": namespace,
                },
            },
        },
    )
    return bool(review["status"].get("allowed"))


def wait_allowed(
    kube: Kube,
    sa_namespace: str,
    verb: str,
    group: str,
    resource: str,
    namespace: str = "",
    *,
    expected: bool,
) -> None:
    # The RBAC authorizer reads roles from an informer: an edit applies a moment later.
    deadline = time.monotonic() + 15
    while allowed(kube, sa_namespace, verb, group, resource, namespace) is not expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{verb} {resource}.{group} never became allowed={expected}")
        time.sleep(0.05)


@contextlib.contextmanager
def installed_role_without(
    kube: Kube,
    edit: Callable[[list[dict[str, Any]]], None],
    probe: tuple[str, ...],
    path: str = path_for(RBAC, "clusterroles", name=NAME),
) -> Iterator[None]:
    """Edit the INSTALLED role's rules in place (the ClusterRole unless ``path`` names
    another); put them back afterwards. ``probe``: (verb, group, resource[, namespace])."""
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


def lease_environment(kube: Kube, namespace: str, pod: str = POD) -> dict[str, str]:
    """The variables of the INSTALLED Deployment that place the Lease, as the kubelet would
    set them in pod ``pod``: downward-API fields resolved. (Only these: the others, such as
    the ports, the test harness sets for itself.)"""
    deployment = kube.get(path_for("apps/v1", "deployments", namespace, NAME_OF[namespace]))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    fields = {"metadata.name": pod, "metadata.namespace": namespace}
    found: dict[str, str] = {}
    for entry in container["env"]:
        if entry["name"] in ("POD_NAME", "POD_NAMESPACE") or entry["name"].startswith(
            ("IMAGESTREAM_TRIGGER_LEASE", "IMAGESTREAM_TRIGGER_LEADER")
        ):
            ref = entry.get("valueFrom", {}).get("fieldRef")
            found[entry["name"]] = fields[ref["fieldPath"]] if ref else entry["value"]
    assert {"POD_NAME", "POD_NAMESPACE"} <= set(found), container["env"]
    return found


def wait_leading(operator: OperatorProcess, namespace: str, lease: str) -> None:
    """The operator won the Lease: its metric says so, its log says which, and the Lease
    names it."""
    assert operator.wait_metric("imagestream_trigger_leader", above=0, timeout=30) == 1
    assert f"acquired the lease {namespace}/{lease} as {POD}" in operator.output()
    held = operator.kube.get(path_for(f"{LEASES}/v1", "leases", namespace, lease))
    assert held["spec"]["holderIdentity"] == POD


def stop_and_see_released(operator: OperatorProcess, namespace: str, lease: str) -> None:
    """SIGTERM the leader: it gives the Lease up as it goes (with the Role's `update`)."""
    assert operator.process is not None
    # Time enough for the whole shutdown (kopf alone may wait 5 s for its tasks): a
    # SIGKILL would leave the Lease held and say nothing about the rights.
    operator.process.stop(grace=30)
    held = operator.kube.get(path_for(f"{LEASES}/v1", "leases", namespace, lease))
    assert held["spec"].get("holderIdentity", "") == "", held["spec"]


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
        ("role.rbac.authorization.k8s.io", LEASE_ROLE),
        ("rolebinding.rbac.authorization.k8s.io", LEASE_ROLE),
        ("deployment.apps", NAME),
        ("poddisruptionbudget.policy", NAME),
        ("service", "imagestream-trigger-metrics"),
        ("servicemonitor.monitoring.coreos.com", NAME),
        ("prometheusrule.monitoring.coreos.com", NAME),
    ):
        assert f"{kind}/{name} " in result.stdout, result.stdout
    # Stored as shipped: what the apiserver returns is what we applied.
    deployment = kube.get(path_for("apps/v1", "deployments", NAMESPACE, NAME))
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == NAME
    wait_allowed(kube, NAMESPACE, "list", "image.openshift.io", "imagestreams", expected=True)
    wait_allowed(kube, NAMESPACE, "update", LEASES, "leases", NAMESPACE, expected=True)
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
    # Secrets: read by name only (a notification receiver's URL), never listed or watched.
    assert allowed(kube, installed, "get", "", "secrets")
    assert not allowed(kube, installed, "list", "", "secrets")
    assert not allowed(kube, installed, "watch", "", "secrets")
    assert not allowed(kube, installed, "create", "", "pods")
    assert not allowed(kube, installed, "update", "image.openshift.io", "imagestreams")

    environment = lease_environment(kube, installed)
    assert environment == {"POD_NAME": POD, "POD_NAMESPACE": installed}
    with OperatorProcess(
        control_plane, kube, installed, serve=(), bind=False, env=environment
    ) as operator:
        wait_leading(operator, installed, NAME)
        complete_a_trigger(kube, namespace)
        operator.check_alive()
        stop_and_see_released(operator, installed, NAME)


def test_installed_lease_role_grants_exactly_the_lease_rights_and_only_there(
    kube: Kube, installed: str
) -> None:
    for verb in LEASE_VERBS:
        assert allowed(kube, installed, verb, LEASES, "leases", installed), verb
    for verb in ("delete", "patch", "deletecollection"):
        assert not allowed(kube, installed, verb, LEASES, "leases", installed), verb
    # Nowhere else: not kube-system's Leases (the control plane's own elections), nor
    # cluster-wide.
    for where in ("kube-system", "default", ""):
        assert not allowed(kube, installed, "update", LEASES, "leases", where), where


def drop_lease_verb(verb: str) -> Callable[[list[dict[str, Any]]], None]:
    def edit(rules: list[dict[str, Any]]) -> None:
        (rule,) = rules
        rule["verbs"].remove(verb)

    return edit


@pytest.mark.parametrize("verb", LEASE_VERBS)
def test_each_verb_of_the_lease_role_is_one_pre_flight_checks(
    control_plane: ControlPlane, kube: Kube, installed: str, verb: str
) -> None:
    # Nothing in the Role is spare: without any one of its verbs the operator refuses to
    # start, naming that verb (and only it) and where.
    with installed_role_without(
        kube,
        drop_lease_verb(verb),
        (verb, LEASES, "leases", installed),
        path=path_for(RBAC, "roles", installed, LEASE_ROLE),
    ):
        operator = OperatorProcess(
            control_plane,
            kube,
            installed,
            serve=(),
            bind=False,
            args=[f"--lease-namespace={installed}"],
            env={"POD_NAME": POD},
        )
        code = operator.run_to_exit(timeout=60)
        output = operator.output()
    assert code == 2, output
    missing = output[output.index("lacks permissions it needs: ") :].splitlines()[0]
    named = f'{verb} leases.coordination.k8s.io (in namespace "{installed}")'
    assert missing.startswith(f"lacks permissions it needs: {named}. "), missing


def test_the_installed_roles_start_a_leader_with_lease_namespace(
    control_plane: ControlPlane, kube: Kube, installed: str
) -> None:
    # As run outside a pod: --lease-namespace names the install namespace, and the
    # installed rules pass pre-flight and win the Lease.
    with OperatorProcess(
        control_plane,
        kube,
        installed,
        serve=(),
        bind=False,
        args=[f"--lease-namespace={installed}"],
        env={"POD_NAME": POD},
    ) as operator:
        wait_leading(operator, installed, NAME)
        operator.check_alive()
        stop_and_see_released(operator, installed, NAME)


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


def drop_imagestreamtags(rules: list[dict[str, Any]]) -> None:
    rules[:] = [r for r in rules if "imagestreamtags" not in r["resources"]]


def test_a_missing_rule_only_promotion_needs_is_a_warning_not_a_refusal_to_start(
    control_plane: ControlPlane, kube: Kube, installed: str
) -> None:
    # Promotion is one feature of some ImageTriggers: a ClusterRole trimmed of it still
    # runs everything else, and the log says what will be refused.
    with (
        installed_role_without(
            kube, drop_imagestreamtags, ("create", "image.openshift.io", "imagestreamtags")
        ),
        OperatorProcess(control_plane, kube, installed, serve=(), bind=False) as operator,
    ):
        operator.wait_logged("lacks create imagestreamtags.image.openshift.io (cluster-wide)")
        operator.wait_logged("update imagestreamtags.image.openshift.io (cluster-wide)")
        operator.wait_logged("promotion (spec.rollout.promoteTo) will be refused")
        operator.wait_ready()


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
    role = HELM_FULLNAME
    assert f"clusterrole.rbac.authorization.k8s.io/{role} " in result.stdout, result.stdout
    binding = kube.get(path_for(RBAC, "clusterrolebindings", name=role))
    assert binding["subjects"][0] == {
        "kind": "ServiceAccount",
        "name": NAME,
        "namespace": HELM_NAMESPACE,
    }
    # The Lease's Role and binding: in the release namespace, for the release's account.
    lease_role = f"{HELM_FULLNAME}-leader-election"
    assert f"role.rbac.authorization.k8s.io/{lease_role} " in result.stdout, result.stdout
    lease_binding = kube.get(path_for(RBAC, "rolebindings", HELM_NAMESPACE, lease_role))
    assert lease_binding["subjects"] == [
        {"kind": "ServiceAccount", "name": NAME, "namespace": HELM_NAMESPACE}
    ]
    assert f"poddisruptionbudget.policy/{HELM_FULLNAME} " in result.stdout, result.stdout
    wait_allowed(kube, HELM_NAMESPACE, "list", "image.openshift.io", "imagestreams", expected=True)
    wait_allowed(kube, HELM_NAMESPACE, "update", LEASES, "leases", HELM_NAMESPACE, expected=True)
    return HELM_NAMESPACE


def test_chart_installed_in_another_namespace_runs_the_operator_end_to_end(
    control_plane: ControlPlane, kube: Kube, helm_installed: str, namespace: str
) -> None:
    assert allowed(kube, helm_installed, "get", "", "secrets")  # by name: notify's URLs
    assert not allowed(kube, helm_installed, "list", "", "secrets")
    # manifests/' Role grants nothing in the chart's namespace: this one's own Role does.
    assert not allowed(kube, NAMESPACE, "update", LEASES, "leases", helm_installed)
    environment = lease_environment(kube, helm_installed)
    # The release elects on a Lease of its own name, in its own namespace.
    assert environment == {
        "POD_NAME": POD,
        "POD_NAMESPACE": helm_installed,
        "IMAGESTREAM_TRIGGER_LEASE_NAME": HELM_FULLNAME,
    }
    with OperatorProcess(
        control_plane, kube, helm_installed, serve=(), bind=False, env=environment
    ) as operator:
        wait_leading(operator, helm_installed, HELM_FULLNAME)
        complete_a_trigger(kube, namespace)
        operator.check_alive()
        stop_and_see_released(operator, helm_installed, HELM_FULLNAME)
