"""The shipped memory request and limit follow the documented formula, from a measurement.

bench/memory-model.json is the one place the numbers live: the base and the bytes per
watched object (no lower than the large benchmark run it names), the headroom of the
limit and the design size. manifests/ and the chart must ship what the formula gives at
that size, and docs/helm.md must state the formula with those numbers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import memory

REPO = Path(__file__).resolve().parents[2]
MODEL = memory.load_model()
DESIGN = MODEL["design_objects"]


def mebibytes(quantity: str) -> int:
    match = re.fullmatch(r"(\d+)Mi", quantity)
    assert match, f"memory {quantity!r} is not in Mi: the formula is in MiB"
    return int(match.group(1))


def manifests_resources() -> dict[str, Any]:
    docs = yaml.safe_load_all((REPO / "manifests" / "deployment.yaml").read_text())
    (deployment,) = [d for d in docs if d and d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    resources: dict[str, Any] = container["resources"]
    return resources


def chart_resources() -> dict[str, Any]:
    values = yaml.safe_load((REPO / "helm" / "imagestream-trigger" / "values.yaml").read_text())
    resources: dict[str, Any] = values["resources"]
    return resources


@pytest.mark.parametrize(
    "where", [manifests_resources, chart_resources], ids=["manifests", "chart"]
)
def test_shipped_memory_is_the_formula_at_the_design_size(where: Any) -> None:
    resources = where()
    request = mebibytes(resources["requests"]["memory"])
    limit = mebibytes(resources["limits"]["memory"])
    assert request == memory.request_mib(MODEL, DESIGN), (
        f"request {request}Mi; bench/memory-model.json gives "
        f"{memory.request_mib(MODEL, DESIGN)}Mi for {DESIGN} watched objects"
    )
    assert limit == memory.limit_mib(MODEL, DESIGN), (
        f"limit {limit}Mi; bench/memory-model.json gives "
        f"{memory.limit_mib(MODEL, DESIGN)}Mi for {DESIGN} watched objects"
    )
    # The limit covers the measured peak at the design size, with room to spare.
    assert limit > MODEL["base_mib"] + MODEL["per_object_bytes"] * DESIGN / memory.MIB


def test_the_model_is_no_lower_than_the_run_it_names() -> None:
    results = json.loads((REPO / MODEL["measured"]).read_text())
    measured = results["memory"]
    assert results["config"]["size"] == "large"
    assert MODEL["base_mib"] >= measured["base_mb"]
    assert MODEL["per_object_bytes"] >= measured["bytes_per_object"]
    # And the run itself fits: what the formula gives for its objects covers its peak.
    assert memory.request_mib(MODEL, measured["watched_objects"]) >= measured["peak_rss_mb"]


def test_docs_state_the_formula_with_the_models_numbers() -> None:
    text = " ".join((REPO / "docs" / "helm.md").read_text().split())
    for number in (
        f"{MODEL['base_mib']} MiB",
        f"{MODEL['per_object_bytes']:,} bytes",
        f"{MODEL['limit_headroom']}",
        f"{DESIGN:,}",
    ):
        assert number in text, f"docs/helm.md does not state {number!r} of the memory formula"


def test_the_formula_grows_with_the_objects() -> None:
    assert memory.request_mib(MODEL, 0) >= MODEL["base_mib"]
    assert memory.request_mib(MODEL, 2 * DESIGN) > memory.request_mib(MODEL, DESIGN)
    assert memory.limit_mib(MODEL, DESIGN) >= memory.request_mib(MODEL, DESIGN)
    for value in (memory.request_mib(MODEL, DESIGN), memory.limit_mib(MODEL, DESIGN)):
        assert value % memory.STEP_MIB == 0
