"""The Helm chart: it lints, renders with every toggle, refuses bad values, and stays in
step with manifests/ (the source of truth), and the real kube-apiserver accepts both.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
import shutil
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane import binaries
from tests.controlplane.cluster import ControlPlane

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "imagestream-trigger"
MANIFESTS = REPO / "manifests"
HELM_DOC = REPO / "docs" / "helm.md"
NAMESPACE = "imagestream-trigger"
ENV = "IMAGESTREAM_TRIGGER_"

Objects = dict[tuple[str, str], dict[str, Any]]


def yaml_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind_and_name(docs: list[dict[str, Any]]) -> Objects:
    indexed: Objects = {}
    for doc in docs:
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in indexed, f"{key} rendered twice"
        indexed[key] = doc
    return indexed


def kinds(docs: list[dict[str, Any]]) -> set[str]:
    return {d["kind"] for d in docs}


def the(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(operator, dict)
    return operator


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    """{name: value}; a value taken from the pod's own fields reads "<metadata.name>"."""
    found: dict[str, str] = {}
    for entry in container(deployment).get("env", []):
        field = entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        found[entry["name"]] = f"<{field}>" if field else entry.get("value", "")
    return found


def readable_diff(what: str, manifests: Any, chart: Any) -> str:
    def dump(value: Any) -> list[str]:
        return yaml.safe_dump(value, sort_keys=True, default_flow_style=False).splitlines()

    lines = difflib.unified_diff(
        dump(manifests), dump(chart), "manifests/ (kubectl kustomize)", "helm template", lineterm=""
    )
    return f"{what} differs between manifests/ and the chart:\n" + "\n".join(lines)


def assert_same(what: str, manifests: Any, chart: Any) -> None:
    assert manifests == chart, readable_diff(what, manifests, chart)


# -- lint and render ----------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [[], ["dashboard.enabled=true", "watchNamespaces={team-a,team-*}"]],
    ids=["defaults", "everything-on"],
)
def test_helm_lint_strict_passes(helm: Any, values: list[str]) -> None:
    args = ["lint", "--strict", str(CHART), "--kube-version", binaries.kubernetes_version()]
    for value in values:
        args += ["--set", value]
    result = helm.run(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
    # `fail` in a template is only an [INFO] line for helm lint: make sure there is none.
    assert "execution error" not in result.stdout + result.stderr


def test_defaults_render_what_manifests_install(helm: Any) -> None:
    docs = helm.render()
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == {
        ("ServiceAccount", "imagestream-trigger"),
        ("ClusterRole", "imagestream-trigger"),
        ("ClusterRole", "imagestream-trigger-edit"),
        ("ClusterRole", "imagestream-trigger-view"),
        ("ClusterRoleBinding", "imagestream-trigger"),
        ("Role", "imagestream-trigger-leader-election"),
        ("RoleBinding", "imagestream-trigger-leader-election"),
        ("Deployment", "imagestream-trigger"),
        ("PodDisruptionBudget", "imagestream-trigger"),
        ("NetworkPolicy", "imagestream-trigger"),
        ("Service", "imagestream-trigger-metrics"),
        ("ServiceMonitor", "imagestream-trigger"),
        ("PrometheusRule", "imagestream-trigger"),
    }
    for doc in docs:
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]
    # The CRD ships in crds/: installed by `helm install`, rendered only on request.
    with_crds = helm.render(include_crds=True)
    assert "CustomResourceDefinition" in kinds(with_crds)


@pytest.mark.parametrize(
    ("toggle", "kind"),
    [
        ("serviceMonitor", "ServiceMonitor"),
        ("prometheusRule", "PrometheusRule"),
        ("dashboard", "ConfigMap"),
        ("networkPolicy", "NetworkPolicy"),
        ("podDisruptionBudget", "PodDisruptionBudget"),
        ("leaderElection", "Role"),
        ("leaderElection", "RoleBinding"),
    ],
)
@pytest.mark.parametrize("enabled", [True, False], ids=["on", "off"])
def test_each_toggle_adds_or_removes_its_object(
    helm: Any, toggle: str, kind: str, enabled: bool
) -> None:
    # Without leader election only one replica may run (the chart refuses more).
    single = [] if enabled or toggle != "leaderElection" else ["replicaCount=1"]
    docs = helm.render(f"{toggle}.enabled={str(enabled).lower()}", *single)
    assert (kind in kinds(docs)) is enabled
    assert {"Deployment", "Service", "ClusterRole"} <= kinds(docs)


def test_aggregated_roles_can_be_left_out(helm: Any) -> None:
    def cluster_roles(*values: str) -> set[str]:
        return {d["metadata"]["name"] for d in helm.render(*values) if d["kind"] == "ClusterRole"}

    assert cluster_roles("rbac.aggregateToDefaultRoles=false") == {"imagestream-trigger"}
    assert cluster_roles("rbac.aggregateToDefaultRoles=true") == {
        "imagestream-trigger",
        "imagestream-trigger-edit",
        "imagestream-trigger-view",
    }


