"""Tenancy: an ImageTrigger writes with its ServiceAccount's rights, not the operator's.

The operator runs as its own ServiceAccount bound to the shipped ClusterRole, which may
patch every workload and start every kind of build; each test shows a tenant's
ServiceAccount, impersonated, getting only what its own Roles grant, and the refusal
healing once the right is granted.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.controlplane.kube import Kube, create_namespace, path_for
from tests.controlplane.operator_process import OperatorProcess, shipped_cluster_role, without_rule
from tests.e2e.objects import (
    BUILD,
    REPO,
    annotated_web,
    builds,
    by_name,
    create,
    events_for,
    image_stream,
    image_trigger,
    images_of,
    imported,
    ready,
    trigger_annotation,
    wait_reason,
    web_image,
    workload,
    workload_path,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "imagetrigger.md"
RBAC = "rbac.authorization.k8s.io/v1"
# Retries back off (1 s doubling): a grant made a few seconds after a refusal is picked
# up by a retry within about ten seconds.
HEALED_S = 45


def service_account(kube: Kube, namespace: str, name: str = "deployer") -> None:
    kube.create(
        path_for("v1", "serviceaccounts", namespace),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}},
    )


def grant(
    kube: Kube,
    namespace: str,
    name: str,
    rules: list[dict[str, Any]],
    *,
    account: tuple[str, str],
) -> None:
    """A Role ``name`` in ``namespace`` with ``rules``, bound to ServiceAccount (ns, name)."""
    kube.apply(
        {
            "apiVersion": RBAC,
            "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": rules,
        }
    )
    kube.apply(
        {
            "apiVersion": RBAC,
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "namespace": account[0], "name": account[1]}],
        }
    )


def warnings(kube: Kube, namespace: str, reason: str, name: str = "follow") -> list[str]:
    return [
        e["message"]
        for e in events_for(kube, namespace, name)
        if e["type"] == "Warning" and e["reason"] == reason
    ]


def wait_warning(kube: Kube, namespace: str, reason: str, name: str = "follow") -> str:
    kube.wait_for(
        path_for("v1", "events", namespace), lambda _: warnings(kube, namespace, reason, name)
    )
    return warnings(kube, namespace, reason, name)[0]


def documented_rbac() -> list[dict[str, Any]]:
    """The Role and RoleBinding of the serviceAccountName example in docs/imagetrigger.md."""
    for block in re.findall(r"^```yaml\n(.*?)^```", DOCS.read_text(), re.MULTILINE | re.DOTALL):
        documents = [d for d in yaml.safe_load_all(block) if d]
        if any(d["kind"] == "RoleBinding" for d in documents):
            return [d for d in documents if d["kind"] in ("Role", "RoleBinding")]
    raise AssertionError("docs/imagetrigger.md has no RoleBinding example")


def in_namespace(objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """The documented objects moved from team-a to ``namespace``."""
    moved = copy.deepcopy(objects)
    for obj in moved:
        obj["metadata"]["namespace"] = namespace
        for subject in obj.get("subjects", []):
            subject["namespace"] = namespace
    return moved


def custom_buildconfig(name: str = "app-build") -> dict[str, Any]:
    """A Custom-strategy BuildConfig: creating its builds needs create on builds/custom,
    a right OpenShift gives to nobody by default (it runs a builder image of one's choice)."""
    return {
        "apiVersion": BUILD,
        "kind": "BuildConfig",
        "metadata": {"name": name},
        "spec": {
            "triggers": [],
            "strategy": {
                "type": "Custom",
                "customStrategy": {
                    "from": {"kind": "DockerImage", "name": "quay.io/acme/builder:1"}
                },
            },
            "output": {"to": {"kind": "ImageStreamTag", "name": f"{name}:latest"}},
        },
    }


INSTANTIATE_ONLY = [
    {
        "apiGroups": ["build.openshift.io"],
        "resources": ["buildconfigs/instantiate"],
        "verbs": ["create"],
    },
    {"apiGroups": ["build.openshift.io"], "resources": ["builds"], "verbs": ["list"]},
]
CUSTOM_BUILDS = [
    {"apiGroups": ["build.openshift.io"], "resources": ["builds/custom"], "verbs": ["create"]}
]
PATCH_DEPLOYMENTS = [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}]


