"""Hostile and odd input, generated (tests/fuzz/inputs.py), against the running operator.

More than a thousand objects the API server accepts but nobody should write:
annotations of every malformed kind (10,000-deep nesting, 200 KB strings,
wrong types, lone surrogates), ImageStream statuses that are odd, and
ImageTriggers with extreme values. Afterwards the operator still serves a
canary, its log holds no traceback, and each rejected annotation got exactly
one Warning Event per problem, the very sentence the parser gives.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from imagestream_trigger.api import TargetKind
from imagestream_trigger.index import Indexes, stream_info, workload_info
from imagestream_trigger.plan import plan_annotated
from imagestream_trigger.report.events import MAX_MESSAGE
from tests.controlplane.kube import ApiError, Kube, path_for
from tests.controlplane.operator_process import OperatorProcess
from tests.e2e.objects import (
    IMAGE,
    REPO,
    TRIGGERS,
    by_name,
    create,
    image_stream,
    image_trigger,
    images_of,
    imported,
    trigger_annotation,
    workload,
    workload_path,
)
from tests.fuzz import inputs

SEED = 20261129
ANNOTATIONS = 760
STREAMS = 200
SPECS = 150
CANARY = "canary-zz9"  # a stream no generated annotation follows
CONTAINERS = {"web": f"{REPO}:latest", "side": "quay.io/acme/side:1"}


def expected_problems(world: Indexes, obj: dict[str, Any]) -> list[str]:
    """What the operator must say of a workload, given the streams there are."""
    info = workload_info(TargetKind(obj["kind"]), obj, native=True)
    return [p.message[:MAX_MESSAGE] for p in plan_annotated(world, info).problems]


def try_create(kube: Kube, namespace: str, obj: dict[str, Any]) -> dict[str, Any] | None:
    try:
        json.dumps(obj)
    except RecursionError:  # too deep for any client to send
        return None
    try:
        return create(kube, namespace, obj)
    except ApiError as error:
        if error.status in (400, 413, 422):  # refused by the API server: not our input
            return None
        raise


def test_a_thousand_hostile_inputs_leave_the_operator_serving_and_clear(
    kube: Kube, namespace: str, operator: OperatorProcess
) -> None:
    rng = random.Random(SEED)
    workloads = [
        workload(case.kind, f"w{number}", CONTAINERS, annotation=case.value)
        for number, case in enumerate(inputs.annotations(rng, ANNOTATIONS))
    ]
    streams = []
    for number, body in enumerate(inputs.imagestream_bodies(rng, STREAMS, strict=True)):
        body = dict(body)
        body["metadata"] = {**(body.get("metadata") or {}), "name": f"s{number}"}
        body["metadata"].pop("namespace", None)
        streams.append(body)
    triggers = []
    for number, case in enumerate(inputs.imagetrigger_specs(rng, SPECS)):
        triggers.append(
            {
                "apiVersion": TRIGGERS,
                "kind": "ImageTrigger",
                "metadata": {"name": f"t{number}"},
                "spec": case.spec,
            }
        )

    with ThreadPoolExecutor(8) as pool:
        made_workloads = list(pool.map(lambda o: try_create(kube, namespace, o), workloads))
        made_streams = list(pool.map(lambda o: _stream(kube, namespace, o), streams))
        made_triggers = list(pool.map(lambda o: try_create(kube, namespace, o), triggers))
    admitted = (
        sum(o is not None for o in made_workloads)
        + sum(made_streams)
        + sum(o is not None for o in made_triggers)
    )
    assert admitted >= 1000, f"only {admitted} inputs were admitted"

    # The canary: an annotated Deployment and an ImageTrigger target on a clean stream.
    image_stream(kube, namespace, CANARY)
    create(
        kube,
        namespace,
        workload(
            "Deployment",
            "canary",
            {"app": f"{REPO}:latest"},
            annotation=trigger_annotation(by_name("app", tag=f"{CANARY}:latest")),
        ),
    )
    create(kube, namespace, workload("Deployment", "canary-t", {"app": f"{REPO}:latest"}))
    create(
        kube,
        namespace,
        image_trigger("canary", f"{CANARY}:latest", [{"kind": "Deployment", "name": "canary-t"}]),
    )
    moved = imported(kube, namespace, CANARY)
    for name in ("canary", "canary-t"):
        kube.wait_for(
            workload_path("Deployment", namespace, name),
            lambda d: images_of(d)["app"] == moved.reference,
            timeout=120,
        )

    # Every admitted ImageTrigger got a verdict in its status.
    for made in made_triggers:
        if made is not None:
            name = made["metadata"]["name"]
            kube.wait_for(
                path_for(TRIGGERS, "imagetriggers", namespace, name),
                lambda t: any(
                    c.get("type") == "Ready" for c in (t.get("status") or {}).get("conditions", [])
                ),
                timeout=60,
            )

    # Exactly one Warning per problem of each rejected annotation, in the parser's words.
    world = Indexes()
    for body in kube.get(path_for(IMAGE, "imagestreams", namespace))["items"]:
        if body["metadata"]["name"] != CANARY:
            world.streams.put(stream_info(body))
    expected = {
        made["metadata"]["name"]: expected_problems(world, made)
        for made in made_workloads
        if made is not None
    }
    wanted = sum(len(problems) for problems in expected.values())

    def warnings() -> dict[str, Counter[str]]:
        found: dict[str, Counter[str]] = {}
        items = kube.get(path_for("v1", "events", namespace), fieldSelector="type=Warning")
        for event in items["items"]:
            name = event["involvedObject"]["name"]
            if event["involvedObject"]["kind"] != "ImageTrigger" and name in expected:
                found.setdefault(name, Counter())[event["message"]] += 1
        return found

    kube.wait_for(
        path_for("v1", "events", namespace),
        lambda _: sum(sum(c.values()) for c in warnings().values()) >= wanted,
        timeout=120,
        interval=0.5,
    )
    found = warnings()
    for name, problems in expected.items():
        assert found.get(name, Counter()) == Counter(problems), name
    deep = [
        name
        for name, problems in expected.items()
        if any("nested too deeply" in p for p in problems)
    ]
    assert deep, "the generator made no deeply nested annotation"

    operator.check_alive()
    log = operator.output()
    assert "Traceback" not in log, operator.tail()
    assert "Logging error" not in log


def _stream(kube: Kube, namespace: str, body: dict[str, Any]) -> bool:
    """Create an ImageStream, then give it its odd status; False if either is refused."""
    status = body.pop("status", None)
    name = body["metadata"]["name"]
    if try_create(kube, namespace, {**body, "apiVersion": IMAGE, "kind": "ImageStream"}) is None:
        return False
    if status is None:
        return True
    try:
        kube.patch(
            path_for(IMAGE, "imagestreams", namespace, name) + "/status",
            {"status": status},
            "merge",
        )
    except ApiError as error:
        if error.status in (400, 413, 422):
            return False
        raise
    return True
