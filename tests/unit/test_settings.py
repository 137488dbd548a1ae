"""Operator settings: flags over IMAGESTREAM_TRIGGER_* variables over defaults."""

from __future__ import annotations

from typing import Any

import pytest

from imagestream_trigger.errors import ConfigurationError, ImagestreamTriggerError
from imagestream_trigger.settings import ENV_PREFIX, Settings, from_sources, native_mode

DEFAULTS = {
    "namespaces": (),
    "native_annotations": "auto",
    "default_service_account": "",
    "internal_registry_hostname": "",
    "dry_run": False,
    "metrics_port": 8080,
    "health_port": 8081,
    "bind_address": "0.0.0.0",
    "log_format": "text",
    "log_level": "info",
    "resync_seconds": 600.0,
    "max_concurrent_writes": 16,
    "workers": 16,
    "shard": "",
    "leader_election": True,
    "lease_namespace": "",
    "lease_name": "imagestream-trigger",
    "lease_duration_seconds": 8.0,
    "lease_renew_deadline_seconds": 5.0,
    "lease_retry_period_seconds": 1.0,
}


def env(**values: str) -> dict[str, str]:
    return {ENV_PREFIX + name.upper(): value for name, value in values.items()}


def test_defaults() -> None:
    settings = from_sources({}, {})
    assert settings.model_dump() == DEFAULTS
    assert set(DEFAULTS) == set(Settings.model_fields)


def test_environment_is_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGESTREAM_TRIGGER_METRICS_PORT", "9100")
    assert from_sources({}).metrics_port == 9100


@pytest.mark.parametrize(
    ("field", "flag", "environ", "expected"),
    [
        pytest.param("metrics_port", None, None, 8080, id="default"),
        pytest.param("metrics_port", None, "9100", 9100, id="env-over-default"),
        pytest.param("metrics_port", 9200, "9100", 9200, id="flag-over-env"),
        pytest.param("metrics_port", 9200, None, 9200, id="flag-over-default"),
        pytest.param("metrics_port", None, "", 8080, id="empty-env-is-unset"),
        pytest.param("metrics_port", 0, "9100", 0, id="flag-zero-is-given"),
        pytest.param("log_format", "json", "text", "json", id="literal-flag-over-env"),
        pytest.param("log_level", None, "debug", "debug", id="literal-from-env"),
        pytest.param("dry_run", True, "false", True, id="bool-flag-over-env"),
        pytest.param("native_annotations", "off", "apply", "off", id="mode-flag-over-env"),
        pytest.param("native_annotations", None, "observe", "observe", id="mode-from-env"),
        pytest.param("native_annotations", None, "true", "apply", id="legacy-true-is-apply"),
        pytest.param("native_annotations", False, None, "off", id="legacy-false-is-off"),
        pytest.param("namespaces", ["x"], "a,b", ("x",), id="namespaces-flag-over-env"),
        pytest.param("namespaces", (), "a,b", (), id="all-namespaces-flag-over-env"),
        pytest.param("resync_seconds", None, "30", 30.0, id="float-from-env"),
        pytest.param("bind_address", "127.0.0.1", "::", "127.0.0.1", id="str-flag-over-env"),
    ],
)
def test_precedence(field: str, flag: Any, environ: str | None, expected: Any) -> None:
    flags = {field: flag}
    variables = env(**{field: environ}) if environ is not None else {}
    assert getattr(from_sources(flags, variables), field) == expected


