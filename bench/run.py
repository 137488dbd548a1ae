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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import memory, profiler
from bench.client import Client, DeploymentWatch, parallel
from bench.world import (
    AUDIT_POLICY,
    BURST_ROUNDS,
    OPERATOR_NS,
    REPO,
    SIZES,
    WRITERS,
    World,
    audit_counts,
    do_import,
    histogram_quantiles,
    proc_stats,
    say,
    set_up,
    summary,
)
from tests.controlplane import binaries, cluster, openshift
from tests.controlplane.kube import Kube, create_namespace, install_crds
from tests.controlplane.operator_process import OperatorProcess, parse_metrics


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
