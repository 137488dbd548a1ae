"""Start-up errors a person can act on, checked against real (local, dead) endpoints."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import yaml


def test_unreachable_cluster_is_one_clear_sentence(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "dead",
                "clusters": [
                    {
                        "name": "dead",
                        "cluster": {
                            "server": f"https://127.0.0.1:{port}",
                            "insecure-skip-tls-verify": True,
                        },
                    }
                ],
                "users": [{"name": "u", "user": {"token": "nothing"}}],
                "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}],
            }
        )
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "imagestream_trigger.cli",
            "run",
            "--metrics-port=0",
            "--health-port=0",
        ],
        env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"cannot reach the Kubernetes API at https://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
