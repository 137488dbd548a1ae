"""The emulated OpenShift rules (controlplane/openshift.py) and CRDs behave as OpenShift does."""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.controlplane import openshift

NOW = dt.datetime(2025, 1, 10, 10, 15, 2, tzinfo=dt.UTC)
EARLIER = "2025-01-09T08:00:00Z"
REGISTRY = "image-registry.openshift-image-registry.svc:5000"
CRDS = Path(__file__).resolve().parents[1] / "controlplane" / "crds"
DIGEST_A = openshift.digest_for("a")
DIGEST_B = openshift.digest_for("b")


def remote(digest: str) -> str:
    return f"quay.io/acme/app@{digest}"


def stream(
    *,
    spec_tags: list[dict[str, Any]] | None = None,
    status_tags: list[dict[str, Any]] | None = None,
    generation: int | None = 2,
    repository: str | None = f"{REGISTRY}/demo/app",
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStream",
        "metadata": {
            "name": "app",
            "namespace": "demo",
            "uid": "is-uid",
            "resourceVersion": "42",
            "labels": {"team": "a"},
        },
        "spec": {"lookupPolicy": {"local": False}, "tags": spec_tags or []},
        "status": {"tags": status_tags or []},
    }
    if generation is not None:
        obj["metadata"]["generation"] = generation
    if repository is not None:
        obj["status"]["dockerImageRepository"] = repository
    return obj


def spec_tag(name: str = "latest", generation: int | None = 2, **extra: Any) -> dict[str, Any]:
    tag: dict[str, Any] = {
        "name": name,
        "from": {"kind": "DockerImage", "name": f"quay.io/acme/app:{name}"},
        "generation": generation,
        "importPolicy": {"importMode": "Legacy"},
        "referencePolicy": {"type": "Source"},
    }
    tag.update(extra)
    return tag


def item(
    digest: str, generation: int = 1, created: str = EARLIER, ref: str | None = None
) -> dict[str, Any]:
    return {
        "created": created,
        "dockerImageReference": ref or remote(digest),
        "image": digest,
        "generation": generation,
    }


def tag_items(status: dict[str, Any], tag: str = "latest") -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = next(t for t in status["tags"] if t["tag"] == tag)["items"]
    return items


# --------------------------------------------------------------------------- digest_for


def test_digest_for_is_deterministic_sha256() -> None:
    assert openshift.digest_for("x") == openshift.digest_for("x")
    assert openshift.digest_for("x") != openshift.digest_for("y")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", openshift.digest_for("x"))


# --------------------------------------------------------------------------- apply_import

IMPORT_CASES = [
    pytest.param(
        stream(spec_tags=[spec_tag()]),
        "latest",
        DIGEST_A,
        [item(DIGEST_A, 2, openshift.rfc3339(NOW))],
        id="first-import-of-spec-tag-creates-status-entry-with-spec-generation",
    ),
    pytest.param(
        stream(
            spec_tags=[spec_tag(generation=1)],
            status_tags=[{"tag": "latest", "items": [item(DIGEST_A)]}],
        ),
        "latest",
        DIGEST_A,
        [item(DIGEST_A)],
        id="same-digest-reimport-leaves-items-unchanged",
    ),
    pytest.param(
        stream(
            spec_tags=[spec_tag(generation=3)],
            status_tags=[{"tag": "latest", "items": [item(DIGEST_A)]}],
        ),
        "latest",
        DIGEST_A,
        [item(DIGEST_A, 3)],
        id="same-digest-newer-spec-generation-only-moves-head-generation",
    ),
    pytest.param(
        stream(spec_tags=[spec_tag()], status_tags=[{"tag": "latest", "items": [item(DIGEST_A)]}]),
        "latest",
        DIGEST_B,
        [item(DIGEST_B, 2, openshift.rfc3339(NOW)), item(DIGEST_A)],
        id="new-digest-prepends",
    ),
    pytest.param(
        stream(status_tags=[{"tag": "dev", "items": [item(DIGEST_A)]}], generation=5),
        "pushed",
        DIGEST_A,
        [item(DIGEST_A, 5, openshift.rfc3339(NOW))],
        id="status-only-tag-created-with-stream-generation",
    ),
    pytest.param(
        stream(generation=None),
        "pushed",
        DIGEST_A,
        [item(DIGEST_A, 1, openshift.rfc3339(NOW))],
        id="status-only-tag-without-stream-generation-uses-1",
    ),
    pytest.param(
        stream(spec_tags=[spec_tag(generation=None)], generation=7),
        "latest",
        DIGEST_A,
        [item(DIGEST_A, 7, openshift.rfc3339(NOW))],
        id="spec-tag-with-null-generation-falls-back-to-stream-generation",
    ),
]


