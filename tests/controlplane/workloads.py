"""What makes workloads roll out on the local control plane: controllers, a scheduler, fake nodes.

kube-apiserver alone stores Deployments but nothing acts on them. With
``ControlPlane(workloads=True)`` three more processes start, all talking to
kube-apiserver directly (not through the OpenShift emulation, so its fault switches
never reach them, as on OpenShift where these talk to kube-apiserver):

- kube-controller-manager (same Kubernetes release as the API server) with only the
  controllers a rollout needs: deployment, replicaset, statefulset, daemonset, garbage
  collector, and serviceaccount (pods are refused in a namespace without its ``default``
  ServiceAccount);
- kube-scheduler, to bind pods to nodes: kwok acts only on pods already bound;
- kwok, standing in for the kubelets of ``FAKE_NODES`` Nodes created at start-up, by the
  stages in ``kwok-stages.yaml``: nodes become Ready, bound pods become Running and Ready,
  except pods running an image whose digest begins with ``NEVER_READY_DIGEST_PREFIX``,
  which run but never become Ready.

So a Deployment completes its rollout within seconds, and one moved to a never-ready
image stops with ``Progressing=False`` reason ``ProgressDeadlineExceeded`` after its
``progressDeadlineSeconds``.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path
from typing import Any

import yaml

STAGES = Path(__file__).resolve().parent / "kwok-stages.yaml"

# An image whose digest begins with this never becomes Ready (see kwok-stages.yaml). Eight
# fixed hex digits: a random digest matches once in four billion, so never by accident.
NEVER_READY_DIGEST_PREFIX = "sha256:0bad0bad"

FAKE_NODES = ("kwok-node-0", "kwok-node-1")
# kwok manages only the nodes carrying this label (--manage-nodes-with-label-selector).
FAKE_NODE_LABEL = ("imagestream-trigger.dev/fake-node", "kwok")

CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "statefulset-controller",
    "daemonset-controller",
    "garbage-collector-controller",
    "serviceaccount-controller",
)


def never_ready_digest(seed: str) -> str:
    """A ``sha256:<64 hex>`` digest, fixed for ``seed``, whose pods never become Ready."""
    tail = hashlib.sha256(seed.encode()).hexdigest()
    return NEVER_READY_DIGEST_PREFIX + tail[len(NEVER_READY_DIGEST_PREFIX) - len("sha256:") :]


def _delegated_auth(kubeconfig: Path) -> list[str]:
    """Who may read a component's own /healthz and /metrics: bearer tokens, checked by
    kube-apiserver. No client-certificate or front-proxy CA is looked up: this API server
    has none, and the lookup would log an error every few seconds."""
    return [
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--authentication-skip-lookup",
    ]


def controller_manager_args(
    binary: Path, *, kubeconfig: Path, port: int, cert_dir: Path
) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        *_delegated_auth(kubeconfig),
        f"--controllers={','.join(CONTROLLERS)}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        # The defaults (20/s, burst 30) make a test's burst of pod creations wait.
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--profiling=false",
        "--v=1",
    ]


def scheduler_config(kubeconfig: Path) -> dict[str, Any]:
    """A KubeSchedulerConfiguration: its client settings have no non-deprecated flags."""
    return {
        "apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "KubeSchedulerConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig), "qps": 200, "burst": 400},
        "leaderElection": {"leaderElect": False},
        # A pod that found no node (e.g. created before the nodes) is retried within a second.
        "podInitialBackoffSeconds": 1,
        "podMaxBackoffSeconds": 1,
        "enableProfiling": False,
    }


def scheduler_args(
    binary: Path, *, config: Path, kubeconfig: Path, port: int, cert_dir: Path
) -> list[str]:
    return [
        str(binary),
        f"--config={config}",
        *_delegated_auth(kubeconfig),
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--cert-dir={cert_dir}",
        "--v=1",
    ]


def kwok_args(binary: Path, *, kubeconfig: Path) -> list[str]:
    key, value = FAKE_NODE_LABEL
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--config={STAGES}",
        f"--manage-nodes-with-label-selector={key}={value}",
        # No node Leases: nothing here (no node-lifecycle controller) would read them.
        "--node-lease-duration-seconds=0",
        # Room for every pod of a long session (kwok hands out pod IPs from this range).
        "--cidr=10.244.0.1/16",
        "--node-ip=10.240.0.1",
    ]


def node(name: str) -> dict[str, Any]:
    key, value = FAKE_NODE_LABEL
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                key: value,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
    }


def write_scheduler_config(path: Path, kubeconfig: Path) -> Path:
    path.write_text(yaml.safe_dump(scheduler_config(kubeconfig)))
    return path


def insecure_loopback_context() -> ssl.SSLContext:
    """For the health checks of kube-controller-manager and kube-scheduler only: they serve
    on 127.0.0.1 with a self-signed certificate of their own making."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def node_ready(obj: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )
