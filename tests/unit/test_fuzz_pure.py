"""Hostile and odd input through the pure functions: never a traceback, always a clear message.

The inputs come from tests/fuzz/inputs.py, seeded, so a failure reproduces: the assertion
names the case's category and index.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import pytest

from imagestream_trigger.errors import InvalidSpecError
from imagestream_trigger.kinds import Container
from imagestream_trigger.models import MAX_LINE, MAX_LISTED, parse_spec
from imagestream_trigger.resolve import (
    image_repository,
    resolve_all,
    resolve_tag,
    stream_repositories,
)
from imagestream_trigger.triggers import (
    MAX_DEPTH,
    MAX_PROBLEMS,
    ProblemCode,
    check_containers,
    describe_containers,
    parse_triggers_annotation,
)
from tests.fuzz import inputs  # not "import annotations": __future__ has that name
from tests.fuzz.inputs import (
    ODD_TEXT,
    WORKLOAD_KINDS,
    imagestream_bodies,
    imagetrigger_specs,
    json_values,
)

CASES = 1_000
SEEDS = [20_250_601]
MAX_MESSAGE = 2_000


def readable(message: str, where: str) -> None:
    """Non-empty, one line, encodable as UTF-8, and short."""
    assert message.strip(), where
    message.encode("utf-8")  # raises on a lone surrogate
    assert "\n" not in message, where
    assert len(message) <= MAX_MESSAGE, (where, len(message), message[:300])


def encodable(*texts: str) -> None:
    for text in texts:
        text.encode("utf-8")


@pytest.mark.parametrize("seed", SEEDS)
def test_annotations_never_raise_and_report_readably(seed: int) -> None:
    rng = random.Random(seed)
    containers = [
        Container(name=name, image="app", init=init, index=index)
        for index, (name, init) in enumerate([("web", False), ("🚀\ud800", False), ("s", True)])
    ]
    seen: set[str] = set()
    for number, case in enumerate(inputs.annotations(rng, CASES)):
        where = f"case {number} ({case.what}, seed {seed}): {case.value[:200]!r}"
        seen.add(case.what.partition("-")[0])
        for kind in WORKLOAD_KINDS:
            triggers, problems = parse_triggers_annotation(case.value, kind=kind, namespace="ns")
            assert len(problems) <= MAX_PROBLEMS, where
            for problem in problems:
                assert problem.reason in ProblemCode.__members__, where
                readable(problem.message, where)
            if problems and not triggers:
                assert any("OpenShift" in p.message for p in problems), where
            for trigger in triggers:
                encodable(str(trigger.source), trigger.field_path, str(trigger.container))
            for problem in check_containers(triggers, containers):
                readable(problem.message, where)
            if kind != case.kind:
                continue
            if case.problem is not None:
                assert [p.reason for p in problems] == [case.problem], (where, problems)
            if case.problem is ProblemCode.NestedTooDeeply:
                assert triggers == (), where
                assert "nested too deeply" in problems[0].message, where
                assert str(MAX_DEPTH) in problems[0].message, where
                assert "OpenShift ignores the whole annotation" in problems[0].message, where
            if case.honoured:
                assert problems == (), (where, problems)
                assert triggers, where
    assert seen >= {"invalid", "deep", "at", "huge", "wrong", "unicode", "duplicate", "valid"}


def first_entries_only(body: Any) -> Any:
    """``body`` with only the first status.tags and spec.tags entry of each name."""
    if not isinstance(body, dict):
        return body
    copy = dict(body)
    for part, key in (("status", "tag"), ("spec", "name")):
        section = copy.get(part)
        if isinstance(section, dict) and isinstance(section.get("tags"), list):
            seen: set[str] = set()
            kept = []
            for entry in section["tags"]:
                name = entry.get(key) if isinstance(entry, dict) else None
                if isinstance(name, str):
                    if name in seen:
                        continue
                    seen.add(name)
                kept.append(entry)
            copy[part] = {**section, "tags": kept}
    return copy


@pytest.mark.parametrize("seed", SEEDS)
def test_imagestreams_resolve_totally(seed: int) -> None:
    rng = random.Random(seed)
    bodies: list[Any] = [
        *imagestream_bodies(rng, CASES),
        *imagestream_bodies(rng, CASES // 4, strict=True),
        *json_values(rng, CASES // 4),
        *({"status": value, "spec": value} for value in json_values(rng, CASES // 4)),
    ]
    for number, body in enumerate(bodies):
        where = f"body {number} (seed {seed})"
        stream: Mapping[str, Any] = body
        resolved = resolve_all(stream)
        for name, image in resolved.items():
            encodable(name, image.reference, image.image, image.created or "")
            assert image.reference, where
            assert resolve_tag(stream, name) == image, where
        assert resolve_all(first_entries_only(body)) == resolved, where
        for repository in stream_repositories(stream):
            encodable(repository)
            assert repository, where
        for tag in ("latest", "", "🚀", "\ud800", "v1"):
            found = resolve_tag(stream, tag)
            if found is not None:
                encodable(found.reference, found.image)
    for value in json_values(rng, CASES):
        image_repository(value)


def test_odd_pull_specs_split_into_a_repository() -> None:
    for text in ODD_TEXT:
        for spec in (text, f"{text}:{text}", f"{text}@{text}", f"a/{text}:v1@sha256:x"):
            repository = image_repository(spec)
            assert "@" not in repository


def spec_error(spec: Any) -> InvalidSpecError | None:
    """What parse_spec raises for ``spec``: None if it accepts it; anything else propagates."""
    try:
        parse_spec(spec)
    except InvalidSpecError as error:
        return error
    return None


@pytest.mark.parametrize("seed", SEEDS)
def test_specs_raise_only_invalid_spec_error_with_a_readable_message(seed: int) -> None:
    rng = random.Random(seed)
    outcomes: dict[str, set[bool]] = {}
    for number, case in enumerate(imagetrigger_specs(rng, CASES)):
        where = f"spec {number} ({case.what}, seed {seed})"
        error = spec_error(case.spec)
        if error is not None:
            encodable(error.message)
            assert error.message == "; ".join(error.problems), where
            assert len(error.problems) <= MAX_LISTED + 1, where
            for problem in error.problems:
                assert problem.strip(), where
                assert "\n" not in problem, where
                assert len(problem) <= MAX_LINE, (where, problem)
        accepted = error is None
        outcomes.setdefault(case.what.partition("-")[0], set()).add(accepted)
        if case.valid is not None:
            assert accepted is case.valid, (where, error and error.message)
    assert outcomes["extreme"] == {True}
    assert outcomes["rejected"] == outcomes["runtime"] == {False}


def test_describe_containers_lists_a_few_names_of_a_huge_pod() -> None:
    many = [Container(name=f"c{i}" * 50, image="", init=i % 2 == 0, index=i) for i in range(500)]
    described = describe_containers(many)
    assert "and 240 more" in described
    readable(described, "500 containers")
