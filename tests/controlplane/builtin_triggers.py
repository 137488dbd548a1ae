"""OpenShift's own image trigger controller, emulated, to test running beside it.

On crc and OpenShift, openshift-controller-manager applies the
``image.openshift.io/triggers`` annotation too. This is a small, independent
rendering of its algorithm (openshift-controller-manager's image trigger
controller with library-go's annotation updater), written from their
behaviour, not from our operator's code, so that a test of both running
together proves something:

* an ImageStream informer, and one informer per workload kind feeding a cache
  of triggers indexed by source stream; only ``from.kind: ImageStreamTag``
  entries are indexed;
* an ImageStream add or update queues every workload indexed on it; a workload's
  own add or update queues it, and then ALL of its triggers are applied, whatever
  their ``from.kind`` (the updater does not check it);
* the annotation is decoded as a whole: invalid JSON, or ``paused`` that is not a
  boolean, and the object is skipped; an entry whose name lacks ``:``, whose stream
  or tag is unknown, or whose container is not found is skipped alone;
* a tag resolves to ``items[0]`` (``Local`` reference policy honoured);
* only the image is written, only when it differs, with a full PUT at the
  resourceVersion read; a 409 queues the object again;
* 5 workers; no bookkeeping annotation; no Events.

Run as its own process, so a test can start and kill it like a controller:
``python -m tests.controlplane.builtin_triggers --server URL --token-file F --ca-file F``.
It prints ``ready`` once every informer has listed. ``BuiltinTriggers`` starts it.
"""

from __future__ import annotations

import argparse
import json
import logging
import queue
import re
import select
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.controlplane.kube import ApiError, Kube, path_for
from tests.controlplane.openshift import resolve_latest_tagged_image

log = logging.getLogger("builtin-triggers")

ANNOTATION = "image.openshift.io/triggers"
# The field manager its writes are recorded under (managedFields), as OpenShift's is.
MANAGER = "openshift-controller-manager"
WORKERS = 5
STREAMS = ("image.openshift.io/v1", "imagestreams")
# kind -> (apiVersion, plural, pod spec path)
WORKLOADS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "Deployment": ("apps/v1", "deployments", ("spec", "template", "spec")),
    "StatefulSet": ("apps/v1", "statefulsets", ("spec", "template", "spec")),
    "DaemonSet": ("apps/v1", "daemonsets", ("spec", "template", "spec")),
    "CronJob": ("batch/v1", "cronjobs", ("spec", "jobTemplate", "spec", "template", "spec")),
}
_FIELD = re.compile(
    r'^(?P<list>containers|initContainers)\[(?:(?P<index>\d+)|\?\(@\.name=="(?P<name>[^"]*)"\))\]\.image$'
)

Key = tuple[str, str, str]  # kind, namespace, name


def decode_triggers(raw: str) -> list[dict[str, Any]] | None:
    """The annotation's entries, or None when OpenShift would reject the whole of it."""
    try:
        entries = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(entries, list):
        return None
    for entry in entries:
        if not isinstance(entry, dict):
            return None
        if "paused" in entry and not isinstance(entry["paused"], bool):
            return None  # Go's json.Unmarshal into a bool fails for "false"
        source = entry.get("from")
        if not isinstance(source, dict) or not isinstance(entry.get("fieldPath", ""), str):
            return None
    return entries


def source_of(entry: Mapping[str, Any], namespace: str) -> tuple[str, str, str] | None:
    """(namespace, stream, tag) of an entry, or None when its name has no ':'."""
    source = entry.get("from") or {}
    name = str(source.get("name") or "")
    if ":" not in name:
        return None
    stream, tag = name.split(":", 1)
    return (str(source.get("namespace") or namespace), stream, tag)


def container_for(obj: dict[str, Any], kind: str, field_path: str) -> dict[str, Any] | None:
    """The container a fieldPath names, or None."""
    base = WORKLOADS[kind][2]
    prefix = ".".join(base) + "."
    if not field_path.startswith(prefix):
        return None
    match = _FIELD.match(field_path[len(prefix) :])
    if match is None:
        return None
    pod: Any = obj
    for part in base:
        pod = pod.get(part) if isinstance(pod, dict) else None
    containers = (pod or {}).get(match.group("list")) or []
    if match.group("index") is not None:
        index = int(match.group("index"))
        return containers[index] if index < len(containers) else None
    return next((c for c in containers if c.get("name") == match.group("name")), None)


def apply_triggers(
    obj: dict[str, Any], kind: str, streams: Mapping[tuple[str, str], Mapping[str, Any]]
) -> bool:
    """Set every unpaused trigger's image in ``obj``; whether anything changed."""
    meta = obj.get("metadata") or {}
    entries = decode_triggers((meta.get("annotations") or {}).get(ANNOTATION, ""))
    changed = False
    for entry in entries or []:
        if entry.get("paused"):
            continue
        source = source_of(entry, str(meta.get("namespace") or ""))
        if source is None:
            continue
        stream = streams.get(source[:2])
        reference = resolve_latest_tagged_image(stream, source[2]) if stream else None
        container = container_for(obj, kind, str(entry.get("fieldPath") or ""))
        if reference is None or container is None:
            continue
        if container.get("image") != reference:
            container["image"] = reference
            changed = True
    return changed


