"""Two replicas of the operator process, one Lease: one writer, and no gap when it dies."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube, create_namespace
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    REPO,
    buildconfig,
    by_name,
    create,
    image_stream,
    image_trigger,
    images_of,
    imported,
    trigger_annotation,
    wait_reason,
    workload,
    workload_path,
)
from tests.e2e.test_exactly_once import builds_by_image

# Short, so that a crash takeover fits a test: 3 s + 0.5 s at worst.
TIMING = [
    "--lease-duration-seconds=3",
    "--lease-renew-deadline-seconds=2",
    "--lease-retry-period-seconds=0.5",
]
FOLLOWERS = [f"web-{i}" for i in range(4)]


def lease_rights(kube: Kube, namespace: str, *also: str) -> None:
    """The Role the manifests give the operator in its own namespace (bound to the
    imagestream-trigger ServiceAccounts of ``namespace`` and of ``also``)."""
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "imagestream-trigger-leases", "namespace": namespace},
            "rules": [
                {
                    "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"],
                    "verbs": ["get", "list", "watch", "create", "update"],
                }
            ],
        }
    )
    kube.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "imagestream-trigger-leases", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "imagestream-trigger-leases",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "imagestream-trigger", "namespace": ns}
                for ns in (namespace, *also)
            ],
        }
    )


def leading(replica: OperatorProcess) -> bool:
    return replica.metrics().get("imagestream_trigger_leader") == 1


def wait_leader(replicas: list[OperatorProcess], timeout: float = 15) -> OperatorProcess:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in replicas if r.process is not None and leading(r)]
        if len(found) == 1:
            return found[0]
        assert len(found) <= 1, "two leaders"
        time.sleep(0.05)
    raise TimeoutError("no leader")


def scene(kube: Kube, namespace: str) -> None:
    """app:latest, followed by four annotated Deployments and built by an ImageTrigger."""
    image_stream(kube, namespace)
    for name in FOLLOWERS:
        create(
            kube,
            namespace,
            workload(
                "Deployment",
                name,
                {"web": f"{REPO}:latest"},
                annotation=trigger_annotation(by_name("web")),
            ),
        )
    create(kube, namespace, buildconfig("app-build", own_trigger=False))
    create(
        kube,
        namespace,
        image_trigger("follow", "app:latest", [{"kind": "BuildConfig", "name": "app-build"}]),
    )


def converged(kube: Kube, namespace: str, reference: str, timeout: float = 20) -> None:
    for name in FOLLOWERS:
        kube.wait_for(
            workload_path("Deployment", namespace, name),
            lambda obj: images_of(obj)["web"] == reference,
            timeout=timeout,
        )
    deadline = time.monotonic() + timeout
    while builds_by_image(kube, namespace, "app-build")[reference] < 1:
        assert time.monotonic() < deadline, "no build of the new image"
        time.sleep(0.05)


def pair(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> list[OperatorProcess]:
    lease_rights(kube, namespace)
    args = [f"--lease-namespace={namespace}", *TIMING]
    first = run_operator(args=args)
    assert wait_leader([first]) is first
    second = run_operator(args=args)
    assert "standing by until it is ours" in second.output()
    return [first, second]


def test_a_killed_leader_is_replaced_and_nothing_is_lost_or_built_twice(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    scene(kube, namespace)
    replicas = pair(kube, namespace, run_operator)
    leader = wait_leader(replicas)
    standby = next(r for r in replicas if r is not leader)
    assert standby.metrics()["imagestream_trigger_leader"] == 0
    first = imported(kube, namespace)
    converged(kube, namespace, first.reference)

    # Kill the leader mid-burst, and move the tag again while nobody leads.
    second = imported(kube, namespace)
    leader.kill()
    third = imported(kube, namespace)
    # How long it takes is the benchmark's to measure (bench/failover.py); here, that it
    # waited out the dead leader's Lease rather than taking it from under a live one.
    assert wait_leader([standby], timeout=60) is standby
    converged(kube, namespace, third.reference)
    builds = builds_by_image(kube, namespace, "app-build")
    # Each image at most once; the first and the last for certain.
    assert max(builds.values()) == 1, builds
    assert builds[first.reference] == 1
    assert builds[third.reference] == 1
    assert set(builds) <= {first.reference, second.reference, third.reference}
    assert standby.metrics()["imagestream_trigger_leader_transitions_total"] == 1
    assert "had not renewed it for 3s): this replica writes now" in standby.output()


def test_sigterm_hands_the_lease_over_at_once(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    scene(kube, namespace)
    replicas = pair(kube, namespace, run_operator)
    leader = wait_leader(replicas)
    standby = next(r for r in replicas if r is not leader)
    leader.stop()  # SIGTERM: release after the last write
    assert wait_leader([standby], timeout=60) is standby
    # Taken because it was released, not because it expired: the handover does not wait
    # out a lease duration (how fast it is, is measured by the benchmark).
    assert "released the lease" in leader.output()
    assert "(it had been released): this replica writes now" in standby.output()
    moved = imported(kube, namespace)
    converged(kube, namespace, moved.reference)


def test_a_partitioned_leader_never_writes_after_its_lease_could_be_taken(
    control_plane: ControlPlane,
    kube: Kube,
    namespace: str,
    run_operator: Callable[..., OperatorProcess],
) -> None:
    scene(kube, namespace)
    # A target whose writes are always refused (its ServiceAccount has no rights): the
    # leader retries them with backoff, so it has writes to send while it is cut off.
    create(kube, namespace, workload("Deployment", "locked", {"web": f"{REPO}:latest"}))
    locked = image_trigger("locked", "app:latest", [{"kind": "Deployment", "name": "locked"}])
    locked["spec"]["serviceAccountName"] = "nobody"
    create(kube, namespace, locked)
    # Two identities, so the proxy can cut one replica off and tell their writes apart.
    other = f"{namespace[:50]}-b"
    create_namespace(kube, other)
    lease_rights(kube, namespace, other)
    args = [f"--lease-namespace={namespace}", *TIMING]
    leader = run_operator(args=args)
    assert wait_leader([leader]) is leader
    standby = OperatorProcess(control_plane, kube, other, serve=[namespace], args=args)
    try:
        standby.start()
        first = imported(kube, namespace)
        converged(kube, namespace, first.reference)
        wait_reason(kube, namespace, "Forbidden", name="locked")

        # Cut the leader off for longer than a lease: the standby must take over, and
        # nothing the old leader sent may land after that, not even once the network heals.
        assert leader.token
        control_plane.set_faults(partition_token=leader.token, partition_for_s=10)
        during = imported(kube, namespace)
        assert wait_leader([standby], timeout=10) is standby
        converged(kube, namespace, during.reference)
        deadline = time.monotonic() + 15
        while control_plane.faults()["partition_for_s"] > 0:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        after = imported(kube, namespace)
        converged(kube, namespace, after.reference)
        time.sleep(2)  # room for anything the old leader still had queued

        faults = control_plane.faults()
        # It did try to write while cut off (its renewals, its retries of "locked"), and
        # gave each up before its lease could be taken: none was forwarded after.
        assert faults["partition_held_writes"] >= 1, faults
        assert faults["partition_dropped"] >= faults["partition_held_writes"], faults
        assert faults["partition_late_writes"] == 0, faults
        assert leader.metrics()["imagestream_trigger_leader"] == 0
        assert "lost the lease" in leader.output()
        builds = builds_by_image(kube, namespace, "app-build")
        assert max(builds.values()) == 1, builds
    finally:
        standby.stop()