def test_every_field_is_read_from_its_variable() -> None:
    variables = env(
        namespaces="a",
        native_annotations="observe",
        default_service_account="trigger-runner",
        internal_registry_hostname="registry.example:5000",
        dry_run="true",
        metrics_port="1",
        health_port="2",
        bind_address="127.0.0.1",
        log_format="json",
        log_level="error",
        resync_seconds="1.5",
        max_concurrent_writes="3",
        workers="4",
        shard="1/2",
        leader_election="false",
        lease_namespace="ops",
        lease_name="shard-1",
        lease_duration_seconds="20",
        lease_renew_deadline_seconds="12",
        lease_retry_period_seconds="3",
    )
    assert set(variables) == {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    assert from_sources({}, variables).model_dump() == {
        "namespaces": ("a",),
        "native_annotations": "observe",
        "default_service_account": "trigger-runner",
        "internal_registry_hostname": "registry.example:5000",
        "dry_run": True,
        "metrics_port": 1,
        "health_port": 2,
        "bind_address": "127.0.0.1",
        "log_format": "json",
        "log_level": "error",
        "resync_seconds": 1.5,
        "max_concurrent_writes": 3,
        "workers": 4,
        "shard": "1/2",
        "leader_election": False,
        "lease_namespace": "ops",
        "lease_name": "shard-1",
        "lease_duration_seconds": 20.0,
        "lease_renew_deadline_seconds": 12.0,
        "lease_retry_period_seconds": 3.0,
    }


def test_unknown_flags_and_variables_are_ignored() -> None:
    settings = from_sources(
        {"command": "run", "all_namespaces": False, "dry_run": None},
        {"IMAGESTREAM_TRIGGER_COLOUR": "blue", "HOME": "/root"},
    )
    assert settings.model_dump() == DEFAULTS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("a, b,team-*", ("a", "b", "team-*"), id="spaces-and-glob"),
        pytest.param("team-a", ("team-a",), id="one"),
        pytest.param(" a ,, b ,", ("a", "b"), id="empty-parts-dropped"),
        pytest.param("!kube-system", ("!kube-system",), id="exclusion"),
        pytest.param(",", (), id="only-commas"),
    ],
)
def test_namespaces_from_env(raw: str, expected: tuple[str, ...]) -> None:
    settings = from_sources({}, env(namespaces=raw))
    assert settings.namespaces == expected
    assert isinstance(settings.namespaces, tuple)


def test_namespaces_from_repeated_flags() -> None:
    assert from_sources({"namespaces": ["a", "b"]}, {}).namespaces == ("a", "b")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("true", True, id="true"),
        pytest.param("false", False, id="false"),
        pytest.param("1", True, id="one"),
        pytest.param("0", False, id="zero"),
        pytest.param("True", True, id="capitalised"),
        pytest.param("FALSE", False, id="upper"),
    ],
)
@pytest.mark.parametrize("field", ["dry_run"])
def test_booleans_from_env(field: str, raw: str, expected: bool) -> None:
    assert getattr(from_sources({}, env(**{field: raw})), field) is expected


@pytest.mark.parametrize(("raw", "expected"), [("TRUE", "apply"), (" False", "off")])
def test_legacy_boolean_native_annotations(raw: str, expected: str) -> None:
    assert from_sources({}, env(native_annotations=raw)).native_annotations == expected