def test_all_toggles_off_leaves_the_operator_alone(helm: Any) -> None:
    docs = helm.render(
        "serviceMonitor.enabled=false",
        "prometheusRule.enabled=false",
        "dashboard.enabled=false",
        "serviceAccount.create=false",
        "networkPolicy.enabled=false",
        "rbac.aggregateToDefaultRoles=false",
        "podDisruptionBudget.enabled=false",
        "leaderElection.enabled=false",
        "replicaCount=1",
    )
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} == {
        ("ClusterRole", "imagestream-trigger"),
        ("ClusterRoleBinding", "imagestream-trigger"),
        ("Deployment", "imagestream-trigger"),
        ("Service", "imagestream-trigger-metrics"),
    }


def test_dashboard_configmap_carries_the_dashboard_json(helm: Any) -> None:
    docs = helm.render(
        "dashboard.enabled=true", "dashboard.namespace=grafana", "dashboard.labels.team=ops"
    )
    configmap = the(docs, "ConfigMap")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["labels"]["team"] == "ops"
    assert configmap["metadata"]["namespace"] == "grafana"
    shipped = (CHART / "dashboards" / "imagestream-trigger.json").read_text()
    assert json.loads(configmap["data"]["imagestream-trigger.json"]) == json.loads(shipped)


def test_values_reach_the_operator_environment(helm: Any) -> None:
    docs = helm.render(
        "watchNamespaces={team-a,team-*,!team-x}",
        "nativeAnnotations=observe",
        "dryRun=true",
        "logFormat=text",
        "logLevel=debug",
        "resyncSeconds=300",
        "workers=4",
        "maxConcurrentWrites=8",
        "internalRegistryHostname=image-registry.openshift-image-registry.svc:5000",
        "defaultServiceAccount=deployer",
        "leaderElection.leaseName=its-lease",
        "leaderElection.leaseDurationSeconds=15",
        "leaderElection.renewDeadlineSeconds=10",
        "leaderElection.retryPeriodSeconds=2",
        "metrics.port=9090",
        "health.port=9091",
        "image.repository=quay.io/acme/imagestream-trigger",
        "image.tag=1.2.3",
        "image.pullPolicy=Always",
        "nodeSelector.role=infra",
        "tolerations[0].key=infra",
        "tolerations[0].operator=Exists",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0].matchExpressions[0].key=zone",
        "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
        ".nodeSelectorTerms[0].matchExpressions[0].operator=Exists",
        "extraEnv[0].name=IMAGESTREAM_TRIGGER_BIND_ADDRESS",
        "serviceMonitor.interval=15s",
        "serviceMonitor.labels.release=prometheus",
        "prometheusRule.labels.role=alert-rules",
        strings=["extraEnv[0].value=0.0.0.0"],
    )
    deployment = the(docs, "Deployment")
    assert env_of(deployment) == {
        f"{ENV}NAMESPACES": "team-a,team-*,!team-x",
        f"{ENV}NATIVE_ANNOTATIONS": "observe",
        f"{ENV}DRY_RUN": "true",
        f"{ENV}LOG_FORMAT": "text",
        f"{ENV}LOG_LEVEL": "debug",
        f"{ENV}RESYNC_SECONDS": "300",
        f"{ENV}WORKERS": "4",
        f"{ENV}MAX_CONCURRENT_WRITES": "8",
        f"{ENV}INTERNAL_REGISTRY_HOSTNAME": "image-registry.openshift-image-registry.svc:5000",
        f"{ENV}DEFAULT_SERVICE_ACCOUNT": "deployer",
        f"{ENV}LEASE_NAME": "its-lease",
        f"{ENV}LEASE_DURATION_SECONDS": "15",
        f"{ENV}LEASE_RENEW_DEADLINE_SECONDS": "10",
        f"{ENV}LEASE_RETRY_PERIOD_SECONDS": "2",
        f"{ENV}METRICS_PORT": "9090",
        f"{ENV}HEALTH_PORT": "9091",
        f"{ENV}BIND_ADDRESS": "0.0.0.0",
        "POD_NAME": "<metadata.name>",
        "POD_NAMESPACE": "<metadata.namespace>",
    }
    operator = container(deployment)
    assert operator["image"] == "quay.io/acme/imagestream-trigger:1.2.3"
    assert operator["imagePullPolicy"] == "Always"
    assert {p["name"]: p["containerPort"] for p in operator["ports"]} == {
        "metrics": 9090,
        "health": 9091,
    }
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"role": "infra"}
    assert pod["tolerations"] == [{"key": "infra", "operator": "Exists"}]
    # An affinity of one's own replaces the default anti-affinity, whole.
    assert set(pod["affinity"]) == {"nodeAffinity"}
    assert the(docs, "Service")["spec"]["ports"][0]["port"] == 9090
    monitor = the(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["interval"] == "15s"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert the(docs, "PrometheusRule")["metadata"]["labels"]["role"] == "alert-rules"


def test_values_from_a_file_keep_their_type(helm: Any, tmp_path: Path) -> None:
    # --set cannot give a fraction (helm reads it as a string); a values file can.
    values = tmp_path / "values.yaml"
    values.write_text("resyncSeconds: 90.5\nworkers: 16\n")
    result = helm.run(
        "template",
        "x",
        str(CHART),
        "-f",
        str(values),
        "--kube-version",
        binaries.kubernetes_version(),
    )
    assert result.returncode == 0, result.stderr
    environment = env_of(the(yaml_docs(result.stdout), "Deployment"))
    assert environment[f"{ENV}RESYNC_SECONDS"] == "90.5"
    assert f"{ENV}WORKERS" not in environment  # the default is left to the operator


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("RESYNC_SECONDS", "resyncSeconds"),
        ("LEADER_ELECTION", "leaderElection.enabled"),
        ("LEASE_NAME", "leaderElection.leaseName"),
        ("LEASE_DURATION_SECONDS", "leaderElection.leaseDurationSeconds"),
        ("LEASE_RENEW_DEADLINE_SECONDS", "leaderElection.renewDeadlineSeconds"),
        ("LEASE_RETRY_PERIOD_SECONDS", "leaderElection.retryPeriodSeconds"),
    ],
)
def test_extra_env_may_not_set_what_a_value_sets(helm: Any, variable: str, value: str) -> None:
    result = helm.template(f"extraEnv[0].name={ENV}{variable}", strings=["extraEnv[0].value=3"])
    assert result.returncode != 0
    assert f"extraEnv sets {ENV}{variable}: set the value {value} instead" in result.stderr, (
        result.stderr
    )


