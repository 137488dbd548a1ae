"""The PrometheusRule, its Helm copy and the Grafana dashboard, checked with a real Prometheus.

- promtool (Debian's ``prometheus`` package) checks the rules and runs the unit tests in
  ``tests/ship/prometheus/rules-test.yaml``: every alert fires on a synthetic failure and
  stays silent on a healthy operator.
- Every ``imagestream_trigger_*`` name the rules and the dashboard use is one the operator's
  registry exposes (a renamed metric would otherwise silence an alert or blank a panel).
- End to end: the operator runs as its own process against the real control plane, a real
  Prometheus scrapes it with the ServiceMonitor's job and loads the rules; a simulated
  import updates a Deployment and PromQL sees the update counter rise; every rule
  evaluates with health "ok"; every dashboard query is accepted and the main ones return
  data; stopping the operator makes ImageStreamTriggerOperatorDown pending.

Missing Prometheus binaries make these tests fail, with the package to install.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from imagestream_trigger.report.metrics import Metrics
from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube, create_namespace
from tests.controlplane.operator_process import OperatorProcess
from tests.controlplane.prometheus import JOB, Prometheus, promtool
from tests.e2e.objects import (
    REPO as IMAGE_REPO,
)
from tests.e2e.objects import (
    by_name,
    create,
    image_stream,
    images_of,
    imported,
    trigger_annotation,
    workload,
    workload_path,
)

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
MANIFEST = REPO / "manifests" / "prometheusrule.yaml"
HELM_GROUPS = REPO / "helm" / "imagestream-trigger" / "files" / "prometheusrule-groups.yaml"
RULES_TEST = Path(__file__).resolve().parent / "prometheus" / "rules-test.yaml"
DASHBOARD = REPO / "helm" / "imagestream-trigger" / "dashboards" / "imagestream-trigger.json"

ALERTS = {
    "ImageStreamTriggerOperatorDown",
    "ImageStreamTriggerUpdatesFailing",
    "ImageStreamTriggerUpdatesStuck",
    "ImageStreamTriggerHighLatency",
    "ImageStreamTriggerInvalidTriggers",
    "ImageStreamTriggerRolloutFailed",
    "ImageStreamTriggerPromotionFailing",
}
SEVERITIES = {"critical", "warning", "info"}
# A metric name of ours, not part of a recording rule's name (level:metric:operation).
_NAME = re.compile(r"(?<![:\w])imagestream_trigger_[a-z0-9_]+(?![:\w(])")
# {__name__=~"imagestream_trigger_(a|b)_total"}: the names the alternation stands for.
_ALTERNATION = re.compile(r"imagestream_trigger_\(([a-z0-9_|]+)\)([a-z0-9_]*)")
# Grafana's variables, as Prometheus would see them with "All" selected.
_GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "5m",
    "$namespace": ".*",
    "$job": ".*",
}


def manifest() -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    return obj


def manifest_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = manifest()["spec"]["groups"]
    return groups


def manifest_rules() -> list[dict[str, Any]]:
    return [rule for group in manifest_groups() for rule in group["rules"]]


def registry_names() -> set[str]:
    """Every series name the operator exposes, whether or not a label set exists yet."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.update(family.name + suffix for suffix in suffixes[family.type])
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expr: str) -> set[str]:
    names = set(_NAME.findall(expr))
    for alternatives, suffix in _ALTERNATION.findall(expr):
        names.update(f"imagestream_trigger_{a}{suffix}" for a in alternatives.split("|"))
    return names


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_targets() -> list[tuple[str, str]]:
    """(panel title, expression) for every query of every panel, rows included."""
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            found.extend((panel["title"], t["expr"]) for t in panel.get("targets", []))
            walk(panel.get("panels", []))

    walk(dashboard()["panels"])
    return found


