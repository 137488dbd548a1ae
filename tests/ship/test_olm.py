"""The OLM bundle: rendered from manifests/ (never edited by hand), installing exactly what
manifests/ installs, and accepted by the real kube-apiserver under OLM's own CRDs.

No OLM runs here: the ClusterServiceVersion, CatalogSource, Subscription and OperatorGroup
CRDs are vendored from operator-framework/api (tests/controlplane/crds/olm), so the API
server checks every object against the schemas OLM installs, with strict field validation.
"""

from __future__ import annotations

import base64
import copy
import difflib
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from imagestream_trigger.settings import from_sources
from scripts import bundle as generator
from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube, create_namespace, path_for
from tests.ship.conftest import NAMESPACE, REPO, documents

BUNDLE = REPO / "bundle"
MANIFESTS = REPO / "manifests"
DOC = REPO / "docs" / "olm.md"
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
PACKAGE, VERSION = PROJECT["name"], PROJECT["version"]
CSV_FILE = BUNDLE / "manifests" / f"{PACKAGE}.clusterserviceversion.yaml"
BUNDLE_KEYS = "operators.operatorframework.io.bundle."
INSTALL_MODES = {"OwnNamespace", "SingleNamespace", "MultiNamespace", "AllNamespaces"}


def load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    return doc


def csv() -> dict[str, Any]:
    return load(CSV_FILE)


def manifest(relative: str) -> dict[str, Any]:
    return load(MANIFESTS / relative)


def dumped(value: Any) -> list[str]:
    return yaml.safe_dump(value, sort_keys=True).splitlines()


def assert_same(what: str, expected: Any, actual: Any) -> None:
    diff = "\n".join(difflib.unified_diff(dumped(expected), dumped(actual), "manifests/", "CSV"))
    assert expected == actual, f"{what} differs between manifests/ and the CSV:\n{diff}"


# -- drift: the committed bundle is what `make bundle` renders -------------------------


def test_committed_bundle_is_what_make_bundle_renders() -> None:
    rendered, committed = generator.render(REPO), generator.existing(REPO)
    problems = [f"missing: {name}" for name in sorted(set(rendered) - set(committed))]
    problems += [
        f"not generated any more: {name}" for name in sorted(set(committed) - set(rendered))
    ]
    for name in sorted(set(rendered) & set(committed)):
        if rendered[name] != committed[name]:
            diff = difflib.unified_diff(
                committed[name].splitlines(),
                rendered[name].splitlines(),
                f"{name} (committed)",
                f"{name} (make bundle)",
                lineterm="",
                n=1,
            )
            problems.append("\n".join(list(diff)[:40]))
    assert not problems, (
        "the OLM bundle is out of date with manifests/ or packaging/olm/: run `make bundle` "
        "and commit the result.\n" + "\n".join(problems)
    )


def test_bundle_command_writes_the_files_and_removes_stale_ones(tmp_path: Path) -> None:
    stale = tmp_path / "bundle" / "manifests" / "old_v1_configmap.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("kind: ConfigMap\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bundle.py"), "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "removed bundle/manifests/old_v1_configmap.yaml" in result.stdout
    assert generator.existing(tmp_path) == generator.render(REPO)
    again = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bundle.py"), "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.stdout.splitlines()[0] == "bundle up to date"


# -- the CSV installs what manifests/ installs ----------------------------------------


@pytest.fixture(scope="module")
def installed(kustomize: Callable[..., str]) -> list[dict[str, Any]]:
    """What `oc apply -k manifests/` creates: the real kustomize's render."""
    return documents(kustomize())


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def test_csv_deployment_is_the_deployment_of_manifests(installed: list[dict[str, Any]]) -> None:
    shipped = one(installed, "Deployment")
    (entry,) = csv()["spec"]["install"]["spec"]["deployments"]
    assert entry["name"] == shipped["metadata"]["name"]
    assert entry["label"] == shipped["metadata"]["labels"]
    expected, actual = copy.deepcopy(shipped["spec"]), copy.deepcopy(entry["spec"])
    (want,) = expected["template"]["spec"]["containers"]
    (got,) = actual["template"]["spec"]["containers"]
    # The two documented differences: the image is this release's (kustomize's pinned tag,
    # or the version where manifests/ leaves the tag open)...
    assert got["image"] == generator.tagged(want["image"], VERSION)
    assert got["image"].endswith(f":{VERSION}"), "the CSV must install the operator of its version"
    # ...and the namespaces to serve are the ones OLM targets.
    env = {e["name"]: e for e in got["env"]}
    assert env["IMAGESTREAM_TRIGGER_NAMESPACES"] == {
        "name": "IMAGESTREAM_TRIGGER_NAMESPACES",
        "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['olm.targetNamespaces']"}},
    }
    for container in (want, got):
        container.pop("image")
        (namespaces,) = [
            e for e in container["env"] if e["name"] == "IMAGESTREAM_TRIGGER_NAMESPACES"
        ]
        namespaces.pop("value", None)
        namespaces.pop("valueFrom", None)
    assert_same("the Deployment spec (image and namespaces aside)", expected, actual)