@pytest.mark.parametrize("variable", ["POD_NAME", "POD_NAMESPACE"])
def test_extra_env_may_not_replace_the_pods_own_fields(helm: Any, variable: str) -> None:
    result = helm.template(f"extraEnv[0].name={variable}", strings=["extraEnv[0].value=x"])
    assert result.returncode != 0
    assert f"extraEnv sets {variable}: the chart sets it from the pod itself" in result.stderr, (
        result.stderr
    )


# -- replicas, leader election, disruption budget ------------------------------------


def test_two_replicas_roll_without_a_gap_and_spread_over_nodes(helm: Any) -> None:
    docs = helm.render()
    deployment = the(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    selector = deployment["spec"]["selector"]["matchLabels"]
    (term,) = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert term["podAffinityTerm"] == {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": selector},
    }
    budget = the(docs, "PodDisruptionBudget")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == {"matchLabels": selector}
    # Who holds the Lease, and where: the pod's own name and namespace.
    environment = env_of(deployment)
    assert environment["POD_NAME"] == "<metadata.name>"
    assert environment["POD_NAMESPACE"] == "<metadata.namespace>"
    # The operator's own defaults: nothing about the election in the environment.
    assert not [name for name in environment if name.startswith((f"{ENV}LEASE", f"{ENV}LEADER"))]


def test_one_replica_needs_no_other_setting_and_gets_no_budget(helm: Any) -> None:
    docs = helm.render("replicaCount=1")
    assert "PodDisruptionBudget" not in kinds(docs)
    deployment = the(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    # A rollout still starts the new pod before the old one hands its Lease over.
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    # Leader election stays on (one holder, no contender): the Role is still needed.
    assert {"Role", "RoleBinding"} <= kinds(docs)
    assert f"{ENV}LEADER_ELECTION" not in env_of(deployment)


def test_leader_election_off_drops_the_role_and_tells_the_operator(helm: Any) -> None:
    docs = helm.render(
        "replicaCount=1", "leaderElection.enabled=false", "leaderElection.leaseName=unused"
    )
    assert not {"Role", "RoleBinding"} & kinds(docs)
    environment = env_of(the(docs, "Deployment"))
    assert environment[f"{ENV}LEADER_ELECTION"] == "false"
    assert f"{ENV}LEASE_NAME" not in environment


def test_several_replicas_without_leader_election_are_refused(helm: Any) -> None:
    result = helm.template("leaderElection.enabled=false")
    assert result.returncode != 0
    assert (
        "replicaCount is 2 with leaderElection.enabled=false: every replica would write"
        in result.stderr
    ), result.stderr


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (
            ["leaderElection.renewDeadlineSeconds=8"],
            "leaderElection.renewDeadlineSeconds must be shorter than "
            "leaderElection.leaseDurationSeconds",
        ),
        (
            ["leaderElection.retryPeriodSeconds=5"],
            "leaderElection.retryPeriodSeconds must be shorter than "
            "leaderElection.renewDeadlineSeconds",
        ),
        (
            ["podDisruptionBudget.minAvailable=2"],
            "podDisruptionBudget.minAvailable (2) must be below replicaCount (2)",
        ),
        (
            ["replicaCount=3", "podDisruptionBudget.minAvailable=100%"],
            "podDisruptionBudget.minAvailable 100% keeps every replica",
        ),
    ],
    ids=["renew-deadline", "retry-period", "min-available", "min-available-percent"],
)
def test_settings_that_break_the_election_or_every_drain_are_refused(
    helm: Any, values: list[str], problem: str
) -> None:
    result = helm.template(*values)
    assert result.returncode != 0
    assert problem in result.stderr, result.stderr


