"""Two namespace shards: disjoint namespaces, and a source in the other shard's namespace."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from imagestream_trigger.shards import Shard
from tests.controlplane.kube import Kube, create_namespace
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    REPO,
    by_name,
    create,
    image_stream,
    image_trigger,
    images_of,
    imported,
    trigger_annotation,
    workload,
    workload_path,
)

SHARDS = [Shard(0, 2), Shard(1, 2)]


def namespace_of(shard: Shard, stem: str) -> str:
    """A fresh namespace name that hashes to ``shard``."""
    while True:
        name = f"{stem}-{secrets.token_hex(3)}"
        if shard.serves(name):
            return name


def test_two_shards_serve_disjoint_namespaces_and_follow_each_others_streams(
    kube: Kube, namespace: str, run_operator: Callable[..., OperatorProcess]
) -> None:
    # One namespace per shard, each with a stream, an annotated Deployment following it,
    # and an ImageTrigger following the OTHER shard's stream.
    names = [namespace_of(shard, f"shard{shard.index}") for shard in SHARDS]
    for name, other in zip(names, reversed(names), strict=True):
        create_namespace(kube, name)
        image_stream(kube, name, **{"imagestream-trigger.dev/allowed-namespaces": other})
        create(
            kube,
            name,
            workload(
                "Deployment",
                "web",
                {"web": f"{REPO}:latest"},
                annotation=trigger_annotation(by_name("web")),
            ),
        )
        create(kube, name, workload("Deployment", "api", {"api": f"{REPO}:latest"}))
        follow = image_trigger("follow", "app:latest", [{"kind": "Deployment", "name": "api"}])
        follow["spec"]["source"]["namespace"] = other
        create(kube, name, follow)
    replicas = [
        run_operator(serve=names, args=[f"--shard={shard}", "--no-leader-election"])
        for shard in SHARDS
    ]

    moved = [imported(kube, name).reference for name in names]
    for name, own, others in zip(names, moved, reversed(moved), strict=True):
        kube.wait_for(
            workload_path("Deployment", name, "web"), lambda o, r=own: images_of(o)["web"] == r
        )
        kube.wait_for(
            workload_path("Deployment", name, "api"), lambda o, r=others: images_of(o)["api"] == r
        )
    # Each namespace was written by its own shard only.
    for replica, mine, theirs in zip(replicas, names, reversed(names), strict=True):
        # Logged once the write has returned, which can be after the test saw it.
        replica.wait_logged(f"updated Deployment {mine}/web")
        replica.wait_logged(f"updated Deployment {mine}/api")
        log = replica.output()
        assert f"Deployment {theirs}/" not in log
        assert "indexed in" in log
        # Both streams are indexed by both; only the own namespace's workloads.
        assert "imagestreams: 2, workloads: 2," in log, log
