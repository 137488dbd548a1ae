"""docs/crc.md's commands, run in their local equivalents (no crc, build or registry here).

The commands are read from the document itself, so editing a flag, a name or a step there
without it still working fails here. The samples it applies (manifests/samples) are
checked to hold together as a real cluster needs them to: every stream they name exists,
the build's output stream too, no port is used twice in a pod, and every image runs the
command and port its upstream Dockerfile says.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import KINDS, Kube, object_path, path_for
from tests.ship.conftest import REPO, Helm, documents

CRC_DOC = REPO / "docs" / "crc.md"
SAMPLES = REPO / "manifests" / "samples"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
INTERNAL_REGISTRY = "image-registry.openshift-image-registry.svc:5000"
DEMO = "demo"  # the namespace the document applies the samples to


# -- reading the document -----------------------------------------------------------------


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


def every(prefix: str) -> list[list[str]]:
    matching = [shlex.split(c) for c in commands() if c.startswith(prefix)]
    assert matching, f"docs/crc.md has no `{prefix} ...` command any more"
    return matching


def the(prefix: str) -> list[str]:
    return every(prefix)[0]


def option(words: list[str], name: str) -> str:
    """The value of ``--name VALUE`` or ``--name=VALUE`` (``-n`` too)."""
    for i, word in enumerate(words):
        if word == name:
            return words[i + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    raise AssertionError(f"`{' '.join(words)}` has no {name}")


def built_image() -> str:
    """The image step 2 builds, as the cluster pulls it: the tag given to the build's output."""
    (new_build,) = every("oc -n imagestream-trigger new-build")
    assert "--binary" in new_build
    assert option(new_build, "--strategy") == "docker"
    stream = option(new_build, "--name")
    namespace = option(new_build, "-n")

    (start,) = every("oc -n imagestream-trigger start-build")
    assert start[4] == stream, "start-build must start the BuildConfig new-build created"
    assert option(start, "-n") == namespace
    # --from-dir would upload .venv and .cache (oc reads no .dockerignore); a repo, its commit.
    assert option(start, "--from-repo") == "."
    assert not any("--from-dir" in c for c in commands())

    (tag,) = every("oc -n imagestream-trigger tag")
    source, target = tag[-2:]
    assert source == f"{stream}:latest", "new-build pushes to <name>:latest"
    assert target.startswith(f"{stream}:")
    assert target != source
    return f"{INTERNAL_REGISTRY}/{namespace}/{target}"


def as_kubectl(control_plane: ControlPlane, words: list[str]) -> Any:
    """Run an `oc` command of the document with the real kubectl (same verbs and flags)."""
    assert words[0] == "oc", words
    return control_plane.kubectl(*words[1:])


# -- reading the samples ------------------------------------------------------------------


def sample_files() -> list[Path]:
    kustomization = yaml.safe_load((SAMPLES / "kustomization.yaml").read_text())
    return [SAMPLES / name for name in kustomization["resources"]]


def samples() -> list[dict[str, Any]]:
    return [d for path in sample_files() for d in documents(path.read_text())]


def named(kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in samples() if o["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    template = workload["spec"]["template"]
    if workload["kind"] == "CronJob":
        template = workload["spec"]["jobTemplate"]["spec"]["template"]
    spec: dict[str, Any] = template["spec"]
    return spec


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = pod_spec(workload)
    return [*spec.get("initContainers", []), *spec["containers"]]


def workloads() -> list[dict[str, Any]]:
    kinds = ("Deployment", "StatefulSet", "DaemonSet", "CronJob")
    return [o for o in samples() if o["kind"] in kinds]


def repository(image: str) -> str:
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':', 1)[0]}"


@dataclass(frozen=True)
class Upstream:
    """What an image's upstream Dockerfile says it runs (the sample comments cite the lines)."""

    repo: str  # where the Dockerfile is, as the sample's comment cites it
    dockerfile: str  # its path there
    serves: bool  # its CMD runs a server (False: s2i's `usage`, which prints and exits)
    port: int  # its EXPOSE