def test_budget_takes_a_percentage(helm: Any) -> None:
    budget = the(
        helm.render("replicaCount=4", "podDisruptionBudget.minAvailable=50%"), "PodDisruptionBudget"
    )
    assert budget["spec"]["minAvailable"] == "50%"


def test_leader_election_role_is_the_release_namespaces_and_binds_its_account(
    helm: Any,
) -> None:
    docs = helm.render("serviceAccount.name=runner", release="ops", namespace="tools")
    role, binding = the(docs, "Role"), the(docs, "RoleBinding")
    assert (
        role["metadata"]["name"]
        == binding["metadata"]["name"]
        == "ops-imagestream-trigger-leader-election"
    )
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "tools"
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update"],
        }
    ]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "ops-imagestream-trigger-leader-election",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "runner", "namespace": "tools"}
    ]
    # Leases nowhere else: no ClusterRole grants any.
    cluster_rules = [r for d in docs if d["kind"] == "ClusterRole" for r in d["rules"]]
    assert cluster_rules
    assert not [r for r in cluster_rules if "coordination.k8s.io" in r["apiGroups"]]
    # Each release elects on a Lease of its own name, in that namespace (the pod's).
    environment = env_of(the(docs, "Deployment"))
    assert environment[f"{ENV}LEASE_NAME"] == "ops-imagestream-trigger"
    assert environment["POD_NAMESPACE"] == "<metadata.namespace>"


def test_network_policy_takes_extra_namespace_selectors(helm: Any) -> None:
    policy = the(
        helm.render(
            "networkPolicy.extraNamespaceSelectors[0].matchLabels.team=monitoring",
            "networkPolicy.extraNamespaceSelectors[1].matchExpressions[0].key=prometheus",
            "networkPolicy.extraNamespaceSelectors[1].matchExpressions[0].operator=Exists",
        ),
        "NetworkPolicy",
    )
    metrics_rule, health_rule = policy["spec"]["ingress"]
    assert metrics_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert [peer["namespaceSelector"] for peer in metrics_rule["from"]] == [
        {"matchLabels": {"network.openshift.io/policy-group": "monitoring"}},
        {"matchLabels": {"kubernetes.io/metadata.name": "openshift-user-workload-monitoring"}},
        {"matchLabels": {"team": "monitoring"}},
        {"matchExpressions": [{"key": "prometheus", "operator": "Exists"}]},
    ]
    assert health_rule == {"ports": [{"port": "health", "protocol": "TCP"}]}
    assert policy["spec"]["egress"] == [{}]  # the API server, wherever it is


def test_empty_image_tag_means_the_app_version(helm: Any) -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    deployment = the(helm.render("image.tag="), "Deployment")
    assert container(deployment)["image"].endswith(":" + chart["appVersion"])


def test_both_run_the_release_image_never_latest(helm: Any, kustomize: Callable[..., str]) -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == version, "Chart.yaml appVersion must be pyproject's version"
    (entry,) = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["images"]
    assert entry["newTag"] == version, "manifests/kustomization.yaml images: must pin it too"
    shipped = the(yaml_docs(kustomize()), "Deployment")
    rendered = the(helm.render(), "Deployment")
    for deployment in (shipped, rendered):
        operator = container(deployment)
        assert operator["image"] == f"{entry['name']}:{version}"
        assert operator["imagePullPolicy"] == "IfNotPresent"


def test_another_release_name_prefixes_every_object(helm: Any) -> None:
    docs = helm.render(release="ops", namespace="tools", include_crds=False)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "ops-imagestream-trigger") in names
    assert ("Service", "ops-imagestream-trigger-metrics") in names
    binding = the(docs, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == "ops-imagestream-trigger"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "ops-imagestream-trigger", "namespace": "tools"}
    ]
    # The PrometheusRule's OperatorDown alert matches job=~".*imagestream-trigger.*": the
    # metrics Service (the job label) must keep that in its name.
    assert "imagestream-trigger" in the(docs, "Service")["metadata"]["name"]


