"""What every phase of the benchmark shares: the world it sets up (ImageStreams and the
workloads and BuildConfigs following them), the imports that move its tags, and the
readings taken of a process (/proc) and of the API server's audit log."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.client import Client, parallel
from tests.controlplane import openshift
from tests.controlplane.kube import Kube, create_namespace

HERE = Path(__file__).resolve().parent
AUDIT_POLICY = HERE / "audit-policy.yaml"
OPERATOR_NS = "imagestream-trigger"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NS}:imagestream-trigger"
REPO = "quay.io/bench/app"
TAGS = ("latest", "stable", "canary")
NAMESPACES = 10
WRITERS = 16  # the operator's default --max-concurrent-writes; the floor uses the same
BURST_ROUNDS = 3

SIZES = {
    "quick": (50, 150),
    "standard": (1000, 3000),
    "large": (5000, 15000),
}


@dataclass
class Target:
    """A Deployment following stream:latest, and the container that follows it."""

    namespace: str
    name: str
    stream: str
    container: str
    how: str  # annotation | imagetrigger


@dataclass
class World:
    streams: list[tuple[str, str]] = field(default_factory=list)  # (namespace, name)
    targets: list[Target] = field(default_factory=list)
    buildconfigs: list[tuple[str, str, str]] = field(default_factory=list)  # ns, name, stream
    heads: dict[tuple[str, str], str] = field(default_factory=dict)  # stream -> reference
    imagetriggers: int = 0

    def followers(self, namespace: str, stream: str) -> list[Target]:
        return [t for t in self.targets if (t.namespace, t.stream) == (namespace, stream)]


def say(text: str) -> None:
    print(f"▸ {text}", flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": percentile(values, 0.5) * 1000,
        "p95_ms": percentile(values, 0.95) * 1000,
        "p99_ms": percentile(values, 0.99) * 1000,
        "max_ms": max(values) * 1000 if values else float("nan"),
        "mean_ms": statistics.fmean(values) * 1000 if values else float("nan"),
    }


# -- set-up -----------------------------------------------------------------------


def deployment(
    name: str, containers: dict[str, str], labels: dict[str, str], annotations: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": n, "image": i} for n, i in containers.items()]},
            },
        },
    }


def import_status(stream: dict[str, Any], tag: str, digest: str) -> dict[str, Any]:
    return openshift.apply_import(
        stream,
        tag,
        docker_image_reference=f"{REPO}-{stream['metadata']['name']}@{digest}",
        image=digest,
        now=dt.datetime.now(dt.UTC),
    )


def do_import(client: Client, namespace: str, stream: str, tag: str = "latest") -> str:
    """One import: a new digest for the tag, written through the status subresource."""
    path = f"/apis/image.openshift.io/v1/namespaces/{namespace}/imagestreams/{stream}"
    current = client.request("GET", path)
    digest = openshift.digest_for(secrets.token_hex(16))
    current["status"] = import_status(current, tag, digest)
    written = client.request("PUT", path + "/status", current)
    head = next(t for t in written["status"]["tags"] if t["tag"] == tag)["items"][0]
    reference: str = head["dockerImageReference"]
    return reference


def set_up(client: Client, kube: Kube, streams: int, workloads: int) -> World:
    world = World()
    namespaces = [f"bench-{i}" for i in range(min(NAMESPACES, streams))]
    for namespace in namespaces:
        create_namespace(kube, namespace)

    def make_stream(index: int) -> tuple[str, str, str]:
        namespace, name = namespaces[index % len(namespaces)], f"s{index}"
        body = {
            "apiVersion": "image.openshift.io/v1",
            "kind": "ImageStream",
            "metadata": {"name": name},
            "spec": {
                "tags": [
                    {"name": t, "from": {"kind": "DockerImage", "name": f"{REPO}-{name}:{t}"}}
                    for t in TAGS
                ]
            },
        }
        created = client.request(
            "POST", f"/apis/image.openshift.io/v1/namespaces/{namespace}/imagestreams", body
        )
        for tag in TAGS:
            created["status"] = import_status(created, tag, openshift.digest_for(f"{name}:{tag}:0"))
        written = client.request(
            "PUT",
            f"/apis/image.openshift.io/v1/namespaces/{namespace}/imagestreams/{name}/status",
            created,
        )
        head = next(t for t in written["status"]["tags"] if t["tag"] == "latest")["items"][0]
        return namespace, name, head["dockerImageReference"]

    for namespace, name, reference in parallel(
        [lambda i=i: make_stream(i) for i in range(streams)], 8
    ):
        world.streams.append((namespace, name))
        world.heads[(namespace, name)] = reference

    triggers_needed: set[tuple[str, str]] = set()
    bodies: list[tuple[str, str, dict[str, Any]]] = []
    for index in range(workloads):
        namespace, stream = world.streams[index % streams]
        reference = world.heads[(namespace, stream)]
        kind = index % 10  # 0-4 annotation, 5-8 ImageTrigger, 9 BuildConfig (ImageTrigger)
        name = f"w{index}"
        if kind == 9:
            world.buildconfigs.append((namespace, name, stream))
            triggers_needed.add((namespace, stream))
            source = {"kind": "ImageStreamTag", "name": f"{stream}:latest"}
            bodies.append(
                (
                    namespace,
                    "buildconfigs",
                    {
                        "apiVersion": "build.openshift.io/v1",
                        "kind": "BuildConfig",
                        "metadata": {"name": name, "labels": {"follows": stream}},
                        "spec": {
                            "source": {
                                "type": "Git",
                                "git": {"uri": "https://example.invalid/app.git"},
                            },
                            "strategy": {"type": "Docker", "dockerStrategy": {"from": source}},
                            "output": {"to": {"kind": "ImageStreamTag", "name": f"{name}:latest"}},
                        },
                    },
                )
            )
            continue
        containers = {"app": reference}
        if index % 3 == 0:
            containers["sidecar"] = "quay.io/bench/sidecar:1"
        how = "annotation" if kind < 5 else "imagetrigger"
        # Real Deployments carry annotations; the floor's patch adds one key to the map.
        annotations, labels = {"bench.imagestream-trigger.dev/index": str(index)}, {"app": name}
        if how == "annotation":
            annotations["image.openshift.io/triggers"] = json.dumps(
                [
                    {
                        "from": {"kind": "ImageStreamTag", "name": f"{stream}:latest"},
                        "fieldPath": 'spec.template.spec.containers[?(@.name=="app")].image',
                    }
                ]
            )
        else:
            labels["follows"] = stream
            triggers_needed.add((namespace, stream))
        world.targets.append(Target(namespace, name, stream, "app", how))
        bodies.append((namespace, "deployments", deployment(name, containers, labels, annotations)))

    world.imagetriggers = len(triggers_needed)
    for namespace, stream in sorted(triggers_needed):
        bodies.append(
            (
                namespace,
                "imagetriggers",
                {
                    "apiVersion": "imagestream-trigger.dev/v1alpha1",
                    "kind": "ImageTrigger",
                    "metadata": {"name": stream},
                    "spec": {
                        "source": {"imageStreamTag": f"{stream}:latest"},
                        "targets": [
                            {
                                "kind": "Deployment",
                                "selector": {"matchLabels": {"follows": stream}},
                            },
                            {
                                "kind": "BuildConfig",
                                "selector": {"matchLabels": {"follows": stream}},
                            },
                        ],
                    },
                },
            )
        )

    prefixes = {
        "deployments": "/apis/apps/v1",
        "buildconfigs": "/apis/build.openshift.io/v1",
        "imagetriggers": "/apis/imagestream-trigger.dev/v1alpha1",
    }
    parallel(
        [
            lambda ns=ns, plural=plural, body=body: client.request(
                "POST", f"{prefixes[plural]}/namespaces/{ns}/{plural}", body
            )
            for ns, plural, body in bodies
        ],
        8,
    )
    return world


# -- measurements -------------------------------------------------------------------


def proc_stats(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "peak_rss_mb": int(fields["VmHWM"].split()[0]) / 1024,
        "cpu_seconds": (int(stat[11]) + int(stat[12])) / ticks,
    }


def histogram_quantiles(metrics: dict[str, float], name: str) -> dict[str, float]:
    """Quantiles from a Prometheus histogram's cumulative buckets, summed over labels."""
    buckets: Counter[float] = Counter()
    for key, value in metrics.items():
        if key.startswith(f"{name}_bucket{{"):
            le = key.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if le == "+Inf" else float(le)] += value
    ordered = sorted(buckets.items())
    total = ordered[-1][1] if ordered else 0
    out: dict[str, float] = {"count": total}
    for q in (0.5, 0.95, 0.99):
        rank, previous_le, previous_count = q * total, 0.0, 0.0
        for le, count in ordered:
            if count >= rank:
                if le == float("inf"):
                    out[f"p{int(q * 100)}_ms"] = previous_le * 1000
                else:
                    fraction = (
                        (rank - previous_count) / (count - previous_count)
                        if count > previous_count
                        else 0
                    )
                    out[f"p{int(q * 100)}_ms"] = (
                        previous_le + (le - previous_le) * fraction
                    ) * 1000
                break
            previous_le, previous_count = le, count
    return out


def audit_counts(log: Path, start: float, end: float) -> Counter[str]:
    """Operator requests by 'verb resource[/sub]' received in [start, end) (epoch seconds)."""
    counts: Counter[str] = Counter()
    if not log.exists():
        return counts
    with log.open() as handle:
        for line in handle:
            entry = json.loads(line)
            if (
                entry.get("stage") != "ResponseComplete"
                or entry["user"]["username"] != OPERATOR_USER
            ):
                continue
            received = dt.datetime.fromisoformat(
                entry["requestReceivedTimestamp"].replace("Z", "+00:00")
            ).timestamp()
            if not start <= received < end:
                continue
            ref = entry.get("objectRef") or {}
            resource = ref.get("resource", entry.get("requestURI", "?").split("?")[0])
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            counts[f"{entry['verb']} {resource}"] += 1
    return counts
