"""The command line: version, help generated from the settings, and start-up errors."""

from __future__ import annotations

import re
from typing import Any

import pytest

from imagestream_trigger import __version__, cli, runner
from imagestream_trigger.settings import ENV_PREFIX, Settings

# Each Settings field and the flag that sets it.
FLAGS = {
    "namespaces": "--namespace",
    "native_annotations": "--native-annotations",
    "default_service_account": "--default-service-account",
    "internal_registry_hostname": "--internal-registry-hostname",
    "dry_run": "--dry-run",
    "metrics_port": "--metrics-port",
    "health_port": "--health-port",
    "bind_address": "--bind-address",
    "log_format": "--log-format",
    "log_level": "--log-level",
    "resync_seconds": "--resync-seconds",
    "max_concurrent_writes": "--max-concurrent-writes",
    "workers": "--workers",
    "shard": "--shard",
    "leader_election": "--leader-election",
    "lease_namespace": "--lease-namespace",
    "lease_name": "--lease-name",
    "lease_duration_seconds": "--lease-duration-seconds",
    "lease_renew_deadline_seconds": "--lease-renew-deadline-seconds",
    "lease_retry_period_seconds": "--lease-retry-period-seconds",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No IMAGESTREAM_TRIGGER_* from the machine running the tests; wide help output."""
    for name in Settings.model_fields:
        monkeypatch.delenv(ENV_PREFIX + name.upper(), raising=False)
    monkeypatch.setenv("COLUMNS", "200")


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Record instead of starting the operator (and leave the logging configuration alone)."""
    calls: list[Settings] = []

    async def run(settings: Settings) -> None:
        calls.append(settings)

    monkeypatch.setattr(runner, "run", run)
    monkeypatch.setattr(cli, "configure_logging", lambda settings: None)
    return calls


def help_text(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    assert exited.value.code == 0
    out = capsys.readouterr().out
    return " ".join(out.split())  # argparse wraps to the terminal width


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"imagestream-trigger {__version__}"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "usage: imagestream-trigger" in out
    assert "run" in out


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve"])
    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_every_setting_has_a_flag() -> None:
    assert set(FLAGS) == set(Settings.model_fields)


@pytest.mark.parametrize(("field", "flag"), sorted(FLAGS.items()), ids=sorted(FLAGS))
def test_run_help_lists_flag_and_variable(
    capsys: pytest.CaptureFixture[str], field: str, flag: str
) -> None:
    text = help_text(capsys, ["run", "--help"])
    variable = ENV_PREFIX + field.upper()
    assert re.search(rf"(^|[\s,\[]){re.escape(flag)}\b", text), flag
    assert f"env {variable})" in text
    description = Settings.model_fields[field].description
    assert description is not None
    assert " ".join(description.split()) in text


@pytest.mark.parametrize(
    ("field", "default"),
    [
        pytest.param("namespaces", "all", id="namespaces"),
        pytest.param("native_annotations", "auto", id="native-annotations"),
        pytest.param("default_service_account", "empty", id="default-service-account"),
        pytest.param("metrics_port", "8080", id="metrics-port"),
        pytest.param("log_format", "text", id="log-format"),
        pytest.param("resync_seconds", "600.0", id="resync-seconds"),
    ],
)
def test_run_help_shows_defaults(
    capsys: pytest.CaptureFixture[str], field: str, default: str
) -> None:
    text = help_text(capsys, ["run", "--help"])
    assert f"(default: {default}; env {ENV_PREFIX}{field.upper()})" in text


def test_invalid_env_value_fails_before_starting(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    started: list[Settings],
) -> None:
    monkeypatch.setenv("IMAGESTREAM_TRIGGER_LOG_FORMAT", "xml")
    assert cli.main(["run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("imagestream-trigger: invalid settings: ")
    assert "IMAGESTREAM_TRIGGER_LOG_FORMAT" in captured.err
    assert "--log-format" in captured.err
    assert started == []


def test_invalid_flag_value_fails_before_starting(
    capsys: pytest.CaptureFixture[str], started: list[Settings]
) -> None:
    assert cli.main(["run", "--metrics-port", "70000"]) == 2
    assert "--metrics-port" in capsys.readouterr().err
    assert started == []


def test_invalid_choice_is_rejected_by_argparse(
    capsys: pytest.CaptureFixture[str], started: list[Settings]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "--log-format", "xml"])
    assert exited.value.code == 2
    assert "--log-format" in capsys.readouterr().err
    assert started == []


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        pytest.param([], {}, {"namespaces": (), "dry_run": False}, id="defaults"),
        pytest.param(
            ["-n", "team-a", "--namespace", "team-b"],
            {"NAMESPACES": "other"},
            {"namespaces": ("team-a", "team-b")},
            id="repeated-namespace-over-env",
        ),
        pytest.param(
            [], {"NAMESPACES": "a, b,team-*"}, {"namespaces": ("a", "b", "team-*")}, id="env"
        ),
        pytest.param(
            ["-A"], {"NAMESPACES": "team-a"}, {"namespaces": ()}, id="all-namespaces-over-env"
        ),
        pytest.param(
            ["--log-format", "json"], {"LOG_FORMAT": "xml"}, {"log_format": "json"}, id="flag-wins"
        ),
        pytest.param([], {"DRY_RUN": "true"}, {"dry_run": True}, id="dry-run-from-env"),
        pytest.param(["--dry-run"], {"DRY_RUN": "false"}, {"dry_run": True}, id="dry-run-flag"),
        pytest.param(
            ["--no-native-annotations"],
            {"NATIVE_ANNOTATIONS": "apply"},
            {"native_annotations": "off"},
            id="negated-flag-over-env",
        ),
        pytest.param(
            ["--native-annotations", "observe"],
            {"NATIVE_ANNOTATIONS": "apply"},
            {"native_annotations": "observe"},
            id="mode-flag-over-env",
        ),
        pytest.param(
            ["--native-annotations"],
            {},
            {"native_annotations": "apply"},
            id="bare-flag-is-apply",
        ),
        pytest.param(
            [],
            {"NATIVE_ANNOTATIONS": "false"},
            {"native_annotations": "off"},
            id="flag-not-given-keeps-env",
        ),
        pytest.param(
            ["--metrics-port", "0", "--resync-seconds", "2.5"],
            {},
            {"metrics_port": 0, "resync_seconds": 2.5},
            id="numbers",
        ),
    ],
)
def test_run_passes_settings_to_the_operator(
    monkeypatch: pytest.MonkeyPatch,
    started: list[Settings],
    argv: list[str],
    environ: dict[str, str],
    expected: dict[str, Any],
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(ENV_PREFIX + name, value)
    assert cli.main(["run", *argv]) == 0
    [settings] = started
    assert {name: getattr(settings, name) for name in expected} == expected


def test_namespace_and_all_namespaces_exclude_each_other(
    capsys: pytest.CaptureFixture[str], started: list[Settings]
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["run", "-n", "team-a", "-A"])
    assert exited.value.code == 2
    assert "not allowed with" in capsys.readouterr().err
    assert started == []
