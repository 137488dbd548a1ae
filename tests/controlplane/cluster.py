"""Start and stop a real local control plane: etcd, kube-apiserver, OpenShift emulation.

Used by pytest (a session fixture), the benchmark and ``make demo``. Every child
runs in its own process group and gets SIGKILL from the kernel if this process
dies (PR_SET_PDEATHSIG), so neither Ctrl-C nor a crashed test run leaves a server
behind. Logs stay in the work folder; when a start fails, their tail is shown.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.controlplane import binaries, pki

REPO = binaries.REPO
CRD_DIR = Path(__file__).resolve().parent / "crds"
OPERATOR_CRD_DIR = REPO / "manifests" / "crd"

_PR_SET_PDEATHSIG = 1


class StartError(RuntimeError):
    """A control-plane component did not become ready; the message has its log tail."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: ask the kernel to kill it when
    # the process that started it goes away, however that happens.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def stop(self, grace: float = 10.0) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()


def spawn(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Process:
    """Start a child in its own process group, tied to our life, logging to ``log``."""
    with open(log, "ab") as out:
        popen = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    return Process(name, popen, log)


@dataclass
class ControlPlane:
    """One etcd + kube-apiserver + emulation proxy on free loopback ports.

    ``kubeconfig`` points at the proxy (what every client should use);
    ``direct_kubeconfig`` bypasses it (e.g. for a benchmark floor).
    """

    workdir: Path | None = None
    audit_policy: Path | None = None
    extra_apiserver_args: Sequence[str] = ()
    processes: list[Process] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._own_workdir = self.workdir is None
        self.dir = Path(self.workdir or tempfile.mkdtemp(prefix="imagestream-trigger-cp-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self._healthy = False
        self.pki: pki.Pki | None = None
        self.apiserver_url = ""
        self.url = ""

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 60.0) -> ControlPlane:
        bins = binaries.ensure(binaries.SERVER_BINARIES)
        self.kubectl_path = bins["kubectl"]
        self.pki = pki.generate(self.dir / "pki")
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        try:
            self._start_etcd(bins["etcd"], deadline)
            self._start_apiserver(bins["kube-apiserver"], deadline)
            self._start_proxy(deadline)
        except BaseException:
            self.stop()
            raise
        self.kubeconfig = self.write_kubeconfig(self.dir / "kubeconfig", self.pki.admin_token)
        self.direct_kubeconfig = self.write_kubeconfig(
            self.dir / "kubeconfig-direct", self.pki.admin_token, server=self.apiserver_url
        )
        self._healthy = True
        return self

    def stop(self) -> None:
        # Reverse start order: clients first, etcd last, so nothing logs
        # connection storms on the way down.
        while self.processes:
            # Nothing here is worth a graceful drain: the data dies with the folder.
            self.processes.pop().stop(grace=3.0)
        # A temp folder we made is ours to remove, unless a start failed and
        # its logs are the evidence.
        if self._own_workdir and self._healthy:
            shutil.rmtree(self.dir, ignore_errors=True)
            self._healthy = False

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def admin_token(self) -> str:
        assert self.pki is not None, "control plane not started"
        return self.pki.admin_token

    @property
    def ca_file(self) -> Path:
        assert self.pki is not None, "control plane not started"
        return self.pki.ca_cert

    def logs(self) -> dict[str, Path]:
        return {p.name: p.log for p in self.processes}

    # -- components --------------------------------------------------------

    def _start_etcd(self, etcd: Path, deadline: float) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        proc = spawn(
            "etcd",
            [
                str(etcd),
                "--name=default",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                # A throw-away cluster: durability buys nothing, fsync costs a lot.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
            self.dir / "etcd.log",
        )
        self.processes.append(proc)
        self._wait(proc, f"{self.etcd_url}/health", deadline, token=None)

    def _start_apiserver(self, apiserver: Path, deadline: float) -> None:
        assert self.pki is not None
        port = free_port()
        self.apiserver_url = f"https://127.0.0.1:{port}"
        args = [
            str(apiserver),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.dir / 'apiserver-certs'}",
            f"--tls-cert-file={self.pki.serving_cert}",
            f"--tls-private-key-file={self.pki.serving_key}",
            f"--client-ca-file={self.pki.ca_cert}",
            f"--token-auth-file={self.pki.token_file}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={self.pki.sa_pub}",
            f"--service-account-signing-key-file={self.pki.sa_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true",
            # No kubelet or controller-manager here: nothing else would keep
            # the kubernetes Service endpoints, so do not try.
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=1",
        ]
        if self.audit_policy is not None:
            args += [
                f"--audit-policy-file={self.audit_policy}",
                f"--audit-log-path={self.dir / 'audit.log'}",
                "--audit-log-format=json",
                "--audit-log-maxsize=0",
            ]
        args += list(self.extra_apiserver_args)
        proc = spawn("kube-apiserver", args, self.dir / "kube-apiserver.log")
        self.processes.append(proc)
        self._wait(proc, f"{self.apiserver_url}/readyz", deadline, token=self.pki.admin_token)

    def _start_proxy(self, deadline: float) -> None:
        assert self.pki is not None
        port = free_port()
        self.url = f"https://127.0.0.1:{port}"
        proc = spawn(
            "openshift-emulation",
            [
                sys.executable,
                "-m",
                "tests.controlplane.proxy",
                f"--listen-port={port}",
                f"--upstream={self.apiserver_url}",
                f"--ca-file={self.pki.ca_cert}",
                f"--cert-file={self.pki.serving_cert}",
                f"--key-file={self.pki.serving_key}",
                f"--token-file={self.pki.token_file}",
            ],
            self.dir / "openshift-emulation.log",
            cwd=REPO,
        )
        self.processes.append(proc)
        self._wait(proc, f"{self.url}/readyz", deadline, token=self.pki.admin_token)

    def _wait(self, proc: Process, url: str, deadline: float, *, token: str | None) -> None:
        context = self.ssl_context() if url.startswith("https") else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        wait_until_ready(proc, url, deadline, headers=headers, context=context)

    # -- clients -----------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def write_kubeconfig(self, path: Path, token: str, *, server: str | None = None) -> Path:
        """A kubeconfig for ``token`` against the proxy (or ``server``)."""
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": server or self.url,
                        "certificate-authority": str(self.ca_file),
                    },
                }
            ],
            "users": [{"name": "user", "user": {"token": token}}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": "user"}}],
            "current-context": "local",
        }
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def kubectl(
        self, *args: str, kubeconfig: Path | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this control plane (does not raise)."""
        return subprocess.run(
            [str(self.kubectl_path), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )


def wait_until_ready(
    proc: Process,
    url: str,
    deadline: float,
    *,
    headers: dict[str, str] | None = None,
    context: ssl.SSLContext | None = None,
) -> None:
    """Poll ``url`` until it answers 200; fail early, with the log tail, if ``proc`` dies."""
    last = ""
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise StartError(
                f"{proc.name} exited with code {proc.popen.returncode} while starting; "
                f"last lines of {proc.log}:\n{proc.tail()}"
            )
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=2, context=context) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError) as error:
            last = str(error)
        time.sleep(0.1)
    raise StartError(
        f"{proc.name} was not ready at {url} in time ({last}); "
        f"last lines of {proc.log}:\n{proc.tail()}"
    )


def wait_for_ctrl_c() -> None:
    """Block until Ctrl-C or SIGTERM, then return so the caller can stop cleanly."""
    stop = threading.Event()
    # Explicit handlers: a shell starts background jobs with SIGINT ignored.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[ControlPlane]:
    plane = ControlPlane(**kwargs)
    with plane:
        yield plane