UPSTREAM = {
    # 2.4/Dockerfile.rhel9: EXPOSE 8080, USER 1001, CMD ["/usr/bin/run-httpd"]
    "registry.access.redhat.com/ubi9/httpd-24": Upstream(
        "github.com/sclorg/httpd-container", "2.4/Dockerfile.rhel9", serves=True, port=8080
    ),
    # 3.12-minimal/Dockerfile.rhel9: EXPOSE 8080, USER 1001, CMD $STI_SCRIPTS_PATH/usage
    "registry.access.redhat.com/ubi9/python-312-minimal": Upstream(
        "github.com/sclorg/s2i-python-container",
        "3.12-minimal/Dockerfile.rhel9",
        serves=False,
        port=8080,
    ),
}


def upstream(image: str) -> Upstream:
    found = UPSTREAM.get(repository(image))
    assert found, (
        f"{image}: a new image in the samples; record in UPSTREAM what its upstream "
        "Dockerfile runs (command, port) and cite those lines in the sample's comment"
    )
    return found


def builder_image(build_config: dict[str, Any]) -> str:
    """The DockerImage the builder's ImageStreamTag imports (the image the build runs on)."""
    (options,) = [v for v in build_config["spec"]["strategy"].values() if isinstance(v, dict)]
    stream, tag = stream_tag(options["from"]["name"])
    spec_tags = (named("ImageStream")[stream].get("spec") or {}).get("tags", [])
    (source,) = [t["from"]["name"] for t in spec_tags if t["name"] == tag]
    return str(source)


def stream_tag(reference: str) -> tuple[str, str]:
    stream, _, tag = reference.partition(":")
    return stream, tag or "latest"


def referenced_tags() -> Iterator[tuple[str, str, str, bool]]:
    """(where, stream, tag, must the tag be declared) for every ImageStreamTag the samples use."""
    for obj in samples():
        where = f"{obj['kind']} {obj['metadata']['name']}"
        annotation = (obj["metadata"].get("annotations") or {}).get("image.openshift.io/triggers")
        if annotation:
            for trigger in json.loads(annotation):
                yield (where, *stream_tag(trigger["from"]["name"]), True)
        if obj["kind"] == "ImageTrigger":
            yield (where, *stream_tag(obj["spec"]["source"]["imageStreamTag"]), True)
        if obj["kind"] == "BuildConfig":
            strategy = obj["spec"]["strategy"]
            for options in strategy.values():
                source = options.get("from") if isinstance(options, dict) else None
                if source and source["kind"] == "ImageStreamTag":
                    yield (where, *stream_tag(source["name"]), True)
            output = obj["spec"]["output"]["to"]
            assert output["kind"] == "ImageStreamTag", where
            # A build pushes the output tag into being; its stream must exist beforehand.
            yield (where, *stream_tag(output["name"]), False)


# -- step 2: the image, built in the cluster ----------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception, pattern) per .dockerignore line, as Docker and buildah read them."""
    patterns = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.lstrip("!").strip().strip("/")
        regex = ""
        i = 0
        while i < len(glob):
            if glob.startswith("**", i):
                regex += ".*"
                i += 2
            elif glob[i] == "*":
                regex += "[^/]*"
                i += 1
            elif glob[i] == "?":
                regex += "[^/]"
                i += 1
            elif glob[i] == "[":
                end = glob.index("]", i)
                regex += glob[i : end + 1]
                i = end + 1
            else:
                regex += re.escape(glob[i])
                i += 1
        patterns.append((negated, re.compile(regex)))
    return patterns


