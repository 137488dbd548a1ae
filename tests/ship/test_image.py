"""The container image, checked without a container engine (none runs here).

The Dockerfile's install step is a script (packaging/install.sh); these tests
build the wheel and replay that script in a fresh virtual environment, then run
the image's entrypoint. hadolint lints the Dockerfile itself.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imagestream_trigger import __version__

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def uv() -> str:
    found = shutil.which("uv") or str(REPO / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv is installed by `make setup` into .tools/"
    return found


def entrypoint() -> list[str]:
    match = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", DOCKERFILE.read_text(), re.M)
    assert match, "the Dockerfile has no exec-form ENTRYPOINT"
    import json

    command: list[str] = json.loads(match.group(1))
    return command


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built as the Dockerfile builds it, installed as the Dockerfile installs it."""
    work = tmp_path_factory.mktemp("image")
    dist = work / "dist"
    # The same PEP 517 build the Dockerfile's `pip wheel` runs (hatchling).
    subprocess.run(
        [uv(), "build", "--wheel", "--quiet", "--out-dir", str(dist), str(REPO)],
        check=True,
        capture_output=True,
    )
    venv = work / "venv"
    result = subprocess.run(
        [
            "sh",
            str(REPO / "packaging" / "install.sh"),
            str(venv),
            str(REPO / "requirements.lock"),
            str(dist),
        ],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"imagestream-trigger {__version__}"
    return venv


def run_entrypoint(venv: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    command = entrypoint()
    executable = venv / "bin" / command[0]
    # The image's environment: HOME=/tmp, nothing but the venv on PATH first.
    return subprocess.run(
        [str(executable), *command[1:], *args],
        capture_output=True,
        text=True,
        env={
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
            "HOME": "/tmp",
            "PYTHONDONTWRITEBYTECODE": "1",
            **env,
        },
        cwd="/tmp",
        timeout=60,
    )


def test_entrypoint_is_imagestream_trigger_run() -> None:
    assert entrypoint() == ["imagestream-trigger", "run"]


def test_entrypoint_help_and_version_from_the_installed_wheel(installed: Path) -> None:
    version = run_entrypoint(installed, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"imagestream-trigger {__version__}"

    helped = run_entrypoint(installed, "--help")
    assert helped.returncode == 0, helped.stderr
    for flag in (
        "--namespace",
        "--native-annotations",
        "--metrics-port",
        "--log-format",
        "--dry-run",
    ):
        assert flag in helped.stdout


def test_the_installed_package_is_the_wheel_not_the_source_tree(installed: Path) -> None:
    where = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import imagestream_trigger; print(imagestream_trigger.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd="/tmp",
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed)), where
    # Only the locked dependencies (plus pip's own) are installed, nothing from dev.
    frozen = subprocess.run(
        [str(installed / "bin" / "python"), "-m", "pip", "freeze", "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    names = {line.split("==")[0].split(" @ ")[0].replace("_", "-") for line in frozen.splitlines()}
    assert {"kopf", "kubernetes", "pydantic", "prometheus-client"} <= names
    assert not names & {"pytest", "ruff", "mypy", "cryptography"}, "dev dependencies leaked"


def test_bad_settings_fail_before_touching_a_cluster(installed: Path) -> None:
    result = run_entrypoint(installed, IMAGESTREAM_TRIGGER_LOG_FORMAT="xml")
    assert result.returncode == 2
    assert "IMAGESTREAM_TRIGGER_LOG_FORMAT" in result.stderr


def test_requirements_lock_matches_uv_lock() -> None:
    exported = subprocess.run(
        [
            uv(),
            "export",
            "--frozen",
            "--no-dev",
            "--no-emit-project",
            "--format",
            "requirements-txt",
            "--no-header",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (REPO / "requirements.lock").read_text()
    body = "\n".join(line for line in committed.splitlines() if not line.startswith("#"))
    assert (
        body.strip()
        == "\n".join(line for line in exported.splitlines() if not line.startswith("#")).strip()
    ), "requirements.lock is stale: run `make lock`"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_runs_as_non_root_in_group_zero() -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), re.M)
    assert users[-1] == "1001:0"
    assert "HOME=/tmp" in DOCKERFILE.read_text()
