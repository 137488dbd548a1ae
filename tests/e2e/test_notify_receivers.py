"""spec.rollout.notify on the real API server: notifications arrive at a local HTTP receiver.

The operator runs as a local process (with the shipped ClusterRole), so a server this test
starts on 127.0.0.1 is reachable; the receivers' URLs are in a real Secret. This control
plane runs no controller manager, so a written Deployment never becomes healthy: after the
Applied notification comes, spec.rollout.timeout later, the Reverted one.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.controlplane.kube import Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    REPO,
    create,
    events_for,
    image_stream,
    image_trigger,
    images_of,
    imported,
    workload,
    workload_path,
)
from tests.e2e.test_tenancy import grant, service_account, wait_warning

TIMEOUT_S = 10  # the shortest spec.rollout.timeout


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class HttpReceiver:
    url: str
    received: list[Received] = field(default_factory=list)
    # Answers to send per path, one per request; then 200.
    script: dict[str, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.1)
        with self.lock:
            seen = [(r.path, r.body.get("event") or r.body.get("text")) for r in self.received]
        raise AssertionError(f"{what} within {timeout}s; received: {seen}")


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.received.append(
                    Received(self.path, dict(self.headers.items()), json.loads(raw))
                )
                answers = receiver.script.get(self.path) or []
                status = answers.pop(0) if answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


def secret(name: str, **urls: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in urls.items()},
    }


def test_applied_and_reverted_arrive_at_each_receiver_in_its_format(
    kube: Kube, namespace: str, operator: OperatorProcess, http_receiver: HttpReceiver
) -> None:
    url = http_receiver.url
    kube.create(
        path_for("v1", "secrets", namespace),
        secret("hooks", slack=f"{url}/slack", json=f"{url}/json", ce=f"{url}/ce"),
    )
    http_receiver.script["/json"] = [503]  # busy once: retried
    image_stream(kube, namespace)
    create(kube, namespace, workload("Deployment", "web", {"web": f"{REPO}:latest"}))
    receivers = [
        {"name": "team", "type": "Slack", "secretRef": {"name": "hooks", "key": "slack"}},
        {"name": "log", "type": "JSON", "secretRef": {"name": "hooks", "key": "json"}},
        {"name": "sink", "type": "CloudEvents", "secretRef": {"name": "hooks", "key": "ce"}},
        # Its Secret does not exist: a Warning on the trigger, and the others still work.
        {"name": "lost", "type": "JSON", "secretRef": {"name": "absent"}, "events": ["Applied"]},
    ]
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "Deployment", "name": "web"}],
            rollout={"timeout": f"{TIMEOUT_S}s", "notify": receivers},
        ),
    )
    image = imported(kube, namespace)
    kube.wait_for(
        workload_path("Deployment", namespace, "web"),
        lambda d: images_of(d)["web"] == image.reference,
    )

    paths = ("/slack", "/json", "/ce")
    http_receiver.wait(
        lambda: (
            all(http_receiver.at(p) and http_receiver.at(p)[-1].body for p in paths)
            and len(http_receiver.at("/json")) >= 2
        ),
        timeout=20,
        what="Applied at each receiver (the JSON one after a retry)",
    )
    first, retried = http_receiver.at("/json")[:2]
    assert first.body == retried.body  # the same notification, the same id
    document = retried.body
    assert document == {
        "kind": "ImageTriggerNotification",
        "version": 1,
        "id": document["id"],
        "event": "Applied",
        "trigger": {"namespace": namespace, "name": "follow"},
        "image": image.reference,
        "source": {"namespace": namespace, "imageStreamTag": "app:latest"},
        "targets": [{"kind": "Deployment", "name": "web"}],
        "message": f"{image.reference} written to Deployment/web",
        "time": document["time"],
    }
    assert retried.headers["Content-Type"] == "application/json"

    (cloudevent,) = http_receiver.at("/ce")
    assert {k: v for k, v in cloudevent.headers.items() if k.lower().startswith("ce-")} == {
        "ce-specversion": "1.0",
        "ce-id": cloudevent.body["id"],
        "ce-source": (
            f"/apis/imagestream-trigger.dev/v1alpha1/namespaces/{namespace}/imagetriggers/follow"
        ),
        "ce-type": "dev.imagestream-trigger.rollout.applied",
        "ce-time": cloudevent.body["time"],
        "ce-subject": image.reference,
    }
    assert cloudevent.headers["Content-Type"] == "application/json"
    assert cloudevent.body["event"] == "Applied"
    assert cloudevent.body["image"] == image.reference

    (slack,) = http_receiver.at("/slack")
    assert slack.body["text"] == (
        f"Applied: ImageTrigger {namespace}/follow: {image.reference} written to Deployment/web"
    )
    assert [b["type"] for b in slack.body["blocks"]] == ["section", "context"]

    warnings = [
        e["message"]
        for e in events_for(kube, namespace, "follow")
        if e["reason"] == "NotificationFailed"
    ]
    deadline = time.monotonic() + 10
    while not warnings and time.monotonic() < deadline:  # Events are posted in the background
        time.sleep(0.2)
        warnings = [
            e["message"]
            for e in events_for(kube, namespace, "follow")
            if e["reason"] == "NotificationFailed"
        ]
    assert warnings == [f"cannot notify receiver lost: Secret {namespace}/absent does not exist"]

    # The rollout never gets healthy here: reverted once its timeout passes, and told.
    http_receiver.wait(
        lambda: (
            all(
                any(r.body.get("event") == "Reverted" for r in http_receiver.at(p))
                for p in ("/json", "/ce")
            )
            and len(http_receiver.at("/slack")) == 2
        ),
        timeout=TIMEOUT_S + 20,
        what="Reverted at each receiver",
    )
    reverted = http_receiver.at("/json")[-1].body
    assert reverted["event"] == "Reverted"
    assert reverted["targets"] == [{"kind": "Deployment", "name": "web"}]
    assert reverted["message"].startswith("reverted web to quay.io/acme/app:latest: ")
    assert (
        http_receiver.at("/ce")[-1].headers["ce-type"] == "dev.imagestream-trigger.rollout.reverted"
    )
    assert (
        http_receiver.at("/slack")[-1]
        .body["text"]
        .startswith(f"Reverted: ImageTrigger {namespace}/follow: reverted web to ")
    )

    time.sleep(2)  # anything more would be a duplicate
    assert [r.body["event"] for r in http_receiver.at("/json")] == [
        "Applied",
        "Applied",
        "Reverted",
    ]
    assert [r.body["event"] for r in http_receiver.at("/ce")] == ["Applied", "Reverted"]
    metrics = operator.metrics()

    def count(receiver: str, result: str) -> float:
        labels = f'receiver="{namespace}/follow/{receiver}",result="{result}"'
        return metrics.get(f"imagestream_trigger_notifications_total{{{labels}}}", 0.0)

    assert (count("log", "sent"), count("log", "retried"), count("log", "failed")) == (2, 1, 0)
    assert (count("sink", "sent"), count("team", "sent")) == (2, 2)
    assert (count("lost", "sent"), count("lost", "failed")) == (0, 1)


def test_the_secret_is_read_with_the_triggers_service_account(
    kube: Kube, namespace: str, operator: OperatorProcess, http_receiver: HttpReceiver
) -> None:
    service_account(kube, namespace)
    grant(
        kube,
        namespace,
        "deploy",
        [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "patch"]}],
        account=(namespace, "deployer"),
    )
    kube.create(path_for("v1", "secrets", namespace), secret("hooks", url=f"{http_receiver.url}/x"))
    image_stream(kube, namespace)
    create(kube, namespace, workload("Deployment", "web", {"web": f"{REPO}:latest"}))
    create(
        kube,
        namespace,
        image_trigger(
            "follow",
            "app:latest",
            [{"kind": "Deployment", "name": "web"}],
            serviceAccountName="deployer",
            rollout={"notify": [{"name": "log", "type": "JSON", "secretRef": {"name": "hooks"}}]},
        ),
    )
    first = imported(kube, namespace)
    deployment = workload_path("Deployment", namespace, "web")
    kube.wait_for(deployment, lambda d: images_of(d)["web"] == first.reference)
    # The operator could read the Secret; the trigger's ServiceAccount may not.
    message = wait_warning(kube, namespace, "NotificationFailed")
    assert message == (
        f"cannot notify receiver log: ServiceAccount {namespace}/deployer may not read Secret "
        f"{namespace}/hooks: grant it get on secrets in namespace {namespace} "
        "(a Role and a RoleBinding)"
    )
    assert http_receiver.received == []

    grant(
        kube,
        namespace,
        "read-hooks",
        [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": ["hooks"],
                "verbs": ["get"],
            }
        ],
        account=(namespace, "deployer"),
    )
    second = imported(kube, namespace)
    kube.wait_for(deployment, lambda d: images_of(d)["web"] == second.reference)
    http_receiver.wait(lambda: bool(http_receiver.at("/x")), 20, "Applied once granted")
    (body,) = [r.body for r in http_receiver.at("/x")]
    assert (body["event"], body["image"]) == ("Applied", second.reference)
