"""kube-score (the Kubernetes manifest linter, built by tests/controlplane/binaries.py from
tests/lint/go.mod) on what we ship: the kustomize render of manifests/ and the Helm
chart's default render. Any finding fails, unless its check is in IGNORED with a reason.
kube-score's own `kube-score/ignore` annotations are disabled: this list is the only one.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane import binaries
from tests.ship.conftest import CHART, Helm, documents

IGNORED = {
    # OpenShift's restricted-v2 SCC assigns the UID from the namespace's range, and the image
    # keeps its files in group 0 for any UID: a fixed runAsUser/runAsGroup would fight both.
    "container-security-context-user-group-id": "OpenShift's SCC assigns the user ID",
    # A pinned release tag never moves; Always would only add a registry round trip per start.
    "container-image-pull-policy": "IfNotPresent suits the pinned tag",
}

ALL_OK = 10  # kube-score's grade for a passed check (critical 1, warning 5, almost OK 7)


def oldest_supported_kubernetes() -> str:
    """The chart's kubeVersion floor (">=1.26.0-0" gives v1.26): kube-score then suggests
    no API that the oldest supported cluster lacks."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    match = re.search(r">=\s*(\d+)\.(\d+)", chart["kubeVersion"])
    assert match, chart["kubeVersion"]
    return f"v{match.group(1)}.{match.group(2)}"


@dataclass(frozen=True)
class Finding:
    obj: str
    check: str
    says: str

    def __str__(self) -> str:
        return f"{self.obj}: {self.check}: {self.says}"


@pytest.fixture(scope="session")
def kube_score() -> Path:
    return binaries.ensure(("kube-score",))["kube-score"]


@pytest.fixture(scope="session")
def score(kube_score: Path) -> Callable[[str], list[Finding]]:
    def run(text: str) -> list[Finding]:
        result = subprocess.run(
            [
                str(kube_score),
                "score",
                "-",
                "--output-format=json",
                f"--kubernetes-version={oldest_supported_kubernetes()}",
                "--disable-ignore-checks-annotations",
            ],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        # Exit code 1 means critical findings; anything else without JSON is a crash.
        assert result.returncode in (0, 1), result.stderr
        assert result.stdout.startswith("["), result.stderr
        found: list[Finding] = []
        for obj in json.loads(result.stdout):
            for check in obj["checks"]:
                if check["skipped"] or check["grade"] >= ALL_OK:
                    continue
                says = "; ".join(
                    f"({c['path']}) {c['summary']}: {c['description']}"
                    if c["path"]
                    else f"{c['summary']}: {c['description']}"
                    for c in check["comments"] or []
                )
                found.append(Finding(obj["object_name"], check["check"]["id"], says))
        return found

    return run


@pytest.fixture(scope="module")
def renders(helm: Helm, kustomize: Callable[..., str]) -> dict[str, str]:
    result = helm.template()
    assert result.returncode == 0, result.stderr
    return {"manifests": kustomize(), "chart": result.stdout}


def unexpected(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.check not in IGNORED]


@pytest.mark.parametrize("render", ["manifests", "chart"])
def test_kube_score_finds_nothing_beyond_the_ignore_list(
    score: Callable[[str], list[Finding]], renders: dict[str, str], render: str
) -> None:
    problems = unexpected(score(renders[render]))
    assert not problems, f"kube-score on the {render} render:\n" + "\n".join(map(str, problems))


def test_every_ignored_check_still_fires(
    score: Callable[[str], list[Finding]], renders: dict[str, str]
) -> None:
    # An entry nothing needs any more is a hole waiting for a real finding: remove it.
    fired = {f.check for text in renders.values() for f in score(text)}
    assert set(IGNORED) <= fired, f"no longer found, drop from IGNORED: {set(IGNORED) - fired}"


def _deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == "Deployment"]
    return found


def _operator(docs: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = _deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    return container


def _without_network_policy(docs: list[dict[str, Any]]) -> None:
    docs[:] = [d for d in docs if d["kind"] != "NetworkPolicy"]


def _latest_image(docs: list[dict[str, Any]]) -> None:
    operator = _operator(docs)
    operator["image"] = operator["image"].rsplit(":", 1)[0] + ":latest"


def _same_probes(docs: list[dict[str, Any]]) -> None:
    operator = _operator(docs)
    operator["readinessProbe"] = copy.deepcopy(operator["livenessProbe"])


def _no_ephemeral_storage(docs: list[dict[str, Any]]) -> None:
    for bound in _operator(docs)["resources"].values():
        bound.pop("ephemeral-storage")


def _one_replica(docs: list[dict[str, Any]]) -> None:
    _deployment(docs)["spec"]["replicas"] = 1


def _recreate(docs: list[dict[str, Any]]) -> None:
    _deployment(docs)["spec"]["strategy"] = {"type": "Recreate"}


def _without_disruption_budget(docs: list[dict[str, Any]]) -> None:
    docs[:] = [d for d in docs if d["kind"] != "PodDisruptionBudget"]


def _without_anti_affinity(docs: list[dict[str, Any]]) -> None:
    _deployment(docs)["spec"]["template"]["spec"].pop("affinity")


@pytest.mark.parametrize(
    ("break_it", "check"),
    [
        (_without_network_policy, "pod-networkpolicy"),
        (_latest_image, "container-image-tag"),
        (_same_probes, "pod-probes-identical"),
        (_no_ephemeral_storage, "container-ephemeral-storage-request-and-limit"),
        (_one_replica, "deployment-replicas"),
        (_recreate, "deployment-strategy"),
        (_without_disruption_budget, "deployment-has-poddisruptionbudget"),
        (_without_anti_affinity, "deployment-has-host-podantiaffinity"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else v,
)
def test_the_check_fails_when_a_fix_is_undone(
    score: Callable[[str], list[Finding]],
    renders: dict[str, str],
    break_it: Callable[[list[dict[str, Any]]], None],
    check: str,
) -> None:
    docs = documents(renders["manifests"])
    break_it(docs)
    problems = unexpected(score(yaml.safe_dump_all(docs)))
    assert check in {p.check for p in problems}, problems


def test_docs_name_each_ignored_check() -> None:
    doc = (CHART.parents[1] / "docs" / "helm.md").read_text()
    section = doc.split("\n## What kube-score says\n", 1)[1].split("\n## ", 1)[0]
    assert set(re.findall(r"^\| `([a-z-]+)` \|", section, re.M)) == set(IGNORED)
