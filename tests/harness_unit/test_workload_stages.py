"""The never-ready image pattern: the digests tests make and kwok's stages agree on it."""

from __future__ import annotations

import re

import yaml

from tests.controlplane import openshift, workloads


def stages() -> dict[str, dict[str, object]]:
    docs = yaml.safe_load_all(workloads.STAGES.read_text())
    return {doc["metadata"]["name"]: doc for doc in docs}


def test_a_never_ready_digest_is_a_valid_digest_with_the_marker() -> None:
    digest = workloads.never_ready_digest("v2")

    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert digest.startswith(workloads.NEVER_READY_DIGEST_PREFIX)
    assert digest == workloads.never_ready_digest("v2")
    assert digest != workloads.never_ready_digest("v3")


def test_ordinary_test_digests_do_not_carry_the_marker() -> None:
    made = [openshift.digest_for(str(seed)) for seed in range(2000)]

    assert not [d for d in made if d.startswith(workloads.NEVER_READY_DIGEST_PREFIX)]


def test_the_stages_use_the_same_marker_as_the_python_side() -> None:
    marker = f'"@{workloads.NEVER_READY_DIGEST_PREFIX}"'
    found = stages()

    assert set(found) == {"node-ready", "pod-ready", "pod-never-ready", "pod-delete"}
    for name, wanted in (("pod-ready", "DoesNotExist"), ("pod-never-ready", "Exists")):
        spec = found[name]["spec"]
        assert isinstance(spec, dict)
        (pattern,) = [e for e in spec["selector"]["matchExpressions"] if marker in e["key"]]
        assert pattern["operator"] == wanted
    # The per-container readiness in the never-ready pod's status uses it too.
    never = found["pod-never-ready"]["spec"]
    assert isinstance(never, dict)
    assert marker in never["next"]["statusTemplate"]