@pytest.mark.parametrize(("before", "tag", "digest", "expected_items"), IMPORT_CASES)
def test_apply_import_items(
    before: dict[str, Any], tag: str, digest: str, expected_items: list[dict[str, Any]]
) -> None:
    snapshot = copy.deepcopy(before)
    status = openshift.apply_import(
        before, tag, docker_image_reference=remote(digest), image=digest, now=NOW
    )
    assert tag_items(status, tag) == expected_items
    assert before == snapshot, "apply_import must not mutate its input"


@pytest.mark.parametrize(
    ("head_ref", "new_ref", "new_image", "expected_head"),
    [
        pytest.param(
            "quay.io/acme/app:latest",
            "quay.io/acme/app:latest",
            DIGEST_B,
            {"dockerImageReference": "quay.io/acme/app:latest", "image": DIGEST_B},
            id="same-pull-spec-new-image-rewrites-head",
        ),
        pytest.param(
            remote(DIGEST_A),
            f"mirror.example/app@{DIGEST_A}",
            DIGEST_A,
            {"dockerImageReference": f"mirror.example/app@{DIGEST_A}", "image": DIGEST_A},
            id="same-image-new-pull-spec-rewrites-head",
        ),
    ],
)
def test_apply_import_collapses_when_only_one_side_differs(
    head_ref: str, new_ref: str, new_image: str, expected_head: dict[str, str]
) -> None:
    before = stream(
        spec_tags=[spec_tag()],
        status_tags=[{"tag": "latest", "items": [item(DIGEST_A, ref=head_ref), item(DIGEST_B)]}],
    )
    status = openshift.apply_import(
        before, "latest", docker_image_reference=new_ref, image=new_image, now=NOW
    )
    items = tag_items(status)
    assert len(items) == 2
    assert {k: items[0][k] for k in expected_head} == expected_head
    assert items[0]["created"] == EARLIER, "a collapsed head keeps its creation time"
    assert items[0]["generation"] == 2


def test_apply_import_explicit_generation_wins() -> None:
    status = openshift.apply_import(
        stream(spec_tags=[spec_tag()]),
        "latest",
        docker_image_reference=remote(DIGEST_A),
        image=DIGEST_A,
        now=NOW,
        generation=9,
    )
    assert tag_items(status)[0]["generation"] == 9


def test_apply_import_success_clears_failed_condition() -> None:
    failed = {
        "type": "ImportSuccess",
        "status": "False",
        "reason": "NotFound",
        "message": "not found",
        "generation": 3,
        "lastTransitionTime": EARLIER,
    }
    before = stream(
        spec_tags=[spec_tag()],
        status_tags=[{"tag": "latest", "items": [item(DIGEST_A, 2)], "conditions": [failed]}],
    )
    for digest in (DIGEST_A, DIGEST_B):  # unchanged and changed tag alike
        status = openshift.apply_import(
            before, "latest", docker_image_reference=remote(digest), image=digest, now=NOW
        )
        entry = next(t for t in status["tags"] if t["tag"] == "latest")
        assert "conditions" not in entry


@pytest.mark.parametrize(
    ("repository", "expected"),
    [
        pytest.param(None, f"{REGISTRY}/demo/app", id="missing-is-filled"),
        pytest.param("registry.example/x/y", "registry.example/x/y", id="present-is-kept"),
    ],
)
def test_apply_import_docker_image_repository(repository: str | None, expected: str) -> None:
    status = openshift.apply_import(
        stream(repository=repository),
        "latest",
        docker_image_reference=remote(DIGEST_A),
        image=DIGEST_A,
        now=NOW,
    )
    assert status["dockerImageRepository"] == expected


def test_apply_import_updates_tracking_tags_and_sorts() -> None:
    tracking = {
        "name": "prod",
        "from": {"kind": "ImageStreamTag", "name": "app:latest"},
        "generation": 2,
        "referencePolicy": {"type": "Source"},
    }
    before = stream(spec_tags=[spec_tag(), tracking], status_tags=[{"tag": "zz", "items": []}])
    status = openshift.apply_import(
        before, "latest", docker_image_reference=remote(DIGEST_A), image=DIGEST_A, now=NOW
    )
    assert [t["tag"] for t in status["tags"]] == ["latest", "prod", "zz"]
    assert tag_items(status, "prod") == tag_items(status, "latest")


