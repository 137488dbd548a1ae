"""The failover phase: replicas on one Lease; the leader SIGKILLed, then SIGTERMed, mid-burst.

Two replicas start with leader election (the production Lease timings, no flags) and
one of them leads. A burst of tag moves starts; once the leader has applied some of it,
it is SIGKILLed and the rest of the burst is imported while nobody leads. The standby
takes over when the Lease expires. Then a third replica starts as the new standby and,
once it is idle, a second burst starts and the leader is SIGTERMed in its middle: it
releases the Lease.

Each replica runs as its own ServiceAccount (in a namespace of its own) so that the API
server's audit log tells their requests apart; the takeover is timed there, and a write
by an old leader after its successor's first one would show there. In a real install the
replicas share one ServiceAccount: the election never looks at it (a Lease holder is the
replica's own id), so this changes what the log shows and nothing else.

Figures:
  crash_takeover_s     the SIGKILL → the new leader's first write, as the API server
                       received it (the audit log: exact, and a write still in flight from
                       the killed process cannot be taken for the successor's);
  graceful_handover_s  the SIGTERM → the new leader's first write, likewise;
  lost_changes         targets of either burst not converged 30 s after the takeover (the
                       new leader holding the Lease): a Deployment not running its stream's
                       new image, a BuildConfig without a Build of it;
  duplicate_builds     Builds of a BuildConfig for the same image beyond the first;
  double_writes        writes by an old leader received after its successor's first write.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from bench.client import Client, DeploymentWatch, parallel
from bench.world import OPERATOR_NS, WRITERS, World, do_import, say
from imagestream_trigger.settings import Settings
from tests.controlplane import cluster
from tests.controlplane.kube import Kube, create_namespace
from tests.controlplane.operator_process import OperatorProcess

# Namespaces of the replicas' ServiceAccounts: the first two start together, the third
# is the standby for the graceful handover. bench/audit-policy.yaml logs all three.
REPLICAS = ("failover-a", "failover-b", "failover-c")
WINDOW_S = 30.0  # a target not converged this long after the takeover is lost
GOALS = {"crash_takeover_s": 10.0, "graceful_handover_s": 2.0}
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# Not writes: the election itself and access reviews (reads sent as POST). The emulation
# proxy answers an instantiate after a SelfSubjectReview made with the caller's token, so
# "create selfsubjectreviews" is the trace an instantiate leaves, and counts as a write.
NOT_WRITES = frozenset({"leases", "selfsubjectaccessreviews", "subjectaccessreviews"})
BUILDS = "/apis/build.openshift.io/v1/builds"
BUILD_CONFIG_LABEL = "openshift.io/build-config.name"


def user_of(namespace: str) -> str:
    return f"system:serviceaccount:{namespace}:imagestream-trigger"


@dataclass(frozen=True, slots=True)
class Request:
    """One request in the audit log."""

    at: float  # when the API server received it (epoch seconds)
    user: str
    verb: str
    resource: str  # resource[/subresource]
    code: int

    @property
    def write(self) -> bool:
        return self.verb in WRITE_VERBS and self.resource.split("/")[0] not in NOT_WRITES


def audit_requests(log: Path, users: Iterable[str], since: float) -> list[Request]:
    """The requests of ``users`` received from ``since`` on, in the order received."""
    wanted = set(users)
    found: list[Request] = []
    with log.open() as handle:
        for line in handle:
            entry = json.loads(line)
            user = entry["user"]["username"]
            if entry.get("stage") != "ResponseComplete" or user not in wanted:
                continue
            at = dt.datetime.fromisoformat(
                entry["requestReceivedTimestamp"].replace("Z", "+00:00")
            ).timestamp()
            if at < since:
                continue
            ref = entry.get("objectRef") or {}
            resource = ref.get("resource", "?")
            if ref.get("subresource"):
                resource += "/" + ref["subresource"]
            code = int((entry.get("responseStatus") or {}).get("code", 0))
            found.append(Request(at, user, entry["verb"], resource, code))
    return sorted(found, key=lambda r: r.at)


def first(
    requests: list[Request], user: str, after: float, what: Callable[[Request], bool]
) -> float | None:
    return next((r.at for r in requests if r.user == user and r.at > after and what(r)), None)


def applied_write(request: Request) -> bool:
    return request.write and request.code < 300


def lease_taken(request: Request) -> bool:
    return (
        request.resource == "leases" and request.verb in ("create", "update") and request.code < 300
    )


def leading(replica: OperatorProcess) -> bool:
    try:
        return replica.metrics().get("imagestream_trigger_leader") == 1
    except OSError:  # not serving metrics yet, or gone
        return False


def wait_leader(replicas: list[OperatorProcess], timeout: float) -> OperatorProcess:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in replicas if leading(r)]
        if len(found) > 1:
            raise AssertionError(f"{len(found)} replicas lead at once")
        if found:
            return found[0]
        time.sleep(0.05)
    raise TimeoutError(f"no leader among {[r.namespace for r in replicas]} in {timeout:.0f}s")


def queue_when_leading(replica: OperatorProcess, timeout: float = 60) -> float:
    """Wait for ``replica`` to lead; how many keys its work queue held then (it queues
    every key when it takes over, and the keys of whatever moved while it stood by)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            metrics = replica.metrics()
        except OSError:
            metrics = {}
        if metrics.get("imagestream_trigger_leader") == 1:
            return metrics.get("imagestream_trigger_queue_depth", 0.0)
        time.sleep(0.02)
    raise TimeoutError(f"{replica.namespace} did not take the Lease in {timeout:.0f}s")


