"""Memory stays flat when objects come and go: nothing kept per object outlives it.

Three rounds of 50 ImageStreams and 200 annotated workloads following them,
each created, served and deleted; the operator's resident memory after the
third round is within 10% of the first. (tests/unit/test_intake.py shows each
per-object map empty after the deletions; this is the process as a whole.)
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.controlplane.kube import Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    IMAGE,
    REPO,
    by_name,
    create,
    image_stream,
    imported,
    trigger_annotation,
    workload,
    workload_path,
)

STREAMS = 50
WORKLOADS = 200
ROUNDS = 3


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_rss_is_flat_over_rounds_of_objects_created_and_deleted(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    assert operator.process is not None
    pid = operator.process.popen.pid
    annotated = 'imagestream_trigger_annotated_workloads{kind="Deployment"}'
    sizes = []
    with ThreadPoolExecutor(8) as pool:
        for _ in range(ROUNDS):
            list(pool.map(lambda i: image_stream(kube, namespace, f"s{i}"), range(STREAMS)))
            list(
                pool.map(
                    lambda i: create(
                        kube,
                        namespace,
                        workload(
                            "Deployment",
                            f"w{i}",
                            {"web": f"{REPO}:latest"},
                            annotation=trigger_annotation(
                                by_name("web", tag=f"s{i % STREAMS}:latest")
                            ),
                        ),
                    ),
                    range(WORKLOADS),
                )
            )
            list(pool.map(lambda i: imported(kube, namespace, f"s{i}"), range(STREAMS)))
            operator.wait_metric(annotated, above=WORKLOADS - 1, timeout=60)
            operator.wait_metric("imagestream_trigger_imagestreams", above=STREAMS - 1, timeout=60)
            list(
                pool.map(
                    lambda i: kube.delete(workload_path("Deployment", namespace, f"w{i}")),
                    range(WORKLOADS),
                )
            )
            list(
                pool.map(
                    lambda i: kube.delete(path_for(IMAGE, "imagestreams", namespace, f"s{i}")),
                    range(STREAMS),
                )
            )
            wait_zero(operator, annotated)
            wait_zero(operator, "imagestream_trigger_imagestreams")
            operator.settle(quiet=1.0, timeout=60)
            sizes.append(rss_bytes(pid))
    first, last = sizes[0], sizes[-1]
    print(f"RSS after each round: {', '.join(f'{size / 2**20:.1f} MiB' for size in sizes)}")
    assert last <= first * 1.10, f"RSS grew from {first >> 20} MiB to {last >> 20} MiB: {sizes}"


def wait_zero(operator: OperatorProcess, metric: str) -> None:
    deadline = time.monotonic() + 60
    while operator.metrics().get(metric, 0) != 0:
        assert time.monotonic() < deadline, f"{metric} never went back to 0"
        time.sleep(0.1)
