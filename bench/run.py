"""The benchmark's phases, against a real control plane and the operator as its own process.

Set-up → start-up → single changes → burst → idle → failover (replicas on a
Lease, the leader killed mid-burst: bench/failover.py) → shards (2 namespace shards
against 1 process: bench/shards.py) → the floor (a plain client
doing the operator's writes). Timings come from the benchmark's own Deployment
watch; API cost from the API server's audit log; memory and CPU from /proc.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import random
import secrets
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import memory, profiler
from bench.client import Client, DeploymentWatch, parallel
from tests.controlplane import binaries, cluster, openshift
from tests.controlplane.kube import Kube, create_namespace, install_crds
from tests.controlplane.operator_process import OperatorProcess, parse_metrics

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


@dataclass
class Bench:
    size: str
    streams: int
    workloads: int
    changes: int
    seed: int = 1
    # Where py-spy's raw stacks of the operator during the burst go (None: not profiled).
    profile: Path | None = None
    results: dict[str, Any] = field(default_factory=dict)

    def run(self) -> dict[str, Any]:
        random.seed(self.seed)
        plane = cluster.ControlPlane(audit_policy=AUDIT_POLICY)
        started = time.monotonic()
        with plane:
            say(f"control plane up in {time.monotonic() - started:.1f}s")
            kube = Kube(plane.url, plane.admin_token, plane.ca_file)
            install_crds(
                kube,
                sorted(cluster.CRD_DIR.glob("*.yaml"))
                + sorted(cluster.OPERATOR_CRD_DIR.glob("*.yaml")),
            )
            client = Client(plane.url, plane.admin_token, str(plane.ca_file))
            base = memory.measure_base(plane, kube)  # on the empty cluster: bench/memory.py
            t = time.monotonic()
            world = set_up(client, kube, self.streams, self.workloads)
            say(
                f"set-up: {len(world.streams)} ImageStreams, {len(world.targets)} Deployments, "
                f"{len(world.buildconfigs)} BuildConfigs in {time.monotonic() - t:.0f}s"
            )
            watch = DeploymentWatch(client)
            watch.start()
            create_namespace(kube, OPERATOR_NS)
            self.adopt(plane, kube, world)
            operator = OperatorProcess(
                plane, kube, OPERATOR_NS, serve=(), args=["--log-level=info"]
            )
            self.startup(client, watch, world, operator)
            try:
                try:
                    self.single(client, watch, world, operator, plane)
                    self.burst(client, watch, world, operator, plane)
                    self.idle(operator, plane)
                    assert operator.process is not None
                    stats = proc_stats(operator.process.popen.pid)
                    stats["cpu_seconds_per_1000_changes"] = (
                        stats["cpu_seconds"] / max(1, self.results["changes_total"]) * 1000
                    )
                    self.results["operator"] = stats
                    self.results["memory"] = memory.section(base, stats, world)
                    self.check()
                finally:
                    operator.stop()
                # Replicas with leader election, after the single operator has stopped.
                self.failover(client, kube, plane, watch, world)
                self.shards(client, kube, plane, watch, world)
            finally:
                watch.stop.set()
            # Without the operator: it would (rightly) revert the floor's writes.
            self.floor(client, world)
        self.results["config"] = {
            "size": self.size,
            "streams": self.streams,
            "workloads": self.workloads,
            "deployments": len(world.targets),
            "buildconfigs": len(world.buildconfigs),
            "changes": self.changes,
            "writers": WRITERS,
        }
        self.results["environment"] = environment()
        return self.results

    # -- phases -----------------------------------------------------------------------

    def adopt(self, plane: cluster.ControlPlane, kube: Kube, world: World) -> None:
        """The first run on a cluster: every ImageTrigger gets its first status and every
        BuildConfig its first build. Timed, then stopped: start-up is measured on a restart."""
        first = OperatorProcess(plane, kube, OPERATOR_NS, serve=(), args=["--log-level=warning"])
        launched = time.perf_counter()
        first.start(wait=False)
        first.wait_ready(timeout=600)
        # At least one status write per ImageTrigger and one build per BuildConfig.
        first.settle(
            quiet=2.0, timeout=1800, at_least=world.imagetriggers + len(world.buildconfigs)
        )
        metrics = first.metrics()
        self.results["adoption"] = {
            # settle() waited 2 s of quiet after the last request.
            "converged_s": time.perf_counter() - launched - 2.0,
            "builds_started": metrics.get('imagestream_trigger_builds_total{result="started"}', 0),
        }
        first.stop()
        say(
            f"adoption (first run): every trigger and build done in "
            f"{self.results['adoption']['converged_s']:.1f}s; stopped"
        )

    def startup(
        self, client: Client, watch: DeploymentWatch, world: World, operator: OperatorProcess
    ) -> None:
        # One change lands while the operator is down: start-up ends when it is applied.
        target = next(t for t in world.targets if t.how == "annotation")
        reference = do_import(client, target.namespace, target.stream)
        world.heads[(target.namespace, target.stream)] = reference
        launched = time.perf_counter()
        operator.start(wait=False)
        operator.wait_ready(timeout=600)
        healthy = time.perf_counter()
        expected = [
            (f.namespace, f.name, reference)
            for f in world.followers(target.namespace, target.stream)
        ]
        seen = watch.wait_for(expected, timeout=600)
        first = min(seen.values())
        self.results["startup"] = {
            "healthy_s": healthy - launched,
            "first_change_s": first - launched,
            "converged_s": max(seen.values()) - launched,
        }
        say(
            f"start-up: healthy after {healthy - launched:.1f}s, first change applied after "
            f"{first - launched:.1f}s"
        )
        self.results["changes_total"] = 1
        operator.settle(quiet=2.0, timeout=600)

    def single(
        self,
        client: Client,
        watch: DeploymentWatch,
        world: World,
        operator: OperatorProcess,
        plane: cluster.ControlPlane,
    ) -> None:
        candidates = [s for s in world.streams if world.followers(*s)]
        latencies: list[float] = []
        all_done: list[float] = []
        before = operator.metrics()
        window_start = time.time()
        writes_expected = 0
        for _ in range(self.changes):
            namespace, stream = random.choice(candidates)
            reference = do_import(client, namespace, stream)
            written = time.perf_counter()
            followers = world.followers(namespace, stream)
            writes_expected += len(followers)
            seen = watch.wait_for([(f.namespace, f.name, reference) for f in followers])
            latencies += [at - written for at in seen.values()]
            all_done.append(max(seen.values()) - written)
        operator.settle(quiet=1.0)
        window_end = time.time()
        after = operator.metrics()
        own = histogram_quantiles(
            {k: after.get(k, 0) - before.get(k, 0) for k in after},
            "imagestream_trigger_trigger_latency_seconds",
        )
        self.results["single"] = {
            "latency": summary(latencies),
            "change_done": summary(all_done),
            "operator_histogram": own,
            "samples_s": latencies,
            "api": dict(audit_counts(plane.dir / "audit.log", window_start, window_end)),
            "changes": self.changes,
            "target_writes_expected": writes_expected,
        }
        self.results["changes_total"] += self.changes
        s = self.results["single"]["latency"]
        say(
            f"single changes: {self.changes} imports, {len(latencies)} target updates: "
            f"p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, max {s['max_ms']:.1f} ms"
        )

    def burst(
        self,
        client: Client,
        watch: DeploymentWatch,
        world: World,
        operator: OperatorProcess,
        plane: cluster.ControlPlane,
    ) -> None:
        size = max(1, len(world.streams) // 10)
        candidates = [s for s in world.streams if world.followers(*s)]
        # One 1.5-s burst on a shared 2-core machine is mostly noise: the median of a few.
        rounds: list[dict[str, Any]] = []
        self.burst_streams = []
        window_start = time.time()
        for number in range(BURST_ROUNDS):
            chosen = random.sample(candidates, size)
            self.burst_streams.append(chosen)
            profile = self.profile if number == 0 else None
            spy = profiler.start(operator, profile) if profile else None
            started = time.perf_counter()
            references = parallel([lambda s=s: do_import(client, *s) for s in chosen], WRITERS)
            imported = time.perf_counter()
            expected = [
                (f.namespace, f.name, reference)
                for (namespace, stream), reference in zip(chosen, references, strict=True)
                for f in world.followers(namespace, stream)
            ]
            seen = watch.wait_for(expected, timeout=600)
            done = max(seen.values())
            if spy is not None and profile is not None:
                self.results["burst_profile"] = profiler.stop(spy, profile)
            operator.settle(quiet=1.0)
            rounds.append(
                {
                    "targets": len(expected),
                    "imports_s": imported - started,
                    "total_s": done - started,
                    "after_imports_s": done - imported,
                }
            )
            self.burst_targets = [(f[0], f[1]) for f in expected]
            self.results["changes_total"] += size
        median = sorted(rounds, key=lambda r: r["total_s"])[len(rounds) // 2]
        self.results["burst"] = {
            "tags": size,
            **median,
            "targets_per_s": median["targets"] / median["total_s"],
            "rounds": rounds,
            "api": dict(audit_counts(plane.dir / "audit.log", window_start, time.time())),
            "api_rounds": BURST_ROUNDS,
        }
        b = self.results["burst"]
        each = ", ".join(f"{r['total_s']:.2f}" for r in rounds)
        say(
            f"burst: {size} tags at once, {b['targets']} targets in {b['total_s']:.2f}s "
            f"({b['targets_per_s']:.0f} targets/s; the median of {each})"
        )

    def failover(
        self,
        client: Client,
        kube: Kube,
        plane: cluster.ControlPlane,
        watch: DeploymentWatch,
        world: World,
    ) -> None:
        # Imported here: the phase builds on this module's set-up and imports.
        from bench import failover

        tags = max(2, len(world.streams) // 10)  # as many tag moves as a burst round
        result = failover.Failover(client, kube, plane, watch, world, tags).run()
        self.results["failover"] = result
        self.results["correctness"]["problems"] += failover.problems(result)

    def shards(
        self,
        client: Client,
        kube: Kube,
        plane: cluster.ControlPlane,
        watch: DeploymentWatch,
        world: World,
    ) -> None:
        from bench import shards

        result = shards.Shards(client, kube, plane, watch, world, self.size == "quick").run()
        self.results["shards"] = result
        self.results["correctness"]["problems"] += shards.problems(result)

    def floor(self, client: Client, world: World) -> None:
        """A plain client does the operator's writes itself: same patches, same concurrency."""

        def patch(namespace: str, name: str, image: str) -> float:
            path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"
            return client.timed(
                "PATCH",
                path,
                [
                    {
                        "op": "replace",
                        "path": "/spec/template/spec/containers/0/image",
                        "value": image,
                    },
                    {
                        "op": "add",
                        "path": "/metadata/annotations/imagestream-trigger.dev~1last-applied",
                        "value": json.dumps({"app": {"image": image}}),
                    },
                ],
                "application/json-patch+json",
            )

        singles = [
            patch(t.namespace, t.name, f"{REPO}@{openshift.digest_for(secrets.token_hex(8))}")
            for t in random.sample(world.targets, min(len(world.targets), max(200, self.changes)))
        ]
        started = time.perf_counter()
        parallel(
            [
                lambda ns=ns, n=n: patch(
                    ns, n, f"{REPO}@{openshift.digest_for(secrets.token_hex(8))}"
                )
                for ns, n in self.burst_targets
            ],
            WRITERS,
        )
        burst_s = time.perf_counter() - started

        # The burst as the operator meets it: the same 100 imports, each followed by its
        # followers' patches, with no deciding in between. The operator's burst time runs
        # from the first import too, so this is the floor it is held against.
        def import_then_patch(namespace: str, stream: str) -> None:
            reference = do_import(client, namespace, stream)
            for follower in world.followers(namespace, stream):
                patch(follower.namespace, follower.name, reference)

        with_imports = []
        for chosen in self.burst_streams:
            started = time.perf_counter()
            parallel([lambda ns=ns, s=s: import_then_patch(ns, s) for ns, s in chosen], WRITERS)
            with_imports.append(time.perf_counter() - started)
        with_imports_s = sorted(with_imports)[len(with_imports) // 2]
        self.results["floor"] = {
            "patch": summary(singles),
            "samples_s": singles,
            "burst_s": burst_s,
            "burst_with_imports_s": with_imports_s,
            "burst_with_imports_rounds_s": with_imports,
            "burst_targets": len(self.burst_targets),
        }
        say(
            f"floor: PATCH round trip p50 {self.results['floor']['patch']['p50_ms']:.1f} ms; "
            f"the burst's {len(self.burst_targets)} writes take {burst_s:.2f}s "
            f"with {WRITERS} writers, {with_imports_s:.2f}s with their imports"
        )

    def idle(
        self, operator: OperatorProcess, plane: cluster.ControlPlane, seconds: float = 10
    ) -> None:
        operator.settle(quiet=2.0, timeout=120)
        start = time.time()
        time.sleep(seconds)
        self.results["idle"] = {
            "seconds": seconds,
            "api": dict(audit_counts(plane.dir / "audit.log", start, time.time())),
        }

    def check(self) -> None:
        """Correctness, asserted in every mode (the quick mode asserts nothing else)."""
        single = self.results["single"]
        writes = sum(v for k, v in single["api"].items() if k == "patch deployments")
        reads = sum(v for k, v in single["api"].items() if k.split()[0] in ("get", "list"))
        idle_reads = sum(
            v for k, v in self.results["idle"]["api"].items() if k.split()[0] != "watch"
        )
        self.results["correctness"] = {
            "target_writes_per_affected_target": writes / max(1, single["target_writes_expected"]),
            "reads_per_change": reads / max(1, single["changes"]),
            "idle_requests": idle_reads,
        }
        problems = []
        if writes != single["target_writes_expected"]:
            problems.append(
                f"{writes} Deployment PATCHes for "
                f"{single['target_writes_expected']} affected targets"
            )
        if reads:
            problems.append(f"{reads} GET/LIST requests during single changes")
        if idle_reads:
            problems.append(f"{idle_reads} requests while idle")
        self.results["correctness"]["problems"] = problems


def environment() -> dict[str, Any]:
    import kopf

    import imagestream_trigger

    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "kopf": kopf.__version__ if hasattr(kopf, "__version__") else "",
        "kubernetes": binaries.kubernetes_version(),
        "operator": imagestream_trigger.__version__,
        "kernel": platform.release(),
    }


__all__ = ["SIZES", "Bench", "parse_metrics"]
