"""Find or build the real control-plane binaries (kube-apiserver, etcd, kubectl, helm),
what makes workloads roll out (kube-controller-manager, kube-scheduler, kwok) and the
manifest linter kube-score.

The control plane is built from the Go module in this folder, whose go.mod is the
one place the Kubernetes release is pinned. Builds land in a git-ignored cache
keyed by that release and by a hash of the Go sources, so a second run (or
another checkout sharing the cache) builds nothing. The API server's binaries and the
controllers' are cached apart, each keyed on its own mains, so a change to one main
rebuilds only its side. If ``KUBEBUILDER_ASSETS``
names a folder holding kube-apiserver, etcd and kubectl (the envtest
convention), those are used and nothing is built for them.

kube-score (tests/lint) and kwok (tests/kwok) come from Go modules of their own, each
cached beside the control plane under a key of that module's hash: changing one never
rebuilds another.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
LINT = REPO / "tests" / "lint"
KWOK = REPO / "tests" / "kwok"

SERVER_BINARIES = ("kube-apiserver", "etcd", "kubectl")
# Only the tests whose Deployments, StatefulSets and DaemonSets must really roll out use these.
CONTROLLER_BINARIES = ("kube-controller-manager", "kube-scheduler")
WORKLOAD_BINARIES = (*CONTROLLER_BINARIES, "kwok")
LINT_BINARIES = ("kube-score",)
ALL_BINARIES = (*SERVER_BINARIES, "helm", *WORKLOAD_BINARIES, *LINT_BINARIES)
# Our own tiny mains live in cmd/; helm's, kwok's and kube-score's upstream mains are
# built straight from their modules (declared with a `tool` line in each go.mod).
_PACKAGES = {
    "kube-apiserver": "./cmd/kube-apiserver",
    "etcd": "./cmd/etcd",
    "kubectl": "./cmd/kubectl",
    "helm": "helm.sh/helm/v3/cmd/helm",
    "kube-controller-manager": "./cmd/kube-controller-manager",
    "kube-scheduler": "./cmd/kube-scheduler",
    "kwok": "sigs.k8s.io/kwok/cmd/kwok",
    "kube-score": "github.com/zegl/kube-score/cmd/kube-score",
}


class BuildError(RuntimeError):
    """The Go build of a control-plane binary failed."""


def kubernetes_version() -> str:
    """The pinned release, read back from go.mod (e.g. ``v1.34.4``)."""
    match = re.search(r"^\s*k8s\.io/kubernetes (v\S+)", (HERE / "go.mod").read_text(), re.M)
    if not match:
        raise BuildError("tests/controlplane/go.mod does not require k8s.io/kubernetes")
    return match.group(1)


def kube_score_version() -> str:
    """The kube-score release pinned in tests/lint/go.mod (e.g. ``v1.20.0``)."""
    match = re.search(
        r"^\s*github\.com/zegl/kube-score (v\S+)", (LINT / "go.mod").read_text(), re.M
    )
    if not match:
        raise BuildError("tests/lint/go.mod does not require github.com/zegl/kube-score")
    return match.group(1)


def kwok_version() -> str:
    """The kwok release pinned in tests/kwok/go.mod (e.g. ``v0.7.0``)."""
    match = re.search(r"^\s*sigs\.k8s\.io/kwok (v\S+)", (KWOK / "go.mod").read_text(), re.M)
    if not match:
        raise BuildError("tests/kwok/go.mod does not require sigs.k8s.io/kwok")
    return match.group(1)


def cache_root() -> Path:
    return Path(os.environ.get("IMAGESTREAM_TRIGGER_CACHE", REPO / ".cache"))


def _ldflags() -> str:
    """Stamp the real release into the binaries, as the upstream release build does.

    Without it kube-apiserver and kubectl report v0.0.0-master (which helm's
    kubeVersion checks refuse) and helm assumes Kubernetes 1.20.
    """
    version = kubernetes_version()
    major, minor = version.lstrip("v").split(".")[:2]
    stamps = {
        "k8s.io/component-base/version.gitVersion": version,
        "k8s.io/component-base/version.gitMajor": major,
        "k8s.io/component-base/version.gitMinor": minor,
        "k8s.io/component-base/version.gitTreeState": "clean",
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor": major,
        "helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor": minor,
    }
    return " ".join(["-s", "-w", *(f"-X {key}={value}" for key, value in stamps.items())])


def _lint_ldflags() -> str:
    # kube-score's main says "development" unless its release build stamps the version.
    return f"-s -w -X main.version={kube_score_version()}"


def _hash(folder: Path, files: list[Path], ldflags: str) -> str:
    digest = hashlib.sha256()
    digest.update(ldflags.encode())
    for path in sorted(files):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def _source_hash(names: tuple[str, ...]) -> str:
    """Hash of the module and of the mains of ``names`` only."""
    mains = [path for name in names for path in HERE.glob(f"cmd/{name}/*.go")]
    return _hash(HERE, [HERE / "go.mod", HERE / "go.sum", *mains], _ldflags())


def build_dir() -> Path:
    """kube-apiserver, etcd, kubectl and helm."""
    source = _source_hash(SERVER_BINARIES)
    return cache_root() / "controlplane" / f"k8s-{kubernetes_version()}-{source}"


def controllers_build_dir() -> Path:
    """kube-controller-manager and kube-scheduler: same module, keyed on their own mains."""
    source = _source_hash(CONTROLLER_BINARIES)
    return cache_root() / "controlplane" / f"controllers-k8s-{kubernetes_version()}-{source}"


def kwok_build_dir() -> Path:
    source = _hash(KWOK, [KWOK / "go.mod", KWOK / "go.sum"], _plain_ldflags())
    return cache_root() / "kwok" / f"kwok-{kwok_version()}-{source}"


def lint_build_dir() -> Path:
    source = _hash(LINT, [LINT / "go.mod", LINT / "go.sum"], _lint_ldflags())
    return cache_root() / "lint" / f"kube-score-{kube_score_version()}-{source}"


def _plain_ldflags() -> str:
    # kwok's release version is a constant in its source: nothing to stamp.
    return "-s -w"


def _module_of(name: str) -> tuple[Path, Path, str]:
    """(Go module folder, cache folder, ldflags) that ``name`` is built with."""
    if name in LINT_BINARIES:
        return LINT, lint_build_dir(), _lint_ldflags()
    if name == "kwok":
        return KWOK, kwok_build_dir(), _plain_ldflags()
    if name in CONTROLLER_BINARIES:
        return HERE, controllers_build_dir(), _ldflags()
    return HERE, build_dir(), _ldflags()


def _from_assets(name: str) -> Path | None:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if not assets:
        return None
    candidate = Path(assets) / name
    return candidate if os.access(candidate, os.X_OK) else None


def ensure(names: tuple[str, ...] = SERVER_BINARIES, *, quiet: bool = False) -> dict[str, Path]:
    """Return ``{name: path}`` for each binary, building the missing ones once."""
    found: dict[str, Path] = {}
    for name in names:
        path = _from_assets(name)
        if path is not None:
            found[name] = path
    missing = [n for n in names if n not in found]
    # One `go build` per cache folder, for all of that folder's missing binaries.
    folders: dict[Path, list[str]] = {}
    for name in missing:
        folders.setdefault(_module_of(name)[1], []).append(name)
    for wanted in folders.values():
        module, target, ldflags = _module_of(wanted[0])
        target.mkdir(parents=True, exist_ok=True)
        # One build at a time per cache, e.g. `make demo` and `make test` started together.
        with open(target / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            todo = [n for n in wanted if not (target / n).exists()]
            if todo:
                _build(todo, target, module=module, ldflags=ldflags, quiet=quiet)
        found.update({n: target / n for n in wanted})
    return found


def _build(names: list[str], target: Path, *, module: Path, ldflags: str, quiet: bool) -> None:
    go = shutil.which("go")
    if go is None and set(names) <= set(SERVER_BINARIES):
        raise BuildError(
            "Go is needed to build the control plane "
            f"({', '.join(names)}); install Go or set KUBEBUILDER_ASSETS to a folder "
            "holding kube-apiserver, etcd and kubectl"
        )
    if go is None:
        raise BuildError(f"Go is needed to build {', '.join(names)}; install Go 1.24 or later")
    started = time.monotonic()
    if not quiet:
        if module == LINT:
            what = f"kube-score {kube_score_version()}"
        elif module == KWOK:
            what = f"kwok {kwok_version()}"
        else:
            what = f"{', '.join(names)} for Kubernetes {kubernetes_version()}"
        print(
            f"building {what} into {target} (first time only: minutes on 2 cores)",
            file=sys.stderr,
            flush=True,
        )
    with tempfile.TemporaryDirectory(dir=target) as tmp:
        cmd = [go, "build", "-trimpath", f"-ldflags={ldflags}", "-o", tmp + "/"]
        cmd += [_PACKAGES[n] for n in names]
        result = subprocess.run(cmd, cwd=module, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"`{' '.join(cmd)}` failed:\n{result.stderr[-4000:]}")
        for name in names:
            # Rename into place only when complete, so a killed build never
            # leaves a half-written binary that a later run would trust.
            os.replace(Path(tmp) / name, target / name)
    if not quiet:
        print(
            f"built {', '.join(names)} in {time.monotonic() - started:.0f}s",
            file=sys.stderr,
            flush=True,
        )
