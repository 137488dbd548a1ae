"""docs/crc.md's commands, run in their local equivalents (no crc, podman or registry here).

The Helm and kustomize commands are taken from the document itself, so editing a flag
there without it still working fails here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube, path_for
from tests.ship.conftest import REPO, Helm, documents

CRC_DOC = REPO / "docs" / "crc.md"


def commands() -> list[str]:
    """Every shell command in the document's sh blocks, continuation lines joined."""
    found: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", CRC_DOC.read_text(), re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        heredoc = ""
        for line in joined.splitlines():
            if heredoc:  # a here-document's body is data, not commands
                heredoc = "" if line.strip() == heredoc else heredoc
                continue
            line = line.split("    #", 1)[0].strip()
            if line and not line.startswith("#"):
                found.append(line)
                marker = re.search(r"<<\s*'?(\w+)'?", line)
                heredoc = marker.group(1) if marker else ""
    return found


def the(prefix: str) -> list[str]:
    matching = [c for c in commands() if c.startswith(prefix)]
    assert matching, f"docs/crc.md has no `{prefix} ...` command any more"
    return shlex.split(matching[0])


def test_helm_install_command_renders_the_operator_with_the_pushed_image(helm: Helm) -> None:
    words = the("helm install")
    release, chart = words[2], words[3]
    assert (REPO / chart).is_dir(), chart
    namespace = words[words.index("--namespace") + 1]
    values = [words[i + 1] for i, w in enumerate(words) if w == "--set"]

    rendered = helm.template(*values, release=release, namespace=namespace)

    assert rendered.returncode == 0, rendered.stderr
    (deployment,) = [d for d in documents(rendered.stdout) if d["kind"] == "Deployment"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    pushed = next(w for w in the("podman push") if "/" in w)
    # The image the Deployment pulls is the one pushed, seen from inside the cluster.
    assert image.rsplit("/", 2)[-2:] == pushed.rsplit("/", 2)[-2:]
    assert image.startswith("image-registry.openshift-image-registry.svc:5000/")


def test_set_image_command_names_the_operator_container(kustomize: Callable[..., str]) -> None:
    words = the("oc -n imagestream-trigger set image")
    container, _, image = words[-1].partition("=")
    rendered = kustomize()
    (deployment,) = [d for d in documents(rendered) if d["kind"] == "Deployment"]
    names = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert container in names
    assert image.endswith(":0.1.0")


def test_samples_apply_as_the_document_says(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    words = the("oc apply -k manifests/samples")
    folder = REPO / words[3]
    assert folder.is_dir()
    kubectl = control_plane.kubectl("apply", "-k", str(folder), "-n", namespace)

    assert kubectl.returncode == 0, kubectl.stderr
    for kind, plural, name in (
        ("image.openshift.io/v1", "imagestreams", "app"),
        ("apps/v1", "deployments", "web"),
        ("apps/v1", "deployments", "worker"),
        ("build.openshift.io/v1", "buildconfigs", "app-build"),
        ("imagestream-trigger.dev/v1alpha1", "imagetriggers", "app"),
    ):
        assert kube.get(path_for(kind, plural, namespace, name))["metadata"]["name"] == name


def test_kustomize_of_manifests_is_what_oc_apply_k_applies(kustomize: Callable[..., str]) -> None:
    assert "oc apply -k manifests/" in commands()
    kinds = {d["kind"] for d in documents(kustomize())}
    assert {
        "CustomResourceDefinition",
        "ClusterRole",
        "Deployment",
        "ServiceMonitor",
        "PrometheusRule",
    } <= kinds


def test_every_command_is_either_checked_or_crc_only() -> None:
    checked = (
        "helm install",
        "oc apply -k manifests/",
        "oc -n imagestream-trigger set image",
        "oc apply -k manifests/samples",
        "oc new-project",
    )
    crc_only = (
        "crc ",
        "eval ",
        "oc login",
        "oc apply -f -",
        "oc -n openshift-user-workload",
        "oc patch configs.imageregistry",
        "oc registry login",
        "podman ",
        "oc -n ",
        "oc import-image",
        "oc delete",
        "helm uninstall",
        "curl ",
    )
    unknown = [c for c in commands() if not c.startswith(checked + crc_only)]
    assert not unknown, f"commands in docs/crc.md that no test accounts for: {unknown}"