def test_a_tenant_cannot_start_a_custom_build_until_its_account_may(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    create(kube, namespace, custom_buildconfig())
    service_account(kube, namespace)
    grant(kube, namespace, "instantiate", INSTANTIATE_ONLY, account=(namespace, "deployer"))
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "BuildConfig", "name": "app-build"}],
            serviceAccountName="deployer",
        ),
    )
    imported(kube, namespace)

    # The operator may create custom builds; the tenant's ServiceAccount may not.
    trigger = wait_reason(kube, namespace, "Forbidden")
    message = ready(trigger)["message"]
    assert message.startswith(
        f"BuildConfig/app-build: ServiceAccount {namespace}/deployer may not create "
        f"builds/custom (API group build.openshift.io) in namespace {namespace}."
    ), message
    assert "spec.serviceAccountName" in message
    assert "builds/custom" in wait_warning(kube, namespace, "Forbidden")
    assert builds(kube, namespace) == []

    grant(kube, namespace, "custom-builds", CUSTOM_BUILDS, account=(namespace, "deployer"))
    kube.wait_for(path_for(BUILD, "builds", namespace), lambda b: b["items"], timeout=HEALED_S)
    wait_reason(kube, namespace, "Applied")
    operator.settle()
    assert builds(kube, namespace) == ["app-build-1"]
    build = kube.get(path_for(BUILD, "builds", namespace, "app-build-1"))
    assert build["spec"]["strategy"]["type"] == "Custom"


def test_a_tenant_cannot_patch_a_deployment_its_account_may_not_patch(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    image_stream(kube, namespace)
    create(kube, namespace, workload("Deployment", "web", {"web": f"{REPO}:latest"}))
    service_account(kube, namespace)
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "Deployment", "name": "web"}],
            serviceAccountName="deployer",
        ),
    )
    first = imported(kube, namespace)

    trigger = wait_reason(kube, namespace, "Forbidden")
    assert (
        f"ServiceAccount {namespace}/deployer may not patch deployments (API group apps) in "
        f"namespace {namespace}."
    ) in ready(trigger)["message"]
    assert f"{namespace}/deployer may not patch deployments" in wait_warning(
        kube, namespace, "Forbidden"
    )
    assert web_image(kube, namespace) == f"{REPO}:latest"

    # The documented Role and RoleBinding, as written there (moved to this namespace).
    for obj in in_namespace(documented_rbac(), namespace):
        kube.apply(obj)
    kube.wait_for(
        workload_path("Deployment", namespace, "web"),
        lambda d: images_of(d)["web"] == first.reference,
        timeout=HEALED_S,
    )
    wait_reason(kube, namespace, "Applied")


