"""Memory: what one operator process needs, as a base plus a cost per watched object.

Measured in two points of one benchmark run:

- **base**: the peak RSS of an operator started on the empty cluster, before the set-up
  (the interpreter, kopf, aiohttp, the metrics: what does not grow with the cluster);
- **per object**: what the measured run's peak RSS adds to the base, divided by the
  objects that operator watches (ImageStreams, ImageTriggers, workloads, BuildConfigs).

``MODEL`` (bench/memory-model.json) holds the numbers the chart and manifests are sized
with, taken from a large run: request = base + per object x objects at the design size,
limit = request x headroom. tests/ship/test_memory_sizing.py checks that the shipped
request and limit follow it, and that the model is no lower than the run it names.
"""

from __future__ import annotations

import json
import math
import textwrap
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.world import World
    from tests.controlplane.cluster import ControlPlane
    from tests.controlplane.kube import Kube

HERE = Path(__file__).resolve().parent
MODEL = HERE / "memory-model.json"
MIB = 2**20
# The shipped request and limit are rounded up to a multiple of this.
STEP_MIB = 16
# Where the base run's ServiceAccount lives (the run proper uses bench.world.OPERATOR_NS).
BASE_NAMESPACE = "imagestream-trigger-base"


def load_model(path: Path = MODEL) -> dict[str, Any]:
    model: dict[str, Any] = json.loads(path.read_text())
    return model


def _round_up(mib: float) -> int:
    return math.ceil(mib / STEP_MIB) * STEP_MIB


def request_mib(model: dict[str, Any], objects: int) -> int:
    """base + per object x objects, in MiB, rounded up."""
    return _round_up(model["base_mib"] + model["per_object_bytes"] * objects / MIB)


def limit_mib(model: dict[str, Any], objects: int) -> int:
    """The request with headroom (bursts, relists, Events waiting to be sent), rounded up."""
    return _round_up(request_mib(model, objects) * model["limit_headroom"])


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def measure_base(plane: ControlPlane, kube: Kube, namespace: str = BASE_NAMESPACE) -> float:
    """Start the operator on the empty cluster (every namespace), let it settle, and return
    its peak RSS in MB: the part of its memory that does not depend on the cluster's size.
    Its ServiceAccount lives in a namespace of its own, so the run proper starts afresh."""
    from tests.controlplane.kube import create_namespace
    from tests.controlplane.operator_process import OperatorProcess

    create_namespace(kube, namespace)
    operator = OperatorProcess(plane, kube, namespace, serve=(), args=["--log-level=info"])
    operator.start(wait=False)
    try:
        operator.wait_ready(timeout=120)
        operator.settle(quiet=2.0, timeout=60)
        assert operator.process is not None
        base = peak_rss_mib(operator.process.popen.pid)
    finally:
        operator.stop()
    print(f"▸ memory: the operator on the empty cluster peaks at {base:.0f} MB", flush=True)
    return base


def watched(world: World) -> dict[str, int]:
    """The objects the measured operator watches, by kind."""
    return {
        "ImageStreams": len(world.streams),
        "ImageTriggers": world.imagetriggers,
        "Deployments": len(world.targets),
        "BuildConfigs": len(world.buildconfigs),
    }


def section(base_mb: float, stats: dict[str, float], world: World) -> dict[str, Any]:
    """The results' ``memory`` section: the base, and the bytes per watched object."""
    objects = watched(world)
    count = sum(objects.values())
    peak = stats["peak_rss_mb"]
    return {
        "base_mb": base_mb,
        "peak_rss_mb": peak,
        "objects": objects,
        "watched_objects": count,
        "bytes_per_object": (peak - base_mb) * MIB / count if count else float("nan"),
    }