def test_apply_import_failure_records_condition_and_keeps_items() -> None:
    before = stream(
        spec_tags=[spec_tag()], status_tags=[{"tag": "latest", "items": [item(DIGEST_A)]}]
    )
    status = openshift.apply_import_failure(
        before, "latest", reason="Unauthorized", message="", now=NOW
    )
    entry = next(t for t in status["tags"] if t["tag"] == "latest")
    assert entry["items"] == [item(DIGEST_A)]
    assert entry["conditions"] == [
        {
            "type": "ImportSuccess",
            "status": "False",
            "lastTransitionTime": openshift.rfc3339(NOW),
            "reason": "Unauthorized",
            "message": "unknown error prevented import",
            "generation": 3,
        }
    ]
    again = openshift.apply_import_failure(
        {**before, "status": status}, "latest", reason="Unauthorized", message="", now=NOW
    )
    assert again == status, "the same failure is not recorded twice"


# --------------------------------------------------------------------------- ImageStreamTag


def test_image_stream_tag_synthesis() -> None:
    tag = spec_tag(annotations={"note": "x"})
    condition = {"type": "ImportSuccess", "status": "False", "generation": 2}
    src = stream(
        spec_tags=[tag],
        status_tags=[
            {
                "tag": "latest",
                "items": [item(DIGEST_B, 2), item(DIGEST_A)],
                "conditions": [condition],
            }
        ],
    )
    assert openshift.image_stream_tag(src, "latest") == {
        "apiVersion": "image.openshift.io/v1",
        "kind": "ImageStreamTag",
        "metadata": {
            "name": "app:latest",
            "namespace": "demo",
            "creationTimestamp": EARLIER,
            "uid": "is-uid",
            "resourceVersion": "42",
            "labels": {"team": "a"},
            "annotations": {"note": "x"},
        },
        "tag": tag,
        "generation": 2,
        "lookupPolicy": {"local": False},
        "conditions": [condition],
        "image": {
            "metadata": {"name": DIGEST_B, "annotations": {"note": "x"}},
            "dockerImageReference": remote(DIGEST_B),
        },
    }


@pytest.mark.parametrize(
    ("src", "tag", "expected_tag", "expected_reference"),
    [
        pytest.param(
            stream(status_tags=[{"tag": "pushed", "items": [item(DIGEST_A)]}]),
            "pushed",
            None,
            remote(DIGEST_A),
            id="status-only-tag-has-null-tag",
        ),
        pytest.param(
            stream(
                spec_tags=[spec_tag(referencePolicy={"type": "Local"})],
                status_tags=[{"tag": "latest", "items": [item(DIGEST_A)]}],
            ),
            "latest",
            spec_tag(referencePolicy={"type": "Local"}),
            f"{REGISTRY}/demo/app@{DIGEST_A}",
            id="local-reference-policy-points-at-integrated-registry",
        ),
        pytest.param(
            stream(
                spec_tags=[spec_tag(referencePolicy={"type": "Local"})],
                status_tags=[{"tag": "latest", "items": [item(DIGEST_A)]}],
                repository=None,
            ),
            "latest",
            spec_tag(referencePolicy={"type": "Local"}),
            remote(DIGEST_A),
            id="local-policy-without-repository-falls-back-to-source",
        ),
    ],
)
def test_image_stream_tag_reference(
    src: dict[str, Any], tag: str, expected_tag: Any, expected_reference: str
) -> None:
    istag = openshift.image_stream_tag(src, tag)
    assert istag is not None
    assert istag["tag"] == expected_tag
    assert istag["image"]["dockerImageReference"] == expected_reference


@pytest.mark.parametrize(
    ("src", "tag"),
    [
        pytest.param(stream(spec_tags=[spec_tag()]), "latest", id="spec-tag-never-imported"),
        pytest.param(stream(status_tags=[{"tag": "latest", "items": []}]), "latest", id="no-items"),
        pytest.param(
            stream(status_tags=[{"tag": "latest", "items": None}]), "latest", id="null-items"
        ),
        pytest.param(stream(), "missing", id="unknown-tag"),
    ],
)
def test_image_stream_tag_absent(src: dict[str, Any], tag: str) -> None:
    assert openshift.image_stream_tag(src, tag) is None