def ignored(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for negated, pattern in patterns:
        if any(pattern.fullmatch(p) for p in prefixes):
            verdict = not negated
    return verdict


def copied_sources() -> list[str]:
    """The build-context paths the Dockerfile COPYs (not those copied from another stage)."""
    sources = []
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if not words or words[0] != "COPY" or any(w.startswith("--from") for w in words):
            continue
        sources += [w.rstrip("/") for w in words[1:-1] if not w.startswith("--")]
    return sources


def test_dockerignore_keeps_what_the_dockerfile_copies_and_drops_the_rest() -> None:
    patterns = dockerignore_patterns()
    sources = copied_sources()
    assert {"pyproject.toml", "README.md", "operator", "requirements.lock"} <= set(sources)
    for source in sources:
        files = [source] if (REPO / source).is_file() else []
        files += [
            str(p.relative_to(REPO))
            for p in (REPO / source).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        ]
        assert files, source
        kept_out = [f for f in files if ignored(f, patterns)]
        assert not kept_out, f".dockerignore drops files the Dockerfile copies: {kept_out}"
    for heavy in (".venv", ".cache", ".tools", ".git", "tests", "bench", ".venv/lib/x.py"):
        assert ignored(heavy, patterns), f".dockerignore lets {heavy} into the build context"
    assert ignored("operator/imagestream_trigger/__pycache__/cli.cpython-311.pyc", patterns)


def test_the_image_is_built_in_the_cluster_from_the_clones_commit() -> None:
    assert built_image() == (f"{INTERNAL_REGISTRY}/imagestream-trigger/imagestream-trigger:0.1.0")
    assert not any(c.startswith(("podman ", "docker ")) for c in commands())


# -- step 3: install ----------------------------------------------------------------------


def test_helm_install_command_renders_the_operator_with_the_built_image(helm: Helm) -> None:
    words = the("helm install")
    release, chart = words[2], words[3]
    assert (REPO / chart).is_dir(), chart
    namespace = option(words, "--namespace")
    values = [words[i + 1] for i, w in enumerate(words) if w == "--set"]

    rendered = helm.template(*values, release=release, namespace=namespace)

    assert rendered.returncode == 0, rendered.stderr
    (deployment,) = [d for d in documents(rendered.stdout) if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == built_image()


def test_manifests_path_ends_on_the_built_image(kustomize: Callable[..., str]) -> None:
    assert "oc apply -k manifests/" in commands()
    (deployment,) = [d for d in documents(kustomize()) if d["kind"] == "Deployment"]
    images = {c["name"]: c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}

    words = the("oc -n imagestream-trigger set image")
    assert words[5] == f"deployment/{deployment['metadata']['name']}"
    container, _, image = words[-1].partition("=")
    assert container in images
    # Whatever the kustomization names, the Deployment ends on the tag step 2 built, so
    # its pod does not wait in ImagePullBackOff for one that was never pushed.
    assert image == built_image()


def test_kustomize_of_manifests_is_what_oc_apply_k_applies(kustomize: Callable[..., str]) -> None:
    kinds = {d["kind"] for d in documents(kustomize())}
    assert {
        "CustomResourceDefinition",
        "ClusterRole",
        "Deployment",
        "ServiceMonitor",
        "PrometheusRule",
    } <= kinds


# -- step 1: user-workload monitoring, without overwriting --------------------------------


def test_monitoring_config_is_created_once_and_never_overwritten(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    (create,) = every("oc -n openshift-monitoring create configmap cluster-monitoring-config")
    (show,) = every("oc -n openshift-monitoring get configmap cluster-monitoring-config")
    # The same commands in a namespace of this test instead of openshift-monitoring.
    create = [namespace if w == "openshift-monitoring" else w for w in create]
    show = [namespace if w == "openshift-monitoring" else w for w in show]
    path = path_for("v1", "configmaps", namespace, "cluster-monitoring-config")

    created = as_kubectl(control_plane, create)

    assert created.returncode == 0, created.stderr
    config = yaml.safe_load(kube.get(path)["data"]["config.yaml"])
    assert config == {"enableUserWorkload": True}
    shown = as_kubectl(control_plane, show)
    assert "enableUserWorkload: true" in shown.stdout.splitlines()

    # A cluster that already has its own monitoring config keeps it, word for word.
    theirs = "prometheusK8s:\n  retention: 24h\n"
    kube.patch(path, {"data": {"config.yaml": theirs}}, kind="merge")

    again = as_kubectl(control_plane, create)

    assert again.returncode != 0
    assert "AlreadyExists" in again.stderr or "already exists" in again.stderr
    assert kube.get(path)["data"]["config.yaml"] == theirs


# -- step 4: the samples ------------------------------------------------------------------


def test_samples_apply_as_the_document_says(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    words = the("oc apply -k manifests/samples")
    assert option(words, "-n") == DEMO
    folder = REPO / words[3]
    assert folder == SAMPLES
    kubectl = control_plane.kubectl("apply", "-k", str(folder), "-n", namespace)

    assert kubectl.returncode == 0, kubectl.stderr
    for obj in samples():
        stored = kube.get(
            object_path({**obj, "metadata": {**obj["metadata"], "namespace": namespace}})
        )
        assert stored["metadata"]["name"] == obj["metadata"]["name"]


def test_every_imagestream_the_samples_name_is_a_sample() -> None:
    streams = named("ImageStream")
    declared = {
        name: {t["name"] for t in (s.get("spec") or {}).get("tags", [])}
        for name, s in streams.items()
    }
    found = list(referenced_tags())
    assert any(not must for *_, must in found), "the BuildConfig's output is not checked"
    for where, stream, tag, must_be_declared in found:
        assert stream in streams, f"{where} names ImageStream {stream}, which no sample creates"
        if must_be_declared:
            assert tag in declared[stream], f"{where} follows {stream}:{tag}, not a spec tag"


def test_imagetrigger_targets_are_samples() -> None:
    for trigger in named("ImageTrigger").values():
        for target in trigger["spec"]["targets"]:
            candidates = named(target["kind"])
            if "name" in target:
                assert target["name"] in candidates, target
            else:
                wanted = target["selector"].get("matchLabels", {})
                matching = [
                    n
                    for n, o in candidates.items()
                    if wanted.items() <= (o["metadata"].get("labels") or {}).items()
                ]
                assert matching, f"selector {wanted} matches no sample {target['kind']}"


def test_no_port_is_used_twice_in_a_pod() -> None:
    for workload in workloads():
        ports = [
            (p.get("protocol", "TCP"), p["containerPort"])
            for c in containers(workload)
            for p in c.get("ports", [])
        ]
        assert len(ports) == len(set(ports)), f"{workload['metadata']['name']}: {ports}"


def test_every_container_runs_a_server_on_the_port_it_declares() -> None:
    for workload in workloads():
        for container in containers(workload):
            where = f"{workload['metadata']['name']}/{container['name']}"
            facts = upstream(container["image"])
            declared = {p["containerPort"] for p in container.get("ports", [])}
            command = container.get("command") or container.get("args")
            if command is None:
                # The image's own CMD runs: it must serve, on the port its Dockerfile exposes.
                assert facts.serves, f"{where}: its image's CMD exits; give it a command"
                assert declared == {facts.port}, where
            else:
                assert declared, f"{where}: declare the port its command serves on"
                for port in declared:
                    assert str(port) in command, f"{where}: {command} does not serve {port}"


def test_every_image_of_the_samples_cites_its_upstream_dockerfile() -> None:
    for path in sample_files():
        text = path.read_text()
        images = [
            c["image"]
            for obj in documents(text)
            if obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "CronJob")
            for c in containers(obj)
        ]
        images += [
            tag["from"]["name"]
            for obj in documents(text)
            if obj["kind"] == "ImageStream"
            for tag in (obj.get("spec") or {}).get("tags", [])
            if tag.get("from", {}).get("kind") == "DockerImage"
        ]
        images += [builder_image(obj) for obj in documents(text) if obj["kind"] == "BuildConfig"]
        # The comment as one line of prose, whatever its wrapping.
        comments = " ".join(
            line.lstrip("#").strip() for line in text.splitlines() if line.startswith("#")
        )
        for image in images:
            facts = upstream(image)
            assert facts.repo in comments, f"{path.name}: cite {facts.repo}"
            assert facts.dockerfile in comments, f"{path.name}: cite {facts.dockerfile}"
            assert re.search(r"line \d+ `CMD ", comments) or "`exec " in comments, path.name
            assert re.search(r"line \d+ `EXPOSE \d+`", comments), path.name


# -- what the document says about the samples ---------------------------------------------

# How the document's commands spell the kinds of the samples.
KIND_WORDS = {
    "deployment": "Deployment",
    "deployments": "Deployment",
    "imagetrigger": "ImageTrigger",
    "imagetriggers": "ImageTrigger",
    "itr": "ImageTrigger",
    "is": "ImageStream",
    "imagestream": "ImageStream",
    "bc": "BuildConfig",
    "buildconfig": "BuildConfig",
}


def names_in_demo_commands() -> Iterator[tuple[str, str, str]]:
    """(command, kind, name) for every sample object a `-n demo` command names."""
    for line in commands():
        words = shlex.split(line)
        if words[0] != "oc" or DEMO not in words:
            continue
        args = [w for w in words[1:] if not w.startswith("-") and w != DEMO]
        args = [w for w in args if not (w.startswith("{") or w.startswith("'"))]
        for i, word in enumerate(args):
            kind_word, _, name = word.partition("/")
            if name and kind_word in KIND_WORDS:
                yield line, KIND_WORDS[kind_word], name
            elif word in KIND_WORDS:
                for following in args[i + 1 :]:
                    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*", following):
                        break  # an output template, not a name
                    yield line, KIND_WORDS[word], following
                break
            elif word in ("istag", "import-image"):
                yield line, "ImageStreamTag", args[i + 1]
                break
            elif word == "tag":
                yield line, "ImageStreamTag", args[-1]
                break


def test_every_object_the_document_names_is_a_sample() -> None:
    found = list(names_in_demo_commands())
    kinds = {kind for _, kind, _ in found}
    assert {"Deployment", "ImageTrigger", "ImageStreamTag"} <= kinds
    for line, kind, name in found:
        if kind == "ImageStreamTag":
            stream, tag = stream_tag(name)
            specs = named("ImageStream")
            assert stream in specs, f"`{line}`: no sample ImageStream {stream}"
            tags = {t["name"] for t in (specs[stream].get("spec") or {}).get("tags", [])}
            assert tag in tags, f"`{line}`: ImageStream {stream} has no tag {tag}"
        else:
            assert name in named(kind), f"`{line}`: no sample {kind} {name}"

    # The prose, too: "the Deployment `web`", "its container `web`", ...
    text = CRC_DOC.read_text()
    for kind, name in re.findall(
        r"\b(ImageStream|Deployment|BuildConfig|ImageTrigger)s? `([a-z0-9][a-z0-9-]*)`", text
    ):
        assert name in named(kind), f"docs/crc.md names {kind} {name}, not a sample"
    sample_containers = {c["name"] for w in workloads() for c in containers(w)}
    for name in re.findall(r"\b(?:container|its) `([a-z0-9-]+)`", text):
        assert name in sample_containers, f"docs/crc.md names container {name}, not a sample"


def test_rollout_status_covers_every_sample_deployment() -> None:
    waited = {words[-1].partition("/")[2] for words in every(f"oc -n {DEMO} rollout status")}
    assert waited == set(named("Deployment"))


def test_the_first_import_is_pinned_and_the_move_goes_elsewhere() -> None:
    (app,) = [s for s in named("ImageStream").values() if (s.get("spec") or {}).get("tags")]
    (first,) = [t["from"]["name"] for t in app["spec"]["tags"] if t["name"] == "latest"]
    # A floating tag (latest, or the major version 1) may already be the newest image,
    # and then moving to it moves nothing.
    assert not first.endswith((":latest", ":1")), first
    assert ":" in first.rpartition("/")[2] or "@" in first, first
    (move,) = every(f"oc -n {DEMO} tag")
    assert option(move, "--source") == "docker"
    assert move[-1] == f"{app['metadata']['name']}:latest"
    assert move[-2] != first
    assert repository(move[-2]) == repository(first)


# -- uninstall ----------------------------------------------------------------------------


def test_uninstall_removes_the_last_applied_annotations_and_nothing_else(
    control_plane: ControlPlane, kube: Kube, namespace: str
) -> None:
    (words,) = every("oc annotate")
    assert "--all" in words
    assert "-A" in words
    # The document's command, in this test's namespace instead of every namespace.
    words = [w for w in words if w != "-A"] + ["-n", namespace]
    deployments = path_for("apps/v1", "deployments", namespace)
    for name, written in (
        ("written", {"imagestream-trigger.dev/last-applied": "{}", "team": "a"}),
        ("untouched", {"team": "b"}),
    ):
        kube.create(
            deployments,
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": name, "annotations": written},
                "spec": {
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "c", "image": "example/app:1"}]},
                    },
                },
            },
        )
    before = {d["metadata"]["name"]: d for d in kube.get(deployments)["items"]}

    result = as_kubectl(control_plane, words)

    assert result.returncode == 0, result.stderr
    after = {d["metadata"]["name"]: d for d in kube.get(deployments)["items"]}
    assert after["written"]["metadata"]["annotations"] == {"team": "a"}
    assert after["untouched"]["metadata"]["annotations"] == {"team": "b"}
    for name, deployment in after.items():
        # The pod template is untouched, so no new ReplicaSet: nothing rolls out.
        assert deployment["spec"]["template"] == before[name]["spec"]["template"]
    kinds = words[2].split(",")
    assert {KINDS[k][0] for k in ("Deployment", "StatefulSet", "DaemonSet", "CronJob")} == set(
        kinds
    )