@pytest.mark.parametrize(
    ("values", "field", "problem"),
    [
        (["logFormat=xml"], "/logFormat", "value must be one of 'text', 'json'"),
        (["logLevel=trace"], "/logLevel", "value must be one of"),
        (["image.pullPolicy=Sometimes"], "/image/pullPolicy", "value must be one of"),
        (["metrics.port=0"], "/metrics/port", "minimum"),
        (["health.port=70000"], "/health/port", "maximum"),
        (["watchNamespaces=default"], "/watchNamespaces", "want array"),
        (["watchNamespaces={a,b}", "watchNamespaces[1]=Bad_Name"], "/watchNamespaces/1", ""),
        (["nativeAnnotations=yes"], "/nativeAnnotations", "value must be one of"),
        (["--set-string", "dryRun=1"], "/dryRun", "want boolean"),
        (["serviceMonitor.interval=soon"], "/serviceMonitor/interval", "does not match pattern"),
        (["serviceMonitor.enable=true"], "/serviceMonitor", "'enable' not allowed"),
        (["logformat=json"], "''", "additional properties 'logformat' not allowed"),
        (["nodeSelector.role=1"], "/nodeSelector/role", "want string"),
        (["extraEnv[0].name=A", "extraEnv[0].value=300"], "/extraEnv/0/value", "want string"),
        (["resyncSeconds=0"], "/resyncSeconds", "exclusiveMinimum"),
        (["--set-string", "resyncSeconds=soon"], "/resyncSeconds", "want number"),
        (["workers=0"], "/workers", "minimum"),
        (["maxConcurrentWrites=1001"], "/maxConcurrentWrites", "maximum"),
        (["defaultServiceAccount=Deployer"], "/defaultServiceAccount", "does not match pattern"),
        (
            ["internalRegistryHostname=https://registry:5000"],
            "/internalRegistryHostname",
            "does not match pattern",
        ),
        (["networkPolicy.enable=false"], "/networkPolicy", "'enable' not allowed"),
        (
            ["networkPolicy.extraNamespaceSelectors[0].matchLabel.team=x"],
            "/networkPolicy/extraNamespaceSelectors/0",
            "'matchLabel' not allowed",
        ),
        (
            [
                "networkPolicy.extraNamespaceSelectors[0].matchExpressions[0].key=a",
                "networkPolicy.extraNamespaceSelectors[0].matchExpressions[0].operator=Is",
            ],
            "/networkPolicy/extraNamespaceSelectors/0/matchExpressions/0/operator",
            "value must be one of",
        ),
        (["--set-string", "rbac.aggregateToDefaultRoles=no"], "/rbac/aggregateToDefaultRoles", ""),
        (["replicaCount=-1"], "/replicaCount", "minimum"),
        (["--set-string", "replicaCount=two"], "/replicaCount", "want integer"),
        (["leaderElection.enable=false"], "/leaderElection", "'enable' not allowed"),
        (["leaderElection.leaseName=My_Lease"], "/leaderElection/leaseName", "pattern"),
        (
            ["leaderElection.leaseDurationSeconds=0"],
            "/leaderElection/leaseDurationSeconds",
            "exclusiveMinimum",
        ),
        (
            ["--set-string", "leaderElection.retryPeriodSeconds=soon"],
            "/leaderElection/retryPeriodSeconds",
            "want number",
        ),
        (["podDisruptionBudget.minAvailable=half"], "/podDisruptionBudget/minAvailable", "pattern"),
        (["podDisruptionBudget.minAvailable=-1"], "/podDisruptionBudget/minAvailable", "minimum"),
    ],
    ids=lambda v: v if isinstance(v, str) else ",".join(v),
)
def test_values_breaking_the_schema_fail_naming_the_field(
    helm: Any, values: list[str], field: str, problem: str
) -> None:
    args: list[str] = ["template", "x", str(CHART), "--kube-version", binaries.kubernetes_version()]
    pending = iter(values)
    for value in pending:
        args += [value, next(pending)] if value.startswith("--") else ["--set", value]
    result = helm.run(*args)
    assert result.returncode != 0, f"accepted {values}:\n{result.stdout[:500]}"
    assert "values don't meet the specifications of the schema" in result.stderr
    assert f"at {field}" in result.stderr or f"at '{field}'" in result.stderr, result.stderr
    assert problem in result.stderr, result.stderr


def test_alerts_need_the_job_name_to_say_imagestream_trigger(helm: Any) -> None:
    result = helm.template("fullnameOverride=ist")
    assert result.returncode != 0
    assert 'keep "imagestream-trigger" in fullnameOverride' in result.stderr, result.stderr
    assert helm.template("fullnameOverride=ist", "prometheusRule.enabled=false").returncode == 0
    assert helm.template("fullnameOverride=imagestream-trigger-ops").returncode == 0