def settle(replica: OperatorProcess, quiet: float = 2.0, timeout: float = 600) -> None:
    """Until the replica has sent nothing but Lease renewals (one a retry period, for as
    long as it leads) and handled no ImageStream event for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        activity = sum(
            value
            for key, value in replica.metrics().items()
            if (
                key.startswith("imagestream_trigger_api_requests_total")
                and 'resource="leases"' not in key
            )
            or key.startswith("imagestream_trigger_imagestream_events_total")
        )
        if activity != last:
            last, since = activity, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{replica.namespace} did not become idle in {timeout:.0f}s")


@dataclass
class Failover:
    client: Client
    kube: Kube
    plane: cluster.ControlPlane
    watch: DeploymentWatch
    world: World
    tags: int  # tag moves per burst
    # Every image imported in this phase: the Builds counted are the Builds of these.
    references: set[str] = field(default_factory=set)
    # watch times are perf_counter(); the audit log's are epoch seconds.
    offset: float = field(default_factory=lambda: time.time() - time.perf_counter())
    exit_timer: threading.Thread | None = None  # times the SIGTERMed leader's exit

    def run(self) -> dict[str, Any]:
        started = time.time()
        began = time.perf_counter()
        self.lease_rights()
        crash_streams, graceful_streams = self.scenes()
        a, b = (self.replica(ns) for ns in REPLICAS[:2])
        replicas = [a, b]
        try:
            for replica in replicas:
                replica.start(wait=False)
            for replica in replicas:
                replica.wait_ready(timeout=600)
            leader = wait_leader(replicas, timeout=60)
            standby = b if leader is a else a
            settle(leader)
            say(f"failover: {leader.namespace} leads, {standby.namespace} stands by")

            killed_at, crash_refs = self.burst(crash_streams, leader.kill)
            queued = queue_when_leading(standby)
            crash = self.converge(crash_refs, killed_at, time.time() + WINDOW_S)
            crash["new_leader_queue_at_takeover"] = queued
            settle(standby)
            crash_done = time.time()

            third = self.replica(REPLICAS[2])
            replicas.append(third)
            third.start(wait=False)
            third.wait_ready(timeout=600)
            # Warm and idle: /readyz answers before kopf's own watchers have listed.
            settle(third)
            old = standby
            assert old.process is not None
            exited: dict[str, float] = {}
            terminated_at, graceful_refs = self.burst(
                graceful_streams, lambda: self.terminate(old, exited)
            )
            queued = queue_when_leading(third)
            graceful = self.converge(graceful_refs, terminated_at, time.time() + WINDOW_S)
            graceful["new_leader_queue_at_takeover"] = queued
            code = old.wait_exit(timeout=60)
            if self.exit_timer is not None:
                self.exit_timer.join(timeout=5)
            settle(third)
            duplicates, builds = self.duplicate_builds()
        finally:
            for replica in replicas:
                replica.stop()

        requests = audit_requests(
            self.plane.dir / "audit.log", [user_of(ns) for ns in REPLICAS], started
        )
        crash |= self.handover(requests, leader, old, killed_at, crash_done)
        graceful |= self.handover(requests, old, third, terminated_at)
        graceful["old_leader_exit_code"] = code
        graceful["old_leader_exited_s"] = exited["at"] - terminated_at if exited else None
        result = {
            "lease": {
                "duration_s": Settings.model_fields["lease_duration_seconds"].default,
                "renew_deadline_s": Settings.model_fields["lease_renew_deadline_seconds"].default,
                "retry_period_s": Settings.model_fields["lease_retry_period_seconds"].default,
            },
            "tags_per_burst": self.tags,
            "phase_s": time.perf_counter() - began,
            "crash": crash,
            "graceful": graceful,
            "crash_takeover_s": crash["takeover_s"],
            "graceful_handover_s": graceful["takeover_s"],
            "lost_changes": crash["lost_changes"] + graceful["lost_changes"],
            "duplicate_builds": duplicates,
            "builds": builds,
            "double_writes": crash["double_writes"] + graceful["double_writes"],
            "api": {
                ns: dict(
                    Counter(f"{r.verb} {r.resource}" for r in requests if r.user == user_of(ns))
                )
                for ns in REPLICAS
            },
        }
        say(
            f"failover: crash takeover {fmt(crash['takeover_s'])} s (Lease taken after "
            f"{fmt(crash['lease_taken_s'])} s), graceful handover {fmt(graceful['takeover_s'])} s "
            f"(Lease after {fmt(graceful['lease_taken_s'])} s); lost {result['lost_changes']}, "
            f"duplicate builds {duplicates} of {builds}, double writes {result['double_writes']}"
        )
        return result

    # -- set-up -------------------------------------------------------------------------

    def replica(self, namespace: str) -> OperatorProcess:
        create_namespace(self.kube, namespace)
        return OperatorProcess(
            self.plane,
            self.kube,
            namespace,
            serve=(),
            # No timing flags: the defaults are what is measured.
            args=["--log-level=info", f"--lease-namespace={OPERATOR_NS}"],
        )

    def lease_rights(self) -> None:
        """A Role for Leases in the Lease's namespace, bound to every replica's account."""
        name = "imagestream-trigger-leases"
        self.kube.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": OPERATOR_NS},
                "rules": [
                    {
                        "apiGroups": ["coordination.k8s.io"],
                        "resources": ["leases"],
                        "verbs": ["get", "list", "watch", "create", "update"],
                    }
                ],
            }
        )
        self.kube.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": name, "namespace": OPERATOR_NS},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [
                    {"kind": "ServiceAccount", "name": "imagestream-trigger", "namespace": ns}
                    for ns in REPLICAS
                ],
            }
        )

    def scenes(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Two disjoint sets of streams, one per burst, each with some BuildConfig targets
        (through ImageTriggers) among its Deployments."""
        with_builds = sorted({(ns, stream) for ns, _, stream in self.world.buildconfigs})
        with_deployments = [s for s in self.world.streams if self.world.followers(*s)]
        per_burst = min(len(with_builds) // 2, max(2, self.tags // 10))
        builds = random.sample(with_builds, 2 * per_burst)
        deployments = random.sample(with_deployments, 2 * (self.tags - per_burst))
        half = self.tags - per_burst
        return (
            builds[:per_burst] + deployments[:half],
            builds[per_burst:] + deployments[half:],
        )

    def build_configs(self, namespace: str, stream: str) -> list[str]:
        return [n for ns, n, s in self.world.buildconfigs if (ns, s) == (namespace, stream)]

    # -- the bursts ------------------------------------------------------------------------

    def burst(
        self, streams: list[tuple[str, str]], strike: Callable[[], None]
    ) -> tuple[float, dict[tuple[str, str], str]]:
        """Half the tag moves; ``strike`` once the leader has applied one of them; the
        other half. Returns when ``strike`` was called and each stream's new reference."""
        # Each half has BuildConfig and Deployment targets: interleave, then halve.
        ordered = streams[::2] + streams[1::2]
        before, after = ordered[: len(ordered) // 2], ordered[len(ordered) // 2 :]
        references = self.imports(before)
        wanted = [
            (f.namespace, f.name, references[(ns, s)])
            for ns, s in before
            for f in self.world.followers(ns, s)
        ]
        with self.watch.changed:
            # The leader is at work when struck (if it was quicker, it is struck anyway).
            self.watch.changed.wait_for(
                lambda: any(w in self.watch.seen_at for w in wanted), timeout=30
            )
        struck = time.time()
        strike()
        references |= self.imports(after)
        return struck, references

    def imports(self, streams: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        moved = parallel([partial(do_import, self.client, ns, s) for ns, s in streams], WRITERS)
        self.references.update(moved)
        return dict(zip(streams, moved, strict=True))

    def terminate(self, replica: OperatorProcess, exited: dict[str, float]) -> None:
        """SIGTERM, as a rolling update does; returns at once (the exit is timed aside)."""
        assert replica.process is not None
        popen = replica.process.popen
        os.killpg(popen.pid, signal.SIGTERM)

        def wait() -> None:
            popen.wait()
            exited["at"] = time.time()

        self.exit_timer = threading.Thread(target=wait, daemon=True)
        self.exit_timer.start()

    def converge(
        self, references: dict[tuple[str, str], str], struck: float, deadline: float
    ) -> dict[str, Any]:
        """Wait until every target runs (a Deployment) or was built from (a BuildConfig)
        its stream's new image, or the deadline passes; count what is left."""
        deployments = {
            (f.namespace, f.name, ref)
            for (ns, s), ref in references.items()
            for f in self.world.followers(ns, s)
        }
        builds = {
            (ns, name, ref)
            for (ns, s), ref in references.items()
            for name in self.build_configs(ns, s)
        }
        built_at: dict[tuple[str, str, str], float] = {}
        while True:
            now = time.time()
            if builds - built_at.keys():
                existing = self.builds_now()
                built_at |= {key: now for key in builds - built_at.keys() if key in existing}
            left = [d for d in deployments if d not in self.watch.seen_at]
            if (not left and len(built_at) == len(builds)) or now > deadline:
                break
            time.sleep(0.2)
        lost = sorted(left) + sorted(builds - built_at.keys())
        times = [self.watch.seen_at[d] + self.offset for d in deployments if d not in left]
        times += built_at.values()
        return {
            "tags": len(references),
            "deployments": len(deployments),
            "buildconfigs": len(builds),
            "lost_changes": len(lost),
            "lost_examples": [list(x) for x in lost[:5]],
            "converged_s": (max(times) - struck) if times and not lost else None,
            # How the convergence is spread: targets moved before the takeover are applied
            # first (their keys were queued while standing by), later ones in turn.
            "converged_p50_s": statistics.median(times) - struck if times else None,
        }

    def builds_now(self) -> Counter[tuple[str, str, str]]:
        """Builds of this phase's images: (namespace, BuildConfig, image) → how many."""
        found: Counter[tuple[str, str, str]] = Counter()
        for build in self.client.request("GET", BUILDS)["items"]:
            meta = build["metadata"]
            config = (meta.get("labels") or {}).get(BUILD_CONFIG_LABEL, "")
            for cause in build["spec"].get("triggeredBy") or []:
                image = (cause.get("imageChangeBuild") or {}).get("imageID")
                if image in self.references:
                    found[(meta["namespace"], config, image)] += 1
        return found

    def duplicate_builds(self) -> tuple[int, int]:
        """(Builds beyond the first of a BuildConfig for one image, all Builds) of this phase."""
        found = self.builds_now()
        return sum(n - 1 for n in found.values()), sum(found.values())

    # -- what the audit log says -------------------------------------------------------

    def handover(
        self,
        requests: list[Request],
        old: OperatorProcess,
        new: OperatorProcess,
        struck: float,
        until: float = float("inf"),  # the end of this handover's burst (converged, idle)
    ) -> dict[str, Any]:
        old_user, new_user = user_of(old.namespace), user_of(new.namespace)
        takeover = first(requests, new_user, struck, applied_write)
        taken = first(requests, new_user, struck, lease_taken)
        # Writes by the new leader before the strike would be a second writer too.
        early = sum(1 for r in requests if r.user == new_user and r.write and r.at <= struck)
        after = sum(
            1
            for r in requests
            if r.user == old_user and r.write and takeover is not None and r.at > takeover
        )
        lists = [r for r in requests if r.verb == "list" and r.at > struck]
        # A SIGTERMed leader finishes the writes already on the wire, then releases.
        tail = [r.at - struck for r in requests if r.user == old_user and r.write and r.at > struck]
        # Writes to targets (Events follow them once the queue is idle).
        writes = [
            r.at - struck
            for r in requests
            if r.user == new_user and r.write and r.resource != "events" and struck < r.at < until
        ]
        return {
            "old_leader": old.namespace,
            "new_leader": new.namespace,
            "takeover_s": None if takeover is None else takeover - struck,
            "lease_taken_s": None if taken is None else taken - struck,
            "new_leader_target_writes": len(writes),
            "new_leader_last_target_write_s": max(writes, default=None),
            "old_leader_writes_after_strike": len(tail),
            "old_leader_last_write_s": max(tail, default=None),
            "old_leader_writes_after_takeover": after,
            "standby_writes_before": early,
            # Warm indexes: the new leader relists nothing it watches to take over. It may
            # look Builds up: for a build the old leader had intended but not seen done.
            "new_leader_relists": dict(
                Counter(r.resource for r in lists if r.resource != "builds" and r.user == new_user)
            ),
            "new_leader_build_lookups": sum(
                1 for r in lists if r.resource == "builds" and r.user == new_user
            ),
            "double_writes": after + early,
        }


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def problems(result: dict[str, Any]) -> list[str]:
    """Correctness, asserted in every mode; the timing goals are the report's."""
    found = []
    for name in ("crash", "graceful"):
        if result[name]["takeover_s"] is None:
            found.append(f"failover ({name}): the new leader never wrote")
    if result["lost_changes"]:
        examples = result["crash"]["lost_examples"] + result["graceful"]["lost_examples"]
        found.append(f"failover: {result['lost_changes']} changes lost, e.g. {examples[:3]}")
    if result["duplicate_builds"]:
        found.append(f"failover: {result['duplicate_builds']} duplicate builds")
    if result["double_writes"]:
        found.append(f"failover: {result['double_writes']} writes by a replica not leading")
    return found