class Controller:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.lock = threading.Lock()
        self.streams: dict[tuple[str, str], dict[str, Any]] = {}
        self.objects: dict[Key, dict[str, Any]] = {}
        self.by_stream: defaultdict[tuple[str, str], set[Key]] = defaultdict(set)
        self.queue: queue.Queue[Key] = queue.Queue()
        self.queued: set[Key] = set()
        self.writes = 0

    def enqueue(self, key: Key) -> None:
        with self.lock:
            if key in self.queued:
                return
            self.queued.add(key)
        self.queue.put(key)

    # -- informers -----------------------------------------------------------------

    def on_stream(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        with self.lock:
            if event == "DELETED":  # OpenShift has no delete handling: nothing is queued
                self.streams.pop(key, None)
                return
            self.streams[key] = obj
            followers = sorted(self.by_stream.get(key, ()))
        for follower in followers:
            self.enqueue(follower)

    def on_workload(self, kind: str, event: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = (kind, meta["namespace"], meta["name"])
        with self.lock:
            for followers in self.by_stream.values():
                followers.discard(key)
            if event == "DELETED":
                self.objects.pop(key, None)
                return
            self.objects[key] = obj
            raw = (meta.get("annotations") or {}).get(ANNOTATION)
            entries = decode_triggers(raw) if raw is not None else None
            for entry in entries or []:
                source = source_of(entry, meta["namespace"])
                if source and (entry.get("from") or {}).get("kind") == "ImageStreamTag":
                    self.by_stream[source[:2]].add(key)
        if raw is not None:
            self.enqueue(key)

    def inform(self, kind: str, api_version: str, plural: str, ready: threading.Event) -> None:
        handler = self.on_stream if kind == "ImageStream" else self.on_workload
        path = path_for(api_version, plural)
        while True:
            try:
                listed = self.kube.get(path)
                for item in listed["items"]:
                    handler(kind, "ADDED", item)
                ready.set()
                version = listed["metadata"]["resourceVersion"]
                while True:
                    for event in self.kube.watch(path, resource_version=version, timeout=60):
                        if event["type"] == "ERROR":
                            raise ApiError(410, event["object"], "WATCH", path)
                        if event["type"] == "BOOKMARK":
                            continue
                        version = event["object"]["metadata"]["resourceVersion"]
                        handler(kind, event["type"], event["object"])
            except Exception as error:  # relist, as an informer does
                log.warning("%s informer: %s; listing again", kind, error)
                time.sleep(0.5)

    # -- workers -----------------------------------------------------------------------

    def work(self) -> None:
        while True:
            key = self.queue.get()
            with self.lock:
                self.queued.discard(key)
                cached = self.objects.get(key)
                streams = dict(self.streams)
            if cached is None:
                continue
            obj = json.loads(json.dumps(cached))
            kind, namespace, name = key
            if not apply_triggers(obj, kind, streams):
                continue
            api_version, plural, _ = WORKLOADS[kind]
            try:
                self.kube.request(
                    "PUT",
                    path_for(api_version, plural, namespace, name),
                    obj,
                    query={"fieldManager": MANAGER},
                )
                self.writes += 1
                log.info("updated %s %s/%s", kind, namespace, name)
            except ApiError as error:
                if error.status == 409:  # re-read (from the informer) and try again
                    time.sleep(0.05)
                    self.enqueue(key)
                elif error.status != 404:
                    log.warning("%s %s/%s: %s", kind, namespace, name, error)

    def run(self) -> None:
        ready: list[threading.Event] = []
        for kind, (api_version, plural) in [
            ("ImageStream", STREAMS),
            *((k, (v[0], v[1])) for k, v in WORKLOADS.items()),
        ]:
            event = threading.Event()
            ready.append(event)
            threading.Thread(
                target=self.inform, args=(kind, api_version, plural, event), daemon=True
            ).start()
        for event in ready:
            event.wait()
        for _ in range(WORKERS):
            threading.Thread(target=self.work, daemon=True).start()
        print("ready", flush=True)
        threading.Event().wait()


class BuiltinTriggers:
    """The emulated controller as a child process: ``start()``, ``stop()``."""

    def __init__(self, server: str, token: str, ca_file: Path, log_file: Path) -> None:
        self.args = [server, token, str(ca_file)]
        self.log_file = log_file
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> BuiltinTriggers:
        token_file = self.log_file.with_suffix(".token")
        token_file.write_text(self.args[1])
        token_file.chmod(0o600)
        log_handle = self.log_file.open("a")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.controlplane.builtin_triggers",
                "--server",
                self.args[0],
                "--token-file",
                str(token_file),
                "--ca-file",
                self.args[2],
            ],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            stderr=log_handle,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self._lines(deadline):
            if line.strip() == "ready":
                return self
        self.stop()
        raise RuntimeError(f"the emulated trigger controller did not start: see {self.log_file}")

    def _lines(self, deadline: float) -> Iterator[str]:
        assert self.process is not None
        assert self.process.stdout is not None
        while (left := deadline - time.monotonic()) > 0 and self.process.poll() is None:
            readable, _, _ = select.select([self.process.stdout], [], [], left)
            if readable:
                yield self.process.stdout.readline()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> BuiltinTriggers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--ca-file", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    kube = Kube(args.server, Path(args.token_file).read_text().strip(), args.ca_file)
    Controller(kube).run()


if __name__ == "__main__":
    main()
