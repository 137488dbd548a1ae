"""Start-up checks against a real API server that lacks what the operator needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.controlplane import cluster
from tests.controlplane.kube import Kube, install_crds

# Starts a control plane of its own: keep it out of `make unit`.
pytestmark = pytest.mark.controlplane


def run_operator(kubeconfig: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "imagestream_trigger.cli",
            "run",
            "--metrics-port=0",
            "--health-port=0",
        ],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cluster.REPO,
    )


def test_missing_crds_are_named_with_the_fix(tmp_path: Path) -> None:
    # A cluster of its own: the session's has every CRD installed.
    with cluster.ControlPlane(workdir=tmp_path / "bare") as bare:
        missing_ours = run_operator(bare.kubeconfig)
        assert missing_ours.returncode == 2
        assert "the ImageTrigger CRD (imagetriggers.imagestream-trigger.dev) is not served" in (
            missing_ours.stderr
        )
        assert "kubectl apply -f manifests/crd/" in missing_ours.stderr

        install_crds(
            Kube(bare.url, bare.admin_token, bare.ca_file),
            sorted(cluster.OPERATOR_CRD_DIR.glob("*.yaml")),
        )
        missing_openshift = run_operator(bare.kubeconfig)
        assert missing_openshift.returncode == 2
        assert "OpenShift's ImageStream API (image.openshift.io/v1) is not served" in (
            missing_openshift.stderr
        )
        assert "Traceback" not in missing_ours.stderr + missing_openshift.stderr