# --------------------------------------------------------------------------- instantiate

IST_FROM = {"kind": "ImageStreamTag", "name": "app:latest", "namespace": "demo"}


def buildconfig(
    *,
    last_version: int | None = None,
    triggers: list[dict[str, Any]] | None = None,
    ict_status: list[dict[str, Any]] | None = None,
    strategy: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    name: str = "web",
) -> dict[str, Any]:
    bc: dict[str, Any] = {
        "apiVersion": "build.openshift.io/v1",
        "kind": "BuildConfig",
        "metadata": {
            "name": name,
            "namespace": "demo",
            "uid": "bc-uid",
            "labels": {"app": "web"},
        },
        "spec": {
            "runPolicy": "Serial",
            "triggers": triggers
            if triggers is not None
            else [{"type": "ImageChange", "imageChange": {"from": IST_FROM}}],
            "source": {"type": "Git", "git": {"uri": "https://example.com/web.git"}},
            "strategy": strategy or {"type": "Docker", "dockerStrategy": {"from": dict(IST_FROM)}},
            "output": {"to": {"kind": "ImageStreamTag", "name": "web:latest"}},
        },
    }
    if annotations:
        bc["metadata"]["annotations"] = annotations
    if last_version is not None or ict_status is not None:
        bc["status"] = {"lastVersion": last_version or 0}
        if ict_status is not None:
            bc["status"]["imageChangeTriggers"] = ict_status
    return bc


def image_request(
    image: str = remote(DIGEST_A), source: dict[str, Any] | None = None
) -> dict[str, Any]:
    ref = source or IST_FROM
    return {
        "kind": "BuildRequest",
        "apiVersion": "build.openshift.io/v1",
        "metadata": {"name": "web", "namespace": "demo"},
        "triggeredByImage": {"kind": "DockerImage", "name": image},
        "from": ref,
        "triggeredBy": [
            {"message": "Image change", "imageChangeBuild": {"imageID": image, "fromRef": ref}}
        ],
    }


MANUAL = {
    "kind": "BuildRequest",
    "apiVersion": "build.openshift.io/v1",
    "metadata": {"name": "web"},
}


@pytest.mark.parametrize(
    ("last_version", "expected_name", "expected_number"),
    [
        pytest.param(None, "web-1", 1, id="no-status-starts-at-1"),
        pytest.param(0, "web-1", 1, id="lastVersion-0"),
        pytest.param(4, "web-5", 5, id="lastVersion-4"),
    ],
)
def test_instantiate_naming_and_numbering(
    last_version: int | None, expected_name: str, expected_number: int
) -> None:
    bc = buildconfig(last_version=last_version)
    snapshot = copy.deepcopy(bc)
    build, status = openshift.instantiate(bc, image_request(), NOW)
    assert build["metadata"]["name"] == expected_name
    assert build["metadata"]["annotations"]["openshift.io/build.number"] == str(expected_number)
    assert status["lastVersion"] == expected_number
    assert bc == snapshot, "instantiate must not mutate its input"


def test_instantiate_build_object() -> None:
    build, _ = openshift.instantiate(buildconfig(), image_request(), NOW)
    stamp = openshift.rfc3339(NOW)
    assert build["apiVersion"] == "build.openshift.io/v1"
    assert build["kind"] == "Build"
    assert build["metadata"]["namespace"] == "demo"
    assert build["metadata"]["labels"] == {
        "app": "web",
        "buildconfig": "web",
        "openshift.io/build-config.name": "web",
        "openshift.io/build.start-policy": "Serial",
    }
    assert build["metadata"]["annotations"] == {
        "openshift.io/build.number": "1",
        "openshift.io/build-config.name": "web",
    }
    assert build["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "build.openshift.io/v1",
            "kind": "BuildConfig",
            "name": "web",
            "uid": "bc-uid",
            "controller": True,
        }
    ]
    assert build["status"] == {
        "phase": "New",
        "conditions": [
            {"type": "New", "status": "True", "lastUpdateTime": stamp, "lastTransitionTime": stamp}
        ],
        "config": {"kind": "BuildConfig", "name": "web", "namespace": "demo"},
        "output": {},
    }
    spec = build["spec"]
    assert spec["serviceAccount"] == "builder"
    assert spec["triggeredBy"] == image_request()["triggeredBy"]
    assert spec["source"] == {"type": "Git", "git": {"uri": "https://example.com/web.git"}}
    assert spec["strategy"] == {
        "type": "Docker",
        "dockerStrategy": {"from": {"kind": "DockerImage", "name": remote(DIGEST_A)}},
    }
    assert spec["output"] == {"to": {"kind": "ImageStreamTag", "name": "web:latest"}}


