"""A real Prometheus scraping the operator, as the ServiceMonitor would have it scraped.

Debian's ``prometheus`` package provides the binaries (``/usr/bin/prometheus`` and
``/usr/bin/promtool``); ``PROMETHEUS`` and ``PROMTOOL`` override where they are. A test
that needs one fails (it is not skipped) when it is missing, with a message naming the
package.

The scrape job mirrors ``manifests/servicemonitor.yaml`` as the prometheus-operator
renders it on OpenShift: job name = the metrics Service's name
(``imagestream-trigger-metrics``), path ``/metrics``, scheme http, and the ``namespace``,
``service`` and ``endpoint`` target labels. Only the interval differs (1s, so tests wait
for little). Prometheus runs in its own process group, is killed with the test process
(``cluster.spawn``), listens on a free loopback port and keeps its TSDB in a folder of
its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.controlplane.cluster import Process, free_port, spawn, wait_until_ready

PACKAGE = "prometheus"  # Debian's package: /usr/bin/prometheus and /usr/bin/promtool
JOB = "imagestream-trigger-metrics"  # the metrics Service's name, which the job label takes
NAMESPACE = "imagestream-trigger"


class MissingBinary(RuntimeError):
    """Prometheus or promtool is not installed."""


def binary(name: str) -> Path:
    """``prometheus`` or ``promtool``: $PROMETHEUS / $PROMTOOL, else PATH, else /usr/bin."""
    variable = name.upper()
    override = os.environ.get(variable)
    found = override or shutil.which(name) or f"/usr/bin/{name}"
    path = Path(found)
    if not (path.is_file() and os.access(path, os.X_OK)):
        where = f"{variable}={override}" if override else f"{name} on PATH or in /usr/bin"
        raise MissingBinary(
            f"{name} not found ({where}): install Debian's {PACKAGE!r} package "
            f"(apt-get install -y --no-install-recommends {PACKAGE}; .ci/run does it in CI) "
            f"or set {variable} to the binary"
        )
    return path


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool (does not raise on a non-zero exit: callers show its output)."""
    return subprocess.run(
        [str(binary("promtool")), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


class QueryError(RuntimeError):
    """The HTTP API answered with status "error" (a bad expression, a timeout...)."""


@dataclass
class Prometheus:
    """One Prometheus on 127.0.0.1, scraping ``targets`` (host:port) as job ``job``."""

    targets: Sequence[str]
    rule_files: Sequence[Path] = ()
    job: str = JOB
    namespace: str = NAMESPACE
    interval: str = "1s"  # scrape and rule evaluation
    workdir: Path | None = None
    process: Process | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._own_workdir = self.workdir is None
        self.dir = Path(self.workdir or tempfile.mkdtemp(prefix="imagestream-trigger-prom-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = 0
        self.url = ""

    def config(self) -> dict[str, Any]:
        """prometheus.yml: the ServiceMonitor's endpoint as a static scrape job."""
        return {
            "global": {
                "scrape_interval": self.interval,
                "scrape_timeout": self.interval,
                "evaluation_interval": self.interval,
            },
            "rule_files": [str(Path(f).resolve()) for f in self.rule_files],
            "scrape_configs": [
                {
                    "job_name": self.job,
                    "metrics_path": "/metrics",
                    "scheme": "http",
                    "static_configs": [
                        {
                            "targets": list(self.targets),
                            # What the prometheus-operator's relabelling adds for a
                            # ServiceMonitor endpoint.
                            "labels": {
                                "namespace": self.namespace,
                                "service": self.job,
                                "endpoint": "metrics",
                            },
                        }
                    ],
                }
            ],
        }

    # -- lifecycle ---------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> Prometheus:
        executable = binary("prometheus")
        config = self.dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = spawn(
            "prometheus",
            [
                str(executable),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=info",
            ],
            self.dir / "prometheus.log",
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        wait_until_ready(self.process, f"{self.url}/-/ready", time.monotonic() + timeout)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=10.0)
        # The folder is evidence while something is wrong; only a clean stop removes it.
        if self._own_workdir and self.process is not None and self.process.popen.returncode == 0:
            shutil.rmtree(self.dir, ignore_errors=True)

    def tail(self, lines: int = 40) -> str:
        return self.process.tail(lines) if self.process else "(not started)"

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- HTTP API ------------------------------------------------------------------

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the ``data`` of a "success" answer, else QueryError."""
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            # 400 and 422 carry the error in the same JSON envelope.
            body = json.loads(error.read() or b"{}")
        if body.get("status") != "success":
            raise QueryError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query: the result list ({"metric": {...}, "value": [ts, "v"]} each)."""
        data = self.api("query", query=promql)
        result: Any = data["result"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result)

    def values(self, promql: str) -> list[float]:
        return [float(sample["value"][1]) for sample in self.query(promql)]

    def wait_for(
        self,
        promql: str,
        condition: Callable[[list[dict[str, Any]]], bool],
        *,
        timeout: float = 30.0,
        what: str = "",
    ) -> list[dict[str, Any]]:
        """Poll ``promql`` until ``condition(result)`` holds; the result that satisfied it."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if condition(result):
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{what or promql} not reached in {timeout}s; last result: {result}; "
                    f"prometheus log:\n{self.tail(10)}"
                )
            time.sleep(0.2)

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule (recording and alerting), each with its group's name added."""
        groups = self.api("rules")["groups"]
        return [{**rule, "group": group["name"]} for group in groups for rule in group["rules"]]

    def targets_health(self) -> list[dict[str, Any]]:
        data = self.api("targets", state="active")
        return list(data["activeTargets"])