def test_uninstall_stops_the_operator_before_removing_its_annotations() -> None:
    order = [c for c in commands() if c.startswith(("helm uninstall", "oc delete", "oc annotate"))]
    operator_gone = order.index(next(c for c in order if c.startswith("helm uninstall")))
    crd_gone = order.index(next(c for c in order if c.startswith("oc delete crd")))
    annotations_gone = order.index(next(c for c in order if c.startswith("oc annotate")))
    assert operator_gone < crd_gone < annotations_gone


# -- every command accounted for ----------------------------------------------------------


def test_every_command_is_either_checked_or_crc_only() -> None:
    checked = (
        "helm install",
        "oc apply -k manifests/",
        "oc -n imagestream-trigger set image",
        "oc -n imagestream-trigger new-build",
        "oc -n imagestream-trigger start-build",
        "oc -n imagestream-trigger tag",
        "oc apply -k manifests/samples",
        "oc new-project",
        "oc -n openshift-monitoring create configmap",
        "oc -n openshift-monitoring get configmap",
        "oc annotate",
    )
    crc_only = (
        "crc ",
        "eval ",
        "oc login",
        "oc -n openshift-user-workload",
        "oc -n ",
        "oc import-image",
        "oc delete",
        "helm uninstall",
        "curl ",
    )
    unknown = [c for c in commands() if not c.startswith(checked + crc_only)]
    assert not unknown, f"commands in docs/crc.md that no test accounts for: {unknown}"


@pytest.mark.parametrize("page", ["olm.md", "plugin.md"])
def test_the_other_install_paths_are_linked(page: str) -> None:
    assert f"]({page})" in CRC_DOC.read_text()