@pytest.mark.parametrize(
    ("field", "raw", "variable", "flag"),
    [
        pytest.param(
            "log_format", "xml", "IMAGESTREAM_TRIGGER_LOG_FORMAT", "--log-format", id="log-format"
        ),
        pytest.param(
            "log_level", "trace", "IMAGESTREAM_TRIGGER_LOG_LEVEL", "--log-level", id="log-level"
        ),
        pytest.param(
            "metrics_port",
            "70000",
            "IMAGESTREAM_TRIGGER_METRICS_PORT",
            "--metrics-port",
            id="port-too-big",
        ),
        pytest.param(
            "health_port", "http", "IMAGESTREAM_TRIGGER_HEALTH_PORT", "--health-port", id="not-int"
        ),
        pytest.param(
            "resync_seconds",
            "0",
            "IMAGESTREAM_TRIGGER_RESYNC_SECONDS",
            "--resync-seconds",
            id="resync-zero",
        ),
        pytest.param(
            "max_concurrent_writes",
            "0",
            "IMAGESTREAM_TRIGGER_MAX_CONCURRENT_WRITES",
            "--max-concurrent-writes",
            id="no-writes",
        ),
        pytest.param("workers", "0", "IMAGESTREAM_TRIGGER_WORKERS", "--workers", id="no-workers"),
        pytest.param("dry_run", "maybe", "IMAGESTREAM_TRIGGER_DRY_RUN", "--dry-run", id="not-bool"),
        pytest.param(
            "native_annotations",
            "sometimes",
            "IMAGESTREAM_TRIGGER_NATIVE_ANNOTATIONS",
            "--native-annotations",
            id="not-a-mode",
        ),
        pytest.param(
            "default_service_account",
            "Not_A_Name",
            "IMAGESTREAM_TRIGGER_DEFAULT_SERVICE_ACCOUNT",
            "--default-service-account",
            id="not-a-service-account-name",
        ),
    ],
)
def test_invalid_env_value_names_variable_and_flag(
    field: str, raw: str, variable: str, flag: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        from_sources({}, env(**{field: raw}))
    message = str(caught.value)
    assert message.startswith("invalid settings: ")
    assert variable in message
    assert flag in message
    assert isinstance(caught.value, ImagestreamTriggerError)
    assert caught.value.__cause__ is None  # pydantic's wording stays out of the way


def test_invalid_flag_value_names_variable_and_flag() -> None:
    with pytest.raises(ConfigurationError) as caught:
        from_sources({"metrics_port": -1}, {})
    assert "IMAGESTREAM_TRIGGER_METRICS_PORT" in str(caught.value)
    assert "--metrics-port" in str(caught.value)


def test_every_invalid_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        from_sources({}, env(log_format="xml", health_port="-5"))
    message = str(caught.value)
    assert "IMAGESTREAM_TRIGGER_LOG_FORMAT" in message
    assert "IMAGESTREAM_TRIGGER_HEALTH_PORT" in message


def test_a_valid_flag_hides_an_invalid_variable() -> None:
    settings = from_sources({"log_format": "json"}, env(log_format="xml"))
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("namespaces", "clusterwide"),
    [
        pytest.param((), True, id="all"),
        pytest.param(("team-a",), False, id="one"),
        pytest.param(("team-*",), False, id="glob"),
        pytest.param(("!kube-system",), False, id="exclusion-only"),
    ],
)
def test_clusterwide(namespaces: tuple[str, ...], clusterwide: bool) -> None:
    assert Settings(namespaces=namespaces).clusterwide is clusterwide


def test_clusterwide_from_env() -> None:
    assert from_sources({}, {}).clusterwide is True
    assert from_sources({}, env(namespaces="team-a")).clusterwide is False


def test_settings_are_frozen() -> None:
    settings = from_sources({}, {})
    with pytest.raises(ValueError, match="frozen"):
        settings.dry_run = True  # type: ignore[misc]


OPENSHIFT_APISERVICE = {
    "metadata": {"name": "v1.image.openshift.io"},
    "spec": {
        "group": "image.openshift.io",
        "version": "v1",
        "service": {"namespace": "openshift-apiserver", "name": "api", "port": 443},
    },
}
CRD_APISERVICE = {
    "metadata": {
        "name": "v1.image.openshift.io",
        "labels": {"kube-aggregator.kubernetes.io/automanaged": "true"},
    },
    "spec": {"group": "image.openshift.io", "version": "v1", "service": None},
}


@pytest.mark.parametrize(
    ("requested", "apiservice", "problem", "mode", "said"),
    [
        pytest.param(
            "auto", OPENSHIFT_APISERVICE, "", "observe", "openshift-apiserver/api", id="openshift"
        ),
        pytest.param("auto", CRD_APISERVICE, "", "apply", "CustomResourceDefinition", id="crd"),
        pytest.param("auto", None, "", "apply", "no APIService", id="absent"),
        pytest.param("auto", None, "unreadable", "apply", "unreadable", id="forbidden"),
        pytest.param(
            "apply",
            OPENSHIFT_APISERVICE,
            "",
            "apply",
            "--native-annotations=apply",
            id="apply-wins",
        ),
        pytest.param("off", None, "", "off", "--native-annotations=off", id="off"),
        pytest.param("observe", CRD_APISERVICE, "", "observe", "=observe", id="observe-anyway"),
    ],
)
def test_native_mode(
    requested: Any, apiservice: dict[str, Any] | None, problem: str, mode: str, said: str
) -> None:
    chosen, why = native_mode(requested, apiservice, problem)
    assert chosen == mode
    assert said in why


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        pytest.param(
            {"lease_duration_seconds": "5"}, "renew_deadline_seconds must be shorter", id="deadline"
        ),
        pytest.param(
            {"lease_retry_period_seconds": "5"}, "retry_period_seconds must be shorter", id="retry"
        ),
    ],
)
def test_lease_timings_must_nest(values: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        from_sources({}, env(**values))
