"""`make demo`: a real control plane with sample objects, two simulated imports, narrated.

The cluster keeps running until Ctrl-C so it can be explored with kubectl
(the exact ``export KUBECONFIG=...`` line is printed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from tests.controlplane import binaries, cluster, simulate
from tests.controlplane.kube import Kube, create_namespace, install_crds, path_for

NAMESPACE = "demo"
IMAGE = "image.openshift.io/v1"
BUILD = "build.openshift.io/v1"


def say(text: str) -> None:
    print(f"▸ {text}", flush=True)


def sample_objects() -> list[dict[str, Any]]:
    source = {"kind": "ImageStreamTag", "name": "app:latest"}
    return [
        {
            "apiVersion": IMAGE,
            "kind": "ImageStream",
            "metadata": {"name": "app", "namespace": NAMESPACE},
            "spec": {
                "tags": [
                    {
                        "name": "latest",
                        "from": {"kind": "DockerImage", "name": "quay.io/acme/app:latest"},
                        "referencePolicy": {"type": "Source"},
                    }
                ]
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": NAMESPACE,
                "annotations": {
                    "image.openshift.io/triggers": (
                        '[{"from":{"kind":"ImageStreamTag","name":"app:latest"},'
                        '"fieldPath":"spec.template.spec.containers[?(@.name==\\"web\\")].image"}]'
                    )
                },
            },
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {"name": "web", "image": "quay.io/acme/app:latest"},
                            {"name": "proxy", "image": "quay.io/acme/proxy:1.0"},
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": BUILD,
            "kind": "BuildConfig",
            "metadata": {"name": "app-build", "namespace": NAMESPACE},
            "spec": {
                "triggers": [{"type": "ImageChange", "imageChange": {"from": source}}],
                "source": {"type": "Git", "git": {"uri": "https://example.invalid/app.git"}},
                "strategy": {"type": "Docker", "dockerStrategy": {"from": source}},
                "output": {"to": {"kind": "ImageStreamTag", "name": "app-built:latest"}},
            },
        },
    ]


def run(args: argparse.Namespace) -> int:
    say(
        f"control plane: Kubernetes {binaries.kubernetes_version()} (kube-apiserver + etcd) "
        "with OpenShift's image and build APIs emulated"
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
        create_namespace(kube, NAMESPACE)
        for obj in sample_objects():
            kube.apply(obj)
            say(f"created {obj['kind']} {NAMESPACE}/{obj['metadata']['name']}")

        for n in (1, 2):
            result = simulate.import_image(kube, NAMESPACE, "app", "latest")
            say(f"import {n}: app:latest now points at {result.reference}")
        stream = kube.get(path_for(IMAGE, "imagestreams", NAMESPACE, "app"))
        history = stream["status"]["tags"][0]["items"]
        say(f"ImageStream app:latest history has {len(history)} images, newest first:")
        for item in history:
            print(f"    {item['created']}  {item['image']}", flush=True)
        say(
            "the operator is not part of this build yet: the Deployment keeps its image "
            "until it lands"
        )

        print(f"export KUBECONFIG={plane.kubeconfig.resolve()}", flush=True)
        kubectl = binaries.ensure(("kubectl",))["kubectl"]
        print(f"try: {kubectl} get imagestreams -A    (Ctrl-C to stop)", flush=True)
        if not args.no_wait:
            cluster.wait_for_ctrl_c()
    say("stopped; nothing left running")
    return 0