def test_metrics_and_health_ports_must_differ(helm: Any) -> None:
    result = helm.template("health.port=8080")
    assert result.returncode != 0
    assert "metrics.port and health.port must differ" in result.stderr


def test_chart_crd_is_byte_identical_to_manifests() -> None:
    chart = (CHART / "crds" / "imagetriggers.yaml").read_bytes()
    shipped = (MANIFESTS / "crd" / "imagetriggers.yaml").read_bytes()
    assert chart == shipped, (
        "helm/imagestream-trigger/crds/imagetriggers.yaml must be a copy of "
        "manifests/crd/imagetriggers.yaml: cp manifests/crd/imagetriggers.yaml "
        "helm/imagestream-trigger/crds/"
    )


def test_chart_alert_groups_are_a_copy_of_manifests() -> None:
    (rule,) = [
        d
        for d in yaml.safe_load_all((MANIFESTS / "prometheusrule.yaml").read_text())
        if d and d["kind"] == "PrometheusRule"
    ]
    copy = yaml.safe_load((CHART / "files" / "prometheusrule-groups.yaml").read_text())
    assert_same("spec of the PrometheusRule", rule["spec"], copy)


# -- docs/helm.md lists every value ------------------------------------------------


def documented_values() -> dict[str, tuple[str, str]]:
    """{key: (type, default)} from the table under "## Values" in docs/helm.md."""
    section = HELM_DOC.read_text().split("\n## Values\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| `([^`]*)` \|", section, re.M)
    assert rows, "docs/helm.md has no values table under '## Values'"
    table: dict[str, tuple[str, str]] = {}
    for key, kind, default in rows:
        assert key not in table, f"docs/helm.md lists {key} twice"
        table[key] = (kind.strip(), default)
    return table


