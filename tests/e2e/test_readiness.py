"""Liveness and readiness of the operator process, on the real control plane.

The operator reaches the API through a gate: a TCP relay that accepts connections and
forwards nothing until the test opens it. While it is shut the operator cannot finish a
single request, so the not-yet-primed state lasts as long as the test needs, with no
timing luck involved.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from tests.controlplane.cluster import ControlPlane
from tests.controlplane.kube import Kube
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import image_stream


class Gate:
    """A TCP relay to ``upstream`` that holds every connection until ``open()``."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 443)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}"
        self.held = 0  # connections accepted while shut
        self._open = threading.Event()
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def open(self) -> None:
        self._open.set()

    def close(self) -> None:
        self.listener.close()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                self.held += 1
            self._sockets.append(client)
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        self._open.wait()
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        self._sockets.append(upstream)
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def gated_operator(
    plane: ControlPlane, kube: Kube, namespace: str, tmp_path: Path
) -> Iterator[tuple[OperatorProcess, Gate]]:
    gate = Gate(plane.url)
    process = OperatorProcess(plane, kube, namespace)
    # Bind the shipped ClusterRole and mint the token first (with the gate shut, the
    # operator is the only client held), then point the operator's kubeconfig at the gate.
    config = yaml.safe_load(process._credentials().read_text())
    config["clusters"][0]["cluster"]["server"] = gate.url
    gated = tmp_path / "kubeconfig-gated"
    gated.write_text(yaml.safe_dump(config))
    process.env["KUBECONFIG"] = str(gated)
    try:
        yield process.start(wait=False), gate
    finally:
        process.stop()
        gate.close()


def wait_until(
    process: OperatorProcess, what: str, check: Callable[[], bool], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        process.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not seen in {timeout}s; log:\n{process.tail()}")
        time.sleep(0.02)


def test_readyz_turns_200_only_after_priming_while_healthz_answers_from_the_start(
    control_plane: ControlPlane, kube: Kube, namespace: str, tmp_path: Path
) -> None:
    image_stream(kube, namespace, "app")  # something for priming to index
    with gated_operator(control_plane, kube, namespace, tmp_path) as (operator, gate):
        # Alive, and stuck on its first API request behind the shut gate.
        wait_until(operator, "/healthz answering", lambda: operator.probe("/healthz") == 200)
        wait_until(operator, "a connection to the API", lambda: gate.held > 0)
        for _ in range(5):
            assert operator.probe("/readyz") == 503
            assert operator.probe("/healthz") == 200
            time.sleep(0.05)
        assert "indexed in" not in operator.output()

        gate.open()
        wait_until(operator, "/readyz answering 200", lambda: operator.probe("/readyz") == 200)
        log = operator.output()
        # Ready came after the indexes were primed and the watches started.
        primed = log.index("indexed in")
        watching = log.index(f"watching {namespace}")
        ready = log.index("ready: indexes primed, watches started")
        assert primed < watching < ready, log
        assert "imagestreams: 1" in log[primed : log.index("\n", primed)], log
        assert operator.probe("/healthz") == 200
