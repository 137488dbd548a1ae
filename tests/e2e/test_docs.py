"""The examples in README.md and docs/ are real, and docs/metrics.md matches the operator.

Every ```yaml block of README.md and docs/*.md must hold Kubernetes objects, unless the
nearest non-blank line above it is ``<!-- not-applied -->``. Each object is created with
server-side dry run (nothing is stored) in a fresh namespace of the real control plane, so
the very CRD schemas and CEL rules users get judge it. The operator's own checks run too:
an ImageTrigger's spec must pass its runtime model (``parse_spec``), and a workload's
``image.openshift.io/triggers`` annotation must raise no problem in its parser.

docs/metrics.md must name every metric of the operator's registry and no other, and its
summary table must give each one's type and label names; no page may name a metric the
operator does not have, and metrics.md must say which series only appear at their first
count.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from imagestream_trigger.api import TRIGGERS_ANNOTATION, TargetKind
from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.kinds import containers_of
from imagestream_trigger.models import parse_spec
from imagestream_trigger.report.metrics import Metrics
from imagestream_trigger.triggers import check_containers, parse_triggers_annotation
from tests.controlplane.kube import KINDS, ApiError, Kube, object_path

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
METRICS_DOC = ROOT / "docs" / "metrics.md"
SKIP_MARKER = "<!-- not-applied -->"
FENCE = re.compile(r"^```\s*(?P<lang>[\w-]*)\s*$")
WORKLOADS = {kind.value for kind in TargetKind} - {TargetKind.BuildConfig.value}


@dataclass(frozen=True)
class Example:
    path: Path
    line: int  # 1-based line of the opening fence
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[tuple[str, int, str, bool]]:
    """(language, line, text, marked not-applied) of every fenced block in a Markdown file."""
    blocks = []
    lines = path.read_text().splitlines()
    number = 0
    while number < len(lines):
        opening = FENCE.match(lines[number])
        if opening is None:
            number += 1
            continue
        previous = next((line.strip() for line in reversed(lines[:number]) if line.strip()), "")
        end = number + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        text = "\n".join(lines[number + 1 : end])
        blocks.append((opening["lang"], number + 1, text, previous == SKIP_MARKER))
        number = end + 1
    return blocks


def yaml_examples() -> list[Example]:
    return [
        Example(path, line, text)
        for path in DOCS
        if path.exists()
        for lang, line, text, skipped in fenced_blocks(path)
        if lang in ("yaml", "yml") and not skipped
    ]


EXAMPLES = yaml_examples()


def objects_of(example: Example) -> list[dict[str, Any]]:
    """The Kubernetes objects of one block, with a message saying how to fix a bad block."""
    objects = []
    for document in yaml.safe_load_all(example.text):
        if document is None:
            continue
        is_object = isinstance(document, dict) and {"apiVersion", "kind"} <= document.keys()
        assert is_object, (
            f"{example.where}: a yaml block must hold Kubernetes objects; "
            f"put {SKIP_MARKER} on the line above it if it is not meant to be applied"
        )
        assert document["kind"] in KINDS, (
            f"{example.where}: kind {document['kind']} is unknown to the test client; put "
            f"{SKIP_MARKER} on the line above the block, or add it to KINDS in "
            "tests/controlplane/kube.py"
        )
        assert document.get("metadata", {}).get("name"), f"{example.where}: metadata.name"
        objects.append(document)
    assert objects, f"{example.where}: empty yaml block"
    return objects


def test_the_docs_have_examples_to_check() -> None:
    kinds = {
        document.get("kind")
        for example in EXAMPLES
        for document in yaml.safe_load_all(example.text)
        if isinstance(document, dict)
    }
    assert {"ImageTrigger", "ImageStream", "Deployment", "BuildConfig"} <= kinds


def invalid_spec(spec: Any) -> str | None:
    """The InvalidSpec message the operator would report for ``spec``, or None."""
    try:
        parse_spec(spec)
    except InvalidSpecError as error:
        return f"InvalidSpec: {error.message}"
    return None


def dry_run_create(kube: Kube, example: Example, obj: dict[str, Any]) -> dict[str, Any]:
    """Create ``obj`` with server-side dry run; fail the test with the server's words."""
    try:
        # Strict, as `oc apply` asks: a misspelt field fails instead of being dropped.
        stored: dict[str, Any] = kube.create(
            object_path(obj, with_name=False), obj, dryRun="All", fieldValidation="Strict"
        )
    except ApiError as error:
        refused = error
    else:
        return stored
    if refused.status == 404:
        pytest.fail(
            f"{example.where}: kind {obj['kind']} is not served by the test control plane; "
            f"put {SKIP_MARKER} on the line above the block, or install its CRD in "
            "tests/conftest.py"
        )
    pytest.fail(f"{example.where}: the API server refused {obj['kind']}: {refused}")


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.where for e in EXAMPLES])
def test_yaml_example_is_accepted(kube: Kube, namespace: str, example: Example) -> None:
    for written in objects_of(example):
        obj = copy.deepcopy(written)
        kind = obj["kind"]
        _, namespaced = KINDS[kind]
        if namespaced:
            obj["metadata"]["namespace"] = namespace
        stored = dry_run_create(kube, example, obj)

        if kind == "ImageTrigger":
            # As written, and as stored with the CRD's defaults applied.
            for spec in (written["spec"], stored["spec"]):
                problem = invalid_spec(spec)
                assert problem is None, f"{example.where}: the operator reports {problem}"
        annotation = (obj["metadata"].get("annotations") or {}).get(TRIGGERS_ANNOTATION)
        if kind in WORKLOADS and annotation is not None:
            triggers, problems = parse_triggers_annotation(
                annotation, kind=kind, namespace=namespace
            )
            problems += check_containers(triggers, containers_of(kind, obj))
            assert not problems, f"{example.where}: {[p.message for p in problems]}"
            assert triggers, f"{example.where}: the annotation declares no trigger"


