"""The local control plane from the command line.

python -m tests.controlplane build            build or reuse kube-apiserver, etcd, kubectl
python -m tests.controlplane build --all      ... and helm, the workload binaries, kube-score
python -m tests.controlplane up               start one, install the CRDs, wait for Ctrl-C
python -m tests.controlplane up --workloads   ... with controllers, scheduler, kwok's nodes
python -m tests.controlplane import-image ... move an ImageStream tag to a new image ($KUBECONFIG)
python -m tests.controlplane demo             the narrated demo behind `make demo`
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from tests.controlplane import binaries, cluster, simulate
from tests.controlplane import demo as demo_module
from tests.controlplane.kube import Kube, install_crds


def kube_from_kubeconfig(path: str | None) -> Kube:
    """A client from a kubeconfig this harness wrote (token + CA file)."""
    config_path = path or os.environ.get("KUBECONFIG")
    if not config_path:
        raise SystemExit("set KUBECONFIG (printed by `make demo` or `... up`) or pass --kubeconfig")
    config = yaml.safe_load(Path(config_path).read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster_cfg = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    user = next(u for u in config["users"] if u["name"] == context["context"]["user"])
    return Kube(
        cluster_cfg["cluster"]["server"],
        user["user"]["token"],
        cluster_cfg["cluster"]["certificate-authority"],
    )


def cmd_build(args: argparse.Namespace) -> int:
    found = binaries.ensure(binaries.ALL_BINARIES if args.all else binaries.SERVER_BINARIES)
    for name, path in found.items():
        print(f"{name}: {path}")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir) if args.workdir else None
    with cluster.ControlPlane(workdir=workdir, workloads=args.workloads) as plane:
        kube = Kube(plane.url, plane.admin_token, plane.ca_file)
        install_crds(
            kube,
            sorted(cluster.CRD_DIR.glob("*.yaml"))
            + sorted(cluster.OPERATOR_CRD_DIR.glob("*.yaml")),
        )
        print(f"control plane ready; logs in {plane.dir}", flush=True)
        print(f"export KUBECONFIG={plane.kubeconfig.resolve()}", flush=True)
        cluster.wait_for_ctrl_c()
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    kube = kube_from_kubeconfig(args.kubeconfig)
    stream, sep, tag = args.stream_tag.partition(":")
    if not sep:
        raise SystemExit(f"{args.stream_tag!r}: expected <imagestream>:<tag>")
    result = simulate.import_image(
        kube, args.namespace, stream, tag, image=args.digest, repository=args.repository
    )
    verb = "imported" if result.changed else "re-imported (digest unchanged)"
    print(f"{args.namespace}/{stream}:{tag} {verb}: {result.reference}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.controlplane",
        description="A real kube-apiserver + etcd with OpenShift's image and build APIs emulated.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", help="build (or reuse) the control-plane binaries")
    build.add_argument(
        "--all",
        action="store_true",
        help=(
            "also build helm and kube-score (the tests of the chart and manifests need them)"
            " and kube-controller-manager, kube-scheduler and kwok (tests/rollouts/ needs them)"
        ),
    )
    build.set_defaults(run=cmd_build)

    up = sub.add_parser("up", help="start a control plane and keep it until Ctrl-C")
    up.add_argument("--workdir", help="folder for data, certs and logs (default: a temp dir)")
    up.add_argument(
        "--workloads",
        action="store_true",
        help="also run kube-controller-manager, kube-scheduler and kwok's fake nodes, "
        "so that Deployments, StatefulSets and DaemonSets roll out",
    )
    up.set_defaults(run=cmd_up)

    imp = sub.add_parser(
        "import-image",
        help="simulate `oc import-image` / a registry push: move a tag to a new digest",
    )
    imp.add_argument("stream_tag", metavar="STREAM:TAG")
    imp.add_argument("-n", "--namespace", default="default")
    imp.add_argument("--digest", help="sha256:... to import (default: a new random image)")
    imp.add_argument(
        "--repository", help="repository part of the new reference (default: from the spec tag)"
    )
    imp.add_argument("--kubeconfig", help="default: $KUBECONFIG")
    imp.set_defaults(run=cmd_import)

    demo = sub.add_parser(
        "demo", help="start everything, narrate two imports, a promotion and a revert"
    )
    demo.add_argument("--workdir", help="folder for data, certs and logs (default: a temp dir)")
    demo.add_argument("--no-wait", action="store_true", help="exit after the narration")
    demo.set_defaults(run=demo_module.run)

    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except (binaries.BuildError, cluster.StartError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
