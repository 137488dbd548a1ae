"""`make demo` runs to the end and says what it showed, from what it read in the cluster.

The demo runs as `make demo` runs it (``python -m tests.controlplane demo``), with
``--no-wait`` so that it stops after the narration, on its own control plane where
workloads roll out. Its lines are checked against each other: the image promoted to
app:stable is the one the third import brought, the Deployment is set back to it after the
fourth (never-ready) import, and that fourth image is the one quarantined.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.controlplane import binaries

pytestmark = pytest.mark.controlplane

# Far above what the demo takes (about half a minute): only a hang trips it.
TIMEOUT_S = 300
IMPORT = re.compile(r"^▸ import (\d): app:latest now points at (\S+)")


def line_with(lines: list[str], start: str) -> str:
    found = [line.strip() for line in lines if line.strip().startswith(start)]
    assert found, f"no line starting {start!r}"
    return found[-1]


def test_the_demo_narrates_imports_a_promotion_and_a_revert(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "tests.controlplane", "demo", "--no-wait", f"--workdir={workdir}"],
        cwd=binaries.REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    output = f"{result.stdout}\n{result.stderr}\n(logs in {workdir})"
    assert result.returncode == 0, output
    lines = result.stdout.splitlines()
    imports = {m[1]: m[2] for line in lines if (m := IMPORT.match(line))}
    assert sorted(imports) == ["1", "2", "3", "4"], output
    good, bad = imports["3"], imports["4"]
    assert "@sha256:0bad0bad" in bad, output  # the never-ready image

    # The samples' part, as before: both Deployments and a build after each import.
    for number in ("1", "2"):
        assert f"BuildConfig app-build (ImageTrigger app): Build app-build-{number} created" in (
            line.strip() for line in lines
        ), output
    assert line_with(lines, "Deployment worker (ImageTrigger app):").endswith(imports["2"])

    # Promotion of the image that ran healthy.
    assert "rollout Healthy" in line_with(lines, "ImageTrigger web: status.targets[Deployment/web]")
    promoted = line_with(lines, "promoted: status.promoted image")
    assert promoted.startswith(
        f"promoted: status.promoted image {good}, to demo-rollouts/app:stable"
    )
    assert line_with(lines, "ImageTrigger web: Promoted=").startswith(
        "ImageTrigger web: Promoted=True (Promoted)"
    )
    assert line_with(lines, "ImageStream app: app:stable now points at") == (
        f"ImageStream app: app:stable now points at {good}"
    )

    # Revert of the never-ready image, its quarantine, and the stable tag left alone.
    reverted = line_with(lines, "reverted: Deployment web container web:")
    assert reverted.startswith(f"reverted: Deployment web container web: {bad} → {good} "), output
    quarantined = line_with(lines, "quarantined: status.quarantine[] image")
    assert quarantined.startswith(
        f"quarantined: status.quarantine[] image {bad}, reason ProgressDeadlineExceeded"
    ), output
    assert line_with(lines, "ImageTrigger web: Ready=").startswith(
        "ImageTrigger web: Ready=False (RolloutFailed)"
    )
    assert line_with(lines, "ImageStream app: app:stable points at").startswith(
        f"ImageStream app: app:stable points at {good} (unchanged"
    )

    # The Events say the same.
    events = {tuple(line.split()[:3]) for line in lines if line.startswith("      ")}
    for wanted in (
        ("Normal", "Promoted", "on"),
        ("Normal", "RolloutSucceeded", "on"),
        ("Warning", "RolloutFailed", "on"),
        ("Normal", "RolloutReverted", "on"),
    ):
        assert wanted in events, output
    assert lines[-1] == "▸ stopped; nothing left running", output
