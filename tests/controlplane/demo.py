"""`make demo`: the operator at work on a real local control plane, narrated.

Starts etcd, kube-apiserver and the OpenShift emulation, with the controllers, the
scheduler and kwok's fake nodes that make workloads roll out (``workloads.py``),
installs the CRDs, runs the operator as its own process with its own ServiceAccount
(watching all namespaces), applies ``manifests/samples`` into namespace ``demo``,
simulates two imports and says what happened. Then safe rollouts, in namespace
``demo-rollouts``: a good image rolls out, is judged healthy and promoted to
``app:stable``; a never-ready one is reverted and quarantined. Every outcome printed is
read from the cluster. Then it keeps running until Ctrl-C, with the exact
``export KUBECONFIG=...`` line to explore it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.controlplane import binaries, cluster, simulate
from tests.controlplane.kube import Kube, create_namespace, install_crds, load_yaml, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.controlplane.workloads import never_ready_digest

NAMESPACE = "demo"
SAMPLES = cluster.REPO / "manifests" / "samples"
OPERATOR_NAMESPACE = "imagestream-trigger"
WATCHED_METRICS = (
    "imagestream_trigger_tag_changes_total",
    "imagestream_trigger_target_updates_total",
    "imagestream_trigger_builds_total",
    "imagestream_trigger_trigger_latency_seconds_count",
)

# The safe-rollouts act: its own namespace, so that its never-ready image reaches nothing
# of the samples'.
ROLLOUT_NAMESPACE = "demo-rollouts"
# Small, so that the never-ready image is found failed (and reverted) within seconds.
PROGRESS_DEADLINE_S = 10
ROLLOUT = {"timeout": "20s", "promoteTo": {"imageStreamTag": "app:stable"}}
REPLICAS = 2
# How long the demo waits for any one thing before it says what did not happen: far more
# than each takes (seconds), so that only a real failure, not a busy machine, trips it.
STEP_TIMEOUT_S = 60.0
APPS = "apps/v1"
IMAGE = "image.openshift.io/v1"
TRIGGERS = "imagestream-trigger.dev/v1alpha1"
OPERATOR_COMPONENT = "imagestream-trigger"  # source.component of the operator's Events
# Where the act's ImageStream imports from (a registry, as `oc import-image` would).
ROLLOUT_REPOSITORY = "quay.io/acme/app"
# A digest, except in a retry-image command (printed to be copied, so whole).
DIGEST = re.compile(r"(?<!retry-image=)(sha256:[0-9a-f]{12})[0-9a-f]{52}")

T = TypeVar("T")


class DemoFailed(Exception):
    """Something the demo waited for did not happen in time."""


def say(text: str) -> None:
    print(f"▸ {text}", flush=True)


def detail(text: str) -> None:
    print(f"    {text}", flush=True)


def tell(text: str) -> None:
    """``detail`` with digests cut to their first 12 digits, as ``oc`` shows them."""
    detail(DIGEST.sub(r"\1…", text))


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


def wait_until(
    what: str, check: Callable[[], tuple[T | None, str]], timeout: float | None = None
) -> T:
    """Poll ``check`` (a result once done, and a line of where things stand) until done.

    The line is printed whenever it changes; after ``timeout`` DemoFailed says what did not
    happen and the last line seen."""
    timeout = STEP_TIMEOUT_S if timeout is None else timeout
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        result, progress = check()
        if result is not None:
            return result
        if progress and progress != shown:
            tell(f"… {progress}")
            shown = progress
        if time.monotonic() > deadline:
            raise DemoFailed(
                f"{what}: did not happen within {timeout:.0f}s; last seen: {progress or 'nothing'}"
            )
        time.sleep(0.2)


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for found in (obj.get("status") or {}).get("conditions") or []:
        if found.get("type") == kind:
            return dict(found)
    return {}


def said(found: dict[str, Any]) -> str:
    """A condition as a person reads it: ``Ready=False (RolloutFailed): ...``."""
    if not found:
        return "not set"
    text = f"{found['type']}={found['status']} ({found.get('reason', '')})"
    return f"{text}: {found['message']}" if found.get("message") else text


def rollout_deployment(image: str) -> dict[str, Any]:
    labels = {"app": "web"}
    return {
        "apiVersion": APPS,
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {
            "replicas": REPLICAS,
            "progressDeadlineSeconds": PROGRESS_DEADLINE_S,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": image}]},
            },
        },
    }


def rollout_trigger() -> dict[str, Any]:
    return {
        "apiVersion": TRIGGERS,
        "kind": "ImageTrigger",
        "metadata": {"name": "web"},
        "spec": {
            "source": {"imageStreamTag": "app:latest"},
            "rollout": ROLLOUT,
            "targets": [{"kind": "Deployment", "name": "web"}],
        },
    }


class RolloutAct:
    """Reads of namespace ``demo-rollouts``: Deployment web, ImageTrigger web, ImageStream app."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.deployment_path = path_for(APPS, "deployments", ROLLOUT_NAMESPACE, "web")
        self.trigger_path = path_for(TRIGGERS, "imagetriggers", ROLLOUT_NAMESPACE, "web")
        self.stream_path = path_for(IMAGE, "imagestreams", ROLLOUT_NAMESPACE, "app")

    def deployment(self) -> dict[str, Any]:
        found: dict[str, Any] = self.kube.get(self.deployment_path)
        return found

    def trigger(self) -> dict[str, Any]:
        found: dict[str, Any] = self.kube.get(self.trigger_path)
        return found

    def image(self) -> str:
        (web,) = self.deployment()["spec"]["template"]["spec"]["containers"]
        return str(web["image"])

    def stable(self) -> str:
        item = simulate.head(self.kube.get(self.stream_path), "stable")
        return str(item["dockerImageReference"]) if item else ""

    def pods(self, deployment: dict[str, Any]) -> str:
        status = deployment.get("status") or {}
        if status.get("observedGeneration", 0) < deployment["metadata"]["generation"]:
            return "Deployment web: its controller has not seen the change yet"
        text = (
            f"Deployment web: {status.get('updatedReplicas', 0)} of "
            f"{deployment['spec']['replicas']} replicas updated, "
            f"{status.get('availableReplicas', 0)} available, {status.get('replicas', 0)} in all"
        )
        progressing = condition(deployment, "Progressing")
        return f"{text}; Progressing={progressing.get('status', '?')} ({progressing.get('reason')})"

    def target(self, trigger: dict[str, Any]) -> dict[str, Any]:
        for entry in (trigger.get("status") or {}).get("targets") or []:
            if entry.get("kind") == "Deployment" and entry.get("name") == "web":
                return dict(entry)
        return {}

    def where(self) -> tuple[dict[str, Any], dict[str, Any], str]:
        """The Deployment, the trigger's status of it, and a line saying where both stand."""
        deployment = self.deployment()
        target = self.target(self.trigger())
        rollout = target.get("rollout") or "not followed"
        return deployment, target, f"{self.pods(deployment)}; ImageTrigger web: rollout {rollout}"

    def written(self, image: str, before: str) -> None:
        def check() -> tuple[bool | None, str]:
            now = self.image()
            return (True if now == image else None), f"Deployment web runs {short(now)}"

        wait_until(f"ImageTrigger web writes {short(image)} into Deployment web", check)
        tell(f"Deployment web (ImageTrigger web): container web: {short(before)} → {short(image)}")

    def events(self, seen: set[str]) -> list[dict[str, Any]]:
        """The operator's Events in the namespace whose uid is not in ``seen``, oldest first."""
        items = self.kube.get(path_for("v1", "events", ROLLOUT_NAMESPACE))["items"]
        ours = [
            e
            for e in items
            if (e.get("source") or {}).get("component") == OPERATOR_COMPONENT
            and e["metadata"]["uid"] not in seen
        ]
        return sorted(
            ours,
            key=lambda e: (e.get("lastTimestamp") or "", int(e["metadata"]["resourceVersion"])),
        )

    def show_events(self, seen: set[str], until: str) -> None:
        """Wait for the operator's Event ``until``, then print its Events not shown yet."""

        def check() -> tuple[list[dict[str, Any]] | None, str]:
            events = self.events(seen)
            done = any(e["reason"] == until for e in events)
            return (events if done else None), f"{len(events)} new Events from the operator"

        events = wait_until(f"the operator's Event {until}", check)
        tell(f"Events of the operator in {ROLLOUT_NAMESPACE}:")
        for event in events:
            seen.add(event["metadata"]["uid"])
            involved = event["involvedObject"]
            tell(
                f"  {event['type']} {event['reason']} on {involved['kind']} {involved['name']}: "
                f"{event['message']}"
            )