def paragraph(r: dict[str, Any], model_path: Path = MODEL, width: int = 95) -> str:
    """docs/benchmarks.md: the figures, the formula the chart follows, when to add a shard."""
    model = load_model(model_path)
    design = model["design_objects"]
    request, limit = request_mib(model, design), limit_mib(model, design)
    large = json.loads((HERE.parent / model["measured"]).read_text())["memory"]
    this_run = ""
    if r.get("memory") and r["memory"] != large:
        m = r["memory"]
        this_run = (
            f" In this run: base {m['base_mb']:.0f} MB, peak {m['peak_rss_mb']:.0f} MB for "
            f"{m['watched_objects']:,} objects, {m['bytes_per_object']:,.0f} bytes per object."
        )
    measured = (
        "The base is the peak RSS of an operator started on the empty cluster, before the "
        "set-up; the cost per object is what the measured run's peak RSS adds to it, divided "
        "by the objects that run watches (`bench/memory.py`; `python -m bench.memory` shows "
        f"what the indexes alone keep per object of each kind).{this_run} In the large run "
        f"(`{model['measured']}`): base {large['base_mb']:.0f} MB, peak "
        f"{large['peak_rss_mb']:.0f} MB for {large['watched_objects']:,} objects "
        f"({_objects(large['objects'])}): {large['bytes_per_object']:,.0f} bytes per object. "
        "The chart and manifests follow `bench/memory-model.json` (those figures, rounded up):"
    )
    formula = (
        f"    request = {model['base_mib']} MiB + {model['per_object_bytes']:,} bytes x "
        "watched objects\n"
        f"    limit   = request x {model['limit_headroom']}    "
        f"(each rounded up to {STEP_MIB} MiB)"
    )
    shard = (
        "Watched objects: every ImageStream (each shard indexes all of them) plus the "
        "ImageTriggers, workloads and BuildConfigs of the process's namespaces. The shipped "
        f"request ({request}Mi) and limit ({limit}Mi) are for {design:,} watched objects. "
        "Beyond that, raise both by the formula, or **add a shard** (`shards` in the chart) "
        f"so that no process watches more than {design:,}."
    )
    wrap = partial(textwrap.fill, width=width, break_on_hyphens=False)
    return (
        "\n\n".join(["## Memory per watched object", wrap(measured), formula, wrap(shard)]) + "\n"
    )


def _objects(objects: dict[str, int]) -> str:
    order = ("ImageStreams", "ImageTriggers", "Deployments", "BuildConfigs")
    return ", ".join(f"{objects[kind]:,} {kind}" for kind in order if kind in objects)


# -- the per-object microbenchmark: `python -m bench.memory` ---------------------------