# -- docs/metrics.md ---------------------------------------------------------------------

# Sample suffixes a histogram is queried by, besides its own name.
HISTOGRAM_SAMPLES = ("_bucket", "_sum", "_count")
# How docs/metrics.md spells prometheus-client's family types.
DOC_TYPES = {
    "counter": "counter",
    "gauge": "gauge",
    "histogram": "histogram",
    "gauge (info)": "info",
}
NAME_CELL = re.compile(r"`(?P<name>imagestream_trigger_\w+)`")


@dataclass(frozen=True)
class Exposed:
    name: str  # as scraped: counters end in _total, infos in _info
    type: str
    labels: frozenset[str]


def exposed_metrics() -> dict[str, Exposed]:
    """Every metric of the operator's registry, with its label names."""
    metrics = Metrics()
    # A labelled metric shows its label names only once a child exists; prometheus-client
    # keeps the names in _labelnames and offers no public accessor.
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase) and value._labelnames:
            value.labels(*("x" for _ in value._labelnames))
    exposed = {}
    for family in metrics.registry.collect():
        name = family.name + {"counter": "_total", "info": "_info"}.get(family.type, "")
        labels = {key for sample in family.samples for key in sample.labels} - {"le"}
        exposed[name] = Exposed(name, family.type, frozenset(labels))
    return exposed


def mentioned_metrics(text: str) -> set[str]:
    # Not inside a recording rule's name (job:imagestream_trigger_decisions:increase30m).
    return set(re.findall(r"(?<![\w:-])imagestream_trigger_[a-z0-9_]+(?!:)", text))


def queryable_metrics() -> set[str]:
    """Every name a query can use: the metrics, and a histogram's sample suffixes."""
    exposed = exposed_metrics()
    return set(exposed) | {
        name + suffix
        for name, metric in exposed.items()
        if metric.type == "histogram"
        for suffix in HISTOGRAM_SAMPLES
    }


def test_every_metric_is_documented_and_every_documented_metric_exists() -> None:
    exposed = exposed_metrics()
    mentioned = mentioned_metrics(METRICS_DOC.read_text())
    unknown = sorted(mentioned - queryable_metrics())
    assert not unknown, f"docs/metrics.md names metrics the operator does not have: {unknown}"
    undocumented = sorted(set(exposed) - mentioned)
    assert not undocumented, f"metrics missing from docs/metrics.md: {undocumented}"


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_metric_any_page_names_exists(path: Path) -> None:
    unknown = sorted(mentioned_metrics(path.read_text()) - queryable_metrics())
    assert not unknown, (
        f"{path.relative_to(ROOT)} names metrics the operator does not have: {unknown}"
    )


def test_metrics_md_says_which_series_appear_only_at_their_first_count() -> None:
    # Every other labelled metric has all its series at 0 from the start (Metrics._zero_series).
    metrics = Metrics()
    late = {
        family.name + {"counter": "_total"}.get(family.type, "")
        for family in metrics.registry.collect()
        if not family.samples
    }
    (sentence,) = [
        s for s in re.split(r"(?<=\.)\s", METRICS_DOC.read_text()) if "at their first count" in s
    ]
    assert mentioned_metrics(sentence) == late


def test_the_metrics_table_gives_each_type_and_label_set() -> None:
    exposed = exposed_metrics()
    rows = {}
    for line in METRICS_DOC.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        first = NAME_CELL.fullmatch(cells[0])
        if line.startswith("|") and len(cells) == 3 and first:
            labels = frozenset(re.findall(r"`(\w+)`", cells[2]))
            rows[first["name"]] = Exposed(first["name"], DOC_TYPES[cells[1]], labels)
    assert rows == exposed
