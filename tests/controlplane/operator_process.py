"""Run the operator as its own process, authenticated as its own ServiceAccount.

The ServiceAccount is bound to the ClusterRole shipped in ``manifests/rbac``
(or to a variant a test passes in), and its token comes from TokenRequest, so
a rule missing from the manifests makes the operator fail here exactly as it
would in a cluster.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.controlplane.cluster import REPO, ControlPlane, Process, free_port, spawn
from tests.controlplane.kube import Kube, load_yaml, service_account_token

CLUSTER_ROLE = REPO / "manifests" / "rbac" / "cluster_role.yaml"
RBAC = "rbac.authorization.k8s.io/v1"


def shipped_cluster_role() -> dict[str, Any]:
    (role,) = load_yaml([CLUSTER_ROLE])
    return role


def without_rule(role: dict[str, Any], resource: str) -> dict[str, Any]:
    """A copy of ``role`` minus every rule granting ``resource``."""
    trimmed = copy.deepcopy(role)
    trimmed["rules"] = [r for r in trimmed["rules"] if resource not in r.get("resources", [])]
    return trimmed


_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text format to {'name{labels}': value} (labels as printed)."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match:
            values[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return values


@dataclass
class OperatorProcess:
    plane: ControlPlane
    kube: Kube
    namespace: str  # where its ServiceAccount lives (and, by default, what it serves)
    serve: Sequence[str] | None = None  # namespaces to serve; None = [namespace]; () = all
    args: Sequence[str] = ()
    role: dict[str, Any] | None = None  # ClusterRole to bind; default: the shipped one
    # False: rely on RBAC already installed for <namespace>/imagestream-trigger (by the
    # manifests or the Helm chart) instead of binding a role for this run.
    bind: bool = True
    env: dict[str, str] = field(default_factory=dict)
    process: Process | None = None

    def __post_init__(self) -> None:
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.log = self.plane.dir / f"operator-{self.namespace}-{time.monotonic_ns()}.log"
        self._kubeconfig: Path | None = None

    # -- credentials -----------------------------------------------------------

    def _credentials(self) -> Path:
        if self._kubeconfig is not None:
            return self._kubeconfig
        role = copy.deepcopy(self.role or shipped_cluster_role())
        if self.bind:
            role["metadata"] = {
                "name": f"{role['metadata']['name']}-{self.namespace}",
                "labels": role["metadata"].get("labels", {}),
            }
            self._bind(role)
        token = service_account_token(
            self.kube, self.namespace, "imagestream-trigger", create=self.bind
        )
        self.token = token  # e.g. for the proxy's partition of this one client
        self._kubeconfig = self.plane.write_kubeconfig(
            self.plane.dir / f"kubeconfig-operator-{self.namespace}", token
        )
        self._wait_for_rbac(role, token)
        return self._kubeconfig

    def _bind(self, role: dict[str, Any]) -> None:
        name = role["metadata"]["name"]
        self.kube.apply(role)
        self.kube.apply(
            {
                "apiVersion": RBAC,
                "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [
                    {
                        "kind": "ServiceAccount",
                        "name": "imagestream-trigger",
                        "namespace": self.namespace,
                    }
                ],
            }
        )

    def _wait_for_rbac(self, role: dict[str, Any], token: str) -> None:
        # RBAC reaches the authorizer through an informer: wait until the role's
        # first rule applies to the new token.
        rule = role["rules"][0]
        probe = {
            "verb": rule["verbs"][0],
            "group": rule["apiGroups"][0],
            "resource": rule["resources"][0],
            "namespace": self.namespace,
        }
        as_operator = Kube(self.plane.url, token, self.plane.ca_file)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            review = as_operator.create(
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                {
                    "apiVersion": "authorization.k8s.io/v1",
                    "kind": "SelfSubjectAccessReview",
                    "spec": {"resourceAttributes": probe},
                },
            )
            if review["status"].get("allowed"):
                return
            time.sleep(0.05)

    def command(self) -> list[str]:
        serve = [self.namespace] if self.serve is None else list(self.serve)
        scope = [f"--namespace={ns}" for ns in serve] or ["--all-namespaces"]
        return [
            sys.executable,
            "-m",
            "imagestream_trigger.cli",
            "run",
            *scope,
            f"--metrics-port={self.metrics_port}",
            f"--health-port={self.health_port}",
            "--bind-address=127.0.0.1",
            "--log-level=debug",
            *self.args,
        ]

    # -- lifecycle ---------------------------------------------------------------

    def start(self, *, wait: bool = True) -> OperatorProcess:
        kubeconfig = self._credentials()
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), **self.env}
        self.process = spawn("operator", self.command(), self.log, env=env, cwd=REPO)
        self.plane.processes.insert(0, self.process)  # stopped with the control plane at the latest
        if wait:
            self.wait_ready()
        return self

    def probe(self, path: str) -> int | None:
        """The status of GET ``path`` on the health port (None: no answer)."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.health_port}{path}", timeout=1
            ) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except (urllib.error.URLError, OSError):
            return None

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait for /readyz: indexes primed and watches started."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if self.probe("/readyz") == 200:
                return
            time.sleep(0.1)
        raise TimeoutError(f"operator not ready in {timeout}s; log:\n{self.tail()}")

    def check_alive(self) -> None:
        assert self.process is not None
        if self.process.popen.poll() is not None:
            raise RuntimeError(
                f"operator exited with {self.process.popen.returncode}; log:\n{self.tail()}"
            )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            if self.process in self.plane.processes:
                self.plane.processes.remove(self.process)

    def kill(self) -> None:
        """SIGKILL, as a node failure or the OOM killer would: no clean-up runs."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.popen.pid, signal.SIGKILL)
        self.process.popen.wait(10)
        self.stop()

    def wait_exit(self, timeout: float = 30) -> int:
        assert self.process is not None
        return self.process.popen.wait(timeout)

    def log_offset(self) -> int:
        """A mark in the log: ``wait_reconciled`` only looks at what comes after it."""
        return self.log.stat().st_size if self.log.exists() else 0

    def wait_logged(self, text: str, *, after: int = 0, timeout: float = 15) -> None:
        """Wait for ``text`` in the log after the mark ``after``."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            with self.log.open("rb") as log:
                log.seek(after)
                if text in log.read().decode(errors="replace"):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not logged; log:\n{self.tail()}")
            time.sleep(0.05)

    def wait_reconciled(self, key: str, *, after: int, timeout: float = 15) -> str:
        """Wait for a completed reconcile pass of ``key`` ("Deployment ns/web",
        "ImageTrigger ns/follow") logged after the mark ``after``; returns its line.

        The positive signal a "nothing was written" check needs: the pass that would
        have written has finished.
        """
        needle = f"reconciled {key} "
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            with self.log.open("rb") as log:
                log.seek(after)
                for line in log.read().decode(errors="replace").splitlines():
                    if needle in line:
                        return line
            if time.monotonic() > deadline:
                raise TimeoutError(f"no pass of {key} completed; log:\n{self.tail()}")
            time.sleep(0.05)

    def run_to_exit(self, timeout: float = 60) -> int:
        """Start and wait for the process to exit by itself (e.g. a failed pre-flight)."""
        kubeconfig = self._credentials()
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), **self.env}
        self.process = spawn("operator", self.command(), self.log, env=env, cwd=REPO)
        return self.process.popen.wait(timeout)

    def tail(self, lines: int = 60) -> str:
        return self.process.tail(lines) if self.process else "(not started)"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return parse_metrics(r.read().decode())

    def wait_metric(self, name: str, *, above: float, timeout: float = 10) -> float:
        """Poll /metrics until ``name`` exceeds ``above``; returns the value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.metrics().get(name, 0.0)
            if value > above:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} stayed at {value} (waited for > {above})")
            time.sleep(0.05)

    def settle(self, quiet: float = 1.0, timeout: float = 15, *, at_least: float = 0) -> None:
        """Wait until the operator has been idle for ``quiet`` seconds.

        Idle: no API request sent and no ImageStream event handled, after at least
        ``at_least`` requests in all (so a slow start is not taken for idleness).
        """
        deadline = time.monotonic() + timeout
        last, since = -1.0, time.monotonic()
        while time.monotonic() < deadline:
            metrics = self.metrics()
            requests = sum(
                v
                for k, v in metrics.items()
                if k.startswith("imagestream_trigger_api_requests_total")
            )
            activity = requests + sum(
                v
                for k, v in metrics.items()
                if k.startswith("imagestream_trigger_imagestream_events_total")
            )
            if activity != last or requests < at_least:
                last, since = activity, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return
            time.sleep(0.1)
        raise TimeoutError("the operator did not become idle")

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