def test_instantiate_records_trigger_status() -> None:
    other = {"kind": "ImageStreamTag", "name": "base:1", "namespace": "demo"}
    bc = buildconfig(
        triggers=[
            {"type": "ConfigChange"},
            {"type": "ImageChange", "imageChange": {"from": IST_FROM}},
            {"type": "ImageChange", "imageChange": {"from": other}},
        ],
        ict_status=[
            {"from": {"namespace": "demo", "name": "base:1"}, "lastTriggeredImageID": "base@x"}
        ],
        last_version=2,
    )
    _, status = openshift.instantiate(bc, image_request(), NOW)
    assert status == {
        "lastVersion": 3,
        "imageChangeTriggers": [
            {
                "from": {"namespace": "demo", "name": "app:latest"},
                "lastTriggeredImageID": remote(DIGEST_A),
                "lastTriggerTime": openshift.rfc3339(NOW),
            },
            {
                "from": {"namespace": "demo", "name": "base:1"},
                "lastTriggeredImageID": "base@x",
                "lastTriggerTime": None,
            },
        ],
    }


def test_second_instantiate_for_same_image_is_already_built() -> None:
    bc = buildconfig()
    _, status = openshift.instantiate(bc, image_request(), NOW)
    bc["status"] = status
    with pytest.raises(openshift.AlreadyBuilt) as refused:
        openshift.instantiate(bc, image_request(), NOW)
    assert str(refused.value) == (
        f"build config demo/web has already instantiated a build for imageid {remote(DIGEST_A)}"
    )
    assert refused.value.code == 500
    assert refused.value.status_message().startswith("Internal error occurred: build config")
    # A new image goes through and bumps the number again.
    build, again = openshift.instantiate(bc, image_request(remote(DIGEST_B)), NOW)
    assert build["metadata"]["name"] == "web-2"
    assert again["imageChangeTriggers"][0]["lastTriggeredImageID"] == remote(DIGEST_B)


def test_already_built_check_ignores_spec_last_triggered_image_id() -> None:
    bc = buildconfig(
        triggers=[
            {
                "type": "ImageChange",
                "imageChange": {"from": IST_FROM, "lastTriggeredImageID": remote(DIGEST_A)},
            }
        ]
    )
    build, _ = openshift.instantiate(bc, image_request(), NOW)
    assert build["metadata"]["name"] == "web-1"


@pytest.mark.parametrize(
    ("triggers", "request_from", "expected_status_from"),
    [
        pytest.param(
            [{"type": "ImageChange", "imageChange": {}}],
            {"kind": "ImageStreamTag", "name": "app:latest"},
            {"namespace": "demo", "name": "app:latest"},
            id="trigger-without-from-watches-strategy-from",
        ),
        pytest.param(
            [{"type": "imageChange", "imageChange": {"from": IST_FROM}}],
            IST_FROM,
            {"namespace": "demo", "name": "app:latest"},
            id="deprecated-lowercase-trigger-type",
        ),
    ],
)
def test_instantiate_trigger_matching(
    triggers: list[dict[str, Any]],
    request_from: dict[str, Any],
    expected_status_from: dict[str, str],
) -> None:
    _, status = openshift.instantiate(
        buildconfig(triggers=triggers), image_request(source=request_from), NOW
    )
    (entry,) = status["imageChangeTriggers"]
    assert entry["from"] == expected_status_from
    assert entry["lastTriggerTime"] == openshift.rfc3339(NOW)


def test_instantiate_from_matching_no_trigger_is_not_refused() -> None:
    """OpenShift builds anyway and credits no trigger with the image."""
    unrelated = {"kind": "ImageStreamTag", "name": "other:1", "namespace": "demo"}
    build, status = openshift.instantiate(buildconfig(), image_request(source=unrelated), NOW)
    assert build["metadata"]["name"] == "web-1"
    assert status["imageChangeTriggers"][0]["lastTriggerTime"] is None


