"""Fixtures for the shipping tests: the real helm and kubectl, the monitoring CRDs.

helm and kubectl are the binaries built by tests/controlplane/binaries.py (helm from
its Go module, kubectl with its embedded kustomize), never whatever is on PATH.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane import binaries
from tests.controlplane.kube import Kube, create_namespace, install_crds, path_for

REPO = binaries.REPO
CHART = REPO / "helm" / "imagestream-trigger"
MANIFESTS = REPO / "manifests"
MONITORING_CRDS = REPO / "tests" / "controlplane" / "crds" / "monitoring"
OLM_CRDS = REPO / "tests" / "controlplane" / "crds" / "olm"
NAMESPACE = "imagestream-trigger"  # where manifests/ installs the operator


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@dataclass
class Helm:
    path: Path
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run helm (does not raise: tests look at the exit code and the message)."""
        return subprocess.run(
            [str(self.path), *args], capture_output=True, text=True, env=self.env, timeout=120
        )

    def template(
        self,
        *values: str,
        release: str = "imagestream-trigger",
        namespace: str = NAMESPACE,
        include_crds: bool = False,
        strings: Sequence[str] = (),
    ) -> subprocess.CompletedProcess[str]:
        """``helm template`` of the chart; ``values`` are ``key=value`` for --set
        (``strings`` for --set-string)."""
        args = ["template", release, str(CHART), "--namespace", namespace]
        # helm built from its Go module (no release ldflags) believes the cluster is
        # Kubernetes 1.20, below the chart's kubeVersion: name the pinned release instead.
        args += ["--kube-version", binaries.kubernetes_version()]
        if include_crds:
            args.append("--include-crds")
        for value in values:
            args += ["--set", value]
        for value in strings:
            args += ["--set-string", value]
        return self.run(*args)

    def render(self, *values: str, **kwargs: Any) -> list[dict[str, Any]]:
        result = self.template(*values, **kwargs)
        assert result.returncode == 0, f"helm template failed:\n{result.stderr}"
        return documents(result.stdout)


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    home = tmp_path_factory.mktemp("helm-home")
    # Keep helm's cache, config and data out of the user's home directory.
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    env.pop("KUBECONFIG", None)
    return Helm(binaries.ensure(("helm",))["helm"], env)


@pytest.fixture(scope="session")
def kubectl_bin() -> Path:
    return binaries.ensure(("kubectl",))["kubectl"]


@pytest.fixture(scope="session")
def kustomize(kubectl_bin: Path) -> Callable[..., str]:
    """``kubectl kustomize DIR`` with the built kubectl; returns the rendered YAML."""

    def render(folder: Path = MANIFESTS) -> str:
        result = subprocess.run(
            [str(kubectl_bin), "kustomize", str(folder)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"kubectl kustomize {folder} failed:\n{result.stderr}"
        return result.stdout

    return render


@pytest.fixture(scope="session")
def monitoring_crds(kube: Kube) -> list[str]:
    """ServiceMonitor and PrometheusRule (monitoring.coreos.com/v1), served by the control plane."""
    return install_crds(kube, sorted(MONITORING_CRDS.glob("*.yaml")))


@pytest.fixture(scope="session")
def olm_crds(kube: Kube) -> list[str]:
    """OLM's ClusterServiceVersion, CatalogSource, Subscription and OperatorGroup CRDs
    (operators.coreos.com), served by the control plane; no OLM runs."""
    return install_crds(kube, sorted(OLM_CRDS.glob("*.yaml")))


@pytest.fixture(scope="session")
def operator_namespace(kube: Kube) -> str:
    """The namespace manifests/ installs into, created if no test has created it yet."""
    if not kube.exists(path_for("v1", "namespaces", name=NAMESPACE)):
        create_namespace(kube, NAMESPACE)
    return NAMESPACE