def as_prometheus_sees_it(expr: str) -> str:
    for variable, value in _GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable this test does not know: {expr}"
    return expr


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rules.yaml (the PrometheusRule's spec.groups) with a copy of rules-test.yaml beside it."""
    folder = tmp_path_factory.mktemp("prometheus-rules")
    (folder / "rules.yaml").write_text(yaml.safe_dump({"groups": manifest_groups()}))
    shutil.copy(RULES_TEST, folder / "rules-test.yaml")
    return folder


# -- the rules, offline ------------------------------------------------------------------


def test_prometheusrule_object_and_every_alert_is_documented() -> None:
    rule = manifest()
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["kind"] == "PrometheusRule"
    assert rule["metadata"]["name"] == "imagestream-trigger"
    assert rule["metadata"]["namespace"] == "imagestream-trigger"
    assert rule["metadata"]["labels"] == {
        "app.kubernetes.io/name": "imagestream-trigger",
        "app.kubernetes.io/part-of": "imagestream-trigger",
    }
    alerts = [r for r in manifest_rules() if "alert" in r]
    assert {a["alert"] for a in alerts} == ALERTS
    for alert in alerts:
        name = alert["alert"]
        assert alert.get("for"), f"{name} has no `for`"
        assert alert["labels"]["severity"] in SEVERITIES, name
        assert alert["annotations"]["summary"].strip(), name
        assert "Check:" in alert["annotations"]["description"], f"{name}: say what to check"


def test_rules_use_only_metrics_the_operator_exposes() -> None:
    exposed = registry_names() | {"up"}
    records = {r["record"] for r in manifest_rules() if "record" in r}
    for rule in manifest_rules():
        name = rule.get("alert") or rule.get("record")
        used = metric_names(rule["expr"])
        assert used <= exposed, f"{name}: {sorted(used - exposed)} not in the registry"
        uses_records = {r for r in records if r in rule["expr"]}
        assert used or uses_records or "up{" in rule["expr"], f"{name}: reads nothing of ours"


def test_promtool_check_rules(rules_dir: Path) -> None:
    result = promtool("check", "rules", str(rules_dir / "rules.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(manifest_rules())} rules found" in result.stdout


def test_promtool_unit_tests_pass(rules_dir: Path) -> None:
    result = promtool("test", "rules", "rules-test.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_unit_tests_make_every_alert_fire_and_stay_silent() -> None:
    suite = yaml.safe_load(RULES_TEST.read_text())
    fires: set[str] = set()
    silent: set[str] = set()
    for case in suite["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check.get("exp_alerts") else silent).add(check["alertname"])
    assert fires == ALERTS, f"never seen firing: {ALERTS - fires}"
    assert silent == ALERTS, f"never seen silent: {ALERTS - silent}"


def test_helm_copy_of_the_groups_is_identical() -> None:
    helm = yaml.safe_load(HELM_GROUPS.read_text())
    assert set(helm) == {"groups"}, "the Helm file is a rule file: one `groups:` key"
    assert helm["groups"] == manifest_groups(), (
        f"{HELM_GROUPS.relative_to(REPO)} and {MANIFEST.relative_to(REPO)} spec.groups differ"
    )


# -- the dashboard, offline --------------------------------------------------------------


def test_dashboard_shape() -> None:
    board = dashboard()
    assert board["title"] == "imagestream-trigger"
    assert board["uid"] == "imagestream-trigger"
    assert 36 <= board["schemaVersion"] <= 41
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}", panel["title"]
    titles = {p["title"] for p in board["panels"]}
    for wanted in (
        "Target updates by result",
        "Builds by result",
        "Trigger latency",
        "Image age at update",
        "Invalid triggers by reason",
        "Tracked objects",
        "API requests by verb and code",
    ):
        assert wanted in titles


def test_dashboard_uses_only_metrics_the_operator_exposes() -> None:
    exposed = registry_names() | {"up"}
    for title, expr in dashboard_targets():
        used = metric_names(expr)
        assert used or expr.startswith("sum(up{"), f"{title}: no metric of ours in {expr}"
        assert used <= exposed, f"{title}: {sorted(used - exposed)} not in the registry"


# -- end to end: the operator scraped by a real Prometheus ---------------------------------


@dataclass
class Monitored:
    kube: Kube
    namespace: str
    operator: OperatorProcess
    prometheus: Prometheus
    created: bool = False

    def update_a_deployment(self) -> None:
        """A tag import the operator turns into a Deployment update (objects made once)."""
        if not self.created:
            image_stream(self.kube, self.namespace)
            create(
                self.kube,
                self.namespace,
                workload(
                    "Deployment",
                    "web",
                    {"web": f"{IMAGE_REPO}:latest"},
                    annotation=trigger_annotation(by_name("web")),
                ),
            )
            self.created = True
        landed = imported(self.kube, self.namespace)
        self.kube.wait_for(
            workload_path("Deployment", self.namespace, "web"),
            lambda obj: images_of(obj)["web"] == landed.reference,
        )


def _namespace(kube: Kube, stem: str) -> str:
    name = f"{stem}-{secrets.token_hex(3)}"
    create_namespace(kube, name)
    return name


@pytest.fixture(scope="module")
def monitored(
    control_plane: ControlPlane,
    kube: Kube,
    rules_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Monitored]:
    namespace = _namespace(kube, "prometheus")
    operator = OperatorProcess(control_plane, kube, namespace).start()
    prometheus = Prometheus(
        targets=[f"127.0.0.1:{operator.metrics_port}"],
        rule_files=[rules_dir / "rules.yaml"],
        namespace=namespace,
        workdir=tmp_path_factory.mktemp("prometheus"),
    )
    try:
        prometheus.start()
        yield Monitored(kube, namespace, operator, prometheus)
    finally:
        prometheus.stop()
        operator.stop()


def eventually(
    read: Callable[[], T], condition: Callable[[T], bool], *, what: str, timeout: float = 30
) -> T:
    """Poll ``read()`` until ``condition`` holds on its value; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if condition(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not in {timeout}s; last: {value}")
        time.sleep(0.2)


def _one_value(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_prometheus_scrapes_the_operator_and_sees_an_update(monitored: Monitored) -> None:
    prometheus = monitored.prometheus
    up = prometheus.wait_for(
        f'up{{job="{JOB}"}}',
        lambda r: len(r) == 1 and r[0]["value"][1] == "1",
        what="the operator's target up",
    )
    assert up[0]["metric"]["namespace"] == monitored.namespace
    build = prometheus.wait_for(
        "imagestream_trigger_build_info", bool, what="the operator's metrics scraped"
    )
    assert build[0]["metric"]["job"] == JOB
    updated = 'sum(imagestream_trigger_target_updates_total{result="updated"})'
    before = sum(prometheus.values(updated))

    monitored.update_a_deployment()

    rose = prometheus.wait_for(
        updated,
        lambda r: bool(r) and _one_value(r) > before,
        what=f"the update counter rising above {before}",
    )
    assert _one_value(rose) == before + 1
    # Every label combination exists from the start (at 0): only one moved.
    series = prometheus.query('imagestream_trigger_target_updates_total{result="updated"} > 0')
    assert [s["metric"]["kind"] for s in series] == ["Deployment"]
    assert series[0]["metric"]["source"] == "annotation"


def test_rules_load_and_evaluate_without_errors(monitored: Monitored) -> None:
    prometheus = monitored.prometheus
    expected = {r.get("alert") or r.get("record") for r in manifest_rules()}

    # Every rule is evaluated within an interval (1s) of the start; before, health is unknown.
    rules = eventually(
        prometheus.rules,
        lambda rules: bool(rules) and all(r["health"] != "unknown" for r in rules),
        what="every rule evaluated",
    )
    assert {r["name"] for r in rules} == expected
    broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not broken, broken
    down = next(r for r in rules if r["name"] == "ImageStreamTriggerOperatorDown")
    prometheus.wait_for(f'up{{job="{JOB}"}} == 1', bool, what="the operator up")
    prometheus.wait_for(
        'ALERTS{alertname="ImageStreamTriggerOperatorDown"}', lambda r: not r, what="no Down alert"
    )
    assert down["labels"] == {"severity": "warning"}


def test_recorded_decisions_count_the_first_update(monitored: Monitored) -> None:
    # The recording rule the alerts read counts the first update (also for a counter
    # series born at 1, which increase() alone cannot see), so a tag move that was
    # acted on is not taken for one left undone.
    monitored.update_a_deployment()
    prometheus = monitored.prometheus
    recorded = prometheus.wait_for(
        'job:imagestream_trigger_decisions:increase30m{result="updated"}',
        lambda r: bool(r) and _one_value(r) >= 1,
        what="the recorded decisions",
    )
    assert _one_value(recorded) >= 1
    assert recorded[0]["metric"]["job"] == JOB
    assert recorded[0]["metric"]["namespace"] == monitored.namespace
    # The other two conditions of UpdatesStuck hold: only the decisions keep it silent.
    prometheus.wait_for(
        "sum by (namespace, job) (increase(imagestream_trigger_tag_changes_total[30m])) > 0",
        bool,
        what="tag moves",
    )
    followers = prometheus.query(
        "count by (namespace, job) ("
        "imagestream_trigger_imagetriggers > 0 or imagestream_trigger_annotated_workloads > 0)"
    )
    assert followers, "the annotated Deployment is not counted"
    for name in ("ImageStreamTriggerUpdatesStuck", "ImageStreamTriggerUpdatesFailing"):
        (rule,) = [r for r in manifest_rules() if r.get("alert") == name]
        assert prometheus.query(rule["expr"]) == [], name


def test_dashboard_queries_run_and_the_main_ones_have_data(monitored: Monitored) -> None:
    monitored.update_a_deployment()
    prometheus = monitored.prometheus
    # Rates need two scrapes after the update.
    prometheus.wait_for(
        'count_over_time(imagestream_trigger_target_updates_total{result="updated"}[1m]) >= 2',
        bool,
        what="two scrapes of the update",
    )
    results = {}
    for title, expr in dashboard_targets():
        # status "success" or QueryError with Prometheus's parse error
        results[(title, expr)] = prometheus.query(as_prometheus_sees_it(expr))
    with_data = {title for (title, _), result in results.items() if result}
    for title in (
        "Operator up",
        "Version",
        "ImageTriggers",
        "ImageStreams",
        "Annotated workloads",
        "Target updates by result",
        "Workloads updated by kind and source",
        "ImageStream activity",
        "Tracked objects",
        "API requests by verb and code",
    ):
        assert title in with_data, f"{title}: no data after an update"
    by_result = next(
        result for (title, _), result in results.items() if title == "Target updates by result"
    )
    assert "updated" in {s["metric"].get("result") for s in by_result}


def test_operator_down_alert_goes_pending_when_the_operator_stops(
    control_plane: ControlPlane,
    kube: Kube,
    rules_dir: Path,
    tmp_path: Path,
) -> None:
    namespace = _namespace(kube, "prometheus-down")
    operator = OperatorProcess(control_plane, kube, namespace).start()
    with Prometheus(
        targets=[f"127.0.0.1:{operator.metrics_port}"],
        rule_files=[rules_dir / "rules.yaml"],
        namespace=namespace,
        workdir=tmp_path,
    ) as prometheus:
        try:
            prometheus.wait_for(f'up{{job="{JOB}"}} == 1', bool, what="the operator up")
            alert = 'ALERTS{alertname="ImageStreamTriggerOperatorDown"}'
            # Pending from the first evaluation, before the first scrape; gone once up is 1.
            prometheus.wait_for(alert, lambda r: not r, what="no Down alert while up")
        finally:
            operator.stop()
        prometheus.wait_for(f'up{{job="{JOB}"}} == 0', bool, what="the target down")
        pending = prometheus.wait_for(alert, bool, what="ImageStreamTriggerOperatorDown")
        assert pending[0]["metric"]["alertstate"] == "pending"  # `for: 5m` not yet over
        assert pending[0]["metric"]["severity"] == "warning"