def test_manual_instantiate_defaults_trigger_cause() -> None:
    build, status = openshift.instantiate(buildconfig(last_version=1), MANUAL, NOW)
    assert build["spec"]["triggeredBy"] == [{"message": "Manually triggered"}]
    assert status["lastVersion"] == 2


REFUSALS = [
    pytest.param(
        buildconfig(annotations={"openshift.io/build-config.paused": "true"}),
        image_request(),
        400,
        "can't instantiate from BuildConfig demo/web: BuildConfig is paused",
        id="paused",
    ),
    pytest.param(
        buildconfig(last_version=3),
        {**MANUAL, "lastVersion": 2},
        400,
        "the LastVersion(3) on build config demo/web "
        "does not match the build request LastVersion(2)",
        id="lastVersion-mismatch",
    ),
    pytest.param(
        buildconfig(),
        {**image_request(), "from": None},
        500,
        "This request caused apiserver to panic. Look in the logs for details.",
        id="triggeredByImage-without-from",
    ),
    pytest.param(
        buildconfig(strategy={"type": "Source", "sourceStrategy": {"from": dict(IST_FROM)}}),
        {**MANUAL, "dockerStrategyOptions": {"noCache": True}},
        400,
        "Cannot specify Docker build specific options on demo/web, not a Docker build.",
        id="docker-options-on-source-build",
    ),
]


@pytest.mark.parametrize(("bc", "request_body", "code", "message"), REFUSALS)
def test_instantiate_refusals(
    bc: dict[str, Any], request_body: dict[str, Any], code: int, message: str
) -> None:
    with pytest.raises(openshift.InvalidRequest) as refused:
        openshift.instantiate(bc, request_body, NOW)
    assert refused.value.code == code
    assert str(refused.value) == message


def test_instantiate_with_stream_resolver() -> None:
    app = stream(
        spec_tags=[spec_tag(referencePolicy={"type": "Local"})],
        status_tags=[{"tag": "latest", "items": [item(DIGEST_B, 2), item(DIGEST_A)]}],
    )
    resolve = openshift.stream_resolver({("demo", "app"): app})
    build, _ = openshift.instantiate(buildconfig(), MANUAL, NOW, resolve=resolve)
    assert build["spec"]["strategy"]["dockerStrategy"]["from"] == {
        "kind": "DockerImage",
        "name": f"{REGISTRY}/demo/app@{DIGEST_B}",
    }


def test_instantiate_unresolvable_strategy_trigger_fails_like_openshift() -> None:
    bc = buildconfig(triggers=[{"type": "ImageChange", "imageChange": {}}])
    with pytest.raises(openshift.Unresolvable) as refused:
        openshift.instantiate(bc, MANUAL, NOW, resolve=openshift.stream_resolver({}))
    assert refused.value.code == 422
    assert str(refused.value) == (
        "Error resolving ImageStreamTag app:latest in namespace demo: "
        'imagestreams.image.openshift.io "app" not found'
    )


def test_instantiate_custom_strategy_sets_base_image_env() -> None:
    bc = buildconfig(
        strategy={"type": "Custom", "customStrategy": {"from": dict(IST_FROM), "env": []}}
    )
    build, _ = openshift.instantiate(bc, image_request(), NOW)
    custom = build["spec"]["strategy"]["customStrategy"]
    assert custom["from"] == {"kind": "DockerImage", "name": remote(DIGEST_A)}
    assert custom["env"] == [
        {"name": "OPENSHIFT_CUSTOM_BUILD_BASE_IMAGE", "value": remote(DIGEST_A)}
    ]
    assert build["spec"]["strategy"]["type"] == "Custom"


def test_instantiate_requires_uid() -> None:
    bc = buildconfig()
    del bc["metadata"]["uid"]
    with pytest.raises(ValueError, match="uid"):
        openshift.instantiate(bc, MANUAL, NOW)


@pytest.mark.parametrize(
    ("bc_name", "number", "check"),
    [
        pytest.param("web", 12, lambda n: n == "web-12", id="short"),
        pytest.param(
            "a" * 260,
            7,
            # library-go hashes the base with FNV-1a (value checked against Go's hash/fnv).
            lambda n: n == "a" * 242 + "-af92c2b9-7",
            id="too-long-is-hashed",
        ),
    ],
)
def test_build_name(bc_name: str, number: int, check: Callable[[str], Any]) -> None:
    assert check(openshift.build_name(bc_name, number))