def test_the_default_service_account_applies_to_triggers_that_name_none(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    image_stream(kube, namespace)
    for name in ("a", "b"):
        create(kube, namespace, workload("Deployment", name, {"web": f"{REPO}:latest"}))
    # A workload following the tag through OpenShift's annotation: not an ImageTrigger.
    annotated = workload(
        "Deployment",
        "annotated",
        {"web": f"{REPO}:latest"},
        annotation=trigger_annotation(by_name("web")),
    )
    create(kube, namespace, annotated)
    service_account(kube, namespace)
    grant(kube, namespace, "patch", PATCH_DEPLOYMENTS, account=(namespace, "deployer"))
    # "locked" does not even exist: impersonating it works, and it may do nothing.
    create(
        kube,
        namespace,
        image_trigger("plain", "app:latest", [{"kind": "Deployment", "name": "a"}]),
    )
    create(
        kube,
        namespace,
        image_trigger(
            "named",
            "app:latest",
            [{"kind": "Deployment", "name": "b"}],
            serviceAccountName="deployer",
        ),
    )
    operator = run_operator(args=["--default-service-account=locked", "--native-annotations=apply"])
    assert (
        'lockdown: ImageTriggers without spec.serviceAccountName act as the ServiceAccount "locked"'
        in operator.output()
    )
    first = imported(kube, namespace)

    plain = wait_reason(kube, namespace, "Forbidden", name="plain")
    message = ready(plain)["message"]
    assert f"ServiceAccount {namespace}/locked may not patch deployments" in message
    assert "--default-service-account" in message
    assert "check that the ServiceAccount exists" in message
    wait_reason(kube, namespace, "Applied", name="named")
    for name, image in (("b", first.reference), ("annotated", first.reference)):
        kube.wait_for(
            workload_path("Deployment", namespace, name),
            lambda d, i=image: images_of(d)["web"] == i,
        )
    assert images_of(kube.get(workload_path("Deployment", namespace, "a")))["web"] == (
        f"{REPO}:latest"
    )


def test_without_a_default_the_operator_says_triggers_use_its_own_rights(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    path = annotated_web(kube, namespace)
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "Deployment", "name": "web"}]),
    )
    assert "act with the operator's own rights" in operator.output()
    first = imported(kube, namespace)
    kube.wait_for(path, lambda d: images_of(d)["web"] == first.reference)
    wait_reason(kube, namespace, "Applied")


def test_a_cross_namespace_source_the_account_cannot_read_is_refused(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    source_ns = f"{namespace[:50]}-src"
    create_namespace(kube, source_ns)
    # The stream's owner allows the namespace: only the ServiceAccount's right is missing.
    image_stream(kube, source_ns, **{"imagestream-trigger.dev/allowed-namespaces": namespace})
    create(kube, namespace, workload("Deployment", "web", {"web": f"{REPO}:latest"}))
    service_account(kube, namespace)
    grant(kube, namespace, "patch", PATCH_DEPLOYMENTS, account=(namespace, "deployer"))
    trigger = image_trigger(
        "follow",
        "app:latest",
        [{"kind": "Deployment", "name": "web"}],
        serviceAccountName="deployer",
    )
    trigger["spec"]["source"]["namespace"] = source_ns
    create(kube, namespace, trigger)
    operator = run_operator(serve=[namespace, source_ns])
    first = imported(kube, source_ns)

    # The operator reads the stream (it resolved the tag), the ServiceAccount may not.
    refused = wait_reason(kube, namespace, "Forbidden")
    assert refused["status"]["image"] == first.reference
    assert (
        f"ServiceAccount {namespace}/deployer may not get imagestreams "
        f"(API group image.openshift.io) in namespace {source_ns}."
    ) in ready(refused)["message"]
    operator.wait_reconciled(f"ImageTrigger {namespace}/follow", after=0)
    assert web_image(kube, namespace) == f"{REPO}:latest"

    grant(
        kube,
        source_ns,
        "imagestream-reader",
        [{"apiGroups": ["image.openshift.io"], "resources": ["imagestreams"], "verbs": ["get"]}],
        account=(namespace, "deployer"),
    )
    kube.wait_for(
        workload_path("Deployment", namespace, "web"),
        lambda d: images_of(d)["web"] == first.reference,
        timeout=HEALED_S,
    )
    wait_reason(kube, namespace, "Applied")


def test_lockdown_without_the_right_to_impersonate_refuses_to_start(
    run_operator: Callable[..., OperatorProcess],
) -> None:
    role = without_rule(shipped_cluster_role(), "serviceaccounts")
    operator = run_operator(role=role, args=["--default-service-account=deployer"], wait=False)
    assert operator.wait_exit(30) == 2
    assert "impersonate serviceaccounts" in operator.output()