def safe_rollouts(kube: Kube, first_number: int) -> None:
    """Namespace demo-rollouts: a good image promoted, a never-ready one reverted."""
    act = RolloutAct(kube)
    create_namespace(kube, ROLLOUT_NAMESPACE)
    kube.create(
        path_for(IMAGE, "imagestreams", ROLLOUT_NAMESPACE),
        {
            "apiVersion": IMAGE,
            "kind": "ImageStream",
            "metadata": {"name": "app"},
            "spec": {
                "tags": [
                    {
                        "name": "latest",
                        "from": {"kind": "DockerImage", "name": f"{ROLLOUT_REPOSITORY}:latest"},
                    }
                ]
            },
        },
    )
    first = simulate.import_image(kube, ROLLOUT_NAMESPACE, "app", "latest")
    kube.create(
        path_for(APPS, "deployments", ROLLOUT_NAMESPACE), rollout_deployment(first.reference)
    )
    say(
        f"safe rollouts, in namespace {ROLLOUT_NAMESPACE}: ImageStream app (app:latest at "
        f"{short(first.reference)}), Deployment web ({REPLICAS} replicas of it, "
        f"progressDeadlineSeconds {PROGRESS_DEADLINE_S})"
    )

    def settled() -> tuple[bool | None, str]:
        deployment = act.deployment()
        available = (deployment.get("status") or {}).get("availableReplicas", 0)
        return (True if available == REPLICAS else None), act.pods(deployment)

    wait_until("Deployment web runs its first image on every replica", settled)
    tell(act.pods(act.deployment()))
    kube.create(path_for(TRIGGERS, "imagetriggers", ROLLOUT_NAMESPACE), rollout_trigger())
    say(
        "created ImageTrigger web: app:latest → Deployment web, "
        f"spec.rollout {json.dumps(ROLLOUT, separators=(', ', ': '))}"
    )
    seen: set[str] = set()

    # A good image: written, judged healthy, promoted.
    good = simulate.import_image(kube, ROLLOUT_NAMESPACE, "app", "latest")
    say(f"import {first_number}: app:latest now points at {short(good.reference)}")
    act.written(good.reference, first.reference)

    def healthy() -> tuple[dict[str, Any] | None, str]:
        _, target, line = act.where()
        done = target.get("image") == good.reference and target.get("rollout") == "Healthy"
        return (target if done else None), line

    target = wait_until("the rollout of the new image is judged Healthy", healthy)
    tell(act.pods(act.deployment()))
    tell(
        f"ImageTrigger web: status.targets[Deployment/web].rollout {target['rollout']}: "
        f"{target.get('rolloutMessage', '')}"
    )

    def promoted() -> tuple[dict[str, Any] | None, str]:
        trigger = act.trigger()
        found = (trigger.get("status") or {}).get("promoted") or {}
        line = f"status.promoted: {found or 'none yet'}; {said(condition(trigger, 'Promoted'))}"
        return (trigger if found.get("image") == good.reference else None), line

    trigger = wait_until("the image that ran healthy is promoted to app:stable", promoted)
    record = trigger["status"]["promoted"]
    tell(
        f"promoted: status.promoted image {short(record['image'])}, to {record['to']}, "
        f"at {record['time']}"
    )
    tell(f"ImageTrigger web: {said(condition(trigger, 'Promoted'))}")
    stable = act.stable()
    tell(f"ImageStream app: app:stable now points at {short(stable) or '(nothing)'}")
    act.show_events(seen, "Promoted")

    # A never-ready image: written, fails its Deployment's deadline, reverted, quarantined.
    bad = simulate.import_image(
        kube, ROLLOUT_NAMESPACE, "app", "latest", image=never_ready_digest("make-demo")
    )
    say(
        f"import {first_number + 1}: app:latest now points at {short(bad.reference)} "
        "(its pods run but never become Ready)"
    )
    act.written(bad.reference, good.reference)

    def reverted() -> tuple[bool | None, str]:
        _, _, line = act.where()
        return (True if act.image() != bad.reference else None), line

    wait_until(
        "the rollout of the never-ready image fails and is reverted",
        reverted,
        timeout=PROGRESS_DEADLINE_S + STEP_TIMEOUT_S,
    )
    now = act.image()
    tell(
        f"reverted: Deployment web container web: {short(bad.reference)} → {short(now)} "
        f"({'the image that ran healthy' if now == good.reference else 'not the image before'})"
    )

    def quarantined() -> tuple[dict[str, Any] | None, str]:
        trigger = act.trigger()
        entries = (trigger.get("status") or {}).get("quarantine") or []
        found = next((e for e in entries if e.get("image") == bad.reference), None)
        return found, f"status.quarantine: {[short(e.get('image', '')) for e in entries]}"

    entry = wait_until("the never-ready image is quarantined", quarantined)
    tell(
        f"quarantined: status.quarantine[] image {short(entry['image'])}, reason "
        f"{entry.get('reason')}, targets {', '.join(entry.get('targets') or [])}, "
        f"since {entry.get('since')}: {entry.get('message')}"
    )
    trigger = act.trigger()
    tell(f"ImageTrigger web: {said(condition(trigger, 'Ready'))}")
    still = act.stable()
    tell(
        f"ImageStream app: app:stable points at {short(still) or '(nothing)'} "
        f"({'unchanged: the failed image was not promoted' if still == stable else 'moved'})"
    )
    act.show_events(seen, "RolloutReverted")