def synthetic_pages(streams: int) -> dict[str, list[bytes]]:
    """LIST pages of the benchmark's world (``bench.world.set_up``) as the API server sends
    them: server-set metadata, imported tags, a status on every ImageTrigger. Encoded,
    so that each object decodes into strings of its own, as it does in the operator."""
    import datetime as dt
    import uuid

    from bench.world import REPO, TAGS, deployment
    from tests.controlplane import openshift

    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    stamp = now.isoformat().replace("+00:00", "Z")
    namespaces = [f"bench-{i}" for i in range(min(10, streams))]

    def meta(namespace: str, name: str, **extra: Any) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "resourceVersion": str(len(name) * 7919),
            "generation": 1,
            "creationTimestamp": stamp,
            **extra,
        }

    heads: dict[int, str] = {}
    bodies: dict[str, list[dict[str, Any]]] = {
        "ImageStream": [],
        "ImageTrigger": [],
        "Deployment": [],
        "BuildConfig": [],
    }
    for index in range(streams):
        namespace, name = namespaces[index % len(namespaces)], f"s{index}"
        stream: dict[str, Any] = {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": meta(namespace, name),
            "spec": {
                "tags": [
                    {"name": t, "from": {"kind": "DockerImage", "name": f"{REPO}-{name}:{t}"}}
                    for t in TAGS
                ]
            },
        }
        for tag in TAGS:
            digest = openshift.digest_for(f"{name}:{tag}")
            stream["status"] = openshift.apply_import(
                stream, tag, docker_image_reference=f"{REPO}-{name}@{digest}", image=digest, now=now
            )
        heads[index] = f"{REPO}-{name}@{openshift.digest_for(f'{name}:latest')}"
        bodies["ImageStream"].append(stream)
    followed: set[int] = set()
    for index in range(3 * streams):
        stream_index = index % streams
        namespace, stream_name = namespaces[stream_index % len(namespaces)], f"s{stream_index}"
        name, kind = f"w{index}", index % 10
        labels = {"app": name}
        if kind >= 5:
            labels["follows"] = stream_name
            followed.add(stream_index)
        if kind == 9:
            source = {"kind": "ImageStreamTag", "name": f"{stream_name}:latest"}
            bodies["BuildConfig"].append(
                {
                    "apiVersion": "build.openshift.io/v1",
                    "kind": "BuildConfig",
                    "metadata": meta(namespace, name, labels=labels),
                    "spec": {
                        "strategy": {"type": "Docker", "dockerStrategy": {"from": source}},
                        "output": {"to": {"kind": "ImageStreamTag", "name": f"{name}:latest"}},
                    },
                }
            )
            continue
        containers = {"app": heads[stream_index]}
        if index % 3 == 0:
            containers["sidecar"] = "quay.io/bench/sidecar:1"
        annotations = {"bench.imagestream-trigger.dev/index": str(index)}
        if kind < 5:
            annotations["image.openshift.io/triggers"] = json.dumps(
                [
                    {
                        "from": {"kind": "ImageStreamTag", "name": f"{stream_name}:latest"},
                        "fieldPath": 'spec.template.spec.containers[?(@.name=="app")].image',
                    }
                ]
            )
        body = deployment(name, containers, labels, annotations)
        body["metadata"] |= meta(namespace, name)
        body["status"] = {}
        bodies["Deployment"].append(body)
    for stream_index in sorted(followed):
        namespace, stream_name = namespaces[stream_index % len(namespaces)], f"s{stream_index}"
        head = heads[stream_index]
        targets = [
            {"kind": "Deployment", "name": f"w{stream_index + k * streams}", "image": head}
            | {"result": "Applied", "message": f"runs {head}"}
            for k in range(3)
        ]
        bodies["ImageTrigger"].append(
            {
                "apiVersion": "imagestream-trigger.dev/v1alpha1",
                "kind": "ImageTrigger",
                "metadata": meta(namespace, stream_name),
                "spec": {
                    "source": {"imageStreamTag": f"{stream_name}:latest"},
                    "targets": [
                        {"kind": k, "selector": {"matchLabels": {"follows": stream_name}}}
                        for k in ("Deployment", "BuildConfig")
                    ],
                },
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "Applied",
                            "message": "every target runs the source image",
                            "observedGeneration": 1,
                            "lastTransitionTime": stamp,
                        }
                    ],
                    "image": head,
                    "shortDigest": head.rsplit("@", 1)[1][:19],
                    "observedGeneration": 1,
                    "targets": targets,
                    "history": [{"image": head, "time": stamp, "updated": [], "failed": []}],
                },
            }
        )
    return {
        kind: [
            json.dumps({"items": items[i : i + 500]}).encode() for i in range(0, len(items), 500)
        ]
        for kind, items in bodies.items()
    }


def index_bytes_per_object(streams: int = 1000) -> dict[str, dict[str, float]]:
    """What the indexes keep per object of each kind, traced by tracemalloc: each kind's
    pages are decoded and loaded one at a time, as the start-up listing does."""
    import gc
    import tracemalloc

    from imagestream_trigger.index import Indexes
    from imagestream_trigger.inflight import Overlay
    from imagestream_trigger.intake import Intake

    pages = synthetic_pages(streams)
    intake = Intake(Indexes(), Overlay(), native=True)
    found: dict[str, dict[str, float]] = {}
    tracemalloc.start()
    try:
        for kind, texts in pages.items():
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            count = 0
            for text in texts:
                for item in json.loads(text)["items"]:
                    intake.load(kind, item)
                    count += 1
            gc.collect()
            kept, peak = tracemalloc.get_traced_memory()
            found[kind] = {
                "objects": count,
                "bytes_per_object": (kept - before) / count if count else 0.0,
                "peak_above_kept_mb": (peak - kept) / MIB,
            }
    finally:
        tracemalloc.stop()
    return found


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bench.memory",
        description="What the indexes keep per watched object, by kind (no cluster needed).",
    )
    parser.add_argument("--streams", type=int, default=1000, help="ImageStreams (x3 workloads)")
    args = parser.parse_args(argv)
    found = index_bytes_per_object(args.streams)
    print("| kind | objects | bytes kept per object | page peak above that |")
    print("|---|---|---|---|")
    total_bytes = total = 0.0
    for kind, row in found.items():
        total += row["objects"]
        total_bytes += row["bytes_per_object"] * row["objects"]
        print(
            f"| {kind} | {row['objects']:.0f} | {row['bytes_per_object']:.0f} | "
            f"{row['peak_above_kept_mb']:.1f} MB |"
        )
    print(f"| all | {total:.0f} | {total_bytes / max(1, total):.0f} | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
