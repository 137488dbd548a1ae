"""``imagestream-trigger``: the command line.

Flags mirror the ``Settings`` fields one to one and take their help text from
them; each flag can also be set as ``IMAGESTREAM_TRIGGER_<FIELD>`` in the
environment (what the Helm chart and the manifests do).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from imagestream_trigger import __version__
from imagestream_trigger.errors import ConfigurationError
from imagestream_trigger.settings import ENV_PREFIX, Settings, flag_for, from_sources

DESCRIPTION = """\
Follow OpenShift ImageStream tags into workloads and builds.

When an ImageStream tag moves to a new image, Deployments, StatefulSets,
DaemonSets and CronJobs that follow it (through OpenShift's
image.openshift.io/triggers annotation or an ImageTrigger resource) are set to
the new digest-pinned image, and BuildConfigs targeted by an ImageTrigger get a
new build.
"""

EPILOG = f"""\
Every option can also come from the environment: {ENV_PREFIX}<OPTION>, e.g.
{ENV_PREFIX}NAMESPACES=team-a,team-b or {ENV_PREFIX}LOG_FORMAT=json.
A flag wins over the environment.

Credentials: in a pod, its ServiceAccount; elsewhere $KUBECONFIG or ~/.kube/config.
"""


def _help(field: str) -> str:
    info = Settings.model_fields[field]
    default = info.default
    shown = (
        (",".join(default) or "all")
        if isinstance(default, tuple)
        else ("empty" if default == "" else default)
    )
    return f"{info.description} (default: {shown}; env {ENV_PREFIX + field.upper()})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="imagestream-trigger",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"imagestream-trigger {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run the operator until SIGTERM or Ctrl-C",
        description="Run the operator: watch, decide, write, report, until SIGTERM or Ctrl-C.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The container's entrypoint is "imagestream-trigger run": keep --version reachable there.
    run.add_argument("--version", action="version", version=f"imagestream-trigger {__version__}")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        dest="namespaces",
        action="append",
        metavar="NS",
        help=_help("namespaces") + "; repeat for several",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="serve every namespace (the default)"
    )
    run.add_argument(
        "--native-annotations",
        nargs="?",
        const="apply",
        choices=["auto", "apply", "observe", "off"],
        metavar="MODE",
        help=_help("native_annotations") + "; auto|apply|observe|off, bare flag: apply",
    )
    run.add_argument(
        "--no-native-annotations",
        dest="native_annotations",
        action="store_const",
        const="off",
        help="same as --native-annotations=off",
    )
    run.add_argument(
        "--default-service-account", metavar="NAME", help=_help("default_service_account")
    )
    run.add_argument(
        "--internal-registry-hostname", metavar="HOST", help=_help("internal_registry_hostname")
    )
    run.add_argument(
        "--dry-run", action=argparse.BooleanOptionalAction, default=None, help=_help("dry_run")
    )
    run.add_argument("--metrics-port", type=int, metavar="PORT", help=_help("metrics_port"))
    run.add_argument("--health-port", type=int, metavar="PORT", help=_help("health_port"))
    run.add_argument("--bind-address", metavar="ADDR", help=_help("bind_address"))
    run.add_argument("--log-format", choices=["text", "json"], help=_help("log_format"))
    run.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error"], help=_help("log_level")
    )
    run.add_argument("--resync-seconds", type=float, metavar="S", help=_help("resync_seconds"))
    run.add_argument(
        "--max-concurrent-writes", type=int, metavar="N", help=_help("max_concurrent_writes")
    )
    run.add_argument("--workers", type=int, metavar="N", help=_help("workers"))
    run.add_argument("--shard", metavar="I/N", help=_help("shard"))
    election = run.add_argument_group("leader election (several replicas, one writer)")
    election.add_argument(
        "--leader-election",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=_help("leader_election"),
    )
    election.add_argument("--lease-namespace", metavar="NS", help=_help("lease_namespace"))
    election.add_argument("--lease-name", metavar="NAME", help=_help("lease_name"))
    for field in ("duration", "renew_deadline", "retry_period"):
        name = f"lease_{field}_seconds"
        election.add_argument(flag_for(name), type=float, metavar="S", help=_help(name))
    return parser


def configure_logging(settings: Settings) -> None:
    import kopf

    kopf.configure(
        debug=settings.log_level == "debug",
        verbose=settings.log_level in ("debug", "info"),
        quiet=settings.log_level == "error",
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger().setLevel(settings.log_level.upper())
    # aiohttp's access log and kopf's per-event chatter drown the operator's own lines.
    for noisy in ("kopf.objects", "kopf._core.engines.peering", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "run":
        parser.print_help()
        return 0 if args.command is None else 2
    flags: dict[str, Any] = {k: v for k, v in vars(args).items() if k != "command"}
    if flags.pop("all_namespaces"):
        flags["namespaces"] = ()
    try:
        settings = from_sources(flags)
        configure_logging(settings)
        from imagestream_trigger import runner

        asyncio.run(runner.run(settings))
    except ConfigurationError as error:
        print(f"imagestream-trigger: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