def samples_imports(kube: Kube, operator: OperatorProcess) -> None:
    """Namespace demo: two imports, what followed each, and the samples' ImageTrigger."""
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


def run(args: argparse.Namespace) -> int:
    say(
        f"control plane: Kubernetes {binaries.kubernetes_version()} (kube-apiserver + etcd, "
        "kube-controller-manager, kube-scheduler, kwok's fake nodes), "
        "OpenShift's image and build APIs emulated"
    )
    binaries.ensure((*binaries.SERVER_BINARIES, *binaries.WORKLOAD_BINARIES))
    started = time.monotonic()
    workdir = Path(args.workdir) if args.workdir else None
    with cluster.ControlPlane(workdir=workdir, workloads=True) as plane:
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

        try:
            samples_imports(kube, operator)
            safe_rollouts(kube, 3)
        except (DemoFailed, TimeoutError) as failure:
            print(f"error: {failure} (operator log: {operator.log})", file=sys.stderr, flush=True)
            operator.stop()
            code = 1
        else:
            explore(plane, wait=not args.no_wait)
            operator.stop()
            code = 0
    say("stopped; nothing left running")
    return code


def explore(plane: cluster.ControlPlane, *, wait: bool) -> None:
    """How to look around; with ``wait``, keep everything running until Ctrl-C."""
    kubectl = binaries.ensure(("kubectl",))["kubectl"]
    print(flush=True)
    print(f"export KUBECONFIG={plane.kubeconfig.resolve()}", flush=True)
    print(f"then: {kubectl} get imagestreams,imagetriggers,deployments,builds -A", flush=True)
    print(
        f"      .venv/bin/python -m tests.controlplane import-image app:latest -n {NAMESPACE}",
        flush=True,
    )
    print(
        f"      {kubectl} get imagetrigger web -n {ROLLOUT_NAMESPACE} -o yaml"
        "   # status.promoted, status.quarantine",
        flush=True,
    )
    if wait:
        print("the operator serves any namespace you create; Ctrl-C stops everything", flush=True)
        cluster.wait_for_ctrl_c()