def test_build_config_label_is_truncated_to_a_valid_label_value() -> None:
    bc = buildconfig(name="w" * 62 + "-x" + "y" * 10)
    build, _ = openshift.instantiate(bc, MANUAL, NOW)
    assert build["metadata"]["labels"]["buildconfig"] == "w" * 62
    assert (
        build["metadata"]["annotations"]["openshift.io/build-config.name"] == bc["metadata"]["name"]
    )


# --------------------------------------------------------------------------- strategy


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        pytest.param({"type": "Docker", "dockerStrategy": {}}, "docker", id="docker"),
        pytest.param({"type": "Docker"}, "docker", id="docker-type-only-is-defaulted"),
        pytest.param(
            {"type": "Source", "sourceStrategy": {"from": IST_FROM}}, "source", id="source"
        ),
        pytest.param(
            {"type": "Custom", "customStrategy": {"from": IST_FROM}}, "custom", id="custom"
        ),
        pytest.param(
            {"type": "JenkinsPipeline", "jenkinsPipelineStrategy": {}},
            "jenkinspipeline",
            id="jenkinspipeline",
        ),
        pytest.param(
            {"type": "Docker", "dockerStrategy": {"imageOptimizationPolicy": "SkipLayers"}},
            "optimizeddocker",
            id="docker-skip-layers",
        ),
        pytest.param(
            {"type": "Docker", "dockerStrategy": {"imageOptimizationPolicy": "None"}},
            "docker",
            id="docker-optimization-none",
        ),
        pytest.param({"type": "Source", "dockerStrategy": {}}, "docker", id="blocks-win-over-type"),
    ],
)
def test_strategy_subresource(strategy: dict[str, Any], expected: str) -> None:
    assert openshift.strategy_subresource({"spec": {"strategy": strategy}}) == expected


def test_strategy_subresource_mapping_and_unknown() -> None:
    assert dict(openshift.BUILD_STRATEGY_SUBRESOURCE) == {
        "Docker": "docker",
        "Source": "source",
        "Custom": "custom",
        "JenkinsPipeline": "jenkinspipeline",
    }
    with pytest.raises(openshift.InvalidRequest) as refused:
        openshift.strategy_subresource({"spec": {"strategy": {"type": "Magic"}}})
    assert refused.value.code == 403


# --------------------------------------------------------------------------- CRDs


def walk_schemas(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from walk_schemas(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk_schemas(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk_schemas(node["additionalProperties"], f"{path}{{}}")


CRD_CASES = [
    pytest.param(
        "imagestreams.yaml",
        "image.openshift.io",
        "ImageStream",
        "imagestreams",
        ["is"],
        ["Image Repository", "Tags", "Updated"],
        id="imagestreams",
    ),
    pytest.param(
        "buildconfigs.yaml",
        "build.openshift.io",
        "BuildConfig",
        "buildconfigs",
        ["bc"],
        ["Type", "From", "Latest"],
        id="buildconfigs",
    ),
    pytest.param(
        "builds.yaml",
        "build.openshift.io",
        "Build",
        "builds",
        None,
        ["Type", "From", "Status", "Started"],
        id="builds",
    ),
]


@pytest.mark.parametrize(("filename", "group", "kind", "plural", "short", "columns"), CRD_CASES)
def test_crd_is_structurally_sane(
    filename: str,
    group: str,
    kind: str,
    plural: str,
    short: list[str] | None,
    columns: list[str],
) -> None:
    crd = yaml.safe_load((CRDS / filename).read_text())
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == f"{plural}.{group}"
    spec = crd["spec"]
    assert spec["group"] == group
    assert spec["scope"] == "Namespaced"
    assert spec["names"]["kind"] == kind
    assert spec["names"]["plural"] == plural
    assert spec["names"].get("shortNames") == short
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1", True, True)
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]] == columns
    root = version["schema"]["openAPIV3Schema"]
    assert {"spec", "status", "metadata"} <= set(root["properties"])
    for path, node in walk_schemas(root):
        assert "type" in node, f"{filename}: {path or '<root>'} has no type"
        if node["type"] == "object":
            assert not ("properties" in node and "additionalProperties" in node), path
        if "properties" in node:
            for name, child in node["properties"].items():
                assert "type" in child, f"{filename}: {path}.{name} has no type"