def chart_values() -> dict[str, tuple[str, str]]:
    """{key: (schema type, default as JSON)} of every key of values.yaml: a section (an
    object the schema gives properties) is walked into, anything else is one value."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        return node

    found: dict[str, tuple[str, str]] = {}

    def walk(level: dict[str, Any], properties: dict[str, Any], prefix: str) -> None:
        for key, value in level.items():
            assert key in properties, f"values.yaml's {prefix}{key} is not in values.schema.json"
            node = resolve(properties[key])
            if "properties" in node and isinstance(value, dict):
                walk(value, node["properties"], f"{prefix}{key}.")
            else:
                kind = node["type"]
                found[prefix + key] = (
                    " or ".join(kind) if isinstance(kind, list) else kind,
                    json.dumps(value),
                )

    walk(values, schema["properties"], "")
    return found


def test_docs_table_lists_every_value_with_its_type_and_default() -> None:
    documented, actual = documented_values(), chart_values()
    missing = sorted(set(actual) - set(documented))
    assert not missing, f"values.yaml keys docs/helm.md does not list: {missing}"
    gone = sorted(set(documented) - set(actual))
    assert not gone, f"docs/helm.md lists keys values.yaml no longer has: {gone}"
    for key, (kind, default) in actual.items():
        assert documented[key] == (kind, default), (
            f"docs/helm.md says {key} is {documented[key][0]} defaulting to "
            f"{documented[key][1]}; values.yaml and the schema say {kind}, {default}"
        )


# -- drift: the chart renders what manifests/ installs -------------------------------


@pytest.fixture(scope="module")
def both(helm: Any, kustomize: Callable[..., str]) -> tuple[Objects, Objects]:
    manifests = by_kind_and_name(
        [d for d in yaml.safe_load_all(kustomize()) if d and d["kind"] != "Namespace"]
    )
    chart = by_kind_and_name(
        helm.render(
            "serviceMonitor.enabled=true",
            "prometheusRule.enabled=true",
            "dashboard.enabled=false",
            include_crds=True,
        )
    )
    return manifests, chart


def test_manifests_and_chart_render_the_same_objects(both: tuple[Objects, Objects]) -> None:
    manifests, chart = both
    assert_same("the set of (kind, name)", sorted(manifests), sorted(chart))
    for key, shipped in manifests.items():
        rendered = chart[key]
        assert rendered["apiVersion"] == shipped["apiVersion"], key
        assert rendered["metadata"].get("namespace") == shipped["metadata"].get("namespace"), key
        # The chart may add Helm's labels; it keeps every label manifests/ sets.
        labels = shipped["metadata"].get("labels", {})
        assert labels.items() <= rendered["metadata"].get("labels", {}).items(), readable_diff(
            f"labels of {key}", labels, rendered["metadata"].get("labels", {})
        )


def test_cluster_role_rules_do_not_drift(both: tuple[Objects, Objects]) -> None:
    manifests, chart = both
    key = ("ClusterRole", "imagestream-trigger")
    assert_same("ClusterRole rules", manifests[key]["rules"], chart[key]["rules"])
    key = ("ClusterRoleBinding", "imagestream-trigger")
    for field in ("roleRef", "subjects"):
        assert_same(f"ClusterRoleBinding {field}", manifests[key][field], chart[key][field])


def test_deployment_does_not_drift(both: tuple[Objects, Objects]) -> None:
    manifests, chart = both
    key = ("Deployment", "imagestream-trigger")
    shipped, rendered = copy.deepcopy(manifests[key]), copy.deepcopy(chart[key])
    shipped_container, rendered_container = container(shipped), container(rendered)
    for field in (
        "args",
        "command",
        "env",
        "ports",
        "livenessProbe",
        "readinessProbe",
        "resources",
        "securityContext",
        "volumeMounts",
        "imagePullPolicy",
    ):
        assert_same(
            f"the operator container's {field}",
            shipped_container.get(field),
            rendered_container.get(field),
        )
    # And everything else in the Deployment's spec, the image aside (kustomize `images:`
    # and the chart's image values each set their own).
    for spec in (shipped["spec"], rendered["spec"]):
        for c in spec["template"]["spec"]["containers"]:
            c.pop("image")
    assert_same("the Deployment spec (image aside)", shipped["spec"], rendered["spec"])


def test_service_monitor_and_alerts_do_not_drift(both: tuple[Objects, Objects]) -> None:
    manifests, chart = both
    for kind, name in (
        ("Service", "imagestream-trigger-metrics"),
        ("ServiceMonitor", "imagestream-trigger"),
        ("PrometheusRule", "imagestream-trigger"),
        ("CustomResourceDefinition", "imagetriggers.imagestream-trigger.dev"),
        ("NetworkPolicy", "imagestream-trigger"),
    ):
        key = (kind, name)
        assert_same(f"the {kind}'s spec", manifests[key]["spec"], chart[key]["spec"])


def test_aggregated_roles_do_not_drift(both: tuple[Objects, Objects]) -> None:
    manifests, chart = both
    for name in ("imagestream-trigger-edit", "imagestream-trigger-view"):
        key = ("ClusterRole", name)
        assert_same(f"{name} rules", manifests[key]["rules"], chart[key]["rules"])


def test_leader_election_rbac_and_budget_do_not_drift(both: tuple[Objects, Objects]) -> None:
    manifests, chart = both
    key = ("Role", "imagestream-trigger-leader-election")
    assert_same("the leader-election Role's rules", manifests[key]["rules"], chart[key]["rules"])
    key = ("RoleBinding", "imagestream-trigger-leader-election")
    for field in ("roleRef", "subjects"):
        assert_same(
            f"the leader-election RoleBinding's {field}", manifests[key][field], chart[key][field]
        )
    key = ("PodDisruptionBudget", "imagestream-trigger")
    assert_same("the PodDisruptionBudget's spec", manifests[key]["spec"], chart[key]["spec"])


# -- the real kube-apiserver accepts both renders --------------------------------------


def _server_dry_run(plane: ControlPlane, text: str) -> str:
    result = plane.kubectl("apply", "--dry-run=server", "-f", "-", input=text)
    assert result.returncode == 0, f"kube-apiserver refused:\n{result.stderr}"
    return result.stdout


def test_kube_apiserver_accepts_manifests_with_server_dry_run(
    control_plane: ControlPlane,
    monitoring_crds: list[str],
    operator_namespace: str,
    kustomize: Callable[..., str],
) -> None:
    out = _server_dry_run(control_plane, kustomize())
    for expected in (
        "namespace/imagestream-trigger",
        "clusterrole.rbac.authorization.k8s.io/imagestream-trigger",
        "clusterrole.rbac.authorization.k8s.io/imagestream-trigger-edit",
        "clusterrole.rbac.authorization.k8s.io/imagestream-trigger-view",
        "role.rbac.authorization.k8s.io/imagestream-trigger-leader-election",
        "rolebinding.rbac.authorization.k8s.io/imagestream-trigger-leader-election",
        "deployment.apps/imagestream-trigger",
        "poddisruptionbudget.policy/imagestream-trigger",
        "networkpolicy.networking.k8s.io/imagestream-trigger",
        "service/imagestream-trigger-metrics",
        "servicemonitor.monitoring.coreos.com/imagestream-trigger",
        "prometheusrule.monitoring.coreos.com/imagestream-trigger",
    ):
        assert f"{expected} " in out, out
    assert "(server dry run)" in out


@pytest.mark.parametrize(
    "values",
    [
        [],
        [
            "dashboard.enabled=true",
            "watchNamespaces={team-a}",
            "dryRun=true",
            "logLevel=debug",
            "nodeSelector.role=infra",
            "tolerations[0].key=infra",
            "tolerations[0].operator=Exists",
            "resyncSeconds=300",
            "workers=4",
            "defaultServiceAccount=deployer",
            "networkPolicy.extraNamespaceSelectors[0].matchLabels.team=monitoring",
            "replicaCount=3",
            "podDisruptionBudget.minAvailable=2",
            "leaderElection.leaseName=ops",
            "leaderElection.leaseDurationSeconds=15",
            "leaderElection.renewDeadlineSeconds=10",
        ],
    ],
    ids=["defaults", "everything-on"],
)
def test_kube_apiserver_accepts_the_chart_with_server_dry_run(
    control_plane: ControlPlane,
    monitoring_crds: list[str],
    operator_namespace: str,
    helm: Any,
    values: list[str],
) -> None:
    result = helm.template(*values, include_crds=True)
    assert result.returncode == 0, result.stderr
    out = _server_dry_run(control_plane, result.stdout)
    assert "deployment.apps/imagestream-trigger" in out
    assert "networkpolicy.networking.k8s.io/imagestream-trigger" in out
    assert "poddisruptionbudget.policy/imagestream-trigger" in out
    assert "role.rbac.authorization.k8s.io/imagestream-trigger-leader-election" in out
    if values:
        assert "configmap/imagestream-trigger-dashboard" in out


def test_kube_apiserver_rejects_a_broken_prometheus_rule(
    control_plane: ControlPlane, monitoring_crds: list[str], operator_namespace: str
) -> None:
    # The monitoring CRDs check what matters: the dry runs above prove something.
    broken = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "broken", "namespace": operator_namespace},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "for": "five minutes"}]}]},
    }
    result = control_plane.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(broken))
    assert result.returncode != 0
    assert "spec.groups[0].rules[0].expr: Required value" in result.stderr
    assert "spec.groups[0].rules[0].for" in result.stderr


def test_helm_install_dry_run_prints_notes_telling_how_to_check(
    control_plane: ControlPlane,
    monitoring_crds: list[str],
    namespace: str,
    helm: Any,
    tmp_path: Path,
) -> None:
    # `helm install` reads the server's version, which the kube-apiserver built here
    # reports as v0.0.0 (no release ldflags): a copy of the chart without kubeVersion
    # lets helm's own install path (and server-side dry run) run here.
    chart = tmp_path / "imagestream-trigger"
    shutil.copytree(CHART, chart)
    meta = chart / "Chart.yaml"
    meta.write_text(re.sub(r"(?m)^kubeVersion:.*$", "", meta.read_text()))
    result = helm.run(
        "install",
        "notes",
        str(chart),
        "--namespace",
        namespace,
        "--dry-run=server",
        f"--kubeconfig={control_plane.kubeconfig}",
        "--set",
        "dashboard.enabled=true",
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout[result.stdout.index("NOTES:") :]
    for command in (
        f"oc get pods -n {namespace} -l app.kubernetes.io/name=imagestream-trigger,"
        "app.kubernetes.io/component=operator",
        f"oc get lease notes-imagestream-trigger -n {namespace}",
        f"oc logs -n {namespace} deploy/notes-imagestream-trigger",
        "oc get imagetriggers -A",
        f"oc port-forward -n {namespace} svc/notes-imagestream-trigger-metrics 8080:8080",
        "curl -s http://127.0.0.1:8080/metrics",
        "Observe > Metrics",
        "Observe > Alerting",
        f"ConfigMap {namespace}/notes-imagestream-trigger-dashboard",
    ):
        assert command in notes, notes


def test_shards_render_one_deployment_each_with_its_share_and_its_own_lease(helm: Any) -> None:
    docs = helm.render("shards={east,west,north}", include_crds=False)
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert [d["metadata"]["name"] for d in deployments] == [
        "imagestream-trigger-east",
        "imagestream-trigger-west",
        "imagestream-trigger-north",
    ]
    shares = [env_of(d)[f"{ENV}SHARD"] for d in deployments]
    assert shares == ["0/3", "1/3", "2/3"]
    leases = [env_of(d)[f"{ENV}LEASE_NAME"] for d in deployments]
    assert len(set(leases)) == 3
    # Each Deployment owns only its own pods, and so does each budget.
    selectors = [d["spec"]["selector"]["matchLabels"] for d in deployments]
    for deployment, selector in zip(deployments, selectors, strict=True):
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
        assert (
            selector["imagestream-trigger.dev/shard"]
            == deployment["metadata"]["name"].split("-")[-1]
        )
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    assert sorted(
        b["spec"]["selector"]["matchLabels"]["imagestream-trigger.dev/shard"] for b in budgets
    ) == [
        "east",
        "north",
        "west",
    ]
    # One Service still scrapes them all.
    service = the(docs, "Service")
    assert "imagestream-trigger.dev/shard" not in service["spec"]["selector"]


def test_a_bad_shard_name_is_refused_naming_it(helm: Any) -> None:
    result = helm.template("shards={Bad_Name}")
    assert result.returncode != 0
    assert "/shards/0" in result.stderr, result.stderr