def test_csv_service_account_and_rules_are_those_of_manifests(
    installed: list[dict[str, Any]],
) -> None:
    account = one(installed, "ServiceAccount")["metadata"]["name"]
    strategy = csv()["spec"]["install"]["spec"]
    (deployment,) = strategy["deployments"]
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account
    roles = {d["metadata"]["name"]: d for d in installed if d["kind"] == "ClusterRole"}
    expected: list[Any] = []
    for binding in (d for d in installed if d["kind"] == "ClusterRoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]
        expected += roles[binding["roleRef"]["name"]]["rules"]
    (permission,) = strategy["clusterPermissions"]
    assert permission["serviceAccountName"] == account
    assert_same("the ClusterRole rules", expected, permission["rules"])
    # The Lease's Role (in the operator's namespace) becomes the namespaced permissions,
    # which OLM grants in the install namespace.
    namespaced = {d["metadata"]["name"]: d for d in installed if d["kind"] == "Role"}
    expected = []
    for binding in (d for d in installed if d["kind"] == "RoleBinding"):
        assert binding["metadata"]["namespace"] == NAMESPACE
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]
        expected += namespaced[binding["roleRef"]["name"]]["rules"]
    assert expected, "manifests/ grants the Lease through a Role"
    (permission,) = strategy["permissions"]
    assert permission["serviceAccountName"] == account
    assert_same("the Role rules", expected, permission["rules"])


def test_crd_and_other_objects_ship_as_in_manifests(installed: list[dict[str, Any]]) -> None:
    crd = BUNDLE / "manifests" / "imagestream-trigger.dev_imagetriggers.yaml"
    assert crd.read_bytes() == (MANIFESTS / "crd" / "imagetriggers.yaml").read_bytes()
    # The Namespace, ServiceAccount, Deployment and the RBAC bound to the operator are
    # OLM's to create from the CSV; every other object of manifests/ ships as it is, but
    # without a namespace: OLM creates it in whichever namespace the operator goes to.
    bound = {d["roleRef"]["name"] for d in installed if d["kind"].endswith("RoleBinding")}
    from_csv = {"Namespace", "ServiceAccount", "Deployment", "ClusterRoleBinding", "RoleBinding"}
    others = [
        d
        for d in installed
        if d["kind"] not in from_csv | {"CustomResourceDefinition"} | set(generator.LEFT_OUT)
        and not (d["kind"] in ("ClusterRole", "Role") and d["metadata"]["name"] in bound)
    ]
    assert {"Service", "ServiceMonitor", "PrometheusRule"} <= {d["kind"] for d in others}
    for doc in others:
        expected = copy.deepcopy(doc)
        assert expected["metadata"].pop("namespace", NAMESPACE) == NAMESPACE
        shipped = BUNDLE / "manifests" / generator.file_name(expected)
        assert shipped.is_file(), f"{doc['kind']} {doc['metadata']['name']} is not in the bundle"
        assert_same(f"{doc['kind']} {doc['metadata']['name']}", expected, load(shipped))
    kinds = [load(p)["kind"] for p in (BUNDLE / "manifests").glob("*.yaml")]
    assert sorted(kinds) == sorted(
        ["ClusterServiceVersion", "CustomResourceDefinition", *(d["kind"] for d in others)]
    )


