"""`make demo`: the operator at work on a real local control plane, narrated.

Starts etcd, kube-apiserver and the OpenShift emulation, installs the CRDs, runs
the operator as its own process with its own ServiceAccount (watching all
namespaces), applies ``manifests/samples`` into namespace ``demo``, simulates
two imports and says what happened. Then it keeps running until Ctrl-C, with
the exact ``export KUBECONFIG=...`` line to explore it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tests.controlplane import binaries, cluster, simulate
from tests.controlplane.kube import Kube, create_namespace, install_crds, load_yaml, path_for
from tests.controlplane.operator_process import OperatorProcess

NAMESPACE = "demo"
SAMPLES = cluster.REPO / "manifests" / "samples"
OPERATOR_NAMESPACE = "imagestream-trigger"
WATCHED_METRICS = (
    "imagestream_trigger_tag_changes_total",
    "imagestream_trigger_target_updates_total",
    "imagestream_trigger_builds_total",
    "imagestream_trigger_trigger_latency_seconds_count",
)


def say(text: str) -> None:
    print(f"▸ {text}", flush=True)


def detail(text: str) -> None:
    print(f"    {text}", flush=True)


def samples() -> list[dict[str, Any]]:
    objects = load_yaml(sorted(p for p in SAMPLES.glob("*.yaml") if p.name != "kustomization.yaml"))
    for obj in objects:
        obj["metadata"]["namespace"] = NAMESPACE
    return objects


def containers(kube: Kube, name: str) -> dict[str, str]:
    deployment = kube.get(path_for("apps/v1", "deployments", NAMESPACE, name))
    return {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}


def short(reference: str) -> str:
    repository, _, digest = reference.partition("@")
    return f"{repository}@{digest[:19]}…" if digest else reference


def one_import(kube: Kube, operator: OperatorProcess, number: int) -> None:
    before = {name: containers(kube, name) for name in ("web", "worker")}
    metrics_before = operator.metrics()
    started = time.monotonic()
    result = simulate.import_image(kube, NAMESPACE, "app", "latest")
    say(f"import {number}: app:latest now points at {short(result.reference)}")

    build_name = f"app-build-{number}"
    kube.wait_for(
        path_for("build.openshift.io/v1", "builds", NAMESPACE, build_name), lambda b: True
    )
    for name in ("web", "worker"):
        kube.wait_for(
            path_for("apps/v1", "deployments", NAMESPACE, name),
            lambda d: any(
                c["image"] == result.reference for c in d["spec"]["template"]["spec"]["containers"]
            ),
        )
    elapsed = time.monotonic() - started
    for name, how in (("web", "image.openshift.io/triggers"), ("worker", "ImageTrigger app")):
        after = containers(kube, name)
        for container, image in after.items():
            if image != before[name][container]:
                detail(
                    f"Deployment {name} ({how}): container {container}: "
                    f"{short(before[name][container])} → {short(image)}"
                )
            else:
                detail(f"Deployment {name}: container {container} unchanged ({image})")
    detail(f"BuildConfig app-build (ImageTrigger app): Build {build_name} created")
    detail(f"all of it {elapsed * 1000:.0f} ms after the import was written")
    metrics_after = operator.metrics()
    for line, value in sorted(metrics_after.items()):
        if line.startswith(WATCHED_METRICS) and value != metrics_before.get(line, 0.0):
            detail(f"metric {line}: {metrics_before.get(line, 0.0):g} → {value:g}")


def run(args: argparse.Namespace) -> int:
    say(
        f"control plane: Kubernetes {binaries.kubernetes_version()} (kube-apiserver + etcd), "
        "OpenShift's image and build APIs emulated"
    )
    binaries.ensure()
    started = time.monotonic()
    with cluster.ControlPlane(workdir=Path(args.workdir) if args.workdir else None) as plane:
        say(f"ready in {time.monotonic() - started:.1f}s at {plane.url} (logs: {plane.dir})")
        kube = Kube(plane.url, plane.admin_token, plane.ca_file)
        crds = install_crds(
            kube,
            sorted(cluster.CRD_DIR.glob("*.yaml"))
            + sorted(cluster.OPERATOR_CRD_DIR.glob("*.yaml")),
        )
        say(f"installed CRDs: {', '.join(crds)}")

        create_namespace(kube, OPERATOR_NAMESPACE)
        operator = OperatorProcess(plane, kube, OPERATOR_NAMESPACE, serve=())
        operator.start()
        say(
            f"operator running as ServiceAccount {OPERATOR_NAMESPACE}/imagestream-trigger with "
            f"the ClusterRole from manifests/rbac, watching all namespaces "
            f"(metrics: http://127.0.0.1:{operator.metrics_port}/metrics, log: {operator.log})"
        )

        create_namespace(kube, NAMESPACE)
        for obj in samples():
            kube.apply(obj)
            say(f"created {obj['kind']} {NAMESPACE}/{obj['metadata']['name']} (manifests/samples)")

        for number in (1, 2):
            one_import(kube, operator, number)

        trigger = kube.get(
            path_for("imagestream-trigger.dev/v1alpha1", "imagetriggers", NAMESPACE, "app")
        )
        ready = next(c for c in trigger["status"]["conditions"] if c["type"] == "Ready")
        say(
            f"ImageTrigger app: Ready={ready['status']} ({ready['reason']}): {ready['message']}; "
            f"{len(trigger['status'].get('history', []))} transitions in its history"
        )

        kubectl = binaries.ensure(("kubectl",))["kubectl"]
        print(flush=True)
        print(f"export KUBECONFIG={plane.kubeconfig.resolve()}", flush=True)
        print(f"then: {kubectl} get imagestreams,imagetriggers,deployments,builds -A", flush=True)
        print(
            f"      .venv/bin/python -m tests.controlplane import-image app:latest -n {NAMESPACE}",
            flush=True,
        )
        if not args.no_wait:
            print(
                "the operator serves any namespace you create; Ctrl-C stops everything", flush=True
            )
            cluster.wait_for_ctrl_c()
        operator.stop()
    say("stopped; nothing left running")
    return 0
