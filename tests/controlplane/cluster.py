"""Start and stop a real local control plane: etcd, kube-apiserver, OpenShift emulation.

With ``workloads=True`` also kube-controller-manager, kube-scheduler and kwok's fake
nodes, so that Deployments, StatefulSets and DaemonSets really roll out (see
``workloads.py``); only the tests that need it pay for that.

Used by pytest (a session fixture), the benchmark and ``make demo``. Every child
runs in its own process group and gets SIGKILL from the kernel if this process
dies (PR_SET_PDEATHSIG), so neither Ctrl-C nor a crashed test run leaves a server
behind. Logs stay in the work folder; when a start fails, their tail is shown.

Fault injection for reliability tests: ``set_faults``/``faults``/``reset_faults``
drive the proxy's switches, ``restart_apiserver`` kills and restarts
kube-apiserver on the same port and etcd, ``expire_watches`` makes every
resourceVersion handed out so far answer 410 Gone.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import hashlib
import json
import os
import queue
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
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tests.controlplane import binaries, pki, workloads
from tests.controlplane.kube import ApiError, Kube

REPO = binaries.REPO
CRD_DIR = Path(__file__).resolve().parent / "crds"
OPERATOR_CRD_DIR = REPO / "manifests" / "crd"

_PR_SET_PDEATHSIG = 1
T = TypeVar("T")


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


_spawner_lock = threading.Lock()
_spawner_queue: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] | None = None


def _on_a_lasting_thread(start: Callable[[], T]) -> T:
    """Run ``start`` on the main thread or on one daemon thread that lives as long as we do.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not
    the process: a child started from ``asyncio.to_thread`` or an executor
    would be killed as soon as that worker thread ends.
    """
    global _spawner_queue
    if threading.current_thread() is threading.main_thread():
        return start()
    with _spawner_lock:
        if _spawner_queue is None:
            _spawner_queue = queue.SimpleQueue()
            threading.Thread(
                target=_serve_spawns, args=(_spawner_queue,), name="spawner", daemon=True
            ).start()
    future: Future[T] = Future()
    _spawner_queue.put((start, future))
    return future.result()


def _serve_spawns(requests: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]]) -> None:
    while True:
        start, future = requests.get()
        try:
            future.set_result(start())
        except BaseException as error:
            future.set_exception(error)


def spawn(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Process:
    """Start a child in its own process group, tied to our life, logging to ``log``."""

    def start() -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    return Process(name, _on_a_lasting_thread(start), log)


@dataclass
class ControlPlane:
    """One etcd + kube-apiserver + emulation proxy on free loopback ports.

    ``kubeconfig`` points at the proxy (what every client should use);
    ``direct_kubeconfig`` bypasses it (e.g. for a benchmark floor).
    ``workloads``: also run the controllers, the scheduler and the fake nodes that make
    workloads roll out (``workloads.py``; nodes named in ``workloads.FAKE_NODES``).
    """

    workdir: Path | None = None
    audit_policy: Path | None = None
    extra_apiserver_args: Sequence[str] = ()
    workloads: bool = False
    processes: list[Process] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._own_workdir = self.workdir is None
        self.dir = Path(self.workdir or tempfile.mkdtemp(prefix="imagestream-trigger-cp-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self._healthy = False
        self.pki: pki.Pki | None = None
        self.apiserver_url = ""
        self.url = ""
        self._apiserver_args: list[str] = []

    # -- lifecycle ---------------------------------------------------------

    def start(self, timeout: float = 60.0) -> ControlPlane:
        wanted: tuple[str, ...] = binaries.SERVER_BINARIES
        if self.workloads:
            wanted += binaries.WORKLOAD_BINARIES
        bins = binaries.ensure(wanted)
        self.kubectl_path = bins["kubectl"]
        self.pki = pki.generate(self.dir / "pki")
        atexit.register(self.stop)
        deadline = time.monotonic() + timeout
        try:
            self._start_etcd(bins["etcd"], deadline)
            self._start_apiserver(bins["kube-apiserver"], deadline)
            self._start_proxy(deadline)
            self.kubeconfig = self.write_kubeconfig(self.dir / "kubeconfig", self.pki.admin_token)
            self.direct_kubeconfig = self.write_kubeconfig(
                self.dir / "kubeconfig-direct", self.pki.admin_token, server=self.apiserver_url
            )
            if self.workloads:
                self._start_workloads(bins, deadline)
        except BaseException:
            self.stop()
            raise
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
        # Kept: a restart must come back exactly the same, on the same port.
        self._apiserver_args = args
        self.processes.append(self._spawn_apiserver())
        self._wait_apiserver(deadline)

    def _spawn_apiserver(self) -> Process:
        return spawn("kube-apiserver", self._apiserver_args, self.dir / "kube-apiserver.log")

    def _apiserver_process(self) -> Process:
        return next(p for p in self.processes if p.name == "kube-apiserver")

    def _wait_apiserver(self, deadline: float) -> None:
        self._wait(
            self._apiserver_process(),
            f"{self.apiserver_url}/readyz",
            deadline,
            token=self.admin_token,
        )

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

    def _start_workloads(self, bins: dict[str, Path], deadline: float) -> None:
        """kube-controller-manager, kube-scheduler and kwok, all three started before
        waiting for any; then the fake nodes, Ready."""
        kubeconfig = self.direct_kubeconfig
        controller_port, scheduler_port = free_port(), free_port()
        controllers = spawn(
            "kube-controller-manager",
            workloads.controller_manager_args(
                bins["kube-controller-manager"],
                kubeconfig=kubeconfig,
                port=controller_port,
                cert_dir=self.dir / "kube-controller-manager-certs",
            ),
            self.dir / "kube-controller-manager.log",
        )
        self.processes.append(controllers)
        scheduler = spawn(
            "kube-scheduler",
            workloads.scheduler_args(
                bins["kube-scheduler"],
                config=workloads.write_scheduler_config(
                    self.dir / "kube-scheduler.yaml", kubeconfig
                ),
                kubeconfig=kubeconfig,
                port=scheduler_port,
                cert_dir=self.dir / "kube-scheduler-certs",
            ),
            self.dir / "kube-scheduler.log",
        )
        self.processes.append(scheduler)
        # kwok also reads ~/.kwok/kwok.yaml if there is one: give it a HOME of its own.
        home = self.dir / "kwok-home"
        home.mkdir(exist_ok=True)
        kwok = spawn(
            "kwok",
            workloads.kwok_args(bins["kwok"], kubeconfig=kubeconfig),
            self.dir / "kwok.log",
            env={**os.environ, "HOME": str(home)},
        )
        self.processes.append(kwok)

        admin = Kube(self.apiserver_url, self.admin_token, self.ca_file)
        for name in workloads.FAKE_NODES:
            admin.create("/api/v1/nodes", workloads.node(name))
        headers = {"Authorization": f"Bearer {self.admin_token}"}
        context = workloads.insecure_loopback_context()
        for proc, port in ((controllers, controller_port), (scheduler, scheduler_port)):
            url = f"https://127.0.0.1:{port}/healthz"
            wait_until_ready(proc, url, deadline, headers=headers, context=context)
        # The serviceaccount controller's first act proves the controllers run, not just serve.
        self._wait_for_object(
            controllers, admin, "/api/v1/namespaces/default/serviceaccounts/default", deadline
        )
        for name in workloads.FAKE_NODES:
            path = f"/api/v1/nodes/{name}"
            self._wait_for_object(kwok, admin, path, deadline, workloads.node_ready)
            # Admission gives a new node the not-ready taint, which the node-lifecycle
            # controller lifts once the node is Ready. That controller is not run here (it
            # would also want kubelet heartbeats), so lift it as it would, once.
            admin.patch(path, {"spec": {"taints": None}}, kind="merge")

    def _wait_for_object(
        self,
        proc: Process,
        admin: Kube,
        path: str,
        deadline: float,
        ready: Callable[[dict[str, Any]], bool] = lambda _: True,
    ) -> None:
        """Poll ``path`` until it exists and is ``ready``; fail with ``proc``'s log if not."""
        last = ""
        while time.monotonic() < deadline:
            still_starting(proc)
            try:
                if ready(admin.get(path)):
                    return
                last = "not ready yet"
            except ApiError as error:
                last = str(error)
            time.sleep(0.1)
        raise StartError(
            f"{path} not there or not ready in time ({last}): {proc.name} not working? "
            f"last lines of {proc.log}:\n{proc.tail()}"
        )

    def _wait(self, proc: Process, url: str, deadline: float, *, token: str | None) -> None:
        context = self.ssl_context() if url.startswith("https") else None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        wait_until_ready(proc, url, deadline, headers=headers, context=context)

    # -- faults: kube-apiserver restarts and expired watches ----------------

    def apiserver_running(self) -> bool:
        return self._apiserver_process().popen.poll() is None

    def stop_apiserver(self) -> None:
        """SIGKILL kube-apiserver (no graceful drain): its connections and watches just end.

        Until ``start_apiserver``, the proxy answers every request 503 ServiceUnavailable.
        """
        proc = self._apiserver_process()
        if proc.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, signal.SIGKILL)
            proc.popen.wait()

    def start_apiserver(self, timeout: float = 60.0) -> None:
        """Start kube-apiserver again with the same arguments, port and etcd data.

        Returns once it is ready and every watchable resource (built-in and CRD)
        accepts a watch: CRDs are served and watch caches are initialized, so no
        client sees a 404 or a 429 for a restart that has already finished.
        """
        if self.apiserver_running():
            return
        deadline = time.monotonic() + timeout
        index = self.processes.index(self._apiserver_process())
        self.processes[index] = self._spawn_apiserver()
        self._wait_apiserver(deadline)
        self._wait_watchable(deadline)
        proxy = next(p for p in self.processes if p.name == "openshift-emulation")
        self._wait(proxy, f"{self.url}/readyz", deadline, token=self.admin_token)

    def restart_apiserver(self, down_for: float = 0.0, timeout: float = 60.0) -> None:
        """Kill kube-apiserver, keep it down ``down_for`` seconds, start it again, wait ready.

        The URL, port, arguments, etcd data and tokens are unchanged. Clients'
        watches through the proxy break when it dies; requests meanwhile get 503.
        """
        self.stop_apiserver()
        try:
            time.sleep(down_for)
        finally:
            self.start_apiserver(timeout)

    def compact_etcd(self) -> int:
        """Compact etcd (physically) at its current revision; returns that revision.

        Only etcd forgets: kube-apiserver's watch cache may still serve older
        resourceVersions from memory (see ``expire_watches``).
        """
        revision = int(self._etcd("/v3/kv/range", {"key": _b64("\0")})["header"]["revision"])
        self._etcd("/v3/kv/compaction", {"revision": revision, "physical": True})
        return revision

    def expire_watches(self, timeout: float = 60.0) -> int:
        """Make every resourceVersion handed out before this call answer 410 Gone.

        Recipe: two writes to a key outside kube-apiserver's ``/registry`` prefix
        (so every earlier resourceVersion R is at most revision N - 2), compact
        etcd at N, then restart kube-apiserver so its watch caches are rebuilt
        from a list at a revision >= N.

        Guarantees, once it returns: a watch from any R obtained earlier, on any
        resource, through the proxy or directly, fails with 410 (kube-apiserver
        answers HTTP 200 with a single ERROR event whose Status has code 410 and
        reason Expired, then ends the stream); a list with resourceVersion=R and
        resourceVersionMatch=Exact also answers 410. Every watch open before the
        call has been broken (the restart). Objects are untouched, and the plane
        is ready as after ``start_apiserver``. Returns N.
        """
        for _ in range(2):
            self._etcd("/v3/kv/put", {"key": _b64(_BUMP_KEY), "value": _b64("bump")})
        revision = self.compact_etcd()
        self.restart_apiserver(timeout=timeout)
        return revision

    def delete_unseen(self, key: str) -> int:
        """Delete ``key`` (e.g. /registry/GROUP/PLURAL/NS/NAME) in etcd itself, then
        compact: with kube-apiserver stopped, no watch can ever deliver that DELETED
        event, as when a client lists again after "410 Gone". Returns how many keys went.
        """
        deleted = self._etcd("/v3/kv/deleterange", {"key": _b64(key)})
        for _ in range(2):
            self._etcd("/v3/kv/put", {"key": _b64(_BUMP_KEY), "value": _b64("bump")})
        self.compact_etcd()
        return int(deleted.get("deleted", 0))

    def _etcd(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        # etcd's v3 JSON gateway: bytes as base64, int64 as strings.
        request = urllib.request.Request(
            self.etcd_url + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def _wait_watchable(self, deadline: float) -> None:
        pending = self._watchable_paths(deadline)
        last = ""
        while pending:
            for path in sorted(pending):
                code, last = self._probe_watch(path)
                if code == 200:
                    pending.discard(path)
            if not pending:
                return
            if time.monotonic() > deadline:
                proc = self._apiserver_process()
                raise StartError(
                    f"kube-apiserver would not watch {sorted(pending)} in time ({last}); "
                    f"last lines of {proc.log}:\n{proc.tail()}"
                )
            time.sleep(0.1)

    def _watchable_paths(self, deadline: float) -> set[str]:
        """List paths of every watchable resource: discovery, plus each CRD explicitly."""
        paths: set[str] = set()
        group_versions = ["v1"]
        for group in self._get_json("/apis", deadline)["groups"]:
            group_versions.append(group["preferredVersion"]["groupVersion"])
        for group_version in group_versions:
            base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
            for resource in self._get_json(base, deadline).get("resources", []):
                if "/" not in resource["name"] and "watch" in resource.get("verbs", []):
                    paths.add(f"{base}/{resource['name']}")
        # Discovery of CRDs fills in a moment after readyz; the CRDs themselves are stored.
        crds = self._get_json("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", deadline)
        for crd in crds["items"]:
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served"):
                    paths.add(f"/apis/{spec['group']}/{version['name']}/{spec['names']['plural']}")
        return paths

    def _get_json(self, path: str, deadline: float) -> Any:
        while True:
            try:
                with self._direct(path) as response:
                    return json.loads(response.read())
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _probe_watch(self, path: str) -> tuple[int, str]:
        """Open a watch from the current list's resourceVersion; its status, and why not."""
        try:
            with self._direct(f"{path}?limit=1") as response:
                rv = json.loads(response.read())["metadata"]["resourceVersion"]
            # The status line comes as soon as the watch is registered: no need to read on.
            with self._direct(f"{path}?watch=true&timeoutSeconds=1&resourceVersion={rv}") as watch:
                return watch.status, ""
        except urllib.error.HTTPError as error:
            return error.code, f"{path}: {error.code} {error.reason}"
        except (urllib.error.URLError, OSError) as error:
            return 0, f"{path}: {error}"

    def _direct(self, path: str) -> Any:
        request = urllib.request.Request(
            self.apiserver_url + path, headers={"Authorization": f"Bearer {self.admin_token}"}
        )
        return urllib.request.urlopen(request, timeout=10, context=self.ssl_context())

    # -- faults: the proxy's switches -------------------------------------------

    def set_faults(
        self,
        *,
        drop_instantiate_responses: int | None = None,
        unavailable_for_s: float | None = None,
        openshift_apiservers: bool | None = None,
        partition_token: str | None = None,
        partition_for_s: float | None = None,
    ) -> dict[str, Any]:
        """Switch proxy faults on (only those given); returns the proxy's fault state.

        ``drop_instantiate_responses=N``: the next N instantiate calls that
        succeed do all their work (Build created, BuildConfig status updated)
        and then the connection is aborted with no response.
        ``unavailable_for_s=S``: for S seconds from now, every request but
        ``/_emulation/*`` is answered 503 ServiceUnavailable (a metav1.Status),
        new watches included; every stream open at that moment is broken
        abruptly. 0 ends an outage early. It ends by itself.
        ``partition_token=T, partition_for_s=S``: the client using token T is cut off for
        S seconds: its streams break, its requests wait and are forwarded afterwards
        only if it still waits for them; ``partition_late_writes`` counts its writes
        forwarded from the partition on.
        ``openshift_apiservers=True``: the image and build groups' APIServices read
        as a real OpenShift's (served by the Service openshift-apiserver/api).
        """
        changes: dict[str, Any] = {}
        if openshift_apiservers is not None:
            changes["openshift_apiservers"] = openshift_apiservers
        if partition_token is not None:
            changes["partition_token_sha256"] = hashlib.sha256(partition_token.encode()).hexdigest()
            changes["partition_for_s"] = partition_for_s
        if drop_instantiate_responses is not None:
            changes["drop_instantiate_responses"] = drop_instantiate_responses
        if unavailable_for_s is not None:
            changes["unavailable_for_s"] = unavailable_for_s
        return self._faults_call("PUT", changes)

    def faults(self) -> dict[str, Any]:
        """The proxy's switches and counters (see ``proxy.Faults``)."""
        return self._faults_call("GET")

    def reset_faults(self) -> dict[str, Any]:
        """Every switch off, every counter zero."""
        return self._faults_call("DELETE")

    @contextlib.contextmanager
    def faults_injected(
        self,
        *,
        drop_instantiate_responses: int | None = None,
        unavailable_for_s: float | None = None,
    ) -> Iterator[dict[str, Any]]:
        """``set_faults`` for the ``with`` block; ``reset_faults`` afterwards, whatever happens."""
        try:
            yield self.set_faults(
                drop_instantiate_responses=drop_instantiate_responses,
                unavailable_for_s=unavailable_for_s,
            )
        finally:
            self.reset_faults()

    def _faults_call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.url}/_emulation/faults",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        if body is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10, context=self.ssl_context()) as response:
            state: dict[str, Any] = json.loads(response.read())
        return state

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


# Written only to move etcd's revision on; kube-apiserver reads nothing outside /registry/.
_BUMP_KEY = "/imagestream-trigger-harness/revision-bump"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def still_starting(proc: Process) -> None:
    """Raise StartError, with the last lines of its log, if ``proc`` has exited."""
    if proc.popen.poll() is not None:
        raise StartError(
            f"{proc.name} exited with code {proc.popen.returncode} while starting; "
            f"last lines of {proc.log}:\n{proc.tail()}"
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
        still_starting(proc)
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