def test_what_the_bundle_leaves_out_is_named_in_the_docs(repo_copy: Path) -> None:
    # A NetworkPolicy in manifests/ (as a hardened install has) stays out of the bundle,
    # and docs/olm.md says how to apply it.
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny-all", "namespace": NAMESPACE},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    (repo_copy / "manifests" / "np.yaml").write_text(yaml.safe_dump(policy))
    edit_yaml(
        repo_copy / "manifests/kustomization.yaml", lambda d: d["resources"].append("np.yaml")
    )
    files = generator.render(repo_copy)
    assert not [name for name in files if "networkpolicy" in name]
    left = generator.sort_manifests(generator.load_manifests(repo_copy)).left_out
    assert ("NetworkPolicy", "deny-all") in {(m.kind, m.name) for m in left}
    for kind in generator.LEFT_OUT:
        assert kind in DOC.read_text()


def test_kustomize_images_reach_the_csv_as_kustomize_applies_them(
    repo_copy: Path, kustomize: Callable[..., str]
) -> None:
    deployment = one(documents(kustomize()), "Deployment")
    name = generator.repository(deployment["spec"]["template"]["spec"]["containers"][0]["image"])
    edit_yaml(
        repo_copy / "manifests/kustomization.yaml",
        lambda d: d.update(images=[{"name": name, "newName": "quay.io/acme/ist", "newTag": "9.9"}]),
    )
    kustomized = one(documents(kustomize(repo_copy / "manifests")), "Deployment")
    files = generator.render(repo_copy)
    rendered = yaml.safe_load(files[f"bundle/manifests/{PACKAGE}.clusterserviceversion.yaml"])
    (entry,) = rendered["spec"]["install"]["spec"]["deployments"]
    image = entry["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == kustomized["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "quay.io/acme/ist:9.9"
    assert rendered["metadata"]["annotations"]["containerImage"] == image


def test_csv_owns_the_crd_and_describes_every_spec_field() -> None:
    crd = manifest("crd/imagetriggers.yaml")
    (owned,) = csv()["spec"]["customresourcedefinitions"]["owned"]
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    assert (owned["name"], owned["version"], owned["kind"]) == (
        crd["metadata"]["name"],
        version["name"],
        crd["spec"]["names"]["kind"],
    )
    schema = version["schema"]["openAPIV3Schema"]["properties"]
    spec_paths = {d["path"] for d in owned["specDescriptors"]}
    assert set(schema["spec"]["properties"]) <= spec_paths
    for descriptor in owned["specDescriptors"] + owned["statusDescriptors"]:
        assert descriptor["displayName"], descriptor
    assert "urn:alm:descriptor:com.tectonic.ui:booleanSwitch" in next(
        d for d in owned["specDescriptors"] if d["path"] == "suspend"
    ).get("x-descriptors", [])
    for descriptor in owned["statusDescriptors"]:
        node = schema["status"]
        for part in descriptor["path"].split("."):
            node = node["properties"][part]


def test_alm_examples_are_the_samples_of_the_owned_kind() -> None:
    examples = json.loads(csv()["metadata"]["annotations"]["alm-examples"])
    assert examples == [manifest("samples/imagetrigger.yaml")]


def test_csv_metadata() -> None:
    doc = csv()
    spec, annotations = doc["spec"], doc["metadata"]["annotations"]
    assert doc["metadata"]["name"] == f"{PACKAGE}.v{VERSION}"
    assert spec["version"] == VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", spec["version"])
    # The same floor as the Helm chart's kubeVersion.
    chart = load(REPO / "helm" / "imagestream-trigger" / "Chart.yaml")
    assert chart["kubeVersion"] == f">={spec['minKubeVersion']}-0"
    assert [m["type"] for m in spec["installModes"]].count("AllNamespaces") == 1
    assert {m["type"] for m in spec["installModes"]} == INSTALL_MODES
    assert all(m["supported"] is True for m in spec["installModes"])
    (icon,) = spec["icon"]
    assert icon["mediatype"] == "image/svg+xml"
    svg = base64.b64decode(icon["base64data"])
    assert svg == (REPO / "packaging" / "olm" / "icon.svg").read_bytes()
    assert svg.startswith(b"<svg")
    assert len(svg) < 4096
    for field in ("displayName", "description", "keywords", "maintainers", "links", "provider"):
        assert spec[field], field
    (deployment,) = spec["install"]["spec"]["deployments"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert annotations["containerImage"] == image
    assert {"name": PACKAGE, "image": image} in spec["relatedImages"]
    assert annotations["operatorframework.io/suggested-namespace"] == NAMESPACE


@pytest.mark.parametrize(
    ("olm_writes", "served"),
    [("", ()), ("team-a", ("team-a",)), ("team-a,team-b", ("team-a", "team-b"))],
    ids=["AllNamespaces", "Own-or-SingleNamespace", "MultiNamespace"],
)
def test_operator_reads_olm_target_namespaces(olm_writes: str, served: tuple[str, ...]) -> None:
    # What the CSV's downward-API env var holds in each install mode.
    settings = from_sources({}, {"IMAGESTREAM_TRIGGER_NAMESPACES": olm_writes})
    assert settings.namespaces == served
    assert settings.clusterwide is (not served)


# -- metadata/annotations.yaml, the Dockerfiles and the catalog -------------------------


def annotations() -> dict[str, str]:
    doc = load(BUNDLE / "metadata" / "annotations.yaml")
    assert list(doc) == ["annotations"]
    found: dict[str, str] = doc["annotations"]
    return found


def test_annotations_name_the_format_folders_package_and_channels() -> None:
    found = annotations()
    assert set(found) == {
        f"{BUNDLE_KEYS}{key}"
        for key in (
            "mediatype.v1",
            "manifests.v1",
            "metadata.v1",
            "package.v1",
            "channels.v1",
            "channel.default.v1",
        )
    }
    assert found[f"{BUNDLE_KEYS}mediatype.v1"] == "registry+v1"
    for key in ("manifests", "metadata"):
        folder = found[f"{BUNDLE_KEYS}{key}.v1"]
        assert folder == f"{key}/"
        assert (BUNDLE / folder).is_dir()
    assert found[f"{BUNDLE_KEYS}package.v1"] == PACKAGE
    channels = found[f"{BUNDLE_KEYS}channels.v1"].split(",")
    assert found[f"{BUNDLE_KEYS}channel.default.v1"] in channels
    assert csv()["metadata"]["name"].startswith(PACKAGE + ".v")


def test_bundle_dockerfile_labels_repeat_the_annotations() -> None:
    text = (REPO / "bundle.Dockerfile").read_text()
    labels = dict(re.findall(r"^LABEL (\S+)=(\S+)$", text, re.M))
    assert labels == annotations()
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["scratch"]
    assert re.findall(r"^COPY (\S+) (\S+)$", text, re.M) == [
        ("bundle/manifests", "/manifests/"),
        ("bundle/metadata", "/metadata/"),
    ]


def catalog() -> list[dict[str, Any]]:
    return documents((REPO / "catalog" / PACKAGE / "package.yaml").read_text())


def test_catalog_package_and_channel_list_the_bundle() -> None:
    package, channel = catalog()
    found = annotations()
    assert package == {
        "schema": "olm.package",
        "name": PACKAGE,
        "defaultChannel": found[f"{BUNDLE_KEYS}channel.default.v1"],
    }
    assert channel["schema"] == "olm.channel"
    assert channel["package"] == PACKAGE
    assert channel["name"] in found[f"{BUNDLE_KEYS}channels.v1"].split(",")
    assert {"name": csv()["metadata"]["name"]} in channel["entries"]


@pytest.mark.parametrize("dockerfile", ["bundle.Dockerfile", "catalog.Dockerfile"])
def test_dockerfiles_pass_hadolint(dockerfile: str) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(REPO / dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the generator refuses what a bundle cannot express --------------------------------


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    for folder in ("manifests", "packaging/olm"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    return tmp_path


def edit_yaml(path: Path, change: Any) -> None:
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_generator_renders_a_copy_of_the_repository_alike(repo_copy: Path) -> None:
    assert generator.render(repo_copy) == generator.render(REPO)


def drop_namespaces_env(deployment: dict[str, Any]) -> None:
    (operator,) = deployment["spec"]["template"]["spec"]["containers"]
    operator["env"] = [e for e in operator["env"] if e["name"] != "IMAGESTREAM_TRIGGER_NAMESPACES"]


BROKEN: list[tuple[str, str, Any, str]] = [
    (
        "kustomize-patches",
        "manifests/kustomization.yaml",
        lambda d: d.update(namePrefix="x-"),
        "uses namePrefix: scripts/bundle.py reads `resources` and `images` only",
    ),
    (
        "unsupported-kind",
        "manifests/namespace.yaml",
        lambda d: d.update(kind="LimitRange"),
        "a registry+v1 bundle cannot carry a LimitRange",
    ),
    (
        "binding-to-someone-else",
        "manifests/rbac/cluster_role_binding.yaml",
        lambda d: d["subjects"].append({"kind": "User", "name": "alice"}),
        "not the operator's ServiceAccount",
    ),
    (
        "binding-to-a-built-in-role",
        "manifests/rbac/cluster_role_binding.yaml",
        lambda d: d["roleRef"].update(name="view"),
        "refers to ClusterRole view; the CSV takes its rules only from a ClusterRole that",
    ),
    (
        "no-namespaces-env",
        "manifests/deployment.yaml",
        drop_namespaces_env,
        "no container sets IMAGESTREAM_TRIGGER_NAMESPACES",
    ),
    (
        "lease-role-elsewhere",
        "manifests/rbac/leader_election_role.yaml",
        lambda d: d["metadata"].update(namespace="kube-system"),
        "(Role imagestream-trigger-leader-election): OLM creates RBAC only in the install",
    ),
    (
        "lease-role-binding-elsewhere",
        "manifests/rbac/leader_election_role_binding.yaml",
        lambda d: d["metadata"].update(namespace="kube-system"),
        "(RoleBinding imagestream-trigger-leader-election): OLM creates RBAC only in the",
    ),
    (
        "lease-role-unbound",
        "manifests/rbac/leader_election_role_binding.yaml",
        lambda d: d["roleRef"].update(name="elsewhere"),
        "refers to Role elsewhere; the CSV takes its rules only from a Role that",
    ),
    (
        "spec-names-the-namespace",
        "manifests/servicemonitor.yaml",
        lambda d: d["spec"].update(namespaceSelector={"matchNames": [NAMESPACE]}),
        "spec.namespaceSelector.matchNames names the namespace imagestream-trigger",
    ),
    (
        "descriptor-for-a-missing-field",
        "packaging/olm/csv.yaml",
        lambda d: d["spec"]["customresourcedefinitions"]["owned"][0]["specDescriptors"].append(
            {"path": "source.tag"}
        ),
        "no spec field source.tag in the CRD",
    ),
    (
        "base-writes-the-install",
        "packaging/olm/csv.yaml",
        lambda d: d["spec"].update(install={}),
        "sets install, which scripts/bundle.py writes",
    ),
    (
        "install-mode-missing",
        "packaging/olm/csv.yaml",
        lambda d: d["spec"]["installModes"].pop(),
        "installModes must list each of",
    ),
]


@pytest.mark.parametrize(
    ("file", "change", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_generator_refuses_what_the_bundle_cannot_express(
    repo_copy: Path, file: str, change: Any, message: str
) -> None:
    edit_yaml(repo_copy / file, change)
    with pytest.raises(generator.BundleError, match=re.escape(message)):
        generator.render(repo_copy)


def test_all_namespaces_only_needs_no_namespaces_env(repo_copy: Path) -> None:
    def only_all(doc: dict[str, Any]) -> None:
        for mode in doc["spec"]["installModes"]:
            mode["supported"] = mode["type"] == "AllNamespaces"

    edit_yaml(repo_copy / "packaging/olm/csv.yaml", only_all)
    edit_yaml(repo_copy / "manifests/deployment.yaml", drop_namespaces_env)
    files = generator.render(repo_copy)
    rendered = yaml.safe_load(files[f"bundle/manifests/{PACKAGE}.clusterserviceversion.yaml"])
    (deployment,) = rendered["spec"]["install"]["spec"]["deployments"]
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "IMAGESTREAM_TRIGGER_NAMESPACES" not in {e["name"] for e in env}


def test_a_new_spec_field_gets_a_descriptor_without_editing_the_base(repo_copy: Path) -> None:
    def add_field(crd: dict[str, Any]) -> None:
        spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        spec["properties"]["serviceAccountName"] = {"type": "string", "description": "Who writes."}

    edit_yaml(repo_copy / "manifests/crd/imagetriggers.yaml", add_field)
    files = generator.render(repo_copy)
    rendered = yaml.safe_load(files[f"bundle/manifests/{PACKAGE}.clusterserviceversion.yaml"])
    (owned,) = rendered["spec"]["customresourcedefinitions"]["owned"]
    assert {
        "path": "serviceAccountName",
        "displayName": "Service account name",
        "description": "Who writes.",
        "x-descriptors": ["urn:alm:descriptor:io.kubernetes:ServiceAccount"],
    } in owned["specDescriptors"]


# -- the real kube-apiserver, with OLM's CRDs --------------------------------------------


def server_dry_run(plane: ControlPlane, *args: str, text: str | None = None) -> Any:
    return plane.kubectl("apply", "--dry-run=server", "--validate=strict", *args, input=text)


def test_kube_apiserver_accepts_the_bundle_with_server_dry_run(
    control_plane: ControlPlane,
    olm_crds: list[str],
    monitoring_crds: list[str],
    operator_namespace: str,
) -> None:
    assert "clusterserviceversions.operators.coreos.com" in olm_crds
    result = server_dry_run(
        control_plane, "-n", operator_namespace, "-f", str(BUNDLE / "manifests")
    )
    assert result.returncode == 0, f"kube-apiserver refused the bundle:\n{result.stderr}"
    for expected in (
        f"clusterserviceversion.operators.coreos.com/{PACKAGE}.v{VERSION}",
        "customresourcedefinition.apiextensions.k8s.io/imagetriggers.imagestream-trigger.dev",
        "service/imagestream-trigger-metrics",
        "servicemonitor.monitoring.coreos.com/imagestream-trigger",
        "prometheusrule.monitoring.coreos.com/imagestream-trigger",
    ):
        assert f"{expected} " in result.stdout, result.stdout
    assert "(server dry run)" in result.stdout
    # Warnings are how the API server reports fields it would drop: there must be none.
    assert "unknown field" not in result.stderr, result.stderr


def broken_csv(change: Any) -> str:
    doc = csv()
    change(doc)
    return json.dumps(doc)


def first_deployment(doc: dict[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = doc["spec"]["install"]["spec"]["deployments"][0]
    return entry


BROKEN_CSV: list[tuple[str, Any, str]] = [
    ("no-display-name", lambda d: d["spec"].pop("displayName"), "spec.displayName: Required value"),
    (
        "replicas-as-text",
        lambda d: first_deployment(d)["spec"].update(replicas="one"),
        "spec.install.spec.deployments[0].spec.replicas",
    ),
    (
        "install-mode-not-boolean",
        lambda d: d["spec"]["installModes"][0].update(supported="yes"),
        "spec.installModes[0].supported",
    ),
    (
        "icon-without-mediatype",
        lambda d: d["spec"]["icon"][0].pop("mediatype"),
        "spec.icon[0].mediatype: Required value",
    ),
    (
        "misspelled-field",
        lambda d: d["spec"]["install"]["spec"].update(
            clusterPermisions=d["spec"]["install"]["spec"]["clusterPermissions"]
        ),
        'unknown field "spec.install.spec.clusterPermisions"',
    ),
    (
        "rule-without-verbs",
        lambda d: d["spec"]["install"]["spec"]["clusterPermissions"][0]["rules"][0].pop("verbs"),
        "spec.install.spec.clusterPermissions[0].rules[0].verbs: Required value",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"), [b[1:] for b in BROKEN_CSV], ids=[b[0] for b in BROKEN_CSV]
)
def test_kube_apiserver_refuses_a_csv_with_a_schema_error(
    control_plane: ControlPlane,
    olm_crds: list[str],
    operator_namespace: str,
    change: Any,
    message: str,
) -> None:
    # OLM's CRD checks what matters: the dry run above proves something.
    result = server_dry_run(
        control_plane, "-n", operator_namespace, "-f", "-", text=broken_csv(change)
    )
    assert result.returncode != 0, f"accepted a broken CSV:\n{result.stdout}"
    assert message in result.stderr, result.stderr


# -- docs/olm.md: its objects and names agree with the bundle -----------------------


def doc_objects() -> list[dict[str, Any]]:
    """The objects of every `oc apply -f - <<'EOF'` here-document of docs/olm.md."""
    bodies = re.findall(r"oc apply -f - <<'EOF'\n(.*?)\nEOF\n", DOC.read_text(), re.S)
    assert bodies, "docs/olm.md has no `oc apply -f - <<'EOF'` block any more"
    return [d for body in bodies for d in documents(body)]


def doc_commands(prefix: str) -> list[list[str]]:
    found = []
    for block in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            line = line.split("    #", 1)[0].strip()
            if line.startswith(prefix):
                found.append(shlex.split(line))
    assert found, f"docs/olm.md has no `{prefix} ...` command any more"
    return found


def flag(words: list[str], name: str) -> str:
    (value,) = [w.split("=", 1)[1] for w in words if w.startswith(f"--{name}=")]
    return value


def built_images() -> dict[str, str]:
    """BuildConfig name → the Dockerfile it builds and the ImageStream tag it pushes."""
    files = {}
    for words in doc_commands("oc patch bc/"):
        patch = json.loads(words[words.index("-p") + 1])
        files[words[2].removeprefix("bc/")] = patch["spec"]["strategy"]["dockerStrategy"][
            "dockerfilePath"
        ]
    images = {}
    for words in doc_commands("oc new-build"):
        name = flag(words, "name")
        images[files.get(name, "Dockerfile")] = flag(words, "to")
    started = {w[2] for w in doc_commands("oc start-build")}
    assert started == {flag(w, "name") for w in doc_commands("oc new-build")}
    return images


INTERNAL = f"image-registry.openshift-image-registry.svc:5000/{NAMESPACE}/"


def test_doc_builds_the_images_the_bundle_and_catalog_name() -> None:
    images = built_images()
    assert set(images) == {"Dockerfile", "bundle.Dockerfile", "catalog.Dockerfile"}
    (deployment,) = csv()["spec"]["install"]["spec"]["deployments"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == (
        INTERNAL + images["Dockerfile"]
    )
    # The catalog's build names the bundle image by the template opm fills in.
    template = re.search(
        r"--alpha-image-ref-template='([^']+)'", (REPO / "catalog.Dockerfile").read_text()
    )
    assert template, "catalog.Dockerfile no longer renders the bundle with an image template"
    assert (
        template.group(1).replace("{{.Version}}", VERSION) == INTERNAL + images["bundle.Dockerfile"]
    )
    (new_project,) = doc_commands("oc new-project")
    assert new_project[2] == NAMESPACE


def test_doc_objects_agree_with_the_bundle() -> None:
    objects = {d["kind"]: d for d in doc_objects()}
    assert set(objects) == {"CatalogSource", "OperatorGroup", "Subscription"}
    source, group, subscription = (
        objects["CatalogSource"],
        objects["OperatorGroup"],
        objects["Subscription"],
    )
    assert source["spec"]["image"] == INTERNAL + built_images()["catalog.Dockerfile"]
    spec = subscription["spec"]
    assert spec["name"] == PACKAGE
    assert spec["channel"] == annotations()[f"{BUNDLE_KEYS}channel.default.v1"]
    assert (spec["source"], spec["sourceNamespace"]) == (
        source["metadata"]["name"],
        source["metadata"]["namespace"],
    )
    # AllNamespaces: no target namespaces; in the namespace the CSV suggests.
    assert not group["spec"].get("targetNamespaces")
    suggested = csv()["metadata"]["annotations"]["operatorframework.io/suggested-namespace"]
    assert group["metadata"]["namespace"] == subscription["metadata"]["namespace"] == suggested
    # The catalog pods in the CatalogSource's namespace may pull the catalog image.
    (grant,) = doc_commands("oc policy add-role-to-group system:image-puller")
    assert grant[4] == f"system:serviceaccounts:{source['metadata']['namespace']}"
    assert grant[grant.index("-n") + 1] == NAMESPACE


def test_kube_apiserver_accepts_the_doc_objects_with_server_dry_run(
    control_plane: ControlPlane, kube: Kube, olm_crds: list[str], operator_namespace: str
) -> None:
    for doc in doc_objects():
        namespace = doc["metadata"]["namespace"]
        if not kube.exists(path_for("v1", "namespaces", name=namespace)):
            create_namespace(kube, namespace)
    result = server_dry_run(control_plane, "-f", "-", text=yaml.safe_dump_all(doc_objects()))
    assert result.returncode == 0, f"kube-apiserver refused docs/olm.md's objects:\n{result.stderr}"
    for expected in (
        "catalogsource.operators.coreos.com/imagestream-trigger",
        "operatorgroup.operators.coreos.com/imagestream-trigger",
        "subscription.operators.coreos.com/imagestream-trigger",
    ):
        assert f"{expected} created (server dry run)" in result.stdout, result.stdout
